"""Speed measurements of OSMN inference, each a ratio taken side by side in one run.

`tools/benchmark.py` runs `run_benchmark` and prints, saves and plots what it
returns. `config` holds `BenchmarkConfig`, `timing` the shared timers and
probes, `measurements` one function per measurement and the targets,
`precisions` each precision side by side with the machine's raw rates,
`parity` each precision's parity on a trained model, `report` the table,
JSON file and chart.
"""
from osmn_tf.benchmarks.config import BenchmarkConfig
from osmn_tf.benchmarks.measurements import TARGETS, run_benchmark, targets
from osmn_tf.benchmarks.report import format_table, plot, write_json

__all__ = ["TARGETS", "BenchmarkConfig", "format_table", "plot", "run_benchmark", "targets", "write_json"]
