"""A DAVIS results folder scored: J & F as the official DAVIS 2017 package, and OSMN's mIoU."""
import dataclasses
import pathlib

import numpy as np
from PIL import Image

from osmn_tf.data.davis import DavisDataset, read_mask, write_mask
from osmn_tf.evaluation.metrics import BOUND_TH, boundary_measure, db_statistics, region_similarity
from osmn_tf.evaluation.reports import GLOBAL_COLUMNS
from osmn_tf.utils.atomic import replaced_folder


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
        davis_root: the DAVIS folder (see `osmn_tf.data.davis.DavisDataset`).
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
    return davis_results([evaluate_davis_sequence(dataset, results_dir, sequence, decay_uint8_wrap, bound_th)
                          for sequence in _sequences(dataset, sequences)])


def evaluate_davis_sequence(dataset, results_dir, sequence, decay_uint8_wrap=True, bound_th=BOUND_TH):
    """J & F of one sequence's results (`evaluate_davis`' unit of work, a Beam pipeline's element).

    Returns:
        `(per_object, per_frame_j, per_frame_f)`, `DavisResults`' fields for the sequence's objects.
    """
    per_frame_j, per_frame_f, per_object = {}, {}, {}
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
    return per_object, per_frame_j, per_frame_f


def davis_results(sequences):
    """`DavisResults` from `evaluate_davis_sequence`'s results, in evaluation order; global means over all objects."""
    per_object, per_frame_j, per_frame_f = {}, {}, {}
    for objects, j, f in sequences:
        per_object.update(objects)
        per_frame_j.update(j)
        per_frame_f.update(f)
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
