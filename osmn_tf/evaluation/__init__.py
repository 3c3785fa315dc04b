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
from osmn_tf.evaluation.davis import (DavisResults, MiouResults, copy_first_mask_baseline, evaluate_davis,
                                      evaluate_miou, write_first_mask_baseline)
from osmn_tf.evaluation.metrics import (BOUND_TH, N_DECAY_BINS, boundary_measure, boundary_radius,
                                        db_statistics, mean_iou, region_similarity, seg2bmap)
from osmn_tf.evaluation.reports import (GLOBAL_COLUMNS, PER_SEQUENCE_COLUMNS, csv_text, format_table,
                                        global_rows, per_sequence_rows, write_davis_csvs, write_miou_csv,
                                        write_text)

__all__ = [
    "DavisResults",
    "MiouResults",
    "copy_first_mask_baseline",
    "evaluate_davis",
    "evaluate_miou",
    "write_first_mask_baseline",
    "BOUND_TH",
    "N_DECAY_BINS",
    "boundary_measure",
    "boundary_radius",
    "db_statistics",
    "mean_iou",
    "region_similarity",
    "seg2bmap",
    "GLOBAL_COLUMNS",
    "PER_SEQUENCE_COLUMNS",
    "csv_text",
    "format_table",
    "global_rows",
    "per_sequence_rows",
    "write_davis_csvs",
    "write_miou_csv",
    "write_text",
]
