"""Pretraining the visual modulator to tell objects apart: a stand-in for ImageNet weights.

The release's visual modulator starts from an ImageNet-trained VGG16, whose
fc7 features already differ between objects; fc8 then only has to map them to
scales. Trained from random weights on a CPU budget, the modulator does not
get there (docs/results.md, "The embedded demo and its ablations"). This stage gives it such
features first, without a download: its VGG16 and fc6/fc7, with a linear
classifier on fc7, learn which training object a visual guide shows, from
guides of several frames of each object (instance discrimination). fc8 is
left as it is (zero weights, unit biases), so the modulator still starts as
the identity of the segmentation network.
"""
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from osmn_tf.data.frames import load_rgb
from osmn_tf.data.guides import VisualGuideAugmentation, visual_guide
from osmn_tf.models.lite import LiteVisualModulator
from osmn_tf.models.visual_modulator import VisualModulator


def object_guides(source, views=6, seed=0, augment=VisualGuideAugmentation()):
    """Visual guides of every object of a `DavisTrainSource`, from up to `views` of its valid frames each.

    Returns `(guides, labels, held_out)`: `guides` `float16` `[N, S, S, 3]`
    (S = `source.guide_size`; half precision halves the memory, and the
    guide's values need no more), `labels` `int32` `[N]` numbering the objects
    0..K-1 in the source's order, `held_out` bool `[N]` marking each object's
    last view (objects with one view have none), for a held-out accuracy.
    """
    rng = np.random.default_rng(seed)
    dataset = source.dataset
    guides, labels, held_out = [], [], []
    label = 0
    for sequence in source.sequences:
        frame_paths = dataset.frame_paths(sequence.name)
        annotation_paths = dataset.annotation_paths(sequence.name)
        for object_id in sequence.object_ids:
            valid = source.valid_frames(sequence.name, object_id)
            chosen = sorted(rng.choice(valid, size=min(views, len(valid)), replace=False))
            for i, t in enumerate(chosen):
                mask = dataset.read_annotation(annotation_paths[t]) == object_id
                guides.append(visual_guide(load_rgb(frame_paths[t]), mask, augment=augment, rng=rng,
                                           size=source.guide_size, mean=source.mean).astype(np.float16))
                labels.append(label)
                held_out.append(len(chosen) > 1 and i == len(chosen) - 1)
            label += 1
    if not guides:
        raise ValueError(f"{source!r} has no object to pretrain the visual modulator on")
    return np.stack(guides), np.asarray(labels, np.int32), np.asarray(held_out)


def pretrain_visual_modulator(visual_modulator, guides, labels, held_out, steps, learning_rate=3e-4,
                              batch_size=32, seed=0, progress=True, log=None, log_every=500):
    """Trains `visual_modulator`'s VGG16 and fc6/fc7 to classify `guides` by `labels`; returns the held-out accuracy.

    A linear classifier on fc7 (after its dropout) is trained with Adam on the
    views not `held_out`, in batches drawn uniformly with replacement from a
    generator seeded by `seed`; it is dropped afterwards, and fc8 is not
    touched. Works on the model in place. Shows a progress bar, or without
    one calls `log(line)` every `log_every` steps if `log` is given.
    """
    if not isinstance(visual_modulator, (VisualModulator, LiteVisualModulator)):
        raise TypeError(f"expected a VisualModulator or LiteVisualModulator, got {type(visual_modulator).__name__}")
    features = keras.Model(visual_modulator.input, visual_modulator.get_layer(visual_modulator.FEATURE_LAYER).output)
    channels = features.output.shape[-1]  # fc7 (or lite's pooled MobileNet) is 1 x 1 x channels
    classifier = keras.layers.Dense(int(labels.max()) + 1, name="object_classifier")
    classifier.build((None, channels))
    trained = features.trainable_variables + classifier.trainable_variables
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(trained)

    def logits_of(x, training):
        return classifier(keras.ops.reshape(features(x, training=training), (-1, channels)))

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = logits_of(x, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, trained), trained))
        return loss

    train = np.flatnonzero(~held_out)
    rng = np.random.default_rng(seed)
    bar = tqdm(total=steps, desc="pretrain visual modulator", unit="step", disable=not progress)
    start = time.perf_counter()
    for done in range(1, int(steps) + 1):
        pick = train[rng.integers(len(train), size=batch_size)]
        loss = step(tf.constant(guides[pick], tf.float32), tf.constant(labels[pick]))
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)
        if log is not None and not progress and (done % log_every == 0 or done == steps):
            rate = done / (time.perf_counter() - start)
            log(f"pretrain step {done}/{steps}  loss {float(loss):.3f}  {rate:.1f} steps/s  "
                f"ETA {(steps - done) / rate / 60:.1f} min")
    bar.close()
    test = np.flatnonzero(held_out)
    if test.size == 0:
        return float("nan")
    correct = 0
    for first in range(0, test.size, 256):
        pick = test[first:first + 256]
        logits = logits_of(tf.constant(guides[pick], tf.float32), training=False)
        correct += int(np.sum(np.argmax(keras.ops.convert_to_numpy(logits), axis=-1) == labels[pick]))
    return correct / test.size
