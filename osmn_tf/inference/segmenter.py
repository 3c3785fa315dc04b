"""Segmenting a video from its first frame's masks (SPEC section 5) with a Keras model in this process."""
import numpy as np
import tensorflow as tf

from osmn_tf.config import LITE_STRIDE, input_mean_of, input_scale_of
from osmn_tf.data.frames import (WORKING_SIZE, check_size, denormalize_frame, pad_bottom_right, padded_size,
                                  preprocess_frame)
from osmn_tf.data.guides import PAD_RATIO, spatial_guide, visual_guide
from osmn_tf.data.mask_guides import dilated_mask_guide
from osmn_tf.inference.dense_crf import DenseCRFConfig, dense_crf
from osmn_tf.inference.tracking import VideoLoop, masks_at_size, merge_masks, merge_probabilities
from osmn_tf.utils.precision import resolve_precision

CRF_MERGES = ("refined", "release")


class VideoSegmenter(VideoLoop):
    """Runs OSMN over a video, all objects of a frame in one batch (the loop: `osmn_tf.inference.tracking.VideoLoop`).

    Frames are processed as a stream: memory does not grow with the video's length.

    Args:
        model: an `osmn_tf.OSMN`.
        working_size: `(W, H)` every frame is resized to; the original's is 854 x 480.
        adapt: optional `adapt(model, frame 0, first_mask, working_size) -> model`,
            called at the start of every video (on the first annotated frame
            when frame 0 has no object); that video is segmented with
            the model it returns (online fine-tuning:
            `osmn_tf.training.finetune.OnlineFinetuning`).
        adapt_per_object: call `adapt` once per object instead, with a mask
            of that object only, on the frame where the object is first
            annotated (objects that join later are adapted there), and
            segment each object with its own model, as the release's online
            fine-tuning did (`osmn_online_finetune*.py`: one model per
            object). Costs one model copy per object.
        guide_pad_ratio: the visual guide's margin around the object's box, as
            a fraction of the box (the release's `--vg_pad_ratio`, 0.03).
        guide_keep_aspect_ratio: fit the object's box into the visual guide
            without distortion (`--vg_keep_aspect_ratio`; for a model trained so).
        guide_bbox_sup: keep the background inside the object's box in the
            visual guide (`--bbox_sup`; for a model trained so).
        share_frame_features: feed the frame once and let the network share
            its unmodulated layers among the objects (`ObjectBroadcast`);
            False feeds one copy of the frame per object (same masks, K times
            the work in those layers).
        jit_compile: compile the per-frame function with XLA (one compilation
            per frame size and object count).
        precision: compute precision of the per-frame network
            (`osmn_tf.utils.precision.PRECISIONS`), or `auto`: the fastest whose
            masks agree with float32's on this CPU (`osmn_tf.utils.precision.auto_precision`);
            `self.precision` is the one used. The visual modulator, which runs
            once per object, and online fine-tuning keep `model`'s own
            precision: a 16-bit visual modulator would cost no time worth
            saving but adds about a third of the masks' disagreement with float32.
        frame_network: optional replacement of the per-frame network, e.g. an
            INT8 one (`osmn_tf.quantization.quantize`): a callable from
            `{input name: float32 [1, ...] array}` to the logits `[1, H, W, 1]`,
            called once per object; its `working_size`, if it has one, must be this
            one. The visual modulator still runs in `model`. Not with `adapt`:
            a network fine-tuned per video would need quantizing per video.
        use_original_mask: masktrack only: its spatial guide is the previous mask
            dilated by a disk of radius 5, times 255 (the release's
            `--use_original_mask`, `osmn_tf.data.mask_guides.dilated_mask_guide`) instead
            of the Gaussian.
        pad: zero-pad each frame and spatial guide at the bottom and right up to
            a multiple of 32 and crop the probabilities back. lite's modulated
            network needs such sizes (SPEC 8.1): without `pad`, a working size
            that is not one is an error, as in the release. Padding changes the
            pixels near the bottom and right edges a little, not the rest's size.
        crf: refine each object's mask on every frame with the release's dense
            CRF (`osmn_tf.inference.dense_crf`; True: its parameters,
            or a `DenseCRFConfig`), on the frame at the working size. The
            refined mask is the next frame's spatial guide, as in the release.
        crf_merge: how several objects' refined masks make the labels.
            `"refined"`: from the refined masks (where they overlap, the more
            probable object), so the CRF shapes the output. `"release"`: the
            release's DAVIS 2017 merge, from the probabilities before the CRF,
            which then changes only the spatial guides (with one object, both
            give the refined mask, as the release writes it).

    Frames and visual guides are encoded with the model's pixel mean and scale
    (`OSMNConfig.input_mean`: 104, 117, 123 by default; `OSMNConfig.input_scale`:
    1.0, lite's 0.00787).
    """

    def __init__(self, model, working_size=WORKING_SIZE, adapt=None, share_frame_features=True, jit_compile=False,
                 precision="float32", frame_network=None, use_original_mask=False, pad=False, crf=None,
                 crf_merge="refined", adapt_per_object=False, guide_pad_ratio=PAD_RATIO, guide_keep_aspect_ratio=False,
                 guide_bbox_sup=False):
        if crf_merge not in CRF_MERGES:
            raise ValueError(f"crf_merge must be one of {CRF_MERGES}, got {crf_merge!r}")
        self.crf = DenseCRFConfig() if crf is True else crf
        if self.crf is not None and not isinstance(self.crf, DenseCRFConfig):
            raise TypeError(f"crf must be None, True or a DenseCRFConfig, got {type(crf).__name__}")
        self.crf_merge = crf_merge
        self.model = model
        self.frame_network = frame_network
        self.share_frame_features = bool(share_frame_features)
        self.jit_compile = bool(jit_compile)
        self.precision = resolve_precision(precision)
        self.working_size = check_size(working_size, "working_size")
        if not (np.isfinite(guide_pad_ratio) and guide_pad_ratio > -0.5):
            raise ValueError(f"guide_pad_ratio must be a finite number > -0.5, got {guide_pad_ratio!r}")
        self.guide_pad_ratio = float(guide_pad_ratio)
        self.guide_keep_aspect_ratio = bool(guide_keep_aspect_ratio)
        self.guide_bbox_sup = bool(guide_bbox_sup)
        self.adapt = adapt
        self.adapt_per_object = bool(adapt_per_object)
        if self.adapt_per_object and adapt is None:
            raise ValueError("adapt_per_object needs adapt (what to do per object)")
        # With adapt_per_object: {object id: the bound functions of its own model} (`_bound`).
        self._objects = {}
        self.scale = input_scale_of(model.config)
        self.mean = input_mean_of(model.config)
        self.use_original_mask = bool(use_original_mask)
        if self.use_original_mask and model.config.base_model != "masktrack":
            raise ValueError(f"use_original_mask is masktrack's spatial guide; this model's base model is "
                             f"{model.config.base_model}")
        self.pad = bool(pad)
        width, height = self.working_size
        if model.config.base_model == "lite" and not self.pad and (width % LITE_STRIDE or height % LITE_STRIDE):
            raise ValueError(
                f"working size {width}x{height} (WxH): base_model lite needs a width and height that are multiples "
                f"of {LITE_STRIDE} (the release's quirk); use pad=True (the network then sees "
                f"{-(-width // LITE_STRIDE) * LITE_STRIDE}x{-(-height // LITE_STRIDE) * LITE_STRIDE}) or e.g. "
                f"{max(width // LITE_STRIDE, 1) * LITE_STRIDE}x{max(height // LITE_STRIDE, 1) * LITE_STRIDE}")
        if frame_network is not None:
            if adapt is not None:
                raise ValueError("frame_network and adapt exclude each other: online fine-tuning changes the "
                                 "network that frame_network replaces")
            fixed = getattr(frame_network, "working_size", None)
            if fixed is not None and tuple(fixed) != self.network_size:
                raise ValueError(f"frame_network runs at working size {fixed[0]}x{fixed[1]}, but working_size is "
                                 f"{self.network_size[0]}x{self.network_size[1]}")
        self._bind(model)

    @property
    def network_size(self):
        """The size the network sees: the working size, or with `pad` the next multiples of 32."""
        return padded_size(self.working_size) if self.pad else self.working_size

    def _bind(self, model):
        """Makes `model` the one that segments (its compiled functions traced once)."""
        self.__dict__.update(self._bound(model))

    def _bound(self, model):
        """`model`'s compiled functions, as the attributes `_bind` sets."""
        # The spatial modulator's BatchNorm folded: one pass over each bias map (`osmn_tf.models.folding`).
        frame_model = model.frame_model(self.precision, fold_batch_norm=True)
        input_names = [t.name for t in frame_model.inputs]

        # Plain Python (no AutoGraph needed): named functions, not lambdas, which AutoGraph warns about.
        def encode(guides):
            return model.visual_modulator(guides, training=False)

        def probabilities(*inputs):
            return tf.sigmoid(frame_model(list(inputs), training=False))

        guide_size = model.config.guide_size
        encode_fn = tf.function(
            encode, input_signature=[tf.TensorSpec([None, guide_size, guide_size, 3], tf.float32)], autograph=False,
            jit_compile=self.jit_compile)
        specs = {
            "image": tf.TensorSpec([None, None, None, 3], tf.float32),
            "spatial_guide": tf.TensorSpec([None, None, None, 1], tf.float32),
            "modulation_params": tf.TensorSpec([None, model.num_modulation_params], tf.float32),
        }
        # One trace for every frame size and object count.
        return {"_model": model, "_frame_model": frame_model, "_input_names": input_names, "_encode": encode_fn,
                "_probabilities": tf.function(probabilities, input_signature=[specs[n] for n in input_names],
                                              autograph=False, jit_compile=self.jit_compile)}

    def encode_objects(self, frame, first_mask, object_ids):
        """The visual modulator's parameters `[K, P]` for objects of `first_mask` on `frame` (None without it)."""
        if self._model.visual_modulator is None:
            return None
        size = self._model.config.guide_size
        guides = np.stack([visual_guide(frame, first_mask == i, size=size, scale=self.scale, mean=self.mean,
                                        pad_ratio=self.guide_pad_ratio,
                                        keep_aspect_ratio=self.guide_keep_aspect_ratio, bbox_sup=self.guide_bbox_sup)
                           for i in object_ids])
        return self.encode_guides(guides)

    def encode_guides(self, guides):
        """The visual modulator's parameters `[K, P]` for visual guides `float32 [K, S, S, 3]` (`visual_guide`).

        One guide per call, as the original encodes each object: the
        convolutions' round-off depends on the batch size, and the video loop
        amplifies round-off (a pixel at probability 0.5 flips, the median of
        its object's mask moves, and the next spatial guide with it).
        """
        return np.concatenate([self._encode(guides[k : k + 1]).numpy() for k in range(len(guides))])

    @property
    def frame_traces(self):
        """How often the per-frame function was traced: 1 for every frame size and object count."""
        return int(self._probabilities.experimental_get_tracing_count())

    def start_video(self, frame, first_mask, object_ids):
        if self.adapt_per_object:
            self._objects = {}  # a new video: no object's model carries over
            return self._adapt_objects(frame, first_mask, object_ids)
        if self.adapt is not None:
            self._bind(self.adapt(self.model, frame, first_mask, self.working_size))
        return self.encode_objects(frame, first_mask, object_ids)

    def encode_new_objects(self, frame, mask, object_ids):
        if self.adapt_per_object:
            return self._adapt_objects(frame, mask, object_ids)
        return self.encode_objects(frame, mask, object_ids)

    def _adapt_objects(self, frame, mask, object_ids):
        """Per object: `adapt` on its first annotated frame (once), then its parameters from its own model."""
        params = []
        for object_id in object_ids:
            if object_id not in self._objects:
                only = np.where(mask == object_id, mask, 0).astype(np.uint8)
                self._objects[object_id] = self._bound(self.adapt(self.model, frame, only, self.working_size))
            self.__dict__.update(self._objects[object_id])
            params.append(self.encode_objects(frame, mask, (object_id,)))
        return None if params[0] is None else np.concatenate(params)

    def prepare_frame(self, frame):
        # Always the working size: a 4K frame never reaches the network at full size.
        return self._padded(preprocess_frame(frame, self.working_size, self.scale, self.mean))

    def _padded(self, array):
        return pad_bottom_right(array, self.network_size)

    def _spatial_guide(self, mask):
        return dilated_mask_guide(mask) if self.use_original_mask else spatial_guide(mask)

    def frame_probabilities(self, image, masks, params, object_ids=None):
        masks = masks_at_size(masks, self.working_size)
        if not self.adapt_per_object:
            return self.segment_frame(image, masks, params)
        if object_ids is None or len(object_ids) != len(masks):
            raise ValueError("adapt_per_object: frame_probabilities needs the object id of every mask")
        # Each object through its own model, one at a time.
        probabilities = []
        for k, object_id in enumerate(object_ids):
            self.__dict__.update(self._objects[object_id])
            probabilities.append(self.segment_frame(image, masks[k : k + 1],
                                                    None if params is None else params[k : k + 1]))
        return np.concatenate(probabilities)

    def object_masks(self, image, probabilities):
        masks = probabilities > 0.5
        if self.crf is None:
            return masks
        # The CRF sees the frame as the network did: at the working size (without `pad`'s border), in RGB (SPEC 8.5).
        width, height = self.working_size
        rgb = denormalize_frame(image[:height, :width], self.scale, self.mean)
        return np.stack([dense_crf(rgb, mask, self.crf).astype(bool) for mask in masks])

    def merge(self, probabilities, masks, object_ids):
        if self.crf is None or (self.crf_merge == "release" and len(object_ids) > 1):
            return merge_probabilities(probabilities, object_ids)
        return merge_masks(probabilities, masks, object_ids)

    def segment_frame(self, image, previous_masks, params):
        """Each object's foreground probabilities `[K, h, w]` on one frame.

        Args:
            image: the frame as `prepare_frame` returns it (`osmn_tf.data.frames.preprocess_frame`, padded with `pad`).
            previous_masks: bool `[K, h, w]`, each object's mask on the previous frame.
            params: `encode_objects`'s parameters (None without a visual modulator).
        """
        num_objects = len(previous_masks)
        height, width = previous_masks.shape[1:]
        inputs = {
            "image": image[np.newaxis] if self.share_frame_features else np.repeat(image[np.newaxis], num_objects, 0),
            "spatial_guide": np.stack([self._padded(self._spatial_guide(m)) for m in previous_masks])
            if "spatial_guide" in self._input_names else None,
            "modulation_params": params,
        }
        if self.frame_network is not None:
            probabilities = self._network_probabilities(inputs, num_objects)
        else:
            probabilities = self._probabilities(*[tf.constant(inputs[n]) for n in self._input_names]).numpy()[..., 0]
        probabilities = probabilities[:, :height, :width]  # what `pad` added
        # A model without modulators has no per-object input: one map serves every object.
        return np.broadcast_to(probabilities, (num_objects, *probabilities.shape[1:]))

    def _network_probabilities(self, inputs, num_objects):
        """`frame_network`'s probabilities `[K, h, w]`, one object at a time (it runs at batch size 1)."""
        logits = []
        for k in range(num_objects if len(self._input_names) > 1 else 1):
            one = {n: np.asarray(inputs[n][min(k, len(inputs[n]) - 1)][np.newaxis], np.float32)
                   for n in self._input_names}
            logits.append(np.asarray(self.frame_network(one))[0, ..., 0])
        # The sigmoid, written with tanh: no overflow on large negative logits.
        return (0.5 + 0.5 * np.tanh(0.5 * np.stack(logits))).astype(np.float32)
