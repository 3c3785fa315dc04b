"""Online fine-tuning (paper Table 3): train a copy of the model on frame 0 of a video before segmenting it."""
import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from osmn_tf.config import input_scale_of
from osmn_tf.utils.precision import copy_model
from osmn_tf.training.losses import training_loss
from osmn_tf.training.samples import FirstFrameSource
from osmn_tf.training.samples.base import scaled_source


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
    """

    steps: int
    learning_rate: float = 1e-5
    weight_decay: float = 2e-4
    seed: int = 0

    def __post_init__(self):
        if int(self.steps) < 1:
            raise ValueError(f"online fine-tuning needs steps >= 1, got {self.steps!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"online fine-tuning needs a positive finite learning rate, got {self.learning_rate!r}")

    def __call__(self, model, frame, first_mask, working_size):
        """Returns a fine-tuned copy of `model`; `model` itself is unchanged."""
        tuned = copy_model(model)
        # At the model's pixel scale, as the frames it segments (lite's 0.00787).
        source = scaled_source(FirstFrameSource(np.asarray(frame), np.asarray(first_mask), working_size,
                                                guide_size=model.config.guide_size), input_scale_of(model.config))
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
