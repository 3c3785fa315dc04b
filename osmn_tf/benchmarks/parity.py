"""Parity of each precision with float32 on a trained model: J&F-Mean on its validation videos, and mask agreement.

Random weights say little about parity: a trained model's logits sit near
0 on object boundaries only, where a 16-bit rounding can flip a pixel. So
the demo model (`tools/train.py`) segments its own validation videos once
per precision, and every precision's masks are compared with float32's.
"""
import dataclasses
import pathlib

import numpy as np

from osmn_tf.data.davis import DavisDataset, read_mask
from osmn_tf.evaluation import evaluate_davis
from osmn_tf.inference.jobs import segment_davis
from osmn_tf.inference.segmenter import VideoSegmenter

REFERENCE = "float32"


@dataclasses.dataclass
class PrecisionParity:
    """One precision against float32 on a trained model's validation videos.

    Attributes:
        j_and_f: J&F-Mean of this precision's masks.
        j_and_f_difference: `j_and_f` minus float32's.
        mask_agreement: fraction of pixels (all frames after the first) whose object id equals float32's.
    """

    j_and_f: float
    j_and_f_difference: float
    mask_agreement: float


def mask_agreement(results, reference, dataset):
    """Fraction of pixels whose object id agrees between two result folders, over every frame after the first."""
    agreeing = total = 0
    for sequence in dataset.sequences:
        for path in dataset.frame_paths(sequence)[1:]:
            ours = read_mask(pathlib.Path(results) / sequence / f"{path.stem}.png")
            theirs = read_mask(pathlib.Path(reference) / sequence / f"{path.stem}.png")
            agreeing += int(np.count_nonzero(ours == theirs))
            total += ours.size
    return agreeing / total


def trained_parity(model, davis_root, working_size, precisions, output_dir, sequences=None, progress=None,
                   frame_networks=None):
    """Segments `davis_root`'s 2017 `val` split once per precision; returns `{precision: PrecisionParity}`.

    Args:
        model: a trained `OSMN` (e.g. the embedded demo's `model.keras`).
        davis_root: a DAVIS-layout folder with a `val` split (the demo's `data/`).
        working_size: `(W, H)` the model runs at (the demo's: 160x96).
        precisions: names for `VideoSegmenter(precision=...)`; float32 is always included.
        output_dir: masks go to `output_dir/<precision>/<sequence>/`.
        sequences: a subset of the split's sequences (default all).
        frame_networks: `{name: frame_network}` (e.g. an INT8 `Int8FrameNetwork`)
            compared with float32 beside the precisions.
    """
    dataset = DavisDataset(davis_root, year=2017, split="val")
    if sequences is not None:
        unknown = sorted(set(sequences) - set(dataset.sequences))
        if unknown:
            raise ValueError(f"sequences {unknown} are not in {dataset.split_file}")
        dataset.sequences = list(sequences)
    output_dir = pathlib.Path(output_dir)
    scores = {}
    segmenters = {p: (lambda p=p: VideoSegmenter(model, working_size, precision=p))
                  for p in dict.fromkeys((REFERENCE, *precisions))}
    for name, network in (frame_networks or {}).items():
        segmenters[name] = lambda network=network: VideoSegmenter(model, working_size, frame_network=network)
    for name, make in segmenters.items():
        segment_davis(make(), dataset, output_dir / name, overwrite=True, progress=progress)
        scores[name] = evaluate_davis(davis_root, output_dir / name, "val", 2017,
                                      dataset.sequences).global_metrics["J&F-Mean"]
    return {name: PrecisionParity(score, score - scores[REFERENCE],
                                  mask_agreement(output_dir / name, output_dir / REFERENCE, dataset))
            for name, score in scores.items()}
