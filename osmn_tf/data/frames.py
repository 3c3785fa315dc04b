"""Reading, resizing and normalising video frames and masks (SPEC section 1).

Everything here is numpy in, numpy out. Resizing goes through PIL, because the
original resized with PIL and its bilinear filter (which widens its support when
shrinking) is what the released weights saw; another library's "bilinear" gives
different numbers.

Sizes are written `(W, H)`, PIL's order; arrays are `[H, W, ...]`.
"""
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from osmn_tf.config import LITE_STRIDE

MEAN_BGR = (104.0, 117.0, 123.0)
"""Per-channel mean subtracted from every network input, in B, G, R order."""

SCALE = 1.0
"""Factor applied after the mean subtraction (the original's `--scale_value`)."""

WORKING_SIZE = (854, 480)
"""`(W, H)` every frame is resized to at inference (DAVIS 480p)."""


def load_rgb(path):
    """Reads an image file as RGB.

    Grey-level, palette, grey+alpha and RGBA files are converted to RGB (alpha is
    dropped, not composited, as the original did).

    Args:
        path: a path-like to any image file PIL can read.

    Returns:
        `uint8` array `[H, W, 3]`.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not an image PIL can decode.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_rgb: no image file at {path!r}")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"load_rgb: cannot read {path!r} as an image: {error}") from error


def parse_size(text):
    """`"854x480"` -> `(854, 480)`, `"96"` -> `(96, 96)`: a `(W, H)` size as command lines write it."""
    parts = str(text).strip().lower().split("x")
    try:
        width, height = (int(v) for v in (parts * 2 if len(parts) == 1 else parts))
    except ValueError:
        width = height = 0
    if width < 1 or height < 1:
        raise ValueError(f"expected WxH or one side for a square, positive integers (e.g. 854x480 or 96), got {text!r}")
    return width, height


def check_size(size, name="size"):
    """`size` as a `(W, H)` tuple of positive ints, or a ValueError naming it."""
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (W, H) pair of ints, got {size!r}") from None
    if width <= 0 or height <= 0 or (width, height) != tuple(size):
        raise ValueError(f"{name} must be a (W, H) pair of positive ints, got {size!r}")
    return width, height


def _check_rgb(rgb, name="rgb"):
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{name} must be an RGB image of shape [H, W, 3], got shape {rgb.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {rgb.shape}")
    return rgb


def check_uint8_rgb(rgb, name="rgb"):
    rgb = _check_rgb(rgb, name)
    if rgb.dtype != np.uint8:
        # PIL's resampling works on 8-bit images; silently rounding floats would
        # hide a caller that already normalised the frame.
        raise TypeError(f"{name} must be uint8 (0..255), got dtype {rgb.dtype}")
    return rgb


def check_mask(mask, name="mask"):
    """A 2-D view of `mask`; `[H, W, 1]` is accepted (the network's output layout)."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2:
        raise ValueError(f"{name} must have shape [H, W] or [H, W, 1], got shape {mask.shape}")
    if mask.shape[0] == 0 or mask.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {mask.shape}")
    if not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == np.bool_
            or np.issubdtype(mask.dtype, np.floating)):
        raise TypeError(f"{name} must be a boolean or numeric array, got dtype {mask.dtype}")
    return mask


def pil_bilinear(image, size):
    """`image` (a PIL image) resized to `size` `(W, H)` with PIL's bilinear filter, as Pillow 13 resizes it.

    PIL resizes in two passes, one per axis, and rounds to the image's type in
    between, so the order of the passes shows in the last grey level. Pillow 13
    runs the vertical pass first when the height shrinks by more than twice as
    many pixels as the width does, older Pillows always the horizontal one
    first (measured on 1,779 random sizes in 8-bit, RGB and float modes: no
    exception). The original's numbers (SPEC) are Pillow 13's; running the
    passes one at a time in its order gives them on any Pillow, e.g. beside
    Apache Beam, which pins Pillow < 13.
    """
    width, height = size
    in_width, in_height = image.size
    if in_height > height and 2 * (in_width - width) < in_height - height:
        return image.resize((in_width, height), Image.BILINEAR).resize((width, height), Image.BILINEAR)
    return image.resize((width, in_height), Image.BILINEAR).resize((width, height), Image.BILINEAR)


def resize_frame(rgb, size):
    """Resizes an RGB frame with PIL's bilinear filter (`pil_bilinear`).

    Args:
        rgb: `uint8` array `[H, W, 3]`.
        size: `(W, H)` of the result.

    Returns:
        `uint8` array `[size[1], size[0], 3]`.
    """
    rgb = check_uint8_rgb(rgb)
    width, height = check_size(size)
    return np.asarray(pil_bilinear(Image.fromarray(rgb), (width, height)))


def resize_mask(mask, size):
    """Resizes a mask or label map with PIL's nearest-neighbour filter.

    Nearest neighbour keeps the values (object ids stay object ids).

    Args:
        mask: array `[H, W]` (or `[H, W, 1]`) of bool, integers or floats.
        size: `(W, H)` of the result.

    Returns:
        array `[size[1], size[0]]` of `mask`'s dtype.
    """
    mask = check_mask(mask)
    width, height = check_size(size)
    dtype = mask.dtype
    # PIL has no mode for every numpy dtype: go through one that holds the values
    # exactly. Nearest neighbour only copies pixels, so this changes no value.
    if dtype == np.bool_ or dtype == np.uint8:
        pil_array = mask.astype(np.uint8)
    elif np.issubdtype(dtype, np.integer):
        info = np.iinfo(np.int32)
        if mask.min() < info.min or mask.max() > info.max:
            raise ValueError(f"mask values must fit in int32 to be resized, got range "
                             f"[{mask.min()}, {mask.max()}]")
        pil_array = mask.astype(np.int32)
    else:
        if np.finfo(dtype).bits > 32 and not np.array_equal(mask.astype(np.float32), mask):
            raise ValueError("mask of float64 values that float32 cannot hold cannot be resized")
        pil_array = mask.astype(np.float32)
    resized = np.asarray(Image.fromarray(pil_array).resize((width, height), Image.NEAREST))
    return resized.astype(dtype)


def normalize_frame(rgb, scale=SCALE, mean=MEAN_BGR):
    """The network's input encoding of an RGB frame.

    Channels reversed to BGR, minus `mean` (`MEAN_BGR`), times `scale` (1.0;
    lite's 0.00787: `osmn_tf.config.input_scale_of`).

    Args:
        rgb: array `[H, W, 3]`, RGB, values in 0..255 (any real dtype).
        scale: the pixel scale after the mean is subtracted.
        mean: the B, G, R values subtracted (the release's `--mean_value`;
            a model's `osmn_tf.config.input_mean_of`).

    Returns:
        `float32` array `[H, W, 3]`, BGR.
    """
    rgb = _check_rgb(rgb)
    if not (np.issubdtype(rgb.dtype, np.integer) or np.issubdtype(rgb.dtype, np.floating)):
        raise TypeError(f"rgb must be a numeric array, got dtype {rgb.dtype}")
    # One pass (no float32 copy of the frame first): it runs beside the network on every frame.
    bgr = np.subtract(rgb[:, :, ::-1], np.asarray(mean, dtype=np.float32), dtype=np.float32)
    # The original multiplies in float64 (a Python float times its float64 mean difference), then feeds float32.
    return bgr if scale == 1 else (bgr * np.float64(scale)).astype(np.float32)


def denormalize_frame(image, scale=SCALE, mean=MEAN_BGR):
    """The inverse of `normalize_frame` (for pictures): network encoding `[..., 3]` BGR -> `uint8` RGB."""
    bgr = np.asarray(image, dtype=np.float32) / np.float32(scale) + np.asarray(mean, dtype=np.float32)
    return np.clip(bgr[..., ::-1], 0, 255).round().astype(np.uint8)


def preprocess_frame(rgb, size=WORKING_SIZE, scale=SCALE, mean=MEAN_BGR):
    """A frame as the segmentation network takes it: resized, then normalised.

    Args:
        rgb: `uint8` array `[H, W, 3]`, RGB.
        size: `(W, H)` to resize to (PIL bilinear); `None` keeps the frame's size.
        scale, mean: the pixel encoding (`normalize_frame`).

    Returns:
        `float32` array `[size[1], size[0], 3]`, BGR minus `mean`.
    """
    if size is not None:
        rgb = resize_frame(rgb, size)
    return normalize_frame(rgb, scale, mean)


def padded_size(working_size, stride=LITE_STRIDE):
    """`(W, H)` rounded up to multiples of `stride`: what lite's network sees with `pad`."""
    width, height = working_size
    return -(-width // stride) * stride, -(-height // stride) * stride


def pad_bottom_right(array, size):
    """`array` `[h, w, C]` zero-padded at the bottom and right to `size` `(W, H)` (lite's `pad`)."""
    width, height = size
    if array.shape[:2] == (height, width):
        return array
    return np.pad(array, ((0, height - array.shape[0]), (0, width - array.shape[1]), (0, 0)))
