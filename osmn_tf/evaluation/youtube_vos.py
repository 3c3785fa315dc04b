"""J and F on a YouTube-VOS-layout split with full ground truth (e.g. held-out `train` videos).

Each object is scored on every annotated frame after its first annotation
(the frame where it was given), J and F per frame as `osmn_tf.evaluation`
computes them for DAVIS, then averaged over those frames. With the list of
classes seen in training, objects split by their `meta.json` category into
seen and unseen, and the challenge's overall score is the mean of J-seen,
F-seen, J-unseen and F-unseen; otherwise the overall score is the mean over
objects of (J + F) / 2.

The ground truth must be dense: every frame from a video's first annotation
on has its annotation. The released `valid` and `test` splits annotate each
object only where it first appears; those are refused (the challenge's server
scores them), as a score over the few annotated frames would mean nothing.
"""
import dataclasses
import pathlib

import numpy as np

from osmn_tf.data.davis import read_mask, void_as_background
from osmn_tf.data.youtube_vos import YouTubeVOS
from osmn_tf.evaluation import BOUND_TH, csv_text, write_text, boundary_measure, region_similarity


@dataclasses.dataclass
class YouTubeVOSResults:
    """`per_object`: `{"<video>_<id>": {"J": ..., "F": ..., "frames": n, "category": ..., "seen": bool or None}}`;
    `overall`: `{"Overall": ..., "J-Mean": ..., "F-Mean": ...}` and, with seen classes,
    `J-seen`, `F-seen`, `J-unseen`, `F-unseen` (NaN for a group without objects)."""

    per_object: dict
    overall: dict


def read_class_list(path):
    """Class names, one a line (blank lines ignored)."""
    path = pathlib.Path(path)
    try:
        names = {line.strip() for line in path.read_text().splitlines() if line.strip()}
    except (OSError, UnicodeDecodeError) as e:
        raise OSError(f"cannot read the class list {path}: {e}") from e
    if not names:
        raise ValueError(f"{path}: the class list names no class")
    return names


def _results_folder(results_dir, video):
    results_dir = pathlib.Path(results_dir)
    base = results_dir / "Annotations" if (results_dir / "Annotations").is_dir() else results_dir
    return base / video


def _labels(path):
    labels, palette = read_mask(path, return_palette=True)
    return np.asarray(void_as_background(labels, palette))


def evaluate_youtube_vos(root, results_dir, split="train", seen_classes=None, bound_th=BOUND_TH):
    """Scores `results_dir/[Annotations/]<video>/<frame>.png` against `root/<split>/Annotations`.

    Args:
        seen_classes: optional set of category names seen in training
            (`read_class_list`); needs `meta.json`.
    Returns:
        `YouTubeVOSResults`.
    """
    dataset = YouTubeVOS(root, split)
    if not pathlib.Path(results_dir).is_dir():
        raise FileNotFoundError(f"results folder not found: {results_dir}")
    categories = dataset.categories() if seen_classes is not None or dataset.meta_file.is_file() else {}
    per_object = {}
    for video in dataset.videos:
        gt_dir = dataset.annotation_dir / video
        gt_paths = sorted(gt_dir.glob("*.png")) if gt_dir.is_dir() else []
        if not gt_paths:
            raise FileNotFoundError(f"{gt_dir}: no ground-truth .png (evaluation needs every frame's)")
        _check_dense(gt_dir, gt_paths, [p.stem for p in dataset.frame_paths(video)])
        scores, start = {}, {}
        for t, gt_path in enumerate(gt_paths):
            gt = _labels(gt_path)
            ids = [int(i) for i in np.unique(gt) if i != 0]
            for object_id in ids:
                start.setdefault(object_id, t)
            scored = [i for i in start if start[i] < t]
            if not scored:
                continue
            pred_path = _results_folder(results_dir, video) / gt_path.name
            if not pred_path.is_file():
                raise FileNotFoundError(f"result frame missing: {pred_path} (results are PNGs named as the "
                                        "annotations, one folder per video)")
            pred = read_mask(pred_path)
            if pred.shape != gt.shape:
                raise ValueError(f"{pred_path}: size {pred.shape} differs from the annotation {gt_path} {gt.shape}")
            for object_id in scored:
                gt_k, pred_k = gt == object_id, pred == object_id
                scores.setdefault(object_id, []).append(
                    (region_similarity(gt_k, pred_k), boundary_measure(gt_k, pred_k, bound_th)))
        for object_id in sorted(scores):
            j, f = np.mean(scores[object_id], axis=0)
            category = categories.get(video, {}).get(object_id)
            per_object[f"{video}_{object_id}"] = {
                "J": float(j), "F": float(f), "frames": len(scores[object_id]), "category": category,
                "seen": None if seen_classes is None else category in seen_classes}
    if not per_object:
        raise ValueError(f"{dataset.annotation_dir}: no object has a frame after its first annotation")
    return YouTubeVOSResults(per_object, _overall(per_object, seen_classes is not None))


def _check_dense(gt_dir, gt_paths, frame_names):
    """Refuses ground truth that skips frames after the first annotated one (the first-appearance-only
    annotations of YouTube-VOS's valid and test splits)."""
    annotated = {p.stem for p in gt_paths}
    start = frame_names.index(gt_paths[0].stem) if gt_paths[0].stem in frame_names else 0
    missing = [name for name in frame_names[start:] if name not in annotated]
    if missing:
        have = len(annotated & set(frame_names))
        raise ValueError(f"{gt_dir}: no ground truth for frame {missing[0]} ({have} of {len(frame_names)} frames "
                         f"have one): annotations only where objects first appear (YouTube-VOS valid and test) "
                         f"cannot be scored; evaluation needs every frame's (e.g. held-out train videos)")


def _overall(per_object, split_seen):
    rows = list(per_object.values())
    overall = {"J-Mean": float(np.mean([r["J"] for r in rows])), "F-Mean": float(np.mean([r["F"] for r in rows]))}
    if not split_seen:
        overall["Overall"] = (overall["J-Mean"] + overall["F-Mean"]) / 2
        return overall
    for group, seen in (("seen", True), ("unseen", False)):
        members = [r for r in rows if r["seen"] is seen]
        for key in ("J", "F"):
            overall[f"{key}-{group}"] = float(np.mean([r[key] for r in members])) if members else float("nan")
    four = [overall[k] for k in ("J-seen", "F-seen", "J-unseen", "F-unseen")]
    overall["Overall"] = float(np.nanmean(four)) if not all(np.isnan(four)) else float("nan")
    return overall


def overall_rows(results):
    header = [k for k in ("Overall", "J-seen", "F-seen", "J-unseen", "F-unseen", "J-Mean", "F-Mean")
              if k in results.overall]
    return header, [[results.overall[k] for k in header]]


def per_object_rows(results):
    rows = [[name, row["J"], row["F"], str(row["frames"]), row["category"] or "",
             "" if row["seen"] is None else ("seen" if row["seen"] else "unseen")]
            for name, row in results.per_object.items()]
    return ("Object", "J-Mean", "F-Mean", "Frames", "Category", "Group"), rows


def write_csvs(results, out_dir, split):
    """Writes `overall_results-<split>.csv` and `per-object_results-<split>.csv`; returns their paths."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / f"overall_results-{split}.csv", out_dir / f"per-object_results-{split}.csv"
    write_text(paths[0], csv_text(*overall_rows(results)))
    write_text(paths[1], csv_text(*per_object_rows(results)))
    return paths
