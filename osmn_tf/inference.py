"""Segmenting a video from its first frame's masks (SPEC section 5)."""
import dataclasses
import itertools

import numpy as np
import tensorflow as tf

from osmn_tf.frames import WORKING_SIZE, preprocess_frame, resize_mask
from osmn_tf.guides import spatial_guide, visual_guide
from osmn_tf.models.folding import fold_batch_norm
from osmn_tf.precision import check_precision
from osmn_tf.prefetch import prefetch

# Background's fixed score in the multi-object merge: an object wins a pixel
# only where its probability exceeds 0.5.
BACKGROUND_SCORE = 0.5


@dataclasses.dataclass
class FrameResult:
    """One frame's segmentation.

    Attributes:
        frame: the input frame, `uint8` `[H, W, 3]` RGB.
        labels: `uint8` `[H, W]` object ids at the frame's own size (0 = background).
        probabilities: `float32` `[K, h, w]`, each object's probability at the
            working size, in the order of `object_ids`; `None` for frame 0.
        object_ids: the K object ids.
    """

    frame: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray | None
    object_ids: tuple


def object_ids_of(mask):
    """The object ids of a label map: its nonzero values, ascending."""
    return tuple(int(i) for i in np.unique(mask) if i != 0)


def checked_first_mask(first_mask):
    """`first_mask` as `[H, W]` integer object ids (`[H, W, 1]` is accepted); anything else is an error."""
    first_mask = np.asarray(first_mask)
    if first_mask.ndim == 3 and first_mask.shape[2] == 1:
        first_mask = first_mask[:, :, 0]
    if first_mask.ndim != 2:
        raise ValueError(f"first_mask must be [H, W] object ids, got shape {first_mask.shape}")
    if first_mask.dtype == np.bool_:
        return first_mask.astype(np.uint8)
    # A float mask is usually probabilities or a normalised image: rounding it would invent objects.
    if not np.issubdtype(first_mask.dtype, np.integer):
        raise ValueError(f"first_mask must hold integer object ids (0..255), got dtype {first_mask.dtype}")
    if first_mask.size and (first_mask.min() < 0 or first_mask.max() > 255):
        raise ValueError(f"first_mask object ids must lie in 0..255, got {first_mask.min()}..{first_mask.max()}")
    return first_mask.astype(np.uint8)


def video_objects(first_mask):
    """The object ids of a video's first mask; a mask without objects is an error."""
    object_ids = object_ids_of(first_mask)
    if not object_ids:
        raise ValueError("first_mask has no object: every pixel is 0 (background)")
    return object_ids


def checked_frame(index, frame, first_mask=None):
    """Frame `index` as an array, checked to be `uint8` RGB (and, for frame 0, the first mask's size)."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame {index}: expected an HxWx3 uint8 RGB array, got {frame.dtype} {frame.shape}")
    if first_mask is not None and first_mask.shape != frame.shape[:2]:
        raise ValueError(
            f"first_mask is {first_mask.shape[1]}x{first_mask.shape[0]} (WxH) but frame 0 is "
            f"{frame.shape[1]}x{frame.shape[0]}: they must be the same size"
        )
    return frame


def merge_probabilities(probabilities, object_ids):
    """Label map from per-object probabilities `[K, h, w]`: argmax over [0.5 background, p_1..p_K]."""
    scores = np.concatenate([np.full((1, *probabilities.shape[1:]), BACKGROUND_SCORE, np.float32), probabilities])
    lookup = np.asarray((0, *object_ids), dtype=np.uint8)
    return lookup[np.argmax(scores, axis=0)]


class VideoSegmenter:
    """Runs OSMN over a video, all objects of a frame in one batch.

    For each object, the visual modulator runs once on frame 0; every later
    frame is segmented with a spatial guide made from that object's own
    thresholded prediction on the previous frame (the original's choice, not
    the merged label map), frame 1 from the first mask. Frames are processed
    as a stream: memory does not grow with the video's length.

    Args:
        model: an `osmn_tf.OSMN`.
        working_size: `(W, H)` every frame is resized to; the original's is 854 x 480.
        adapt: optional `adapt(model, frame 0, first_mask, working_size) -> model`,
            called at the start of every video; that video is segmented with
            the model it returns (online fine-tuning:
            `osmn_tf.training.finetune.OnlineFinetuning`).
        share_frame_features: feed the frame once and let the network share
            its unmodulated layers among the objects (`ObjectBroadcast`);
            False feeds one copy of the frame per object (same masks, K times
            the work in those layers).
        jit_compile: compile the per-frame function with XLA (one compilation
            per frame size and object count).
        precision: compute precision of the per-frame network
            (`osmn_tf.precision.PRECISIONS`). The visual modulator, which runs
            once per object, and online fine-tuning keep `model`'s own
            precision: a 16-bit visual modulator would cost no time worth
            saving but adds about a third of the masks' disagreement with float32.
    """

    def __init__(self, model, working_size=WORKING_SIZE, adapt=None, share_frame_features=True, jit_compile=False,
                 precision="float32"):
        self.model = model
        self.share_frame_features = bool(share_frame_features)
        self.jit_compile = bool(jit_compile)
        self.precision = check_precision(precision)
        self.working_size = tuple(int(v) for v in working_size)
        if len(self.working_size) != 2 or min(self.working_size) < 1:
            raise ValueError(f"working_size must be (W, H) with positive values, got {working_size!r}")
        self.adapt = adapt
        self._bind(model)

    def _bind(self, model):
        """Makes `model` the one that segments (its compiled functions traced once)."""
        model = fold_batch_norm(model)
        self._model = model
        frame_model = self._frame_model = model.frame_model(self.precision)
        self._input_names = [t.name for t in frame_model.inputs]

        # Plain Python (no AutoGraph needed): named functions, not lambdas, which AutoGraph warns about.
        def encode(guides):
            return model.visual_modulator(guides, training=False)

        def probabilities(*inputs):
            return tf.sigmoid(frame_model(list(inputs), training=False))

        guide_size = model.config.guide_size
        self._encode = tf.function(
            encode, input_signature=[tf.TensorSpec([None, guide_size, guide_size, 3], tf.float32)], autograph=False,
            jit_compile=self.jit_compile)
        specs = {
            "image": tf.TensorSpec([None, None, None, 3], tf.float32),
            "spatial_guide": tf.TensorSpec([None, None, None, 1], tf.float32),
            "modulation_params": tf.TensorSpec([None, model.num_modulation_params], tf.float32),
        }
        # One trace for every frame size and object count.
        self._probabilities = tf.function(probabilities, input_signature=[specs[n] for n in self._input_names],
                                          autograph=False, jit_compile=self.jit_compile)

    def encode_objects(self, frame, first_mask, object_ids):
        """The visual modulator's parameters `[K, P]` for each object of frame 0 (None without it)."""
        if self._model.visual_modulator is None:
            return None
        size = self._model.config.guide_size
        guides = np.stack([visual_guide(frame, first_mask == i, size=size) for i in object_ids])
        return self.encode_guides(guides)

    def encode_guides(self, guides):
        """The visual modulator's parameters `[K, P]` for visual guides `float32 [K, S, S, 3]` (`visual_guide`)."""
        return self._encode(guides).numpy()

    @property
    def frame_traces(self):
        """How often the per-frame function was traced: 1 for every frame size and object count."""
        return int(self._probabilities.experimental_get_tracing_count())

    def track(self, frames, first_mask):
        """Yields a `FrameResult` per frame; see `segment`."""
        first_mask = checked_first_mask(first_mask)
        object_ids = video_objects(first_mask)
        params = None
        previous = None
        counter = itertools.count()

        def prepare(frame):
            # In the prefetch thread: reading (the iterable's work), checks and
            # preprocessing of the next frames overlap the network.
            index = next(counter)
            frame = checked_frame(index, frame, first_mask if index == 0 else None)
            return frame, (preprocess_frame(frame, self.working_size) if index else None)

        for index, (frame, image) in enumerate(prefetch(frames, prepare)):
            if index == 0:
                if self.adapt is not None:
                    self._bind(self.adapt(self.model, frame, first_mask, self.working_size))
                params = self.encode_objects(frame, first_mask, object_ids)
                working_mask = resize_mask(first_mask, self.working_size)
                previous = np.stack([working_mask == i for i in object_ids])
                yield FrameResult(frame, first_mask.astype(np.uint8), None, object_ids)
                continue
            probabilities = self.segment_frame(image, previous, params)
            previous = probabilities > 0.5
            labels = merge_probabilities(probabilities, object_ids)
            if labels.shape != frame.shape[:2]:
                labels = resize_mask(labels, (frame.shape[1], frame.shape[0]))
            yield FrameResult(frame, labels, probabilities, object_ids)

    def segment(self, frames, first_mask):
        """Yields one `uint8` `[H, W]` label map per frame, at each frame's own size.

        Args:
            frames: an iterable of `uint8` `[H, W, 3]` RGB frames.
            first_mask: `uint8` `[H, W]` (or `[H, W, 1]`) integer object ids of
                frame 0 (0 = background); float masks are refused. Frame 0's
                output is `first_mask` itself.

        Leaving the loop early stops reading `frames` without waiting for a
        read in progress (`osmn_tf.prefetch.prefetch`).
        """
        for result in self.track(frames, first_mask):
            yield result.labels

    def segment_frame(self, image, previous_masks, params):
        """Each object's foreground probabilities `[K, h, w]` on one frame.

        Args:
            image: the frame as `osmn_tf.frames.preprocess_frame` returns it.
            previous_masks: bool `[K, h, w]`, each object's mask on the previous frame.
            params: `encode_objects`'s parameters (None without a visual modulator).
        """
        num_objects = len(previous_masks)
        inputs = {
            "image": image[np.newaxis] if self.share_frame_features else np.repeat(image[np.newaxis], num_objects, 0),
            "spatial_guide": np.stack([spatial_guide(m) for m in previous_masks]) if self._model.spatial_modulator else None,
            "modulation_params": params,
        }
        probabilities = self._probabilities(*[tf.constant(inputs[n]) for n in self._input_names]).numpy()[..., 0]
        # A model without modulators has no per-object input: one map serves every object.
        return np.broadcast_to(probabilities, (num_objects, *probabilities.shape[1:]))
