"""Video object segmentation metrics: DAVIS J & F and the original OSMN mIoU.

DAVIS benchmark (as the official DAVIS 2017 evaluation package computes it):

* J, region similarity: the intersection over union of the predicted and the
  ground-truth mask of one object; two empty masks give 1.
* F, boundary accuracy: both masks are reduced to one-pixel boundary maps
  (`seg2bmap`); a boundary pixel is matched when a boundary pixel of the other
  map lies within a disk of radius `ceil(0.008 * image diagonal)` (squared
  distance <= radius squared); precision is the matched fraction of the
  predicted boundary, recall that of the ground-truth boundary, F their
  harmonic mean.
* Per object, over frames 1..T-2 (the first and the last frame are left out):
  mean, recall (fraction of frames > 0.5) and decay (mean of the first minus
  mean of the last of four bins, `db_statistics`). Global numbers are the mean
  over all objects of all sequences; J&F-Mean is the mean of J-Mean and F-Mean.

OSMN's own "mIoU" (paper Tables 1 and 3): per sequence (2016) or object (2017)
the mean IoU over frames 1..T-2, with predictions resized (nearest) to the
ground truth's size; then the mean over sequences/objects.

Differences from the official package, all for inputs it cannot handle: a
missing result frame raises `FileNotFoundError` naming the file (the official
script prints a message and exits with status 0); a result whose largest id
is below the number of objects counts the absent objects as empty masks (the
official script exits); a result id above it raises `ValueError`.
"""
import csv
import dataclasses
import io
import math
import pathlib
import warnings

import numpy as np
from PIL import Image

from osmn_tf.davis import DavisDataset, read_mask, write_mask
from osmn_tf.outputs import atomic_output, replaced_folder

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
PER_SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")
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


# ----------------------------------------------------------------------------
# Folder evaluation
# ----------------------------------------------------------------------------
@dataclasses.dataclass
class DavisResults:
    """J & F evaluation of a results folder.

    Attributes:
        per_object: `<sequence>_<object id>` -> {"J-Mean", "J-Recall",
            "J-Decay", "F-Mean", "F-Recall", "F-Decay"}, in evaluation order.
        global_metrics: `GLOBAL_COLUMNS` -> value (means over all objects).
        per_frame_j, per_frame_f: `<sequence>_<object id>` -> the per-frame
            values over frames 1..T-2.
    """
    per_object: dict
    global_metrics: dict
    per_frame_j: dict
    per_frame_f: dict


@dataclasses.dataclass
class MiouResults:
    """OSMN mIoU of a results folder: `per_object` name -> mean IoU, and their `mean`.

    Names are `<sequence>` for DAVIS 2016 and `<sequence>_<object id>` for 2017.
    """
    per_object: dict
    mean: float


def _result_labels(results_dir, sequence, frame_id, year):
    path = pathlib.Path(results_dir) / sequence / f"{frame_id}.png"
    if not path.is_file():
        raise FileNotFoundError(
            f"result frame missing: {path} (results must be indexed PNGs named as the "
            "ground-truth annotations, in one folder per sequence)")
    labels = read_mask(path)
    if year == 2016:
        labels = (labels > 0).astype(np.uint8)
    return labels, path


def _sequences(dataset, sequences):
    if sequences is None:
        return list(dataset.sequences)
    return [sequences] if isinstance(sequences, str) else list(sequences)


def _evaluated_frames(dataset, sequence):
    paths = dataset.annotation_paths(sequence)
    return paths[1:-1]  # the first and the last frame are not evaluated


def evaluate_davis(davis_root, results_dir, split="val", year=2017, sequences=None,
                   decay_uint8_wrap=True, bound_th=BOUND_TH):
    """Evaluates `results_dir/<sequence>/<frame>.png` against a DAVIS root with J & F.

    Args:
        davis_root: the DAVIS folder (see `osmn_tf.davis.DavisDataset`).
        results_dir: one folder per sequence of indexed PNGs named as the
            annotations; frames 1..T-2 must be present.
        split, year: which `ImageSets/<year>/<split>.txt` to evaluate.
        sequences: an optional subset of sequence names (default: the split).
        decay_uint8_wrap: reproduce the official decay for > 256 frames
            (see `db_statistics`).
        bound_th: the boundary tolerance (fraction of the diagonal, or pixels if >= 1).

    Returns:
        `DavisResults`.
    """
    dataset = DavisDataset(davis_root, year=year, split=split)
    if not pathlib.Path(results_dir).is_dir():
        raise FileNotFoundError(f"results folder not found: {results_dir}")
    per_frame_j, per_frame_f, per_object = {}, {}, {}
    for sequence in _sequences(dataset, sequences):
        n_objects = dataset.num_objects(sequence)
        frames = _evaluated_frames(dataset, sequence)
        j_values = np.zeros((n_objects, len(frames)))
        f_values = np.zeros((n_objects, len(frames)))
        for t, gt_path in enumerate(frames):
            gt = dataset.read_annotation(gt_path)
            pred, pred_path = _result_labels(results_dir, sequence, gt_path.stem, dataset.year)
            if pred.shape != gt.shape:
                raise ValueError(f"{pred_path}: size {pred.shape} differs from the annotation "
                                 f"{gt_path} {gt.shape}")
            if pred.max(initial=0) > n_objects:
                raise ValueError(f"{pred_path}: object id {int(pred.max())} but the sequence has "
                                 f"only {n_objects} object(s)")
            for k in range(n_objects):
                gt_k, pred_k = gt == k + 1, pred == k + 1
                j_values[k, t] = region_similarity(gt_k, pred_k)
                f_values[k, t] = boundary_measure(gt_k, pred_k, bound_th)
        for k in range(n_objects):
            name = f"{sequence}_{k + 1}"
            jm, jr, jd = db_statistics(j_values[k], decay_uint8_wrap)
            fm, fr, fd = db_statistics(f_values[k], decay_uint8_wrap)
            per_object[name] = {"J-Mean": jm, "J-Recall": jr, "J-Decay": jd,
                                "F-Mean": fm, "F-Recall": fr, "F-Decay": fd}
            per_frame_j[name], per_frame_f[name] = j_values[k], f_values[k]
    if not per_object:
        raise ValueError("no object to evaluate")

    def mean_of(key):
        return float(np.mean([row[key] for row in per_object.values()]))

    global_metrics = {"J&F-Mean": (mean_of("J-Mean") + mean_of("F-Mean")) / 2}
    for key in GLOBAL_COLUMNS[1:]:
        global_metrics[key] = mean_of(key)
    return DavisResults(per_object, global_metrics, per_frame_j, per_frame_f)


def _resize_nearest(labels, shape):
    if labels.shape == tuple(shape):
        return labels
    image = Image.fromarray(labels.astype(np.uint8))
    return np.array(image.resize((shape[1], shape[0]), Image.NEAREST))


def evaluate_miou(davis_root, results_dir, split="val", year=2017, sequences=None):
    """OSMN's own mIoU of a results folder (see the module docstring).

    Predictions of another size are resized (nearest) to the annotation's.
    Returns `MiouResults`.
    """
    dataset = DavisDataset(davis_root, year=year, split=split)
    if not pathlib.Path(results_dir).is_dir():
        raise FileNotFoundError(f"results folder not found: {results_dir}")
    per_object = {}
    for sequence in _sequences(dataset, sequences):
        n_objects = dataset.num_objects(sequence)
        frames = _evaluated_frames(dataset, sequence)
        ious = np.zeros((n_objects, len(frames)))
        for t, gt_path in enumerate(frames):
            gt = dataset.read_annotation(gt_path)
            pred, _ = _result_labels(results_dir, sequence, gt_path.stem, dataset.year)
            pred = _resize_nearest(pred, gt.shape)
            for k in range(n_objects):
                ious[k, t] = region_similarity(gt == k + 1, pred == k + 1)
        for k in range(n_objects):
            name = sequence if dataset.year == 2016 else f"{sequence}_{k + 1}"
            per_object[name] = float(np.mean(ious[k]))
    if not per_object:
        raise ValueError("no object to evaluate")
    return MiouResults(per_object, float(np.mean(list(per_object.values()))))


# ----------------------------------------------------------------------------
# The copy-the-first-mask baseline
# ----------------------------------------------------------------------------
def copy_first_mask_baseline(masks, measure=region_similarity):
    """The "copy frame 0's mask to every frame" baseline of one sequence: `{object_id: mean score}`.

    `masks` are the sequence's `[H, W]` object ids. Each object of `masks[0]`
    is scored with `measure(gt, pred)` (J by default, or `boundary_measure`)
    between its mask in each frame 1..T-2 (the frames DAVIS scores; frame 1
    alone for two frames) and its first-frame mask, and the scores averaged.
    """
    first = masks[0]
    frames = masks[1:-1] if len(masks) > 2 else masks[1:]
    result = {}
    for object_id in (int(i) for i in np.unique(first) if i != 0):
        reference = first == object_id
        scores = [measure(mask == object_id, reference) for mask in frames]
        result[object_id] = float(np.mean(scores)) if scores else 1.0
    return result


def write_first_mask_baseline(dataset, output_dir):
    """The copy-the-first-mask baseline of a `DavisDataset`, as result folders `evaluate_davis` reads.

    Sequences already written are kept: the baseline of a sequence never changes.
    """
    for sequence in dataset.sequences:
        target = pathlib.Path(output_dir) / sequence
        if target.is_dir():
            continue
        first = dataset.read_annotation(dataset.annotation_paths(sequence)[0])
        with replaced_folder(target) as staging:
            for path in dataset.frame_paths(sequence):
                write_mask(staging / f"{path.stem}.png", first)


# ----------------------------------------------------------------------------
# Tables and CSV files
# ----------------------------------------------------------------------------
def _fmt(value):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else "%.3f" % value


def csv_text(header, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell if isinstance(cell, str) else _fmt(cell) for cell in row])
    return buffer.getvalue()


def write_text(path, text):
    with atomic_output(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def global_rows(results):
    """The global table as (header, rows) for `DavisResults`."""
    return GLOBAL_COLUMNS, [[results.global_metrics[c] for c in GLOBAL_COLUMNS]]


def per_sequence_rows(results):
    """The per-object table as (header, rows) for `DavisResults`."""
    rows = [[name, row["J-Mean"], row["F-Mean"]] for name, row in results.per_object.items()]
    return PER_SEQUENCE_COLUMNS, rows


def write_davis_csvs(results, out_dir, split="val"):
    """Writes `global_results-<split>.csv` and `per-sequence_results-<split>.csv`.

    The format is the official script's: comma-separated, a header line, no
    index column, values with three decimals (empty for NaN). Each file is
    written atomically. Returns the two paths.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    global_path = out_dir / f"global_results-{split}.csv"
    sequence_path = out_dir / f"per-sequence_results-{split}.csv"
    write_text(global_path, csv_text(*global_rows(results)))
    write_text(sequence_path, csv_text(*per_sequence_rows(results)))
    return global_path, sequence_path


def write_miou_csv(results, out_dir, split="val"):
    """Writes `miou_results-<split>.csv`: `Sequence,mIoU` rows, then `all` with the mean."""
    pathlib.Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = pathlib.Path(out_dir) / f"miou_results-{split}.csv"
    rows = [[name, value] for name, value in results.per_object.items()] + [["all", results.mean]]
    write_text(path, csv_text(("Sequence", "mIoU"), rows))
    return path


def format_table(header, rows):
    """A plain right-aligned text table (three decimals) for printing."""
    cells = [list(header)] + [[c if isinstance(c, str) else _fmt(c) or "NaN" for c in row]
                              for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(" ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)
