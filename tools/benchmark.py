#!/usr/bin/env python3
"""Benchmark OSMN inference: modulation cost, FLOP/s, objects sharing work, I/O overlap, memory, fine-tuning.

    python tools/benchmark.py --output benchmark/          # the full run (full model, 854x480; ~20 min on 2 cores)
    python tools/benchmark.py --quick --output /tmp/bench  # smoke run of every measurement
    python tools/benchmark.py --output benchmark/ --trained-model demo/  # + parity on the trained demo

The base models side by side (network only and end to end per frame, 1 and 3
objects, FLOPs by layer type against those layer types' rates in the same run):
    python tools/benchmark.py --base-model osvos lite --output bench/ [--precisions float32 int8]
writes OUTPUT/base_models.json instead of the full run.

Writes OUTPUT/benchmark.json and OUTPUT/benchmark.png and prints a table.
"""
import argparse
import os
import sys

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_args.add_output(parser, "folder for benchmark.json and benchmark.png")
    parser.add_argument("--quick", action="store_true", help="tiny model and frames: checks that everything runs")
    parser.add_argument("--width", type=cli_args.width, help="model width (default 1.0, the paper's)")
    parser.add_argument("--frame-size", type=cli_args.size, help="WxH (default 854x480)")
    parser.add_argument("--repeats", type=cli_args.positive_int, help="timed repeats per measurement (default 5)")
    parser.add_argument("--stream-frames", type=cli_args.positive_int,
                        help="frames of the memory/retracing stream (default 1000)")
    parser.add_argument("--no-xla", action="store_true", help="skip the XLA timing")
    parser.add_argument("--trained-model", metavar="RUN",
                        help="a tools/train.py run folder (model.keras, train_config.json, data/): each "
                             "precision's J&F-Mean and mask agreement with float32 on its validation videos "
                             "(masks kept in OUTPUT/parity/)")
    compare = parser.add_argument_group("base models side by side")
    compare.add_argument("--base-model", nargs="+", choices=cli_args.BASE_MODELS,
                         help="compare these base models (osvos, lite, deeplab, masktrack) instead of the full run")
    compare.add_argument("--precisions", nargs="+", default=["float32"],
                         choices=["float32", "mixed_bfloat16", "mixed_float16", "int8"],
                         help="--base-model: the precisions timed (default float32; int8 needs the int8 extra)")
    compare.add_argument("--end-to-end-frames", type=cli_args.positive_int,
                         help="--base-model: JPEG frames per end-to-end run (default 6)")
    cli_args.add_verbose(parser)
    args = parser.parse_args(argv)
    if not args.base_model and (args.precisions != ["float32"] or args.end_to_end_frames):
        parser.error("--precisions and --end-to-end-frames are for --base-model")
    if args.base_model and (args.trained_model or args.stream_frames or args.no_xla):
        parser.error("--trained-model, --stream-frames and --no-xla are for the full run, not --base-model")
    return args


def compare_base_models(args):
    """`--base-model`: the base models side by side; writes OUTPUT/base_models.json."""
    import json

    from osmn_tf.benchmarks.base_models import BaseModelBenchmark, format_base_models, measure_base_models
    from osmn_tf.utils.atomic import atomic_output

    changes = {"base_models": tuple(args.base_model), "precisions": tuple(args.precisions), "width": args.width,
               "frame_size": args.frame_size, "repeats": args.repeats, "end_to_end_frames": args.end_to_end_frames}
    changes = {k: v for k, v in changes.items() if v is not None}
    config = BaseModelBenchmark.quick(**changes) if args.quick else BaseModelBenchmark(**changes)
    results = measure_base_models(config, log=lambda line: print(line, flush=True))
    print(format_base_models(results))
    path = os.path.join(args.output, "base_models.json")
    with atomic_output(path, "w") as handle:
        json.dump(results, handle, indent=2)
    print(f"wrote {path}")


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    import dataclasses

    from osmn_tf.benchmarks import BenchmarkConfig, format_table, plot, run_benchmark, write_json
    from osmn_tf.utils.outputs import OutputError, check_is_folder

    config = BenchmarkConfig.quick() if args.quick else BenchmarkConfig()
    changes = {"width": args.width, "frame_size": args.frame_size, "repeats": args.repeats,
               "stream_frames": args.stream_frames, "trained_model": args.trained_model}
    config = dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
    if args.no_xla:
        config = dataclasses.replace(config, xla=False)
    try:
        check_is_folder(args.output)
        os.makedirs(args.output, exist_ok=True)
    except OutputError as e:
        sys.exit(f"error: {e}")
    except OSError as e:
        sys.exit(f"error: --output {args.output}: {e.strerror or e}")
    if args.trained_model:
        run = args.trained_model
        for needed in ("model.keras", "train_config.json", "data"):
            if not os.path.exists(os.path.join(run, needed)):
                sys.exit(f"error: --trained-model {run}: no {needed} there (give a tools/train.py --model-dir "
                         "of a finished run)")
    if args.base_model:
        try:
            compare_base_models(args)
        except ValueError as e:
            sys.exit(f"error: {e}")
        return
    results = run_benchmark(config, log=lambda line: print(line, flush=True),
                            output_dir=os.path.join(args.output, "parity"))
    print(format_table(results))
    write_json(results, os.path.join(args.output, "benchmark.json"))
    plot(results, os.path.join(args.output, "benchmark.png"))
    print(f"wrote {args.output}/benchmark.json and benchmark.png")


if __name__ == "__main__":
    main()
