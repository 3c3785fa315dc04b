"""Writes TF1 checkpoints with the original OSMN's variable names and deterministic values.

The names, shapes and dtypes are the original inference graph's
(`tests/data/tf1_variables.json`, one list per variant). Every value is drawn
from NumPy's legacy `RandomState` seeded with the CRC32 of the variable's name
(xor the seed), then scaled so that activations stay of order one through
VGG16, which is what the fidelity fixtures in `tests/data` were computed from:

| variable | value (n is the standard-normal draw) |
| --- | --- |
| integers (`global_step`) | 12345 |
| Adam slots (`.../Adam`, `.../Adam_1`) | 0.01 n |
| `*-up/weights` (fixed bilinear kernels) | 0.1 n: random on purpose, the original overwrites them |
| `fc8`, lite's heads `osmn/Conv2d_out_k` | biases 1 + 0.05 n, weights 0.3 n / sqrt(input channels): scales 1 +- 0.5 |
| MobileNet `depthwise_weights` `[kh, kw, C, 1]` | He over the kernel's window: n sqrt(2 / (kh kw)) |
| masktrack's `seg/conv1/conv1_1/weights` `[3, 3, 4, 64]` | He, times 0.1 for the mask channel and 0.01 for B, G, R |
| last biases: deeplab `fc8_voc12_k`, masktrack `fc8_k`, lite `osmn/score` | -0.75, -0.15, 2.0: logits of both signs |
| other `weights` | He: n sqrt(2 / fan-in); `conv1_1` also x 0.01 for mean-subtracted pixels |
| `upscore-fuse/biases` | -1.5: a mix of foreground and background |
| other `biases` | 0.05 n |
| BatchNorm | gamma 1 + 0.2 n, beta and moving mean 0.2 n, moving variance exp(0.3 n) |

The rules for the `lite`, `deeplab` and `masktrack` variants match none of the
other variants' names, whose values they leave as they were.

Like a real training checkpoint it also holds Adam slots for the trainable
variables of `upscore-fuse` and the spatial modulator, and the Adam beta powers,
which a loader must skip.

Usage: python tests/tf1_checkpoint.py OUT_PREFIX [--variant full] [--seed 0]
(about 660 MB for `full`).
"""
import argparse
import json
import pathlib
import re
import zlib

import numpy as np

MANIFEST = pathlib.Path(__file__).resolve().parent / "data" / "tf1_variables.json"
VARIANTS = ("full", "no_spatial", "no_visual", "mod_early_conv", "lite", "deeplab", "masktrack")
ADAM_STEPS = 100
# The visual modulator's last layers (fc8; lite's four heads) give channel scales of about 1 +- 0.5.
SCALE_HEAD = re.compile(r"(modulator/fc8|/Conv2d_out_\d)/")
# masktrack's mask channel is 0..1 (or 0/255 with --use_original_mask), B, G, R of order 100.
MASK_CHANNEL_SCALE = 0.1
# Constant last biases that leave logits of both signs (deeplab and masktrack sum four heads).
LAST_BIASES = ((re.compile(r"seg/fc8_voc12_[1-4]/biases$"), -0.75), (re.compile(r"seg/fc8_[1-4]/biases$"), -0.15),
               (re.compile(r"^osmn/score/biases$"), 2.0))


def variable_value(name, shape, dtype, seed=0):
    """The deterministic value of one variable, as the table in the module docstring says."""
    if dtype.startswith("int"):
        return np.array(12345, dtype=dtype)
    rng = np.random.RandomState((zlib.crc32(name.encode()) ^ seed) & 0x7FFFFFFF)
    n = rng.standard_normal(shape).astype(np.float32)
    leaf = name.rsplit("/", 1)[-1]
    if leaf in ("Adam", "Adam_1"):
        value = 0.01 * n
    elif name.endswith("-up/weights"):
        value = 0.1 * n
    elif SCALE_HEAD.search(name):
        value = 1.0 + 0.05 * n if leaf == "biases" else 0.3 * n / np.sqrt(shape[2])
    elif leaf == "depthwise_weights":
        value = n * np.sqrt(2.0 / (shape[0] * shape[1]))
    elif name.endswith("seg/conv1/conv1_1/weights") and shape[2] == 4:
        channel_scale = np.array([MASK_CHANNEL_SCALE, 0.01, 0.01, 0.01], np.float32)[:, np.newaxis]
        value = n * np.sqrt(2.0 / np.prod(shape[:-1])) * channel_scale
    elif any(pattern.search(name) for pattern, _ in LAST_BIASES):
        value = np.full_like(n, next(bias for pattern, bias in LAST_BIASES if pattern.search(name)))
    elif leaf == "weights":
        pixel_scale = 0.01 if name.endswith("conv1/conv1_1/weights") else 1.0
        value = n * np.sqrt(2.0 / np.prod(shape[:-1])) * pixel_scale
    elif name.endswith("upscore-fuse/biases"):
        value = np.full_like(n, -1.5)
    elif leaf == "biases":
        value = 0.05 * n
    elif leaf == "gamma":
        value = 1.0 + 0.2 * n
    elif leaf in ("beta", "moving_mean"):
        value = 0.2 * n
    elif leaf == "moving_variance":
        value = np.exp(0.3 * n)
    else:
        raise ValueError(f"no value rule for variable {name!r}")
    return np.asarray(value, dtype=dtype)


def checkpoint_values(variant="full", seed=0, manifest=MANIFEST):
    """{name: array} of everything the checkpoint holds, optimizer state included."""
    variables = json.loads(pathlib.Path(manifest).read_text())[variant]
    values = {v["name"]: variable_value(v["name"], v["shape"], v["dtype"], seed) for v in variables}
    for v in variables:
        if v["trainable"] and ("upscore-fuse" in v["name"] or "modulator_sp" in v["name"]):
            for slot in ("Adam", "Adam_1"):
                name = f"{v['name']}/{slot}"
                values[name] = variable_value(name, v["shape"], "float32", seed)
    values["beta1_power"] = np.array(0.9**ADAM_STEPS, np.float32)
    values["beta2_power"] = np.array(0.999**ADAM_STEPS, np.float32)
    return values


def write_tf1_checkpoint(prefix, variant="full", seed=0):
    """Writes `prefix.index` and `prefix.data-00000-of-00001` as a TF1 `Saver` would; returns the prefix."""
    import tensorflow as tf

    values = checkpoint_values(variant, seed)
    names = sorted(values)
    pathlib.Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(values[name]) for name in names])
    return str(prefix)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("prefix", help="output checkpoint prefix, e.g. /tmp/osmn/osmn.ckpt")
    parser.add_argument("--variant", default="full", choices=VARIANTS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print("wrote", write_tf1_checkpoint(args.prefix, args.variant, args.seed))


if __name__ == "__main__":
    main()
