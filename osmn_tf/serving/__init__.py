"""Serving OSMN: a SavedModel for TF Serving, other formats, and a client.

* `signatures`: the SavedModel's signatures, their input checks, `export_saved_model`.
* `preprocessing`: the in-graph (TF op) guides and frame resize of the `_raw` signatures.
* `images`: the in-graph decoding of the `_image` signatures' JPEG/PNG inputs.
* `conversion`: ONNX and LiteRT files.
* `client`: segmenting a video through TF Serving (REST), with the library's video loop, and retries.
* `grpc_client`: the same over TF Serving's gRPC API.
* `warmup`: TF Serving's warm-up file; `server_config`: `models.config` and batching parameters.

`docs/serving.md` describes the signatures and how to serve them.
"""
