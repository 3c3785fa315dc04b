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

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help=".keras model or TF1 checkpoint prefix")
    parser.add_argument("--output", required=True, help="SavedModel folder, e.g. models/osmn/1 (must not exist)")
    parser.add_argument("--working-size", type=cli_args.size, default="854x480",
                        help="WxH the segment_raw signature resizes frames to (default 854x480)")
    parser.add_argument("--onnx", help="also write encode_guide.onnx and segment.onnx here (needs tf2onnx)")
    parser.add_argument("--onnx-parts", nargs="+", default=["encode_guide", "segment"],
                        choices=["encode_guide", "segment"],
                        help="which ONNX files (full size: only `segment` converts, see docs/serving.md)")
    parser.add_argument("--tflite", help="also write a LiteRT file (e.g. osmn.tflite) with encode_guide and segment")
    parser.add_argument("--benchmark", action="store_true",
                        help="time `segment` at the working size, N=1, through the SavedModel and the Keras model")
    args = parser.parse_args(argv)
    if os.path.exists(args.output) and os.listdir(args.output):
        parser.error(f"--output {args.output} exists and is not empty; TF Serving versions are never overwritten")
    return args


def folder_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from osmn_tf.checkpoints import CheckpointError, load_model
    from osmn_tf.serving import conversion, latency, signatures

    try:
        model = load_model(args.weights)
        tick = time.perf_counter()
        signatures.export_saved_model(model, args.output, working_size=args.working_size)
        print(f"SavedModel: {args.output} ({folder_size(args.output) / 2**20:.1f} MiB, "
              f"{time.perf_counter() - tick:.0f} s); signatures: "
              f"{', '.join(signatures.signature_names(model))}")
        if args.onnx:
            for path in conversion.export_onnx(model, args.onnx, args.onnx_parts):
                print(f"onnx: {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
        if args.tflite:
            path = conversion.export_tflite(args.output, args.tflite)
            print(f"tflite: {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
        if args.benchmark:
            w, h = args.working_size
            for name, seconds in latency.segment_latency(model, args.output, args.working_size).items():
                print(f"{name}: {seconds * 1000:.0f} ms per frame ({w}x{h}, N=1, median of 5 after warm-up)")
    except (CheckpointError, FileNotFoundError, ValueError, OSError, ImportError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
