"""masktrack's spatial guides from the mask itself (the release's `--use_original_mask`, SPEC 8.3): the previous
mask dilated at inference, a randomly moved and resized mask in training."""
import numpy as np

from osmn_tf.data.frames import check_mask
from osmn_tf.data.guides import check_rng, mask_bbox

DILATION_RADIUS = 5
"""masktrack's `--use_original_mask`: the previous mask is dilated by a disk of this radius."""


ORIGINAL_MASK_PERTURB_RATIO = 0.2
"""masktrack training with `--use_original_mask`: the mask's centre moves by up to this fraction of its box and its
size changes by up to this fraction (the release's `perturb_mask` defaults)."""


def perturbed_mask(mask, rng, center_ratio=ORIGINAL_MASK_PERTURB_RATIO, size_ratio=ORIGINAL_MASK_PERTURB_RATIO):
    """masktrack's training spatial guide before the dilation: the mask's box moved and resized at random.

    As the release's `perturb_mask`: the object's box (inclusive extreme
    coordinates, size `(xmax - xmin, ymax - ymin)`, centre their integer
    mean) is cut out, resized by one factor `U(1 - size_ratio, 1 + size_ratio)`
    (nearest, rounded size), and pasted with its centre moved by
    `U(-center_ratio, center_ratio)` times the box size per axis (truncated to
    ints); what falls outside the frame is dropped.

    Args:
        mask: array `[H, W]`; nonzero is the object.
        rng: `numpy.random.Generator`: the size factor, then the two centre shifts.

    Returns:
        `float32` `[H, W]` of 0 and 1; all zeros for an empty mask (no draw).
    """
    mask = check_mask(mask) != 0
    height, width = mask.shape
    out = np.zeros((height, width), np.float32)
    if not mask.any():
        return out
    rng = check_rng(rng, "perturbed_mask")
    xmin, ymin, xmax, ymax = mask_bbox(mask)
    box_size = np.array([xmax - xmin, ymax - ymin])
    center = np.array([(xmin + xmax) // 2, (ymin + ymax) // 2])
    crop = mask[ymin:ymax + 1, xmin:xmax + 1]
    factor = rng.uniform(1.0 - size_ratio, 1.0 + size_ratio)
    # OpenCV's nearest resize with fx = fy = factor: rounded size, source index floor(i / factor).
    new_w, new_h = max(1, int(round(crop.shape[1] * factor))), max(1, int(round(crop.shape[0] * factor)))
    rows = np.minimum((np.arange(new_h) / factor).astype(np.int64), crop.shape[0] - 1)
    cols = np.minimum((np.arange(new_w) / factor).astype(np.int64), crop.shape[1] - 1)
    crop = crop[rows][:, cols]
    size = np.array([new_w, new_h])
    half = size // 2
    moved = (rng.uniform(-center_ratio, center_ratio, 2) * box_size + center).astype(np.int64)
    out_size = np.array([width, height])
    out_start = np.maximum(0, moved - half)
    src_start = np.maximum(0, half - moved)
    out_end = np.minimum(out_size, moved + size - half)
    src_end = np.minimum(size, size - (moved + size - half - out_size))
    if np.all(out_end > out_start):
        out[out_start[1]:out_end[1], out_start[0]:out_end[0]] = crop[src_start[1]:src_end[1], src_start[0]:src_end[0]]
    return out


def dilated_mask_guide(mask, radius=DILATION_RADIUS):
    """masktrack's spatial guide with the release's `--use_original_mask` (SPEC 8.3).

    The previous frame's mask dilated by a disk (`(x - r)^2 + (y - r)^2 <= r^2`
    in a `(2r + 1)` square window, nothing outside the frame), times 255:
    values 0 and 255, not mean-subtracted. It replaces the Gaussian as the
    network's 4th input channel.

    Args:
        mask: array `[H, W]` (or `[H, W, 1]`) at the working size; nonzero is foreground.

    Returns:
        `float32` array `[H, W, 1]` of 0 and 255.
    """
    mask = check_mask(mask) != 0
    height, width = mask.shape
    dilated = np.zeros_like(mask)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius:
                continue
            # Every pixel within the disk of a foreground pixel becomes foreground.
            dilated[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] |= \
                mask[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return (dilated.astype(np.float32) * 255)[:, :, np.newaxis]
