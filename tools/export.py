#!/usr/bin/env python3
"""Export OSMN for serving: a SavedModel for TF Serving, and optionally ONNX and LiteRT files.

    python tools/export.py --weights W --output models/osmn/1 [--onnx DIR] [--tflite FILE] [--benchmark]

W is a .keras file or a TF1 checkpoint prefix of the original release. TF Serving
serves `--model_base_path=$PWD/models/osmn` with `--output` as its version 1.
Signatures: encode_guide, segment, serving_default (preprocessed float inputs),
encode_guide_raw, segment_raw (uint8 frames and masks); see docs/serving.md.
"""
import argparse
import os
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help=".keras model or TF1 checkpoint prefix")
    parser.add_argument("--output", required=True, help="SavedModel folder, e.g. models/osmn/1 (must not exist)")
    parser.add_argument("--working-size", default="854x480",
                        help="WxH the segment_raw signature resizes frames to (default 854x480)")
    parser.add_argument("--onnx", help="also write encode_guide.onnx and segment.onnx here (needs tf2onnx)")
    parser.add_argument("--onnx-parts", nargs="+", default=["encode_guide", "segment"],
                        choices=["encode_guide", "segment"],
                        help="which ONNX files (full size: only `segment` converts, see docs/serving.md)")
    parser.add_argument("--tflite", help="also write a LiteRT file (e.g. osmn.tflite) with encode_guide and segment")
    parser.add_argument("--benchmark", action="store_true",
                        help="time `segment` at the working size, N=1, through the SavedModel and the Keras model")
    args = parser.parse_args(argv)
    from osmn_tf.frames import parse_size

    try:
        args.working_size = parse_size(args.working_size)
    except ValueError as e:
        parser.error(f"--working-size: {e}")
    if os.path.exists(args.output) and os.listdir(args.output):
        parser.error(f"--output {args.output} exists and is not empty; TF Serving versions are never overwritten")
    return args


def folder_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def benchmark(model, saved_model_dir, working_size, runs=5):
    """Median seconds per `segment` call (N=1) for the SavedModel and the Keras model, interleaved."""
    import numpy as np
    import tensorflow as tf

    width, height = working_size
    rng = np.random.default_rng(0)
    values = {
        "image": rng.normal(0, 50, (1, height, width, 3)).astype("float32"),
        "spatial_guide": rng.uniform(0, 1, (1, height, width, 1)).astype("float32"),
        "modulation_params": rng.uniform(0.5, 1.5, (1, model.num_modulation_params)).astype("float32"),
    }
    frame_model = model.frame_model()
    names = [t.name for t in frame_model.inputs]
    keras_fn = tf.function(lambda *x: tf.sigmoid(frame_model(list(x), training=False)))
    signature = tf.saved_model.load(saved_model_dir).signatures["segment"]
    calls = {
        "SavedModel segment": lambda: signature(**{n: tf.constant(values[n]) for n in names})["probabilities"].numpy(),
        "Keras frame_model (tf.function)": lambda: keras_fn(*[tf.constant(values[n]) for n in names]).numpy(),
    }
    times = {k: [] for k in calls}
    for call in calls.values():
        call()  # warm-up (tracing)
    for _ in range(runs):
        for name, call in calls.items():
            tick = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - tick)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from osmn_tf import export
    from osmn_tf.checkpoints import CheckpointError, load_model

    try:
        model = load_model(args.weights)
        tick = time.perf_counter()
        export.export_saved_model(model, args.output, working_size=args.working_size)
        print(f"SavedModel: {args.output} ({folder_size(args.output) / 2**20:.1f} MiB, "
              f"{time.perf_counter() - tick:.0f} s); signatures: "
              f"{', '.join(export.signature_names(model))}")
        if args.onnx:
            for path in export.export_onnx(model, args.onnx, args.onnx_parts):
                print(f"onnx: {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
        if args.tflite:
            path = export.export_tflite(args.output, args.tflite)
            print(f"tflite: {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
        if args.benchmark:
            w, h = args.working_size
            for name, seconds in benchmark(model, args.output, args.working_size).items():
                print(f"{name}: {seconds * 1000:.0f} ms per frame ({w}x{h}, N=1, median of 5 after warm-up)")
    except (CheckpointError, FileNotFoundError, ValueError, OSError, ImportError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
