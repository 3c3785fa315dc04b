"""Training samples for OSMN's two training stages (SPEC section 7).

The sources share one contract, so that one `tf.data` pipeline reads either:

* `CocoSource`: stage 1, MS-COCO objects (the object's own image is both the
  visual guide's source and the frame to segment; the spatial guide comes from
  the object's own mask).
* `DavisTrainSource`: stage 2, DAVIS train sequences (frame t is segmented, the
  spatial guide comes from frame t-1's ground truth and the visual guide from a
  random "valid" frame of the same object).
* `YouTubeVOSTrainSource`: the release's YouTube-VOS training, as DAVIS's
  over each object's annotated frames from `meta.json`.

The contract::

    source.batch(batch_index, batch_size, seed) -> {
        "guide_image":   float32 [B, S, S, 3]      BGR minus the mean, 0 off the object
                                                   (S = the source's guide_size, 224 by default)
        "spatial_guide": float32 [B, H, W, 1]      in [0, 1]
        "image":         float32 [B, H, W, 3]      BGR minus the mean
        "label":         float32 [B, H, W, 1]      0 or 1
    }

A batch depends on `(seed, batch_index)` only: its random stream is
`numpy.random.default_rng([seed, batch_index])`, from which the batch's scale
(one `(H, W)` per batch, `image_size` times a scale from `scales`, truncated
to ints as the original did) and its items (drawn uniformly with replacement
from `range(len(source))`) are drawn, in this order; item `j`'s augmentations
come from its own stream `default_rng([seed, batch_index, j])`. So any batch
can be made again (resuming), in parts (replicas) and in
parallel, in any order. `source.sample(item, rng, size)` makes one item.

Reading, resizing and guides are `osmn_tf.data.frames` and `osmn_tf.data.guides`; this
module only decides what goes where.

One module per source on a small base: `base` (the contract's `batch` and
shared checks), `coco` (stage 1 and `object_sample`), `first_frame` (online
fine-tuning), `davis` (stage 2) and `youtube_vos`.
"""
from osmn_tf.training.samples.base import SampleSource
from osmn_tf.training.samples.coco import COCO_MIN_AREA_FRACTION, CocoSource, object_sample
from osmn_tf.training.samples.davis import DAVIS_BBOX_VALID_RATIO, DAVIS_LABEL_VALID_RATIO, DavisTrainSource
from osmn_tf.training.samples.first_frame import FirstFrameSource
from osmn_tf.training.samples.youtube_vos import YouTubeVOSTrainSource

__all__ = [
    "COCO_MIN_AREA_FRACTION", "DAVIS_BBOX_VALID_RATIO", "DAVIS_LABEL_VALID_RATIO", "CocoSource",
    "DavisTrainSource", "FirstFrameSource", "SampleSource", "YouTubeVOSTrainSource", "object_sample",
]
