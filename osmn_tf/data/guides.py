"""The two guides OSMN's modulators read (SPEC sections 2 and 3).

* The *visual guide* is the object's appearance: the first frame cropped to the
  object's bounding box, resized to 224 x 224, with the background zeroed. The
  visual modulator turns it into one scale per channel.
* The *spatial guide* is the object's rough location: a 2-D Gaussian fitted to
  the previous frame's mask. The spatial modulator turns it into per-pixel
  biases.

Without augmentation both reproduce the original release exactly, quirks
included (marked "Quirk" below). Training augmentations are options; they draw
from a `numpy.random.Generator` that the caller passes in, so a seed fixes them.
"""
import dataclasses
import math

import numpy as np
from PIL import Image, ImageEnhance

from osmn_tf.config import GUIDE_SIZE
from osmn_tf.data.frames import (MEAN_BGR, SCALE, check_mask, check_uint8_rgb, normalize_frame, pil_bilinear,
                                  resize_mask)

PAD_RATIO = 0.03
"""Margin added on each side of the visual guide's crop at inference, as a fraction of the crop."""

COLOR_AUG_RANGE = (0.8, 1.3)
"""`VisualGuideAugmentation.color_aug`: brightness and contrast factors are drawn from this range."""

MAD_TO_STD = 1.4826
"""Median absolute deviation times this estimates a normal distribution's standard deviation."""

MIN_SPATIAL_SCALE = 5.0
"""Smallest Gaussian scale, in pixels, per axis: tiny objects still get a visible blob."""



@dataclasses.dataclass(frozen=True)
class VisualGuideAugmentation:
    """Random changes to the visual guide in training; the defaults are the release's.

    Attributes:
        crop_ratio: each of the four sides of the crop box moves by a ratio drawn
            from U(pad_ratio - crop_ratio, pad_ratio + crop_ratio) of the box's
            size (negative ratios cut into the object). `--vg_random_crop_ratio`.
        max_rotation: rotation by U(-max_rotation, max_rotation) degrees about
            the centre, counter-clockwise for positive angles, after the resize.
            `--vg_random_rotate_angle`.
        flip_prob: probability of a horizontal flip, after the rotation.
        color_aug: before the rotation, brightness then contrast times factors
            drawn from U(0.8, 1.3) (PIL's `ImageEnhance`). `--vg_color_aug`.
        keep_aspect_ratio: resize the crop to fit the guide's square keeping
            its aspect ratio, centred, zero around (`visual_guide`'s
            `keep_aspect_ratio`; the release's `--vg_keep_aspect_ratio`, which
            its inference then used as well).
    """

    crop_ratio: float = 0.1
    max_rotation: float = 10.0
    flip_prob: float = 0.5
    color_aug: bool = False
    keep_aspect_ratio: bool = False

    def __post_init__(self):
        if not 0 <= self.crop_ratio < 0.5:
            raise ValueError(
                f"VisualGuideAugmentation.crop_ratio must be in [0, 0.5), got {self.crop_ratio!r}")
        if not 0 <= self.max_rotation <= 180:
            raise ValueError(
                f"VisualGuideAugmentation.max_rotation must be in [0, 180], got {self.max_rotation!r}")
        if not 0 <= self.flip_prob <= 1:
            raise ValueError(
                f"VisualGuideAugmentation.flip_prob must be in [0, 1], got {self.flip_prob!r}")


@dataclasses.dataclass(frozen=True)
class SpatialGuidePerturbation:
    """Random changes to the spatial guide in training; the defaults are the release's.

    Per axis and independently, with `s` the unperturbed scale:
    `centre += U(-center_ratio, center_ratio) * s`, then
    `s *= U(1 / (1 + scale_ratio), 1 + scale_ratio)`.

    Attributes:
        center_ratio: `--sg_center_perturb_ratio`.
        scale_ratio: `--sg_std_perturb_ratio`.
    """

    center_ratio: float = 0.2
    scale_ratio: float = 0.4

    def __post_init__(self):
        if not self.center_ratio >= 0:
            raise ValueError(
                f"SpatialGuidePerturbation.center_ratio must be >= 0, got {self.center_ratio!r}")
        if not self.scale_ratio >= 0:
            raise ValueError(
                f"SpatialGuidePerturbation.scale_ratio must be >= 0, got {self.scale_ratio!r}")


def check_rng(rng, option):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator when {option} is given, got {type(rng).__name__}")
    return rng


def mask_bbox(mask):
    """The bounding box of a mask's nonzero pixels.

    Args:
        mask: array `[H, W]` (or `[H, W, 1]`); nonzero is foreground.

    Returns:
        `(xmin, ymin, xmax, ymax)` as ints, the extreme foreground coordinates,
        all inclusive. An empty mask gives `(0, 0, W, H)`: the whole image as a
        PIL crop box (right and bottom exclusive), as the original returned.
    """
    mask = check_mask(mask)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return 0, 0, mask.shape[1], mask.shape[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _rotate_nearest(array, angle):
    """Rotates `[H, W, ...]` by `angle` degrees (counter-clockwise) about its centre; outside is 0.

    Follows OpenCV's `warpAffine(getRotationMatrix2D(centre, angle, 1), INTER_NEAREST)`,
    which the original used: each output pixel takes the input pixel nearest to
    its inverse-rotated position, with the centre at `(W / 2, H / 2)` in pixel
    index coordinates. (Quirk: the original passed the centre and output size
    as (H, W), which only matters for non-square images; the guide is square.)
    """
    height, width = array.shape[:2]
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    cx, cy = width / 2.0, height / 2.0
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    dx, dy = x - cx, y - cy
    src_x = np.floor(cos * dx - sin * dy + cx + 0.5).astype(np.int64)
    src_y = np.floor(sin * dx + cos * dy + cy + 0.5).astype(np.int64)
    inside = (src_x >= 0) & (src_x < width) & (src_y >= 0) & (src_y < height)
    out = np.zeros_like(array)
    out[inside] = array[src_y[inside], src_x[inside]]
    return out


def _fit_keeping_aspect_ratio(image, label, size):
    """`image`, `label` (PIL) resized to fit a `size` square without distortion, centred, zero around."""
    width, height = image.size
    # float32 and truncation, as the release computed the fitted size.
    ratio = np.float32(min(np.float32(size) / np.float32(width), np.float32(size) / np.float32(height)))
    fitted = (max(1, int(np.float32(width) * ratio)), max(1, int(np.float32(height) * ratio)))
    image, label = pil_bilinear(image, fitted), label.resize(fitted, Image.NEAREST)
    left, top = (size - fitted[0]) // 2, (size - fitted[1]) // 2
    box = (-left, -top, size - left, size - top)
    return image.crop(box), label.crop(box)


def visual_guide(frame_rgb, mask, *, pad_ratio=None, augment=None, rng=None, bbox_sup=False,
                 size=GUIDE_SIZE, scale=SCALE, keep_aspect_ratio=None, mean=MEAN_BGR):
    """The visual modulator's input for one object (SPEC section 2).

    Steps: resize `mask` to the frame's size (nearest) if it differs; crop frame
    and mask to the mask's bounding box; widen (or, in training, randomly move)
    the box by `pad_ratio` of its size on each side, zero outside the frame;
    resize to `size` x `size` (frame bilinear, mask nearest); in training, rotate and
    flip; encode as BGR minus the mean (`frames.normalize_frame`); zero every
    pixel outside the resized mask.

    Args:
        frame_rgb: `uint8` array `[H, W, 3]`, RGB.
        mask: array `[h, w]` (or `[h, w, 1]`); nonzero is the object. Any size:
            it is resized to `H x W` first, as the original did.
        pad_ratio: margin on each side as a fraction of the crop; `None` means
            the release's choice, 0.03 at inference and 0 with `augment`.
        augment: `VisualGuideAugmentation` for training, `None` at inference.
        rng: `numpy.random.Generator`, required with `augment`.
        bbox_sup: keep the background inside the box instead of zeroing it (the
            release's `--bbox_sup`, bounding-box supervision).
        size: the guide's side, the model's `guide_size` (224 in the paper).
        scale: the pixel scale after the mean is subtracted (`frames.normalize_frame`),
            applied before the background is zeroed, as the original.
        keep_aspect_ratio: fit the crop into the square without distorting it
            (centred, zero around) instead of stretching it; None: `augment`'s
            `keep_aspect_ratio`, False without `augment`.
        mean: the B, G, R values subtracted (`frames.normalize_frame`).

    Returns:
        `float32` array `[size, size, 3]`, BGR minus `MEAN_BGR` (times `scale`), 0 off the object.
    """
    frame = check_uint8_rgb(frame_rgb, "frame_rgb")
    mask = check_mask(mask, "mask")
    if augment is not None:
        if not isinstance(augment, VisualGuideAugmentation):
            raise TypeError(
                f"augment must be a VisualGuideAugmentation or None, got {type(augment).__name__}")
        rng = check_rng(rng, "augment")
    if pad_ratio is None:
        pad_ratio = PAD_RATIO if augment is None else 0.0
    jitter = augment.crop_ratio if augment is not None else 0.0
    if not (math.isfinite(pad_ratio) and pad_ratio - jitter > -0.5):
        # Below -0.5 opposite sides would cross and the crop would be empty.
        raise ValueError(
            f"pad_ratio must be finite and pad_ratio - crop_ratio > -0.5, got pad_ratio={pad_ratio!r}")

    height, width = frame.shape[:2]
    object_mask = (mask != 0).astype(np.uint8)
    if object_mask.shape != (height, width):
        object_mask = resize_mask(object_mask, (width, height))
    image = Image.fromarray(frame)
    label = Image.fromarray(object_mask)

    # Quirk: the box's xmax/ymax are inclusive coordinates but PIL's crop box is
    # right/bottom exclusive, so the object's last column and row are cut off
    # (and an object one pixel wide or tall becomes an empty crop, hence an
    # all-zero guide).
    box = mask_bbox(object_mask)
    image, label = image.crop(box), label.crop(box)

    crop_w, crop_h = image.size
    if augment is None:
        ratios = (pad_ratio,) * 4
    else:
        ratios = rng.uniform(pad_ratio - jitter, pad_ratio + jitter, 4)
    # int() truncates towards zero, as the original did; PIL fills what lies
    # outside the crop with zeros (black frame, background mask).
    box = (int(-ratios[0] * crop_w), int(-ratios[1] * crop_h),
           crop_w + int(ratios[2] * crop_w), crop_h + int(ratios[3] * crop_h))
    image, label = image.crop(box), label.crop(box)

    if keep_aspect_ratio is None:
        keep_aspect_ratio = augment is not None and augment.keep_aspect_ratio
    if keep_aspect_ratio:
        image, label = _fit_keeping_aspect_ratio(image, label, size)
    else:
        image, label = pil_bilinear(image, (size, size)), label.resize((size, size), Image.NEAREST)

    if augment is not None:
        # Always draw both numbers so that the stream of draws does not depend
        # on the options' values.
        angle = rng.uniform(-augment.max_rotation, augment.max_rotation)
        flip = rng.random() < augment.flip_prob
        if augment.color_aug:
            # Drawn after the others, so that the stream without color_aug is as before.
            brightness, contrast = rng.uniform(*COLOR_AUG_RANGE, 2)
            image = ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(brightness)).enhance(contrast)
    image, label = np.asarray(image), np.asarray(label)

    if augment is not None:
        if augment.max_rotation > 0:
            image, label = _rotate_nearest(image, angle), _rotate_nearest(label, angle)
        if flip:
            image, label = image[:, ::-1], label[:, ::-1]

    guide = normalize_frame(image, scale, mean)
    if not bbox_sup:
        guide[label == 0] = 0.0
    return guide


def spatial_guide_params(mask, *, perturb=None, rng=None):
    """Centre and scale of the spatial guide's Gaussian, per axis.

    Robust statistics of the foreground coordinates: the centre is their median
    and the scale `max(5, 1.4826 * median absolute deviation)`, separately for x
    and y, then perturbed if `perturb` is given.

    Args:
        mask: array `[H, W]` (or `[H, W, 1]`); nonzero is foreground.
        perturb: `SpatialGuidePerturbation` for training, `None` at inference.
        rng: `numpy.random.Generator`, required with `perturb`.

    Returns:
        `(center, scale)`, each a `float64` array `[2]` in `(x, y)` order, or
        `None` for an empty mask.
    """
    mask = check_mask(mask)
    if perturb is not None:
        if not isinstance(perturb, SpatialGuidePerturbation):
            raise TypeError(
                f"perturb must be a SpatialGuidePerturbation or None, got {type(perturb).__name__}")
        rng = check_rng(rng, "perturb")
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    # float32 as in the original; medians of integer coordinates are exact there,
    # but the product with 1.4826 is rounded to float32 before use.
    points = np.stack([xs, ys], axis=1).astype(np.float32)
    center = np.median(points, axis=0)
    mad = np.median(np.abs(points - center), axis=0)
    scale = np.maximum(mad * np.float32(MAD_TO_STD), MIN_SPATIAL_SCALE).astype(np.float64)
    center = center.astype(np.float64)
    if perturb is not None:
        # The centre moves in units of the unperturbed scale, then the scale changes.
        center = center + rng.uniform(-perturb.center_ratio, perturb.center_ratio, 2) * scale
        scale = scale * rng.uniform(1.0 / (1.0 + perturb.scale_ratio), 1.0 + perturb.scale_ratio, 2)
    return center, scale


def spatial_guide(mask, *, perturb=None, rng=None):
    """The spatial modulator's input: a Gaussian blob where the object was (SPEC section 3).

    `G(x, y) = exp(-((x - cx)^2 / (2 sx^2) + (y - cy)^2 / (2 sy^2)))` on the
    pixel grid, with centre and per-axis scale from `spatial_guide_params`.

    Args:
        mask: array `[H, W]` (or `[H, W, 1]`) at the working size; nonzero is
            foreground (the previous frame's mask of this object).
        perturb: `SpatialGuidePerturbation` for training, `None` at inference.
        rng: `numpy.random.Generator`, required with `perturb`.

    Returns:
        `float32` array `[H, W, 1]` in [0, 1]; all zeros for an empty mask.
    """
    mask = check_mask(mask)
    height, width = mask.shape
    params = spatial_guide_params(mask, perturb=perturb, rng=rng)
    if params is None:
        return np.zeros((height, width, 1), dtype=np.float32)
    (cx, cy), (sx, sy) = params
    # float64 as in the original, cast to float32 once at the end. The Gaussian
    # is separable: exp(-(a + b)) = exp(-a) exp(-b), H + W exponentials instead
    # of H x W (the same float32 values but for a rare last-bit rounding).
    gx = np.exp(-((np.arange(width, dtype=np.float64) - cx) ** 2) * (0.5 / (sx * sx)))
    gy = np.exp(-((np.arange(height, dtype=np.float64) - cy) ** 2) * (0.5 / (sy * sy)))
    return np.multiply.outer(gy, gx).astype(np.float32)[:, :, np.newaxis]
