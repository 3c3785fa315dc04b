"""The SavedModel for TF Serving: its signatures, their input checks, and writing it.

`docs/serving.md` lists the signatures with their inputs and outputs. In
short: `encode_guide` (visual modulator, once per object), `segment` (every
frame) and `serving_default` (the whole model) take the preprocessed float
tensors of SPEC sections 1-3; `encode_guide_raw` and `segment_raw` take uint8
frames and masks and preprocess in the graph (`osmn_tf.serving.preprocessing`);
`encode_guide_image` and `segment_image` take the frame as JPEG/PNG bytes and
the masks as PNG bytes (`osmn_tf.serving.images`), then do what the `_raw`
ones do, and also return the label map as PNG bytes.
A variant without the visual (spatial) modulator has no `encode_guide*`
signatures and no `modulation_params` (`spatial_guide`, `masks`, `masks_bytes`) input;
masktrack, which feeds the spatial guide to its network, keeps them.

Every base model has the same signatures. The raw and image ones encode
pixels with the model's mean and scale (lite: 0.00787; `osmn_tf.config.input_mean_of`,
`input_scale_of`);
lite's network needs multiples of 32, so its `segment_raw` and
`segment_image` pad the working-size frame and guides at the bottom and right
as `VideoSegmenter(pad=True)` does, and crop the outputs back; its float
`segment` and `serving_default` take images whose height and width are
multiples of 32.

Every signature checks its inputs in the graph: batch sizes and frame sizes
that disagree fail with an `InvalidArgumentError` naming the inputs instead of
broadcasting.
"""
import os

import tensorflow as tf

from osmn_tf.config import LITE_STRIDE, input_mean_of, input_scale_of
from osmn_tf.data.frames import WORKING_SIZE, check_size
from osmn_tf.models.folding import fold_batch_norm
from osmn_tf.serving import images
from osmn_tf.serving.preprocessing import (merge_labels, nearest_resize_masks, normalize_rgb, pil_bilinear_resize,
                                           spatial_guides, visual_guides)


def input_specs(model):
    """`{input name: TensorSpec}` of every signature input of `model` (the spec's name is the input's)."""
    size = model.config.guide_size
    shapes = {
        "guide_image": ([None, size, size, 3], tf.float32),
        "image": ([None, None, None, 3], tf.float32),
        "spatial_guide": ([None, None, None, 1], tf.float32),
        "modulation_params": ([None, model.num_modulation_params], tf.float32),
        "frame": ([None, None, 3], tf.uint8),
        "masks": ([None, None, None], tf.uint8),
        # Names ending in `_bytes`: TF Serving's REST API sends such strings as {"b64": ...}.
        "frame_bytes": ([], tf.string),
        "masks_bytes": ([None], tf.string),
    }
    return {name: tf.TensorSpec(shape, dtype, name=name) for name, (shape, dtype) in shapes.items()}


def frame_specs(model):
    """The TensorSpecs of `model.frame_model()`'s inputs, in its order (the `segment` signature's)."""
    specs = input_specs(model)
    return [specs[t.name] for t in model.frame_model().inputs]


def _assert_same(a, b, message):
    return tf.debugging.assert_equal(a, b, message=message)


def _dims(x):
    """`tf.shape(x)` padded with -1 to 8 entries: indexable whatever the rank (the checks
    run in no particular order, so a rank check cannot guard the others)."""
    return tf.concat([tf.shape(x), tf.fill([8], -1)], axis=0)[:8]


def _rank_first(x, rank, message, checks_of_dims):
    """The rank check of `x`, then `checks_of_dims(_dims(x))` made to run after it: they read
    dimensions a wrong rank does not have, and would otherwise report that instead."""
    rank_check = tf.debugging.assert_rank(x, rank, message=message)
    with tf.control_dependencies([rank_check]):
        return [rank_check, *checks_of_dims(_dims(x))]


class ServingSignatures:
    """The signature functions of one model (its BatchNorm folded); see the module docstring.

    Args:
        model: an `osmn_tf.OSMN`.
        working_size: `(W, H)` the `segment_raw` signature resizes frames to.
    """

    def __init__(self, model, working_size):
        model = fold_batch_norm(model)
        self.model = model
        self.working_size = check_size(working_size, "working_size")
        self.frame_model = model.frame_model()
        self.num_params = model.num_modulation_params
        self.visual = model.visual_modulator is not None
        # masktrack has no spatial modulator but takes the spatial guide (its 4th input channel).
        self.spatial = any(t.name == "spatial_guide" for t in model.inputs)
        self.guide_size = model.config.guide_size
        self.scale, self.mean = input_scale_of(model.config), input_mean_of(model.config)
        # lite's network sees the working size padded to multiples of 32 (the release's quirk, SPEC 8.1).
        width, height = self.working_size
        stride = LITE_STRIDE if model.config.base_model == "lite" else 1
        self.network_size = (-(-width // stride) * stride, -(-height // stride) * stride)
        self.specs = input_specs(model)

    # Input checks. The TensorSpecs already fix ranks, channels and P for
    # Python callers; these graph ops also hold where the shapes are not
    # checked before the graph runs (e.g. a C++ server), and check what a
    # spec cannot: sizes that must agree between inputs.
    def _check_params(self, params, batch=None, batch_name=None):
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
        checks = _rank_first(image, 4, "image must be [N, H, W, 3] (a batch of images)", lambda dims: [
            _assert_same(dims[3], 3, "image must have 3 channels (BGR minus the mean)"),
            tf.debugging.assert_positive(dims[:1], message="image must hold at least one image (N > 0)"),
            tf.debugging.assert_positive(dims[1:3], message="image must not be empty"),
        ])
        if spatial_guide is not None:
            checks += [
                tf.debugging.assert_rank(spatial_guide, 4, message="spatial_guide must be [N, H, W, 1]"),
                _assert_same(_dims(spatial_guide)[3], 1, "spatial_guide must have 1 channel"),
                _assert_same(_dims(spatial_guide)[:3], _dims(image)[:3],
                             "spatial_guide must have the image's batch size N, height H and width W"),
            ]
        return checks

    def _check_guide(self, guide_image):
        size = self.guide_size
        return [
            tf.debugging.assert_rank(guide_image, 4, message=f"guide_image must be [N, {size}, {size}, 3]"),
            _assert_same(_dims(guide_image)[1:4], [size, size, 3], f"guide_image must be [N, {size}, {size}, 3]"),
        ]

    def _check_frame_and_masks(self, frame, masks):
        checks = _rank_first(frame, 3, "frame must be one uint8 RGB frame [H, W, 3]", lambda dims: [
            _assert_same(dims[2], 3, "frame must have 3 channels (RGB)"),
            tf.debugging.assert_positive(dims[:2], message="frame must not be empty"),
        ])
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
        return {"logits": logits, "probabilities": tf.sigmoid(logits)}

    def encode_guide(self, guide_image):
        with tf.control_dependencies(self._check_guide(guide_image)):
            guide_image = tf.identity(guide_image)
        return {"modulation_params": self.model.visual_modulator(guide_image, training=False)}

    def segment(self, image, spatial_guide=None, modulation_params=None):
        checks = self._check_image(image, spatial_guide)
        if modulation_params is not None:
            checks += self._check_params(modulation_params, tf.shape(image)[0], "image")
        with tf.control_dependencies(checks):
            image = tf.identity(image)
        return self._outputs(self._frame_logits(image, spatial_guide, modulation_params))

    def serving_default(self, guide_image=None, spatial_guide=None, image=None):
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
        checks = self._check_frame_and_masks(frame, masks)
        with tf.control_dependencies(checks):
            # An all-zero mask has no object to crop: its parameters would describe nothing.
            checks.append(tf.debugging.assert_positive(
                tf.reduce_max(tf.cast(masks, tf.int32), axis=[1, 2]),
                message="every mask must mark its object: a mask of encode_guide_raw is all zero"))
        with tf.control_dependencies(checks):
            frame = tf.identity(frame)
        return self.encode_guide(visual_guides(frame, masks, self.guide_size, self.scale, self.mean))

    def segment_raw(self, frame, masks=None, modulation_params=None):
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
        image = normalize_rgb(pil_bilinear_resize(frame, work_h, work_w), self.scale, self.mean)
        image = tf.tile(image[tf.newaxis], tf.stack([num_objects, 1, 1, 1]))
        guides = None
        if masks is not None:
            guides = spatial_guides(nearest_resize_masks(masks, work_h, work_w))
        image, guides = self._padded(image), self._padded(guides)
        logits = self._frame_logits(image, guides, modulation_params)[:, :work_h, :work_w]
        outputs = self._outputs(logits)
        outputs["masks"] = tf.cast(outputs["probabilities"][..., 0] > 0.5, tf.uint8)
        labels = merge_labels(outputs["probabilities"])
        outputs["labels"] = nearest_resize_masks(labels[tf.newaxis], tf.shape(frame)[0], tf.shape(frame)[1])[0]
        return outputs

    def _padded(self, x):
        """`x` `[N, h, w, C]` at the working size, zero-padded at the bottom and right to the network's size."""
        (work_w, work_h), (net_w, net_h) = self.working_size, self.network_size
        if x is None or (net_w, net_h) == (work_w, work_h):
            return x
        return tf.pad(x, [[0, 0], [0, net_h - work_h], [0, net_w - work_w], [0, 0]])

    def encode_guide_image(self, frame_bytes, masks_bytes):
        frame = images.decode_frame(frame_bytes)
        masks = images.decode_masks(masks_bytes, [tf.shape(frame)[:2]], "have the size of the frame")
        return self.encode_guide_raw(frame, masks)

    def segment_image(self, frame_bytes, masks_bytes=None, modulation_params=None):
        frame = images.decode_frame(frame_bytes)
        masks = None
        if masks_bytes is not None:
            # The previous frame's masks: the first mask (frame size) or a prediction (working size).
            work_w, work_h = self.working_size
            masks = images.decode_masks(masks_bytes, [tf.shape(frame)[:2], tf.constant([work_h, work_w])],
                                        f"have the size of the frame or the working size {work_w}x{work_h} (WxH)")
        outputs = self.segment_raw(frame, masks, modulation_params)
        outputs["labels_png_bytes"] = images.encode_png(outputs["labels"])
        return outputs

    def endpoints(self):
        """`{name: (function, [input names])}` for this model's variant."""
        seg = ["image"] + ["spatial_guide"] * self.spatial + ["modulation_params"] * self.visual
        raw = ["frame"] + ["masks"] * self.spatial + ["modulation_params"] * self.visual
        image = ["frame_bytes"] + ["masks_bytes"] * self.spatial + ["modulation_params"] * self.visual
        default = ["guide_image"] * self.visual + ["spatial_guide"] * self.spatial + ["image"]
        endpoints = {}
        if self.visual:
            endpoints["encode_guide"] = (self.encode_guide, ["guide_image"])
            endpoints["encode_guide_raw"] = (self.encode_guide_raw, ["frame", "masks"])
            endpoints["encode_guide_image"] = (self.encode_guide_image, ["frame_bytes", "masks_bytes"])
        endpoints["segment"] = (self.segment, seg)
        endpoints["segment_raw"] = (self.segment_raw, raw)
        endpoints["segment_image"] = (self.segment_image, image)
        endpoints["serving_default"] = (self.serving_default, default)
        return endpoints


def signature_names(model):
    """The names of the signatures `export_saved_model` writes for `model`'s variant."""
    names = ["segment", "segment_image", "segment_raw", "serving_default"]
    if model.visual_modulator is not None:
        names = ["encode_guide", "encode_guide_image", "encode_guide_raw"] + names
    return names


BATCHABLE_SIGNATURES = ("encode_guide", "segment", "serving_default")
"""The signatures whose every input and output has the batch dimension N first: the only
ones TF Serving's batching (which concatenates requests along dimension 0) can run."""


def build_export_archive(model, working_size=WORKING_SIZE):
    """A `keras.export.ExportArchive` holding every signature of `model` (an `osmn_tf.OSMN`).

    Args:
        model: an `osmn_tf.OSMN`.
        working_size: `(W, H)` the `segment_raw` signature resizes frames to.
    """
    import keras

    signatures = ServingSignatures(model, working_size)
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
    """Writes `model` as a SavedModel with the signatures of `docs/serving.md`.

    TF Serving reads `<model_base_path>/<version>/`: pass e.g. `models/osmn/1`.
    This writes in place; into a folder a server watches, write inside
    `osmn_tf.serving.versions.staged_version` (as tools/export.py does), which
    renames the complete version into place. Returns `output_dir`.
    """
    output_dir = os.fspath(output_dir)
    build_export_archive(model, working_size).write_out(output_dir, verbose=False)
    return output_dir
