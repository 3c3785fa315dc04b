"""Online fine-tuning (paper Table 3): train a copy of the model on frame 0 of a video before segmenting it."""
import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from osmn_tf.config import input_mean_of
from osmn_tf.data.guides import SpatialGuidePerturbation, VisualGuideAugmentation
from osmn_tf.training.freezing import freeze
from osmn_tf.training.losses import training_loss
from osmn_tf.training.samples import FirstFrameSource
from osmn_tf.training.samples.base import check_scales
from osmn_tf.utils.precision import copy_model


@dataclasses.dataclass(frozen=True)
class OnlineFinetuning:
    """Fine-tunes a copy of the model on a video's first frame and masks (SPEC 7).

    Each step trains the whole model on one sample (batch 1) of one object of
    frame 0, drawn at random, made as in stage 1: augmented visual guide,
    perturbed spatial guide from the object's own mask, shared flip. Pass it
    as `VideoSegmenter(..., adapt=OnlineFinetuning(100))`.

    Attributes:
        steps: optimizer steps (the paper's Table 3: 100).
        learning_rate: Adam's (the release does not fix one; 1e-5 is this port's choice).
        weight_decay: the L2 rate of SPEC 4.4.
        seed: seeds the samples.
        scales: one drawn per step, times the working size (the release's
            `--data_aug_scales` of its fine-tuning scripts: 0.5, 0.8, 1 for
            DAVIS and 0.8, 1, 1.5 for YouTube-VOS; 1 alone by default here).
        visual_augment, spatial_perturb: the samples' guide randomisation
            (the release's shared `--vg_*` and `--sg_*` options; None: none).
        bbox_sup: visual guides are the object's box (`--bbox_sup`).
        use_original_mask: masktrack's spatial guide, the mask moved and
            resized at random, dilated (`--use_original_mask`).
        fix_bn, fix_seg: BatchNorm, or the segmentation network, keep their
            weights (`--fix_bn`, `--fix_seg`: `osmn_tf.training.freezing`).
    """

    steps: int
    learning_rate: float = 1e-5
    weight_decay: float = 2e-4
    seed: int = 0
    scales: tuple = (1.0,)
    visual_augment: VisualGuideAugmentation = VisualGuideAugmentation()
    spatial_perturb: SpatialGuidePerturbation = SpatialGuidePerturbation()
    bbox_sup: bool = False
    use_original_mask: bool = False
    fix_bn: bool = False
    fix_seg: bool = False

    def __post_init__(self):
        if int(self.steps) < 1:
            raise ValueError(f"online fine-tuning needs steps >= 1, got {self.steps!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"online fine-tuning needs a positive finite learning rate, got {self.learning_rate!r}")
        object.__setattr__(self, "scales", check_scales(self.scales))

    def __call__(self, model, frame, first_mask, working_size):
        """Returns a fine-tuned copy of `model`; `model` itself is unchanged."""
        if self.use_original_mask and model.config.base_model != "masktrack":
            raise ValueError(f"use_original_mask is masktrack's spatial guide; the model's base_model is "
                             f"{model.config.base_model!r}")
        if self.fix_seg and not (model.config.use_visual_modulator or model.config.use_spatial_modulator):
            raise ValueError("fix_seg trains only the modulators, but the model has neither")
        tuned = copy_model(model)
        freeze(tuned, self.fix_bn, self.fix_seg)
        source = FirstFrameSource(np.asarray(frame), np.asarray(first_mask), working_size,
                                  visual_augment=self.visual_augment, spatial_perturb=self.spatial_perturb,
                                  guide_size=model.config.guide_size, scales=self.scales,
                                  mean=input_mean_of(model.config), bbox_sup=self.bbox_sup,
                                  use_original_mask=self.use_original_mask)
        optimizer = keras.optimizers.Adam(self.learning_rate, epsilon=1e-8)
        variables = tuned.trainable_variables

        @tf.function
        def step(batch):
            with tf.GradientTape() as tape:
                main, decay = training_loss(tuned, batch, self.weight_decay)
                loss = main + decay
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        for index in range(int(self.steps)):
            step({k: tf.constant(v) for k, v in source.batch(index, 1, self.seed).items()})
        return tuned
