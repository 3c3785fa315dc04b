"""Numeric precision of a model: float32 (the default) or Keras mixed precision.

Mixed precision keeps the variables in float32 and computes in float16 or
bfloat16, which GPUs with tensor cores run several times faster. The
visual modulator's last layer (`fc8`), the fused logits and the losses stay
float32 (those layers are built with `dtype="float32"`).
"""
import contextlib

import keras

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def check_precision(precision, name="precision"):
    if precision not in PRECISIONS:
        raise ValueError(f"{name} must be one of {PRECISIONS}, got {precision!r}")
    return precision


@contextlib.contextmanager
def dtype_policy(precision):
    """Layers built inside take `precision` as their dtype policy (Keras has only a global setter)."""
    check_precision(precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def copy_model(model, precision=None):
    """A new `model` (same class, from its config) holding `model`'s current weights.

    Built under `precision`, or under the global dtype policy when None. The
    copy shares nothing with `model`, so it can also be built outside the
    distribution strategy `model` lives in.
    """
    if precision is None:
        copy = model.__class__.from_config(model.get_config())
    else:
        with dtype_policy(precision):
            copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy
