"""Stand-ins for TF Serving in the tests: its REST API over HTTP and its gRPC `PredictionService`, each
answering from `tf.saved_model.load` on 127.0.0.1 (no TF Serving binary can be installed here).

Both answer `Predict` and `GetModelMetadata` as TF Serving does: the REST one in its
columnar JSON (a single output unnamed, `*_bytes` strings as `{"b64": ...}`, errors as
`{"error": ...}`), the metadata as the SavedModel's `SignatureDefMap` (JSON with the
proto's field names, int64 sizes as strings).
"""
import base64
import http.server
import json
import os
import threading

import numpy as np
import tensorflow as tf


def signature_defs(saved_model_dir):
    """`{name: SignatureDef}` of the SavedModel's serving meta graph, as TF Serving reports them."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    (meta_graph,) = saved_model.meta_graphs
    return {name: sig for name, sig in meta_graph.signature_def.items() if not name.startswith("__")}


def _input_value(value, dtype):
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(value["b64"])
    if dtype == tf.string:
        return np.array([_input_value(v, dtype) for v in value], object)
    return np.asarray(value, dtype.as_numpy_dtype)


def _output_json(value):
    if value.dtype == object or value.dtype.kind == "S":
        if value.ndim == 0:
            return {"b64": base64.b64encode(value.item()).decode("ascii")}
        return [_output_json(v) for v in value]
    return value.tolist()


class RestServer:
    """TF Serving's REST API for one model on a free 127.0.0.1 port (a thread); a context manager.

    `url` is the server's address; `calls` lists the signatures predicted, `metadata_calls` counts
    the metadata requests.
    """

    def __init__(self, saved_model_dir, model_name="osmn"):
        self.loaded = tf.saved_model.load(os.fspath(saved_model_dir))
        self.metadata = {
            "model_spec": {"name": model_name, "signature_name": "", "version": "1"},
            "metadata": {"signature_def": {
                "@type": "type.googleapis.com/tensorflow.serving.SignatureDefMap",
                "signature_def": {name: _message_to_dict(sig)
                                  for name, sig in signature_defs(saved_model_dir).items()}}}}
        self.model_name = model_name
        self.calls = []
        self.metadata_calls = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != f"/v1/models/{server.model_name}/metadata":
                    return self._answer(404, {"error": f"Servable not found for request: {self.path}"})
                server.metadata_calls += 1
                self._answer(200, server.metadata)

            def do_POST(self):
                if self.path != f"/v1/models/{server.model_name}:predict":
                    return self._answer(404, {"error": f"Servable not found for request: {self.path}"})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, answer = server.predict(body)
                self._answer(status, answer)

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def predict(self, body):
        name = body.get("signature_name", "serving_default")
        self.calls.append(name)
        signature = self.loaded.signatures.get(name)
        if signature is None:
            return 400, {"error": f"Serving signature name: \"{name}\" not found in signature def"}
        specs = signature.structured_input_signature[1]
        try:
            inputs = {k: tf.constant(_input_value(v, specs[k].dtype)) for k, v in body["inputs"].items()}
            outputs = {k: _output_json(v.numpy()) for k, v in signature(**inputs).items()}
        except (tf.errors.InvalidArgumentError, TypeError, ValueError, KeyError) as e:
            return 400, {"error": str(e)}
        return 200, {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}

    def __enter__(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _message_to_dict(message):
    from google.protobuf import json_format

    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def prediction_service(loaded, saved_model_dir, unavailable=0):
    """A `PredictionService` servicer (gRPC) over `loaded`, the SavedModel of `saved_model_dir`.

    Answers as TF Serving does: INVALID_ARGUMENT with the graph's message for a bad input;
    UNAVAILABLE for the first `unavailable` predict calls (a server still loading);
    `GetModelMetadata` with the SavedModel's signatures. `calls` lists the signatures predicted.
    """
    import grpc
    from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

    class SavedModelPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def __init__(self):
            self.loaded = loaded
            self.unavailable = unavailable
            self.calls = []
            self.signatures = signature_defs(saved_model_dir)

        def Predict(self, request, context):
            self.calls.append(request.model_spec.signature_name)
            if self.unavailable > 0:
                self.unavailable -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "Servable not found for request: Latest(osmn)")
            signature = self.loaded.signatures.get(request.model_spec.signature_name)
            if signature is None:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"Serving signature name: \"{request.model_spec.signature_name}\" not found")
            try:
                inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
                outputs = signature(**inputs)
            except (tf.errors.InvalidArgumentError, TypeError, ValueError) as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e)[:2000])
            response = predict_pb2.PredictResponse()
            for name in request.output_filter or outputs:
                response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name].numpy()))
            return response

        def GetModelMetadata(self, request, context):
            if list(request.metadata_field) != ["signature_def"]:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Metadata field signature_def is the only one")
            signatures = get_model_metadata_pb2.SignatureDefMap()
            for name, signature in self.signatures.items():
                signatures.signature_def[name].CopyFrom(signature)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.CopyFrom(request.model_spec)
            response.metadata["signature_def"].Pack(signatures)
            return response

    return SavedModelPredictionService()


class GrpcServer:
    """A gRPC server for `service` (`prediction_service`) on a free 127.0.0.1 port; a context manager
    whose `target` is `host:port`."""

    def __init__(self, service):
        import concurrent.futures

        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        from osmn_tf.serving.grpc_client import MAX_MESSAGE_BYTES

        self.service = service
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2), options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(service, self.server)
        self.target = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(grace=None).wait(timeout=10)
