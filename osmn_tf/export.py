"""Exporting OSMN for serving: a SavedModel with named signatures, ONNX, LiteRT, and a REST client.

The SavedModel (`export_saved_model`) holds these signatures (`P` = the
model's `num_modulation_params`, 3840 for the released model; `H`, `W`, `N` are
dynamic unless stated):

* `encode_guide`: `guide_image` float32 `[N, S, S, 3]` (S = the model's `guide_size`, 224 by default) -> `modulation_params`
  float32 `[N, P]` (the visual modulator; run once per object).
* `segment`: `image` float32 `[N, H, W, 3]`, `spatial_guide` float32
  `[N, H, W, 1]`, `modulation_params` float32 `[N, P]` -> `logits`,
  `probabilities` float32 `[N, H, W, 1]` (run on every frame).
* `serving_default`: `guide_image`, `spatial_guide`, `image` -> `logits`,
  `probabilities` (the whole model in one call).
* `encode_guide_raw`: `frame` uint8 `[H, W, 3]` RGB, `masks` uint8 `[N, h, w]`
  (one mask per object, nonzero = object, any size: resized to the frame's
  size) -> `modulation_params` `[N, P]`. Builds the visual guides in the graph.
* `segment_raw`: `frame` uint8 `[H, W, 3]` RGB, `masks` uint8 `[N, h, w]` (each
  object's previous mask, any size: resized to the working size),
  `modulation_params` `[N, P]` -> `logits`, `probabilities` float32
  `[N, Hw, Ww, 1]` and `masks` uint8 `[N, Hw, Ww]` (probability > 0.5, the next
  call's `masks`) at the working size `Hw x Ww` fixed at export (854 x 480 by
  default), and `labels` uint8 `[H, W]` (the merged map at the frame's size:
  0 background, k the k-th object of the batch).

The float signatures take the tensors of SPEC sections 1-3 (made by
`osmn_tf.guides`); the `_raw` ones do that preprocessing in the graph with
TF ops, which match PIL's resampling up to rounding (see `docs/serving.md` for
the measured difference). A variant without the visual (spatial) modulator has
no `encode_guide*` signatures and no `modulation_params` (`spatial_guide`,
`masks` of `segment_raw`) input.

Every signature checks its inputs in the graph: batch sizes and frame sizes
that disagree fail with an `InvalidArgumentError` naming the inputs instead of
broadcasting.
"""
import json
import os
import urllib.error
import urllib.request

import numpy as np

from osmn_tf.config import GUIDE_SIZE
from osmn_tf.frames import MEAN_BGR, SCALE, WORKING_SIZE
from osmn_tf.guides import MAD_TO_STD, MIN_SPATIAL_SCALE, PAD_RATIO
from osmn_tf.models.folding import fold_batch_norm

BACKGROUND_SCORE = 0.5
"""Background's fixed score in the multi-object merge (as `osmn_tf.inference`)."""


# --------------------------------------------------------------------------
# In-graph preprocessing (the `_raw` signatures)
# --------------------------------------------------------------------------


def _tf():
    import tensorflow as tf

    return tf


def _round_to_uint8_range(x):
    tf = _tf()
    # PIL rounds each resampling pass to 8 bits, half up.
    return tf.clip_by_value(tf.floor(x + 0.5), 0.0, 255.0)


def pil_bilinear_resize(image, height, width):
    """PIL-like bilinear resize of `[h, w, C]` 0..255 values to `[height, width, C]`, float32.

    PIL's bilinear filter widens its support when shrinking (a triangle filter
    scaled to the output's pixel size), which is `tf.image.resize(...,
    antialias=True)`; PIL also resizes horizontally first and rounds to 8 bits
    after each pass, which this repeats. Values stay integers in 0..255.
    """
    tf = _tf()
    x = tf.cast(image, tf.float32)[tf.newaxis]
    x = tf.image.resize(x, tf.stack([tf.shape(x)[1], width]), method="bilinear", antialias=True)
    x = _round_to_uint8_range(x)
    x = tf.image.resize(x, tf.stack([height, width]), method="bilinear", antialias=True)
    return _round_to_uint8_range(x)[0]


def nearest_resize_masks(masks, height, width):
    """Nearest-neighbour resize of `[N, h, w]` masks to `[N, height, width]` (PIL's pixel choice)."""
    tf = _tf()

    def source_indices(size_in, size_out):
        # PIL (ImagingScaleAffine): position 0.5 * scale, then += scale per
        # pixel, in double precision, truncated. The running sum's round-off is
        # part of the choice: floor((i + 0.5) * scale), or tf.image.resize
        # (float32), pick other pixels for e.g. 1920 -> 854.
        scale = tf.cast(size_in, tf.float64) / tf.cast(size_out, tf.float64)
        steps = tf.concat([[scale * 0.5], tf.fill([size_out - 1], scale)], axis=0)
        index = tf.cast(tf.math.cumsum(steps), tf.int32)
        return tf.minimum(index, size_in - 1)

    shape = tf.shape(masks)
    rows = source_indices(shape[1], height)
    cols = source_indices(shape[2], width)
    return tf.gather(tf.gather(masks, rows, axis=1), cols, axis=2)


def normalize_rgb(rgb):
    """RGB 0..255 values `[..., 3]` -> the network's encoding: BGR minus the mean, times the scale."""
    tf = _tf()
    bgr = tf.reverse(tf.cast(rgb, tf.float32), axis=[-1])
    return (bgr - tf.constant(MEAN_BGR, tf.float32)) * SCALE


def _visual_guide_one(frame, mask, guide_size):
    """One object's visual guide `[S, S, 3]` (S = `guide_size`) from `frame` `[H, W, 3]` float and `mask` `[H, W]` bool.

    Follows `osmn_tf.guides.visual_guide` at inference, the crop-box quirk included.
    """
    tf = _tf()
    height, width = tf.shape(mask)[0], tf.shape(mask)[1]
    rows = tf.reduce_any(mask, axis=1)
    cols = tf.reduce_any(mask, axis=0)
    empty = tf.logical_not(tf.reduce_any(rows))
    row_ids, col_ids = tf.range(height), tf.range(width)
    # PIL crop box (x0, y0, x1, y1): the inclusive extremes used as an exclusive box
    # (quirk: drops the object's last row and column); empty mask: the whole frame.
    x0 = tf.where(empty, 0, tf.reduce_min(tf.where(cols, col_ids, width)))
    y0 = tf.where(empty, 0, tf.reduce_min(tf.where(rows, row_ids, height)))
    x1 = tf.where(empty, width, tf.reduce_max(tf.where(cols, col_ids, -1)))
    y1 = tf.where(empty, height, tf.reduce_max(tf.where(rows, row_ids, -1)))
    crop_w, crop_h = x1 - x0, y1 - y0
    # int(0.03 * w) in double precision, as the original.
    pad_x = tf.cast(tf.floor(PAD_RATIO * tf.cast(crop_w, tf.float64)), tf.int32)
    pad_y = tf.cast(tf.floor(PAD_RATIO * tf.cast(crop_h, tf.float64)), tf.int32)

    def guide():
        size = tf.stack([crop_h, crop_w])
        image = tf.slice(frame, tf.stack([y0, x0, 0]), tf.concat([size, [3]], axis=0))
        label = tf.slice(tf.cast(mask, tf.uint8), tf.stack([y0, x0]), size)
        # The margin is cropped from the first crop, so it is zero (PIL's fill)
        # even where the frame goes on.
        paddings = tf.stack([tf.stack([pad_y, pad_y]), tf.stack([pad_x, pad_x])])
        image = tf.pad(image, tf.concat([paddings, [[0, 0]]], axis=0))
        label = tf.pad(label, paddings)
        image = pil_bilinear_resize(image, guide_size, guide_size)
        label = nearest_resize_masks(label[tf.newaxis], guide_size, guide_size)[0]
        return normalize_rgb(image) * tf.cast(label != 0, tf.float32)[..., tf.newaxis]

    # An object one pixel wide or tall gives an empty crop: an all-zero guide.
    return tf.cond(
        tf.logical_and(crop_w > 0, crop_h > 0), guide, lambda: tf.zeros([guide_size, guide_size, 3], tf.float32)
    )


def visual_guides(frame, masks, guide_size=GUIDE_SIZE):
    """The visual guides `[N, S, S, 3]` (S = `guide_size`) of `masks` `[N, h, w]` (nonzero = object) on `frame` uint8 `[H, W, 3]`."""
    tf = _tf()
    height, width = tf.shape(frame)[0], tf.shape(frame)[1]
    masks = nearest_resize_masks(masks, height, width) != 0
    frame = tf.cast(frame, tf.float32)
    return tf.map_fn(
        lambda m: _visual_guide_one(frame, m, guide_size),
        masks,
        fn_output_signature=tf.TensorSpec([guide_size, guide_size, 3], tf.float32),
    )


def _median(sorted_values):
    tf = _tf()
    n = tf.shape(sorted_values)[0]
    # As numpy: the mean of the two middle values (the same value twice when n is odd).
    return (sorted_values[(n - 1) // 2] + sorted_values[n // 2]) / 2


def _spatial_guide_one(mask):
    """`osmn_tf.guides.spatial_guide` of one `[H, W]` bool mask, `[H, W, 1]` float32."""
    tf = _tf()
    height, width = tf.shape(mask)[0], tf.shape(mask)[1]
    points = tf.cast(tf.where(mask), tf.float32)  # [n, 2] as (y, x)

    def gaussian():
        ys, xs = tf.sort(points[:, 0]), tf.sort(points[:, 1])
        cx, cy = _median(xs), _median(ys)
        mad_x = _median(tf.sort(tf.abs(xs - cx)))
        mad_y = _median(tf.sort(tf.abs(ys - cy)))
        # Scales in float32 as the original, the Gaussian in float64.
        sx = tf.cast(tf.maximum(mad_x * MAD_TO_STD, MIN_SPATIAL_SCALE), tf.float64)
        sy = tf.cast(tf.maximum(mad_y * MAD_TO_STD, MIN_SPATIAL_SCALE), tf.float64)
        cx, cy = tf.cast(cx, tf.float64), tf.cast(cy, tf.float64)
        dx2 = (tf.range(width, dtype=tf.float64) - cx) ** 2 * (0.5 / (sx * sx))
        dy2 = (tf.range(height, dtype=tf.float64) - cy) ** 2 * (0.5 / (sy * sy))
        g = tf.clip_by_value(tf.exp(-(dx2[tf.newaxis, :] + dy2[:, tf.newaxis])), 0.0, 1.0)
        return tf.cast(g, tf.float32)[..., tf.newaxis]

    return tf.cond(tf.shape(points)[0] > 0, gaussian, lambda: tf.zeros(tf.stack([height, width, 1]), tf.float32))


def spatial_guides(masks):
    """The spatial guides `[N, H, W, 1]` of binary masks `[N, H, W]` (nonzero = object)."""
    tf = _tf()
    return tf.map_fn(
        _spatial_guide_one, masks != 0, fn_output_signature=tf.TensorSpec([None, None, 1], tf.float32)
    )


def merge_labels(probabilities):
    """`[N, H, W, 1]` probabilities -> uint8 `[H, W]`: argmax over [0.5 background, p_1..p_N] (0 = background)."""
    tf = _tf()
    scores = tf.transpose(probabilities[..., 0], [1, 2, 0])
    background = tf.fill(tf.concat([tf.shape(scores)[:2], [1]], axis=0), BACKGROUND_SCORE)
    return tf.cast(tf.argmax(tf.concat([background, scores], axis=-1), axis=-1), tf.uint8)


# --------------------------------------------------------------------------
# Signatures
# --------------------------------------------------------------------------


def _assert_same(a, b, message):
    tf = _tf()
    return tf.debugging.assert_equal(a, b, message=message)


def _dims(x):
    """`tf.shape(x)` padded with -1 to 8 entries: indexable whatever the rank (the checks
    run in no particular order, so a rank check cannot guard the others)."""
    tf = _tf()
    return tf.concat([tf.shape(x), tf.fill([8], -1)], axis=0)[:8]


class _Signatures:
    """The signature functions of one model; see the module docstring."""

    def __init__(self, model, working_size):
        tf = _tf()
        model = fold_batch_norm(model)
        self.model = model
        self.working_size = tuple(int(v) for v in working_size)
        if len(self.working_size) != 2 or min(self.working_size) < 1:
            raise ValueError(f"working_size must be (W, H) with positive values, got {working_size!r}")
        self.frame_model = model.frame_model()
        self.num_params = model.num_modulation_params
        self.visual = model.visual_modulator is not None
        self.spatial = model.spatial_modulator is not None
        self.guide_size = model.config.guide_size
        f32 = tf.float32
        self.specs = {
            "guide_image": _guide_specs(model)[0],
            "image": tf.TensorSpec([None, None, None, 3], f32, name="image"),
            "spatial_guide": tf.TensorSpec([None, None, None, 1], f32, name="spatial_guide"),
            "modulation_params": tf.TensorSpec([None, self.num_params], f32, name="modulation_params"),
            "frame": tf.TensorSpec([None, None, 3], tf.uint8, name="frame"),
            "masks": tf.TensorSpec([None, None, None], tf.uint8, name="masks"),
        }

    # Input checks. The TensorSpecs already fix ranks, channels and P for
    # Python callers; these graph ops also hold where the shapes are not
    # checked before the graph runs (e.g. a C++ server), and check what a
    # spec cannot: sizes that must agree between inputs.
    def _check_params(self, params, batch=None, batch_name=None):
        tf = _tf()
        checks = [
            tf.debugging.assert_rank(params, 2, message="modulation_params must be [N, P]"),
            _assert_same(_dims(params)[1], self.num_params,
                         f"modulation_params must have P = {self.num_params} values per object (the model's "
                         f"num_modulation_params)"),
        ]
        if batch is not None:
            checks.append(_assert_same(_dims(params)[0], batch,
                                       f"modulation_params and {batch_name} must have the same batch size N"))
        return checks

    def _check_image(self, image, spatial_guide):
        tf = _tf()
        # The rank is checked first: the other checks read dimensions a wrong rank does not have.
        rank = tf.debugging.assert_rank(image, 4, message="image must be [N, H, W, 3] (a batch of images)")
        with tf.control_dependencies([rank]):
            checks = [
                rank,
                _assert_same(_dims(image)[3], 3, "image must have 3 channels (BGR minus the mean)"),
                tf.debugging.assert_positive(_dims(image)[:1], message="image must hold at least one image (N > 0)"),
                tf.debugging.assert_positive(_dims(image)[1:3], message="image must not be empty"),
            ]
        if spatial_guide is not None:
            checks += [
                tf.debugging.assert_rank(spatial_guide, 4, message="spatial_guide must be [N, H, W, 1]"),
                _assert_same(_dims(spatial_guide)[3], 1, "spatial_guide must have 1 channel"),
                _assert_same(_dims(spatial_guide)[:3], _dims(image)[:3],
                             "spatial_guide must have the image's batch size N, height H and width W"),
            ]
        return checks

    def _check_guide(self, guide_image):
        tf = _tf()
        size = self.guide_size
        return [
            tf.debugging.assert_rank(guide_image, 4, message=f"guide_image must be [N, {size}, {size}, 3]"),
            _assert_same(_dims(guide_image)[1:4], [size, size, 3], f"guide_image must be [N, {size}, {size}, 3]"),
        ]

    def _check_frame_and_masks(self, frame, masks):
        tf = _tf()
        rank = tf.debugging.assert_rank(frame, 3, message="frame must be one uint8 RGB frame [H, W, 3]")
        with tf.control_dependencies([rank]):
            checks = [
                rank,
                _assert_same(_dims(frame)[2], 3, "frame must have 3 channels (RGB)"),
                tf.debugging.assert_positive(_dims(frame)[:2], message="frame must not be empty"),
            ]
        if masks is not None:
            checks += [
                tf.debugging.assert_rank(masks, 3, message="masks must be [N, h, w], one mask per object"),
                tf.debugging.assert_positive(_dims(masks)[:3], message="masks must hold at least one non-empty mask"),
            ]
        return checks

    def _frame_logits(self, image, spatial_guide, params):
        inputs = {"image": image, "spatial_guide": spatial_guide, "modulation_params": params}
        return self.frame_model([inputs[t.name] for t in self.frame_model.inputs], training=False)

    @staticmethod
    def _outputs(logits):
        tf = _tf()
        return {"logits": logits, "probabilities": tf.sigmoid(logits)}

    def encode_guide(self, guide_image):
        tf = _tf()
        with tf.control_dependencies(self._check_guide(guide_image)):
            guide_image = tf.identity(guide_image)
        return {"modulation_params": self.model.visual_modulator(guide_image, training=False)}

    def segment(self, image, spatial_guide=None, modulation_params=None):
        tf = _tf()
        checks = self._check_image(image, spatial_guide)
        if modulation_params is not None:
            checks += self._check_params(modulation_params, tf.shape(image)[0], "image")
        with tf.control_dependencies(checks):
            image = tf.identity(image)
        return self._outputs(self._frame_logits(image, spatial_guide, modulation_params))

    def serving_default(self, guide_image=None, spatial_guide=None, image=None):
        tf = _tf()
        checks = self._check_image(image, spatial_guide)
        if guide_image is not None:
            checks += self._check_guide(guide_image)
            checks.append(_assert_same(tf.shape(guide_image)[0], tf.shape(image)[0],
                                       "guide_image and image must have the same batch size N"))
        with tf.control_dependencies(checks):
            image = tf.identity(image)
        inputs = {"guide_image": guide_image, "spatial_guide": spatial_guide, "image": image}
        logits = self.model([inputs[t.name] for t in self.model.inputs], training=False)
        return self._outputs(logits)

    def encode_guide_raw(self, frame, masks):
        tf = _tf()
        checks = self._check_frame_and_masks(frame, masks)
        with tf.control_dependencies(checks):
            # An all-zero mask has no object to crop: its parameters would describe nothing.
            checks.append(tf.debugging.assert_positive(
                tf.reduce_max(tf.cast(masks, tf.int32), axis=[1, 2]),
                message="every mask must mark its object: a mask of encode_guide_raw is all zero"))
        with tf.control_dependencies(checks):
            frame = tf.identity(frame)
        return self.encode_guide(visual_guides(frame, masks, self.guide_size))

    def segment_raw(self, frame, masks=None, modulation_params=None):
        tf = _tf()
        checks = self._check_frame_and_masks(frame, masks)
        if modulation_params is not None:
            checks += self._check_params(modulation_params, None if masks is None else tf.shape(masks)[0], "masks")
        with tf.control_dependencies(checks):
            frame = tf.identity(frame)
        if masks is not None:
            num_objects = tf.shape(masks)[0]
        elif modulation_params is not None:
            num_objects = tf.shape(modulation_params)[0]
        else:
            num_objects = 1
        work_w, work_h = self.working_size
        image = normalize_rgb(pil_bilinear_resize(frame, work_h, work_w))
        image = tf.tile(image[tf.newaxis], tf.stack([num_objects, 1, 1, 1]))
        guides = None
        if masks is not None:
            guides = spatial_guides(nearest_resize_masks(masks, work_h, work_w))
        outputs = self._outputs(self._frame_logits(image, guides, modulation_params))
        outputs["masks"] = tf.cast(outputs["probabilities"][..., 0] > 0.5, tf.uint8)
        labels = merge_labels(outputs["probabilities"])
        outputs["labels"] = nearest_resize_masks(labels[tf.newaxis], tf.shape(frame)[0], tf.shape(frame)[1])[0]
        return outputs

    def endpoints(self):
        """`{name: (function, [input names])}` for this model's variant."""
        seg = ["image"] + ["spatial_guide"] * self.spatial + ["modulation_params"] * self.visual
        raw = ["frame"] + ["masks"] * self.spatial + ["modulation_params"] * self.visual
        default = ["guide_image"] * self.visual + ["spatial_guide"] * self.spatial + ["image"]
        endpoints = {}
        if self.visual:
            endpoints["encode_guide"] = (self.encode_guide, ["guide_image"])
            endpoints["encode_guide_raw"] = (self.encode_guide_raw, ["frame", "masks"])
        endpoints["segment"] = (self.segment, seg)
        endpoints["segment_raw"] = (self.segment_raw, raw)
        endpoints["serving_default"] = (self.serving_default, default)
        return endpoints


def signature_names(model):
    """The names of the signatures `export_saved_model` writes for `model`'s variant."""
    names = ["segment", "segment_raw", "serving_default"]
    if model.visual_modulator is not None:
        names = ["encode_guide", "encode_guide_raw"] + names
    return names


def build_export_archive(model, working_size=WORKING_SIZE):
    """A `keras.export.ExportArchive` holding every signature of `model` (an `osmn_tf.OSMN`).

    Args:
        model: an `osmn_tf.OSMN`.
        working_size: `(W, H)` the `segment_raw` signature resizes frames to.
    """
    import keras

    signatures = _Signatures(model, working_size)
    archive = keras.export.ExportArchive()
    # No `archive.track(model)`: add_endpoint tracks the variables the signatures
    # use; with track() Keras 3.15 saves every variable twice (a 1.3 GB SavedModel).
    for name, (function, input_names) in signatures.endpoints().items():
        specs = [signatures.specs[n] for n in input_names]
        archive.add_endpoint(name, _positional(function, input_names), input_signature=specs)
    return archive


def _positional(function, names):
    # The signature's input keys are the TensorSpecs' names; the function takes keywords.
    def call(*args):
        return function(**dict(zip(names, args)))

    return call


def export_saved_model(model, output_dir, working_size=WORKING_SIZE):
    """Writes `model` as a SavedModel with the signatures of this module's docstring.

    TF Serving reads `<model_base_path>/<version>/`: pass e.g. `models/osmn/1`.
    Returns `output_dir`.
    """
    output_dir = os.fspath(output_dir)
    build_export_archive(model, working_size).write_out(output_dir, verbose=False)
    return output_dir


def _frame_specs(model):
    tf = _tf()
    names = [t.name for t in model.frame_model().inputs]
    shapes = {"image": [None, None, None, 3], "spatial_guide": [None, None, None, 1],
              "modulation_params": [None, model.num_modulation_params]}
    return [tf.TensorSpec(shapes[n], tf.float32, name=n) for n in names]


def _guide_specs(model):
    tf = _tf()
    size = model.config.guide_size
    return [tf.TensorSpec([None, size, size, 3], tf.float32, name="guide_image")]


def export_onnx(model, output_dir, parts=("encode_guide", "segment")):
    """Writes `segment.onnx` (inputs as `frame_model()`, output the logits) and, with a
    visual modulator, `encode_guide.onnx` into `output_dir`, through Keras' export
    (which needs the `tf2onnx` package). Returns the written paths.

    `parts` picks which: at full size, tf2onnx 1.17 crashes (SIGSEGV, ~14 GB of
    memory) on the visual modulator's 400 MB `fc6`; `parts=("segment",)` works.
    """
    unknown = sorted(set(parts) - {"encode_guide", "segment"})
    if unknown:
        raise ValueError(f"unknown ONNX parts {unknown}; expected encode_guide and/or segment")
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    model = fold_batch_norm(model)
    candidates = [("segment", model.frame_model(), _frame_specs(model))]
    if model.visual_modulator is not None:
        candidates.insert(0, ("encode_guide", model.visual_modulator, _guide_specs(model)))
    for name, part, specs in candidates:
        if name not in parts:
            continue
        path = os.path.join(output_dir, f"{name}.onnx")
        part.export(path, format="onnx", input_signature=[specs if len(specs) > 1 else specs[0]], verbose=False)
        paths.append(path)
    return paths


def export_tflite(saved_model_dir, path, signature_keys=("encode_guide", "segment")):
    """Converts signatures of an exported SavedModel into one LiteRT (`.tflite`) file.

    The file keeps the signatures' names and inputs (dynamic N, H, W); run them
    with `Interpreter(...).get_signature_runner("segment")`. Only the float
    signatures by default. (Converting a `tf.function` over the Keras model
    instead leaves the weights as uninitialised resource variables: the
    interpreter then returns garbage.) Returns `path`.
    """
    tf = _tf()
    available = set(tf.saved_model.load(os.fspath(saved_model_dir)).signatures)
    keys = [k for k in signature_keys if k in available]
    converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(saved_model_dir), signature_keys=keys)
    content = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)
    return path


# --------------------------------------------------------------------------
# TF Serving REST API: the JSON codec and the client-side video loop
# --------------------------------------------------------------------------


def predict_request(signature_name, inputs):
    """The JSON body (a dict) of a TF Serving REST `:predict` call, columnar ("inputs") format.

    Args:
        signature_name: e.g. `"segment"`.
        inputs: `{name: array}`; uint8 arrays become JSON integers, floats JSON numbers.
    """
    body = {}
    for name, value in inputs.items():
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"input {name!r}: only numeric arrays go into a REST request, got dtype {value.dtype}")
        body[name] = value.tolist()
    return {"signature_name": signature_name, "inputs": body}


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
    return {n: np.asarray(outputs[n], dtype=dtypes.get(n, np.float32)) for n in output_names}


class ServingError(RuntimeError):
    """TF Serving answered with an error, or with something that is not a predict response."""


class RestPredictor:
    """Calls TF Serving's REST predict API: `POST {url}/v1/models/{model}[/versions/{v}]:predict`.

    `predictor(signature_name, inputs)` sends `predict_request(...)` and returns
    the parsed JSON response body (a dict). Uses only the standard library.
    """

    def __init__(self, url, model_name="osmn", version=None, timeout=600.0):
        self.url = url.rstrip("/")
        self.model_name = model_name
        self.version = version
        self.timeout = timeout

    @property
    def endpoint(self):
        version = f"/versions/{self.version}" if self.version is not None else ""
        return f"{self.url}/v1/models/{self.model_name}{version}:predict"

    def __call__(self, body):
        data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.endpoint, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            try:
                return json.loads(e.read())  # TF Serving puts {"error": ...} in the body
            except ValueError:
                raise ServingError(f"{self.endpoint}: HTTP {e.code} {e.reason}") from e
        except urllib.error.URLError as e:
            raise ServingError(f"{self.endpoint}: cannot reach TF Serving: {e.reason}") from e


class ServingVideoSegmenter:
    """The per-video loop of SPEC section 5, run on the client against TF Serving.

    Args:
        send: a function from a request body (dict, `predict_request`'s) to the
            response body (dict), e.g. a `RestPredictor`.
        raw: use the `_raw` signatures (the server preprocesses uint8 frames and
            masks) instead of preprocessing here with `osmn_tf.guides`/`frames`.
        working_size: `(W, H)` frames are resized to (float signatures only; the
            `_raw` ones use the size fixed at export).
        use_visual_modulator / use_spatial_modulator: the exported variant's inputs.
    """

    def __init__(self, send, raw=False, working_size=WORKING_SIZE, use_visual_modulator=True,
                 use_spatial_modulator=True):
        self.send = send
        self.raw = raw
        self.working_size = tuple(int(v) for v in working_size)
        self.visual = use_visual_modulator
        self.spatial = use_spatial_modulator

    def _predict(self, signature, inputs, outputs, dtypes=None):
        return parse_predict_response(self.send(predict_request(signature, inputs)), outputs, dtypes)

    def encode_objects(self, frame, first_mask, object_ids):
        if not self.visual:
            return None
        if self.raw:
            masks = np.stack([first_mask == i for i in object_ids]).astype(np.uint8)
            inputs = {"frame": frame, "masks": masks}
            return self._predict("encode_guide_raw", inputs, ["modulation_params"])["modulation_params"]
        from osmn_tf.guides import visual_guide

        guides = np.stack([visual_guide(frame, first_mask == i) for i in object_ids])
        return self._predict("encode_guide", {"guide_image": guides}, ["modulation_params"])["modulation_params"]

    def track(self, frames, first_mask):
        """Yields `(labels uint8 [H, W], probabilities float32 [K, Hw, Ww] or None)` per frame."""
        from osmn_tf.inference import checked_frame, video_objects

        first_mask = np.asarray(first_mask)
        object_ids = video_objects(first_mask)
        lookup = np.asarray((0, *object_ids), dtype=np.uint8)
        params, previous = None, None
        for index, frame in enumerate(frames):
            frame = checked_frame(index, frame, first_mask if index == 0 else None)
            if index == 0:
                params = self.encode_objects(frame, first_mask, object_ids)
                # Frame 1's spatial guide comes from the first mask (resized to the
                # working size by the server with `raw`, here otherwise).
                previous = np.stack([first_mask == i for i in object_ids]).astype(np.uint8)
                yield first_mask.astype(np.uint8), None
                continue
            if self.raw:
                labels, probabilities, previous = self._segment_raw(frame, previous, params, lookup)
            else:
                labels, probabilities, previous = self._segment(frame, previous, params, object_ids)
            yield labels, probabilities

    def _segment_raw(self, frame, previous, params, lookup):
        inputs = {"frame": frame}
        if self.spatial:
            inputs["masks"] = previous
        if self.visual:
            inputs["modulation_params"] = params
        out = self._predict("segment_raw", inputs, ["probabilities", "masks", "labels"],
                            {"masks": np.uint8, "labels": np.uint8})
        # Each object's next guide comes from its own thresholded prediction (SPEC 5.3).
        return lookup[out["labels"]], out["probabilities"][..., 0], out["masks"]

    def _segment(self, frame, previous, params, object_ids):
        from osmn_tf.frames import preprocess_frame, resize_mask
        from osmn_tf.guides import spatial_guide
        from osmn_tf.inference import merge_probabilities

        image = preprocess_frame(frame, self.working_size)
        inputs = {"image": np.broadcast_to(image, (len(object_ids), *image.shape))}
        if self.spatial:
            masks = [m if m.shape == image.shape[:2] else resize_mask(m, self.working_size) for m in previous]
            inputs["spatial_guide"] = np.stack([spatial_guide(m) for m in masks])
        if self.visual:
            inputs["modulation_params"] = params
        probabilities = self._predict("segment", inputs, ["probabilities"])["probabilities"][..., 0]
        labels = merge_probabilities(probabilities, object_ids)
        if labels.shape != frame.shape[:2]:
            labels = resize_mask(labels, (frame.shape[1], frame.shape[0]))
        return labels, probabilities, (probabilities > 0.5).astype(np.uint8)

    def segment(self, frames, first_mask):
        """Yields one uint8 `[H, W]` label map per frame (frame 0: `first_mask`)."""
        for labels, _ in self.track(frames, first_mask):
            yield labels
