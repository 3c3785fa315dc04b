"""The original's training objective (SPEC section 7)."""
import tensorflow as tf

from osmn_tf.training.pipeline import model_inputs


def class_balanced_sigmoid_cross_entropy(labels, logits):
    """Class-balanced sigmoid cross-entropy, summed over every pixel of the batch.

    With `y = labels > 0.5`, `P = sum(y)` foreground and `Q = sum(1 - y)`
    background pixels, the per-pixel loss is the numerically stable
    `l = -[x (y - [x >= 0]) - log(1 + exp(x - 2 x [x >= 0]))]`, and the total
    is `Q / (P + Q) * sum(y l) + P / (P + Q) * sum((1 - y) l)`: the rarer class
    weighs more. This is the original's (and OSVOS's) loss, a sum rather than a
    mean, so its scale grows with batch and image size.

    Args:
        labels: `[N, H, W, 1]` ground truth in [0, 1].
        logits: `[N, H, W, 1]` network output.
    Returns:
        a scalar float32.
    """
    foreground, background, num_positive, num_negative = balanced_loss_terms(labels, logits)
    return combine_balanced_terms(foreground, background, num_positive, num_negative)


def balanced_loss_terms(labels, logits):
    """The four sums the class-balanced loss is made of.

    Returns `(sum(y l), sum((1 - y) l), P, Q)`. Under `tf.distribute` each
    replica sums its own shard; adding `P` and `Q` over replicas before
    `combine_balanced_terms` gives exactly the loss of the whole batch.
    """
    logits = tf.cast(logits, tf.float32)
    y = tf.cast(labels > 0.5, tf.float32)
    positive = tf.cast(logits >= 0, tf.float32)
    per_pixel = -(logits * (y - positive) - tf.math.log(1 + tf.exp(logits - 2 * logits * positive)))
    return (tf.reduce_sum(y * per_pixel), tf.reduce_sum((1.0 - y) * per_pixel),
            tf.reduce_sum(y), tf.reduce_sum(1.0 - y))


def combine_balanced_terms(foreground, background, num_positive, num_negative):
    """`Q / (P + Q) * foreground + P / (P + Q) * background`: the rarer class weighs more."""
    total = num_positive + num_negative
    return (num_negative / total) * foreground + (num_positive / total) * background


def weight_decay(model, rate=2e-4):
    """The original's L2 regularisation: `rate * sum(w^2) / 2` over every convolution kernel.

    Kernels only (no biases, no BatchNorm parameters), trainable ones only, as
    TF-slim's `weights_regularizer` on `conv2d` did.
    """
    kernels = [w for w in model.trainable_weights if w.path.endswith("/kernel")]
    if not kernels:
        return tf.constant(0.0)
    return rate * tf.add_n([tf.nn.l2_loss(tf.cast(w, tf.float32)) for w in kernels])


def training_loss(model, batch, decay_rate, num_replicas=1, all_reduce=None):
    """The training objective of SPEC 7 on one batch: `(main loss, weight decay)`.

    Args:
        model: an `OSMN` (called with `training=True`).
        batch: a training batch (`guide_image`, `spatial_guide`, `image`, `label`).
        decay_rate: the L2 rate (2e-4).
        num_replicas, all_reduce: under `tf.distribute`, a function summing a
            list of tensors over replicas; `P` and `Q` are summed with it and
            the decay divided by `num_replicas`, so that the replicas' losses
            add up to the loss of the whole batch.
    """
    logits = model(model_inputs(model, batch), training=True)
    foreground, background, num_positive, num_negative = balanced_loss_terms(batch["label"], logits)
    if all_reduce is not None:
        num_positive, num_negative = all_reduce([num_positive, num_negative])
    main = combine_balanced_terms(foreground, background, num_positive, num_negative)
    return main, weight_decay(model, decay_rate) / num_replicas
