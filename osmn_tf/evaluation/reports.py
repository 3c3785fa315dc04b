"""Evaluation tables: the official DAVIS CSV files, OSMN's mIoU CSV and printed tables."""
import csv
import io
import math
import pathlib

from osmn_tf.utils.atomic import atomic_output

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
PER_SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")



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
