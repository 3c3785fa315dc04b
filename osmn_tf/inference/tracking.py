"""The per-video loop of SPEC section 5, whatever runs the network.

`VideoLoop.track` segments a video from its first frame's object ids: the
visual modulator once per object on frame 0, frame 1's spatial guide from the
first mask, frame t's from that object's own thresholded prediction on frame
t - 1 (the original's choice, not the merged label map), and the merge of the
objects' probabilities with a fixed 0.5 background. Subclasses only say how
the network is reached: `osmn_tf.inference.segmenter.VideoSegmenter` runs a Keras model
in this process, `osmn_tf.serving.client.ServingVideoSegmenter` sends requests
to TF Serving.
"""
import dataclasses
import itertools

import numpy as np

from osmn_tf.data.frames import resize_mask
from osmn_tf.data.prefetch import prefetch

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
            working size, in the order of `object_ids`; `None` for frame 0
            and frames before any object.
        object_ids: the K object ids the network predicted on this frame (on
            frames without predictions: the objects tracked from here).
        number: the frame's number in the video (its index, unless the
            frames came numbered: `track(numbered=True)`).
    """

    frame: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray | None
    object_ids: tuple
    number: int | None = None


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
    """Label map from per-object probabilities `[K, h, w]`: argmax over [0.5 background, p_1..p_K].

    The background, first in that list, wins ties; so a pixel is the best
    object's when its probability exceeds 0.5 (computed so, without stacking a
    background plane: this runs on every frame between two network calls).
    """
    ids = np.asarray(object_ids, dtype=np.uint8)
    if len(ids) == 1:
        return np.where(probabilities[0] > BACKGROUND_SCORE, ids[0], np.uint8(0))
    best = np.argmax(probabilities, axis=0)
    top = np.take_along_axis(probabilities, best[np.newaxis], axis=0)[0]
    return np.where(top > BACKGROUND_SCORE, ids[best], np.uint8(0))


def merge_masks(probabilities, masks, object_ids):
    """Label map from each object's refined mask (e.g. by a CRF): where masks overlap, the most probable object.

    Args:
        probabilities: `float32 [K, h, w]`, each object's probability.
        masks: bool `[K, h, w]`, each object's mask after refinement.
        object_ids: the K ids.

    A pixel no mask holds is background, whatever its probabilities.
    """
    ids = np.asarray(object_ids, dtype=np.uint8)
    if len(ids) == 1:
        return np.where(masks[0], ids[0], np.uint8(0))
    best = np.argmax(np.where(masks, probabilities, -1), axis=0)
    return np.where(masks.any(axis=0), ids[best], np.uint8(0))


def masks_at_size(masks, size):
    """Each object's mask `[K, h, w]` at `size` `(W, H)`: resized nearest where it is another size."""
    width, height = size
    if masks.shape[1:] == (height, width):
        return masks
    return np.stack([resize_mask(m, size) for m in masks])


def checked_annotations(annotations):
    """`annotations` as `{frame index: uint8 [H, W] object ids}`, sorted; keys must be ints >= 0."""
    if annotations is None:
        return {}
    if not isinstance(annotations, dict):
        raise TypeError(f"annotations must be a dict {{frame index: label map}}, got {type(annotations).__name__}")
    checked = {}
    for index, labels in annotations.items():
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"annotations: frame indices must be ints >= 0, got {index!r}")
        try:
            checked[int(index)] = checked_first_mask(labels)
        except ValueError as e:
            raise ValueError(f"annotation of frame {index}: {str(e).replace('first_mask', 'the mask')}") from None
        if not object_ids_of(checked[int(index)]):
            raise ValueError(f"annotation of frame {index} has no object: every pixel is 0 (background)")
    return dict(sorted(checked.items()))


def annotated_labels(labels, annotation):
    """`labels` with the annotation's objects exactly as annotated: their pixels, and no others."""
    labels = labels.copy()
    for object_id in object_ids_of(annotation):
        labels[labels == object_id] = 0
    annotated = annotation != 0
    labels[annotated] = annotation[annotated]
    return labels


class VideoLoop:
    """SPEC section 5's loop; a subclass supplies the network through three methods.

    * `start_video(frame, first_mask, object_ids)`: called on frame 0; returns
      the visual modulator's parameters `[K, P]` (None without it).
    * `prepare_frame(frame)`: the network's input for a later frame, made in
      a reading thread ahead of the network (`osmn_tf.data.prefetch`).
    * `frame_probabilities(prepared, masks, params, object_ids)`: each object's
      foreground probability `float32 [K, h, w]`; `masks` are bool `[K, h', w']`,
      each object's mask on the previous frame, at the first mask's size on
      frame 1; `object_ids` the K ids in that order.

    Objects annotated after frame 0 are encoded with `encode_new_objects`
    (by default `start_video`; a subclass whose `start_video` does more than
    encode, such as adapting the model, overrides it). A post-processing of
    the masks (the dense CRF) overrides `object_masks` and `merge`.
    """

    def track(self, frames, first_mask, annotations=None, reencode_corrected=False, numbered=False):
        """Yields a `FrameResult` per frame; see `segment`.

        `numbered`: `frames` yields `(number, frame)` pairs, `number` the
        frame's place in the video when some frames are missing (a live
        stream drops frames to keep up); `annotations` are then keyed by
        those numbers. The first frame given is frame 0 of the loop.
        """
        first_mask = checked_first_mask(first_mask)
        annotations = checked_annotations(annotations)
        if not annotations:
            video_objects(first_mask)  # frame 0 must then hold an object
        counter = itertools.count()
        # Per object, in order of joining: its visual modulator parameters and its mask on the previous frame.
        params, previous = {}, {}
        has_params = True

        def prepare(item):
            # In the prefetch thread: reading (the iterable's work), checks and
            # preparation of the next frames overlap the network.
            index = next(counter)
            number, frame = item if numbered else (index, item)
            frame = checked_frame(number, frame, first_mask if index == 0 else None)
            return frame, (self.prepare_frame(frame) if index else None), number

        def join(frame, mask, object_ids, first):
            nonlocal has_params
            encoded = (self.start_video if first else self.encode_new_objects)(frame, mask, object_ids)
            has_params = encoded is not None
            for k, object_id in enumerate(object_ids):
                params[object_id] = None if encoded is None else encoded[k]
                previous[object_id] = mask == object_id

        for index, (frame, prepared, number) in enumerate(prefetch(frames, prepare)):
            annotation = annotations.get(number)
            if annotation is not None and annotation.shape != frame.shape[:2]:
                raise ValueError(
                    f"the annotation of frame {number} is {annotation.shape[1]}x{annotation.shape[0]} (WxH) but "
                    f"the frame is {frame.shape[1]}x{frame.shape[0]}: they must be the same size")
            if index == 0:
                if object_ids_of(first_mask):
                    join(frame, first_mask, object_ids_of(first_mask), first=True)
                labels, probabilities, predicted_ids = first_mask.astype(np.uint8), None, ()
            elif previous:
                predicted_ids = tuple(previous)
                masks = np.stack(list(previous.values()))
                stacked = np.stack([params[i] for i in predicted_ids]) if has_params else None
                probabilities = self.frame_probabilities(prepared, masks, stacked, predicted_ids)
                masks = self.object_masks(prepared, probabilities)
                previous = dict(zip(predicted_ids, masks))
                labels = self.merge(probabilities, masks, predicted_ids)
                if labels.shape != frame.shape[:2]:
                    labels = resize_mask(labels, (frame.shape[1], frame.shape[0]))
            else:
                # No object yet: nothing for the network to do.
                labels, probabilities, predicted_ids = np.zeros(frame.shape[:2], np.uint8), None, ()
            if annotation is not None:
                annotated = object_ids_of(annotation)
                new = tuple(i for i in annotated if i not in previous)
                corrected = tuple(i for i in annotated if i in previous)
                if new:
                    join(frame, annotation, new, first=not previous and not params)
                if corrected and reencode_corrected and has_params:
                    encoded = self.encode_new_objects(frame, annotation, corrected)
                    params.update(zip(corrected, encoded))
                for object_id in annotated:
                    previous[object_id] = annotation == object_id
                labels = annotated_labels(labels, annotation)
                # The masks of one network call share a size: annotated ones take the predictions'.
                size = next(iter(previous.values())).shape if probabilities is None else probabilities.shape[1:]
                previous = {i: m if m.shape == size else resize_mask(m, size[::-1]) for i, m in previous.items()}
            yield FrameResult(frame, labels, probabilities, predicted_ids if probabilities is not None
                              else tuple(previous), number)

    def segment(self, frames, first_mask, annotations=None, reencode_corrected=False):
        """Yields one `uint8` `[H, W]` label map per frame, at each frame's own size.

        Args:
            frames: an iterable of `uint8` `[H, W, 3]` RGB frames.
            first_mask: `uint8` `[H, W]` (or `[H, W, 1]`) integer object ids of
                frame 0 (0 = background); float masks are refused. Frame 0's
                output is `first_mask` itself. It may hold no object when
                `annotations` gives them later.
            annotations: optional `{frame index: [H, W] object ids}` of later
                frames (the frame's size). An id seen for the first time at
                frame k joins there: its visual guide from frame k and its
                mask, frame k + 1's spatial guide from that mask; before k it
                has no pixel. An id already tracked is corrected: its mask on
                frame k becomes the annotation's, and tracking goes on from
                it. Frame k's output shows every annotated object exactly as
                annotated, the other objects as predicted.
            reencode_corrected: also encode a corrected object's visual guide
                again from frame k (its appearance there); the default keeps
                the guide of the frame where it joined, which scored a little
                higher on the demo (docs/results.md): the first view is
                usually the clearest, a correction mostly fixes the location.

        Leaving the loop early stops reading `frames` without waiting for a
        read in progress (`osmn_tf.data.prefetch.prefetch`).
        """
        for result in self.track(frames, first_mask, annotations, reencode_corrected):
            yield result.labels

    def start_video(self, frame, first_mask, object_ids):
        raise NotImplementedError

    def encode_new_objects(self, frame, mask, object_ids):
        """The visual modulator's parameters `[K, P]` of objects that join at `frame` (None without it)."""
        return self.start_video(frame, mask, object_ids)

    def prepare_frame(self, frame):
        raise NotImplementedError

    def frame_probabilities(self, prepared, masks, params, object_ids=None):
        raise NotImplementedError

    def object_masks(self, prepared, probabilities):
        """Each object's mask bool `[K, h, w]` on this frame, the next frame's spatial guides: `p > 0.5`."""
        return probabilities > 0.5

    def merge(self, probabilities, masks, object_ids):
        """The frame's label map from `probabilities` and `object_masks`: the original's merge."""
        return merge_probabilities(probabilities, object_ids)
