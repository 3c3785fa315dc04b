"""The release's YouTube-Objects score (`youtube_eval.py`, paper Table 1 "mIoU").

For each sequence of `all.txt` with two or more labels: the IoU of result and
label on every labelled frame but the first (both thresholded at > 0, the
result resized nearest to the label's size, an empty union counting 1), then
the mean over those frames. The overall score is the mean over sequences;
this module also gives the mean per object class (over its sequences), which
the paper discusses and the release meant to write.
"""
import dataclasses
import pathlib

import numpy as np
from PIL import Image

from osmn_tf.data.youtube_objects import YouTubeObjects, class_of
from osmn_tf.evaluation import csv_text, write_text


@dataclasses.dataclass
class YouTubeObjectsResults:
    """`per_sequence`: `{sequence: mIoU}`; `per_class`: `{class: mIoU}`; `overall`: the mean over sequences."""

    per_sequence: dict
    per_class: dict
    overall: float


def _iou(label, result):
    union = np.logical_or(label, result).sum()
    return 1.0 if union == 0 else float(np.logical_and(label, result).sum()) / union


def evaluate_youtube_objects(root, results_dir, sequences=None):
    """Scores `results_dir/<sequence>/<label name>` against a YouTube-Objects root; a `YouTubeObjectsResults`."""
    dataset = YouTubeObjects(root)
    results_dir = pathlib.Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results folder not found: {results_dir}")
    per_sequence = {}
    for sequence in sequences or dataset.sequences:
        labels = dataset.label_paths(sequence)
        if len(labels) < 2:
            continue
        ious = []
        for label_path in labels[1:]:
            label = dataset.read_label(label_path) > 0
            path = results_dir / sequence / label_path.name
            if not path.is_file():
                raise FileNotFoundError(f"result frame missing: {path}")
            with Image.open(path) as image:
                result = np.asarray(image) > 0
            if result.shape != label.shape:
                resized = Image.fromarray(result.astype(np.uint8)).resize(label.shape[::-1], Image.NEAREST)
                result = np.asarray(resized) > 0
            ious.append(_iou(label, result))
        per_sequence[sequence] = float(np.mean(ious))
    if not per_sequence:
        raise ValueError(f"{root}: no sequence with two or more labels to score")
    classes = sorted({class_of(s) for s in per_sequence})
    per_class = {c: float(np.mean([v for s, v in per_sequence.items() if class_of(s) == c])) for c in classes}
    return YouTubeObjectsResults(per_sequence, per_class, float(np.mean(list(per_sequence.values()))))


def write_youtube_objects_csvs(results, out_dir):
    """Writes `youtube-objects-per-sequence.csv` and `youtube-objects-per-class.csv` (with the overall row)."""
    out_dir = pathlib.Path(out_dir)
    sequences = [[s, class_of(s), f"{v:.6f}"] for s, v in results.per_sequence.items()]
    counts = {c: sum(class_of(s) == c for s in results.per_sequence) for c in results.per_class}
    classes = [[c, f"{v:.6f}", str(counts[c])] for c, v in results.per_class.items()]
    classes.append(["all sequences", f"{results.overall:.6f}", str(len(results.per_sequence))])
    paths = (out_dir / "youtube-objects-per-sequence.csv", out_dir / "youtube-objects-per-class.csv")
    write_text(paths[0], csv_text(("Sequence", "Class", "mIoU"), sequences))
    write_text(paths[1], csv_text(("Class", "mIoU", "Sequences"), classes))
    return paths
