"""Segmenting a video through TF Serving: the REST transport and the video loop's serving side.

`ServingVideoSegmenter` runs `osmn_tf.inference.tracking.VideoLoop` (SPEC section 5,
the loop `VideoSegmenter` runs locally) with each network call sent to a
served model by a `predict` function:
`predict(signature_name, {input name: array}, [output names], {output name: dtype}) -> {output name: array}`.
`RestPredictor(url).predict` is one over TF Serving's REST API,
`osmn_tf.serving.grpc_client.GrpcPredictor(target).predict` one over its gRPC API.
Both also read the served model's signatures (`signature_inputs`, from TF
Serving's model metadata): the float signatures need the model's guide size
(`served_guide_size`), which the model fixes at training.
"""
import base64
import io
import json
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image

from osmn_tf.config import GUIDE_SIZE, check_guide_size
from osmn_tf.data.frames import (MEAN_BGR, SCALE, WORKING_SIZE, check_size, pad_bottom_right, padded_size,
                                  preprocess_frame)
from osmn_tf.data.guides import spatial_guide, visual_guide
from osmn_tf.inference.tracking import VideoLoop, masks_at_size

SIGNATURE_SETS = ("float", "raw", "png", "jpeg")
"""What a client sends: preprocessed float tensors (`encode_guide`, `segment`), uint8
frames and masks (`encode_guide_raw`, `segment_raw`), or the frame as PNG or JPEG
bytes and the masks as PNG bytes (`encode_guide_image`, `segment_image`)."""

JPEG_QUALITY = 95


class ServingError(RuntimeError):
    """TF Serving answered with an error, or with something that is not a predict response."""


class TransientServingError(ServingError):
    """An error worth retrying: the server is (re)starting or overloaded (gRPC UNAVAILABLE, HTTP 503)."""


def with_retries(call, retries=3, delay=0.5):
    """`call()`, called again up to `retries` times (waiting `delay`, then twice as long each time)
    while it raises `TransientServingError`; then that error, saying how many attempts were made."""
    for attempt in range(retries + 1):
        try:
            return call()
        except TransientServingError as e:
            if attempt == retries:
                raise TransientServingError(f"{e} (gave up after {retries + 1} attempts)") from e
            time.sleep(delay * 2 ** attempt)


def encode_image(array, image_format):
    """PNG or JPEG bytes of a uint8 `[H, W, 3]` RGB frame or `[H, W]` grey-level mask."""
    buffer = io.BytesIO()
    if image_format == "jpeg":
        Image.fromarray(array).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        # Level 1: masks and frames compress almost as well, several times faster than the default 6.
        Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def predict_request(signature_name, inputs):
    """The JSON body (a dict) of a TF Serving REST `:predict` call, columnar ("inputs") format.

    Args:
        signature_name: e.g. `"segment"`.
        inputs: `{name: array}`; uint8 arrays become JSON integers, floats JSON numbers,
            `bytes` (or arrays of them) `{"b64": ...}` objects, as TF Serving decodes them.
    """
    body = {}
    for name, value in inputs.items():
        value = np.asarray(value)
        if value.dtype.kind in "SO":
            body[name] = np.vectorize(_b64, otypes=[object])(value).tolist() if value.ndim else _b64(value.item())
        elif value.dtype.kind in "biuf":
            body[name] = value.tolist()
        else:
            raise TypeError(f"input {name!r}: only numeric arrays and bytes go into a REST request, got {value.dtype}")
    return {"signature_name": signature_name, "inputs": body}


def _b64(data):
    return {"b64": base64.b64encode(data).decode("ascii")}


def _from_json(value, dtype):
    # TF Serving answers string outputs named `*_bytes` as {"b64": ...}.
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(value["b64"])
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return np.array([_from_json(v, dtype) for v in value], dtype=object)
    return np.asarray(value, dtype=dtype)


def parse_predict_response(body, output_names, dtypes=None):
    """`{name: numpy array}` from a TF Serving REST `:predict` response body (a dict).

    TF Serving answers `{"outputs": {name: value, ...}}`, or `{"outputs": value}`
    when the signature has a single output; `{"error": message}` raises.
    """
    if "error" in body:
        raise ServingError(body["error"])
    if "outputs" not in body:
        raise ServingError(f"response has no 'outputs': keys {sorted(body)}")
    outputs = body["outputs"]
    if not isinstance(outputs, dict):
        if len(output_names) != 1:
            raise ServingError(f"expected outputs {output_names}, got a single unnamed output")
        outputs = {output_names[0]: outputs}
    missing = [n for n in output_names if n not in outputs]
    if missing:
        raise ServingError(f"response lacks outputs {missing}; it has {sorted(outputs)}")
    dtypes = dtypes or {}
    return {n: _from_json(outputs[n], dtypes.get(n, np.float32)) for n in output_names}


def signature_inputs_from_metadata(body):
    """`{signature: {input name: shape}}` from a TF Serving REST `/metadata` response body (a dict).

    The body is `GetModelMetadataResponse` as JSON: `metadata.signature_def.signature_def`
    maps each signature to its `SignatureDef`; a shape is a list of sizes (-1 where free),
    None for an unknown rank.
    """
    if "error" in body:
        raise ServingError(body["error"])
    try:
        signatures = body["metadata"]["signature_def"]["signature_def"]
        return {name: {key: _json_shape(info) for key, info in signature.get("inputs", {}).items()}
                for name, signature in signatures.items()}
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ServingError(f"the model metadata has no readable signature_def ({type(e).__name__}: {e})") from None


def _json_shape(tensor_info):
    shape = tensor_info.get("tensor_shape", {})
    if shape.get("unknown_rank"):
        return None
    return [int(dim.get("size", -1)) for dim in shape.get("dim", [])]  # int64 sizes come as strings


def served_guide_size(signature_inputs):
    """The served model's guide size: the side S of `encode_guide`'s `guide_image` input `[N, S, S, 3]`.

    Args:
        signature_inputs: `{signature: {input name: shape}}`, e.g. `RestPredictor(url).signature_inputs()`.
    """
    if "encode_guide" not in signature_inputs:
        raise ServingError(f"the served model has no encode_guide signature (it has {sorted(signature_inputs)}): "
                           "a model without visual modulator (tools/serving_client.py --no-visual)")
    shape = signature_inputs["encode_guide"].get("guide_image")
    if shape is None or len(shape) != 4 or shape[1] != shape[2] or shape[1] < 1:
        raise ServingError(f"the served model's encode_guide takes guide_image of shape {shape}, not [N, S, S, 3]")
    return shape[1]


def json_predictor(send):
    """A `predict` function over `send`, a function from a REST request body (dict) to its response body (dict)."""

    def predict(signature_name, inputs, output_names, dtypes=None):
        return parse_predict_response(send(predict_request(signature_name, inputs)), output_names, dtypes)

    return predict


class RestPredictor:
    """Calls TF Serving's REST predict API: `POST {url}/v1/models/{model}[/versions/{v}]:predict`.

    `send(body)` posts a request body (dict) and returns the response body,
    retrying `retries` times while the server is unreachable or answers 503;
    `predict` is the `predict` function over it; `signature_inputs()` reads the
    model's signatures (`GET .../metadata`). Uses only the standard library.
    """

    def __init__(self, url, model_name="osmn", version=None, timeout=600.0, retries=3, retry_delay=0.5):
        self.url = url.rstrip("/")
        self.model_name = model_name
        self.version = version
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self.predict = json_predictor(self.send)

    @property
    def _model_url(self):
        version = f"/versions/{self.version}" if self.version is not None else ""
        return f"{self.url}/v1/models/{self.model_name}{version}"

    @property
    def endpoint(self):
        return f"{self._model_url}:predict"

    def send(self, body):
        data = json.dumps(body).encode("utf-8")
        return with_retries(lambda: self._request(self.endpoint, data), self.retries, self.retry_delay)

    def signature_inputs(self):
        """`{signature: {input name: shape}}` of the served model (`signature_inputs_from_metadata`)."""
        url = f"{self._model_url}/metadata"
        body = with_retries(lambda: self._request(url), self.retries, self.retry_delay)
        try:
            return signature_inputs_from_metadata(body)
        except ServingError as e:
            raise ServingError(f"{url}: {e}") from None

    def _request(self, url, data=None):
        """The JSON answer of a POST of `data`, or of a GET without it."""
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            if e.code == 503:
                raise TransientServingError(f"{url}: HTTP 503 {e.reason}") from e
            try:
                return json.loads(e.read())  # TF Serving puts {"error": ...} in the body
            except ValueError:
                raise ServingError(f"{url}: HTTP {e.code} {e.reason}") from e
        except urllib.error.URLError as e:
            # Refused or unreachable: the server may be (re)starting.
            raise TransientServingError(f"{url}: cannot reach TF Serving: {e.reason}") from e


class ServingVideoSegmenter(VideoLoop):
    """The video loop (`osmn_tf.inference.tracking.VideoLoop`) with the network behind TF Serving.

    Args:
        predict: the `predict` function of this module's docstring, e.g. `RestPredictor(url).predict`.
        signatures: `"float"`: preprocess here with `osmn_tf.data.frames`/`guides`
            (the original's numbers exactly) and call `encode_guide`/`segment`;
            `"raw"`: send uint8 frames and masks to `encode_guide_raw`/`segment_raw`,
            which preprocess in the server's graph; `"png"`/`"jpeg"`: the same
            with the frame sent as a PNG/JPEG file and the masks as PNG files
            (`encode_guide_image`/`segment_image`), encoded in the reading thread.
        working_size: `(W, H)` frames are resized to (`"float"` only; `"raw"`
            uses the size fixed at export).
        use_visual_modulator / use_spatial_modulator: the exported variant's inputs.
        guide_size: the side of the visual guides the served model takes (`"float"`
            only; the model's `guide_size`, e.g. `served_guide_size(predictor.signature_inputs())`).
        input_mean, input_scale: the pixel encoding the served model was trained
            with (`"float"` only: the other signatures apply the model's own);
            `osmn_tf.config.input_mean_of`/`input_scale_of` of its config, e.g.
            lite's scale 0.00787.
        pad: `"float"` only: zero-pad the frame and spatial guides at the bottom
            and right to multiples of 32, as `VideoSegmenter(pad=True)`, and
            crop the probabilities back; lite's `segment` takes only such sizes.
    """

    def __init__(self, predict, signatures="float", working_size=WORKING_SIZE, use_visual_modulator=True,
                 use_spatial_modulator=True, guide_size=GUIDE_SIZE, input_mean=MEAN_BGR, input_scale=SCALE,
                 pad=False):
        if signatures not in SIGNATURE_SETS:
            raise ValueError(f"signatures must be one of {SIGNATURE_SETS}, got {signatures!r}")
        self.predict = predict
        self.raw = signatures != "float"
        self.image_format = signatures if signatures in ("png", "jpeg") else None
        self.working_size = check_size(working_size, "working_size")
        self.visual = use_visual_modulator
        self.spatial = use_spatial_modulator
        self.guide_size = check_guide_size(guide_size, "guide_size")
        if len(input_mean) != 3 or not np.all(np.isfinite(input_mean)):
            raise ValueError(f"input_mean must be 3 finite values (B, G, R), got {input_mean!r}")
        if not (np.isfinite(input_scale) and input_scale > 0):
            raise ValueError(f"input_scale must be a finite number > 0, got {input_scale!r}")
        self.mean, self.scale = tuple(float(v) for v in input_mean), float(input_scale)
        self.network_size = padded_size(self.working_size) if pad else self.working_size

    def start_video(self, frame, first_mask, object_ids):
        if not self.visual:
            return None
        # One request per object, as the original encodes each object: the
        # visual modulator's round-off depends on the batch size, which the
        # video loop can amplify (`VideoSegmenter.encode_guides`).
        return np.concatenate([self._encode_object(frame, first_mask == i) for i in object_ids])

    def _encode_object(self, frame, mask):
        """The visual modulator's parameters `[1, P]` of the object `mask` (bool `[H, W]`) marks on `frame`."""
        if self.image_format:
            masks = np.array([encode_image(mask.astype(np.uint8), "png")], object)
            signature, inputs = "encode_guide_image", {"frame_bytes": self.prepare_frame(frame), "masks_bytes": masks}
        elif self.raw:
            signature, inputs = "encode_guide_raw", {"frame": frame, "masks": mask[np.newaxis].astype(np.uint8)}
        else:
            guides = visual_guide(frame, mask, size=self.guide_size, scale=self.scale, mean=self.mean)[np.newaxis]
            signature, inputs = "encode_guide", {"guide_image": guides}
        return self.predict(signature, inputs, ["modulation_params"])["modulation_params"]

    def prepare_frame(self, frame):
        if self.image_format:
            return encode_image(frame, self.image_format)
        if self.raw:
            return frame
        return pad_bottom_right(preprocess_frame(frame, self.working_size, self.scale, self.mean), self.network_size)

    def frame_probabilities(self, prepared, masks, params, object_ids=None):
        num_objects = len(masks)
        if self.image_format:
            signature, inputs = "segment_image", {"frame_bytes": prepared}
            if self.spatial:
                inputs["masks_bytes"] = np.array([encode_image(m.astype(np.uint8), "png") for m in masks], object)
        elif self.raw:
            signature, inputs = "segment_raw", {"frame": prepared}
            if self.spatial:
                inputs["masks"] = masks.astype(np.uint8)  # any size: the server resizes them
        else:
            signature, inputs = "segment", {"image": np.broadcast_to(prepared, (num_objects, *prepared.shape))}
            if self.spatial:
                inputs["spatial_guide"] = np.stack([pad_bottom_right(spatial_guide(m), self.network_size)
                                                    for m in masks_at_size(masks, self.working_size)])
        if self.visual:
            inputs["modulation_params"] = params
        probabilities = self.predict(signature, inputs, ["probabilities"])["probabilities"][..., 0]
        if not self.raw:
            width, height = self.working_size
            probabilities = probabilities[:, :height, :width]  # what `pad` added
        # A variant without modulators has no per-object input: one map serves every object.
        return np.broadcast_to(probabilities, (num_objects, *probabilities.shape[1:]))
