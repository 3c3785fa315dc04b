"""Online fine-tuning samples: the objects of one annotated frame."""
import numpy as np

from osmn_tf.config import GUIDE_SIZE, check_guide_size
from osmn_tf.data.frames import MEAN_BGR, check_size
from osmn_tf.data.guides import SpatialGuidePerturbation, VisualGuideAugmentation
from osmn_tf.config import check_mean
from osmn_tf.training.samples.base import SampleSource, check_augmentations, check_scales
from osmn_tf.training.samples.coco import object_sample


class FirstFrameSource(SampleSource):
    """Online fine-tuning samples (paper Table 3): the objects of one annotated frame.

    Items are the objects of `first_mask`; each is made as a stage 1 sample
    (`object_sample`: augmented visual guide from the frame, perturbed spatial
    guide from the object's own mask, shared flip) at the working size.

    Args:
        frame: `uint8` RGB `[H, W, 3]`.
        first_mask: `uint8` `[H, W]` object ids (0 = background).
        image_size: `(W, H)` of the samples at scale 1 (the segmenter's working size).
        guide_size: side of the visual guides (the model's `guide_size`).
        scales: one drawn per batch, times `image_size` (the release's
            `--data_aug_scales` of its fine-tuning scripts).
        mean: the B, G, R values subtracted (the model's `input_mean_of`).
        bbox_sup, use_original_mask: as `CocoSource`.
    """

    def __init__(self, frame, first_mask, image_size, visual_augment=VisualGuideAugmentation(),
                 spatial_perturb=SpatialGuidePerturbation(), guide_size=GUIDE_SIZE, scales=(1.0,), mean=MEAN_BGR,
                 bbox_sup=False, use_original_mask=False):
        if frame.shape[:2] != first_mask.shape:
            raise ValueError(f"the first mask is {first_mask.shape} but the frame {frame.shape[:2]}")
        self.frame, self.first_mask = frame, first_mask
        self.object_ids = [int(i) for i in np.unique(first_mask) if i]
        self.image_size = check_size(image_size, "image_size")
        self.scales = check_scales(scales)
        self.mean = check_mean(mean)
        check_augmentations(visual_augment, spatial_perturb)
        self.visual_augment, self.spatial_perturb = visual_augment, spatial_perturb
        self.guide_size = check_guide_size(guide_size, "guide_size")
        self.bbox_sup, self.use_original_mask = bool(bbox_sup), bool(use_original_mask)
        self._num_items = len(self.object_ids)

    def __repr__(self):
        return f"FirstFrameSource({len(self)} objects, image_size={self.image_size})"

    def sample(self, item, rng, size):
        mask = (self.first_mask == self.object_ids[item]).astype(np.uint8)
        return object_sample(self.frame, mask, rng, size, self.visual_augment, self.spatial_perturb,
                             bbox_sup=self.bbox_sup, guide_size=self.guide_size, mean=self.mean,
                             original_mask=self.use_original_mask)
