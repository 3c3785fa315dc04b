#!/usr/bin/env python3
"""Compare the INT8 quantization routes of the per-frame network: parity on a trained model, speed at full size.

    python tools/benchmark_int8.py prepare --work W --weights demo/model.keras --davis demo/data --demo-size 160x96
    python tools/benchmark_int8.py time --work W     # timing only: run it on a quiet machine

`prepare` quantizes every route (LiteRT full-integer, OpenVINO + NNCF, Intel
Neural Compressor TF, ONNX Runtime QDQ) for the trained model (calibrated on
frames of 2 training videos, scored on the validation split: mask agreement
with Keras float32 and J&F-Mean) and for a random-weight full-width model
(calibrated on synthetic frames), and writes them into W. `time` times them
all side by side in one process (one object per frame) and prints the table;
`all` does both. Needs `pip install -e ".[int8-study]"`.
"""
import argparse
import json
import os
import platform
import subprocess
import sys

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=["prepare", "time", "all"])
    parser.add_argument("--work", required=True, help="folder for the quantized models and results")
    parser.add_argument("--weights", help="the trained .keras model for parity (prepare)")
    parser.add_argument("--davis", help="its DAVIS-layout data (train videos calibrate, val is scored)")
    parser.add_argument("--demo-size", type=cli_args.size, default="160x96", help="its working size WxH")
    parser.add_argument("--frame-size", type=cli_args.size, default="854x480", help="timing size WxH")
    parser.add_argument("--width", type=cli_args.width, default=1.0, help="timing model width (default 1.0)")
    parser.add_argument("--routes", nargs="+", default=None, help="routes to study (default: all)")
    parser.add_argument("--repeats", type=cli_args.positive_int, default=5, help="timed repeats (default 5)")
    cli_args.add_verbose(parser)
    args = parser.parse_args(argv)
    if args.phase != "time":
        for option in ("weights", "davis"):
            if getattr(args, option) is None:
                parser.error(f"--{option} is required for {args.phase}")
        try:
            cli_args.check_weights(args.weights)
        except FileNotFoundError as e:
            parser.error(str(e))
        if not os.path.isdir(args.davis):
            parser.error(f"--davis {args.davis}: no such folder")
    elif not os.path.isfile(os.path.join(args.work, "prepared.json")):
        parser.error(f"--work {args.work}: no prepared.json; run the prepare phase first")
    return args


def cpu_model():
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return f"{fields.get('model name', platform.processor())} (family {fields.get('cpu family', '?')} " \
           f"model {fields.get('model', '?')}), {os.cpu_count()} cores"


def commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def format_table(report, seconds):
    keras_seconds = seconds["keras_float32"]
    lines = [f"INT8 routes, per-frame network, {report['speed_size'][0]}x{report['speed_size'][1]}, 1 object, "
             f"width {report['speed_width']}; {report.get('cpu') or cpu_model()}; commit {report.get('commit') or commit()}",
             f"keras float32: {keras_seconds:.3f} s/frame ({1 / keras_seconds:.2f} frames/s); demo model float32 J&F-Mean "
             f"{report['demo_keras_float32']['J&F-Mean']:.4f}",
             f"{'route':<28} {'f32 s':>7} {'int8 s':>7} {'int8 fps':>8} {'vs keras':>8} {'vs own f32':>10} "
             f"{'agree int8':>10} {'dJ&F int8':>9} {'agree f32':>9}"]
    for route, entry in report["routes"].items():
        if "error" in entry:
            lines.append(f"{route:<28} FAILED: {entry['error']['type']}: {entry['error']['message'][:300]}")
            continue
        f32, int8 = seconds.get(f"{route}_float32"), seconds.get(f"{route}_int8")
        if f32 is None or int8 is None:
            continue
        lines.append(f"{route:<28} {f32:7.3f} {int8:7.3f} {1 / int8:8.2f} {keras_seconds / int8:7.2f}x {f32 / int8:9.2f}x "
                     f"{entry['int8_mask_agreement']:10.5f} {entry['int8_J&F_difference']:+9.4f} "
                     f"{entry['float32_mask_agreement']:9.5f}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    from osmn_tf.benchmarks import int8
    from osmn_tf.quantization.routes import ROUTES
    from osmn_tf.utils.atomic import atomic_output

    routes = args.routes or list(ROUTES)
    unknown = sorted(set(routes) - set(ROUTES))
    if unknown:
        sys.exit(f"error: --routes: unknown {unknown}; choose from {list(ROUTES)}")
    log = lambda line: print(line, flush=True)  # noqa: E731
    if args.phase in ("prepare", "all"):
        int8.prepare(args.work, args.weights, args.davis, args.demo_size, routes, args.frame_size, args.width, log=log)
    if args.phase in ("time", "all"):
        seconds = int8.time_routes(args.work, args.repeats, log=log)
        report = {**json.loads(open(os.path.join(args.work, "prepared.json")).read()), "cpu": cpu_model(),
                  "commit": commit()}
        table = format_table(report, seconds)
        print(table)
        with atomic_output(os.path.join(args.work, "int8.json"), "w") as f:
            json.dump({"seconds_per_frame": seconds, **report}, f, indent=2)
        print(f"wrote {os.path.join(args.work, 'int8.json')}")


if __name__ == "__main__":
    main()
