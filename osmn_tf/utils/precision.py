"""Numeric precision of a model: float32 (the default) or Keras mixed precision.

Mixed precision keeps the variables in float32 and computes in float16 or
bfloat16, which GPUs with tensor cores run several times faster. The
visual modulator's last layer (`fc8`), the fused logits and the losses stay
float32 (those layers are built with `dtype="float32"`).

On CPUs with bfloat16 instructions (AVX512_BF16, or AMX-BF16) oneDNN runs
bfloat16 convolutions about 2x (AVX512_BF16) to 3-4x (AMX) faster than
float32: `auto` picks `mixed_bfloat16` there (docs/performance.md has the
measured speed and mask agreement), float32 elsewhere.
"""
import contextlib
import functools

import keras

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
AUTO = "auto"
# CPU flags (as /proc/cpuinfo and py-cpuinfo name them) under which oneDNN computes bfloat16 natively.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def check_precision(precision, name="precision", allow_auto=False):
    allowed = PRECISIONS + ((AUTO,) if allow_auto else ())
    if precision not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {precision!r}")
    return precision


@functools.lru_cache(maxsize=1)
def cpu_info():
    """`(brand, flags)` of this machine's CPU: Linux's /proc/cpuinfo, else py-cpuinfo (which takes about a second)."""
    try:
        with open("/proc/cpuinfo") as handle:
            fields = dict(line.split(":", 1) for line in handle.read().split("\n\n")[0].splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        if "flags" in fields:
            return fields.get("model name", "unknown CPU"), frozenset(fields["flags"].split())
    except OSError:
        pass
    import cpuinfo

    info = cpuinfo.get_cpu_info()
    return info.get("brand_raw", "unknown CPU"), frozenset(info.get("flags", ()))


def cpu_bfloat16_flags(flags=None):
    """The bfloat16 instruction sets of the CPU (`flags`: a set of CPU flags; default this machine's)."""
    flags = cpu_info()[1] if flags is None else flags
    return tuple(f for f in BFLOAT16_CPU_FLAGS if f in flags)


def has_gpu():
    """Whether TensorFlow sees a GPU (imported here: the model code itself needs no TensorFlow)."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def auto_precision(flags=None, gpu=None):
    """The precision `auto` stands for: `mixed_bfloat16` on a CPU with bfloat16 instructions, else float32.

    On a GPU (`gpu`; None: `has_gpu()`) it stays float32: its 16-bit speed and parity are not measured here.
    """
    if gpu is None:
        gpu = has_gpu()
    if gpu:
        return "float32"
    return "mixed_bfloat16" if cpu_bfloat16_flags(flags) else "float32"


def resolve_precision(precision, name="precision"):
    """`precision` itself, or for `auto` the one `auto_precision` picks on this machine."""
    check_precision(precision, name, allow_auto=True)
    return auto_precision() if precision == AUTO else precision


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
