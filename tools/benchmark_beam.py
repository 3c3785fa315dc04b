#!/usr/bin/env python3
"""Measure videos per hour on Apache Beam's DirectRunner against the single-process tool, side by side.

    python tools/benchmark_beam.py [--videos 12] [--frames 30] [--size 320x192] [--width 0.25] \\
        [--workers 1 2] [--repeats 1] [--output bench/]

Writes a synthetic DAVIS-layout corpus (`osmn_tf.data.synthetic`) and a
model of `--width` with random weights into a temporary folder, then runs,
interleaved `--repeats` times so that every configuration sees the same
machine: `tools/segment.py --davis-root` (one process, video after video)
and the same command with `--runner DirectRunner --direct_num_workers N
--direct_running_mode multi_processing` for each N of `--workers`. Each run
is a fresh process into an empty output, timed from start to exit (start-up,
TensorFlow's import and the model's load included, as a user waits for
them). It prints videos per hour, the ratio to the single-process tool, the
peak memory per process (the single process's; the largest Beam worker's)
and checks that every run wrote the single-process tool's masks, byte for
byte. Needs pip install -e ".[beam]".
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import cli_args

REPO = pathlib.Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=cli_args.positive_int, default=12, help="sequences in the corpus (12)")
    parser.add_argument("--frames", type=cli_args.positive_int, default=30, help="frames per sequence (30)")
    parser.add_argument("--size", type=cli_args.size, default="320x192", help="WxH of the frames and the working "
                        "size (320x192)")
    parser.add_argument("--width", type=cli_args.width, default=0.25, help="the model's channel multiplier (0.25)")
    parser.add_argument("--workers", type=cli_args.positive_int, nargs="+", default=[1, 2],
                        help="Beam worker processes to try (1 2)")
    parser.add_argument("--repeats", type=cli_args.positive_int, default=1, help="runs of each configuration")
    parser.add_argument("--output", help="folder for beam.json (default: print only)")
    cli_args.add_verbose(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    from osmn_tf.utils.extras import require
    from osmn_tf.utils.precision import cpu_info

    try:
        require("apache_beam", "beam", "tools/benchmark_beam.py")
    except ImportError as e:
        sys.exit(f"error: {e}")
    with tempfile.TemporaryDirectory(prefix="osmn-beam-bench-") as folder:
        folder = pathlib.Path(folder)
        weights, davis = make_corpus(folder, args)
        width, height = args.size
        base = [sys.executable, str(REPO / "tools" / "segment.py"), "--weights", str(weights), "--davis-root",
                str(davis), "--split", "val", "--working-size", f"{width}x{height}"]
        configurations = {"single process": []}
        for n in args.workers:
            configurations[f"Beam, {n} worker{'s' if n > 1 else ''}"] = [
                "--runner", "DirectRunner", "--direct_num_workers", str(n), "--direct_running_mode",
                "multi_processing"]
        runs = {name: [] for name in configurations}
        reference = None
        for repeat in range(args.repeats):
            for name, extra in configurations.items():
                output = folder / f"out-{len(runs[name])}-{name.replace(' ', '_').replace(',', '')}"
                seconds, memory = run(base + ["--output", str(output)] + extra)
                masks = {p.relative_to(output).as_posix(): p.read_bytes() for p in sorted(output.rglob("*.png"))}
                reference = masks if reference is None else reference
                if masks != reference or len(masks) != args.videos * args.frames:
                    sys.exit(f"error: {name} wrote other masks than the single-process tool")
                runs[name].append({"seconds": seconds, "peak_memory_mib": memory})
                print(f"{name}: {seconds:.1f} s, {3600 * args.videos / seconds:.0f} videos/hour, peak memory per "
                      f"process {memory} MiB", flush=True)
    single = min(r["seconds"] for r in runs["single process"])
    rows = {}
    for name, results in runs.items():
        best = min(r["seconds"] for r in results)
        rows[name] = {"seconds": best, "videos_per_hour": 3600 * args.videos / best, "ratio": single / best,
                      "peak_memory_mib": max(r["peak_memory_mib"] for r in results)}
    print(f"\n{args.videos} videos x {args.frames} frames at {width}x{height}, width {args.width}; "
          f"{cpu_info()[0]}, {os.cpu_count()} cores; best of {args.repeats}; masks identical in every run")
    print(f"{'configuration':<22}{'wall s':>8}{'videos/h':>10}{'x single':>10}{'MiB/process':>13}")
    for name, row in rows.items():
        print(f"{name:<22}{row['seconds']:>8.1f}{row['videos_per_hour']:>10.0f}{row['ratio']:>10.2f}"
              f"{row['peak_memory_mib']:>13}")
    if args.output:
        from osmn_tf.utils.atomic import atomic_output

        os.makedirs(args.output, exist_ok=True)
        with atomic_output(os.path.join(args.output, "beam.json"), "w") as handle:
            json.dump({"corpus": {"videos": args.videos, "frames": args.frames, "size": [width, height],
                                  "width": args.width}, "cpu": cpu_info()[0], "cores": os.cpu_count(),
                       "runs": runs, "best": rows}, handle, indent=1)


def make_corpus(folder, args):
    """Writes the synthetic DAVIS split and a random-weight model; returns (weights path, DAVIS root)."""
    from osmn_tf.config import OSMNConfig
    from osmn_tf.data.synthetic import SyntheticConfig, write_davis
    from osmn_tf.models import build_osmn

    write_davis(folder / "davis", SyntheticConfig(image_size=tuple(args.size), num_frames=args.frames), args.videos,
                split="val")
    weights = folder / "model.keras"
    build_osmn(OSMNConfig(width=args.width, guide_size=64)).save(weights)
    return weights, folder / "davis"


def run(command):
    """`(wall seconds, peak memory of one process in MiB)` of `command`, which must succeed."""
    tick = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    seconds = time.perf_counter() - tick
    if result.returncode:
        sys.exit(f"error: {' '.join(command[1:3])} ... failed:\n{result.stderr[-2000:]}")
    found = re.search(r"(?:worker )?peak memory (\d+) MiB", result.stdout)
    return seconds, int(found.group(1)) if found else None


if __name__ == "__main__":
    main()
