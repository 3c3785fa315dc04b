"""Per-frame and per-object measures: DAVIS J (region similarity) and F (boundary accuracy), OSMN's IoU."""
import math
import warnings

import numpy as np

BOUND_TH = 0.008
N_DECAY_BINS = 4


# ----------------------------------------------------------------------------
# Per-frame measures
# ----------------------------------------------------------------------------
def region_similarity(gt, pred):
    """J: intersection over union of two boolean masks; 1 when both are empty."""
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    union = np.count_nonzero(gt | pred)
    if union == 0:
        return 1.0
    return np.count_nonzero(gt & pred) / union


def mean_iou(probabilities, labels, threshold=0.5):
    """Mean over a batch's samples of J (`region_similarity`) between `probabilities` and `labels`, both thresholded."""
    pred = np.asarray(probabilities) > threshold
    gt = np.asarray(labels) > threshold
    return float(np.mean([region_similarity(g, p) for g, p in zip(gt, pred)]))


def seg2bmap(seg):
    """One-pixel boundary map of a binary mask, as the official `seg2bmap`.

    A pixel is a boundary pixel when it differs from its east, south or
    south-east neighbour. In the last row only the east neighbour counts, in
    the last column only the south one, and the bottom-right pixel is never a
    boundary. (The boundary sits half a pixel towards the origin.)
    """
    seg = np.asarray(seg, dtype=bool)
    if seg.ndim != 2:
        raise ValueError(f"seg2bmap needs a 2-D mask, got shape {seg.shape}")
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = False
    return bmap


def boundary_radius(shape, bound_th=BOUND_TH):
    """The matching radius in pixels: `bound_th` itself when >= 1, else ceil(bound_th * diagonal)."""
    if bound_th >= 1:
        return int(math.ceil(bound_th))
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def _matched(points, target, radius):
    """For each (y, x) in `points`, whether a True pixel of `target` lies within `radius`.

    Equivalent to looking `points` up in `target` dilated by a disk
    (x^2 + y^2 <= r^2): first the distance to the nearest target pixel in the
    same row, then the best of the 2r+1 rows around each point.
    """
    h, w = target.shape
    cols = np.arange(w, dtype=np.int32)
    far = np.int32(w + radius + 1)
    left = np.maximum.accumulate(np.where(target, cols, -far), axis=1)
    right = np.minimum.accumulate(np.where(target, cols, 2 * far)[:, ::-1], axis=1)[:, ::-1]
    row_d2 = np.minimum(np.minimum(cols - left, right - cols), radius + 1) ** 2
    ys, xs = points
    offsets = np.arange(-radius, radius + 1, dtype=np.int32)[:, None]
    rows = ys[None, :] + offsets
    inside = (rows >= 0) & (rows < h)
    d2 = row_d2[np.clip(rows, 0, h - 1), xs[None, :]] + offsets ** 2
    return np.any(inside & (d2 <= radius * radius), axis=0)


def boundary_measure(gt, pred, bound_th=BOUND_TH):
    """F: boundary F-measure of a predicted against a ground-truth binary mask.

    Empty boundaries: both empty give 1; only one empty gives 0.
    """
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    radius = boundary_radius(gt.shape, bound_th)
    # Every boundary pixel lies in the box of both masks grown by one pixel up and
    # left; one more row and column below and right (zero, or the image's own last
    # row/column) makes `seg2bmap` of the crop equal the full map on the crop.
    rows = np.flatnonzero(np.any(gt, axis=1) | np.any(pred, axis=1))
    if rows.size == 0:
        return 1.0  # both masks empty: no boundary in either
    cols = np.flatnonzero(np.any(gt, axis=0) | np.any(pred, axis=0))
    y0, y1 = max(rows[0] - 1, 0), min(rows[-1] + 2, gt.shape[0])
    x0, x1 = max(cols[0] - 1, 0), min(cols[-1] + 2, gt.shape[1])
    gt_b = seg2bmap(gt[y0:y1, x0:x1])
    pred_b = seg2bmap(pred[y0:y1, x0:x1])
    gt_pts = np.nonzero(gt_b)
    pred_pts = np.nonzero(pred_b)
    n_gt, n_pred = gt_pts[0].size, pred_pts[0].size
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0  # precision, recall = (1, 0) or (0, 1)
    precision = np.count_nonzero(_matched(pred_pts, gt_b, radius)) / n_pred
    recall = np.count_nonzero(_matched(gt_pts, pred_b, radius)) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


# ----------------------------------------------------------------------------
# Per-object statistics
# ----------------------------------------------------------------------------
def _decay_bin_ids(n, uint8_wrap):
    ids = (np.round(np.linspace(1, n, N_DECAY_BINS + 1) + 1e-10) - 1).astype(np.int64)
    # The official code casts these to uint8, which wraps modulo 256 (x86) once a
    # sequence has more than 256 evaluated frames. Its slice end `ids[i + 1] + 1`
    # is then computed in int64 (numpy < 1.24, which it requires), so no second wrap.
    return ids % 256 if uint8_wrap else ids


def _decay(values, ids):
    bins = [values[ids[i]: ids[i + 1] + 1] for i in range(N_DECAY_BINS)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return float(np.nanmean(bins[0]) - np.nanmean(bins[-1]))


def db_statistics(per_frame_values, decay_uint8_wrap=True):
    """Mean, recall (fraction > 0.5) and decay of one object's per-frame values.

    Decay: the frames are split into four bins at
    `round(linspace(1, N, 5)) - 1` (neighbouring bins share their edge frame);
    decay is the mean of the first bin minus the mean of the last one.

    `decay_uint8_wrap=True` reproduces the official package, which stores the
    bin edges as uint8 so that they wrap for N > 256 frames, giving a wrong (or
    NaN) decay; a `UserWarning` says when that changes the value.
    `decay_uint8_wrap=False` gives the correct decay.
    """
    values = np.asarray(per_frame_values, dtype=np.float64).reshape(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(values))
        recall = float(np.nanmean(values > 0.5))
    n = values.size
    correct = _decay(values, _decay_bin_ids(n, False))
    if not decay_uint8_wrap or n <= 256:
        return mean, recall, correct
    wrapped = _decay(values, _decay_bin_ids(n, True))
    if not (wrapped == correct or (math.isnan(wrapped) and math.isnan(correct))):
        warnings.warn(
            f"decay over {n} frames: the official DAVIS package's uint8 bin indices wrap past "
            f"255 and give {wrapped:.6g} instead of {correct:.6g}; reporting the official value "
            "(pass decay_uint8_wrap=False / --correct-decay for the correct one)",
            UserWarning, stacklevel=2)
    return mean, recall, wrapped
