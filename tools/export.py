#!/usr/bin/env python3
"""Export OSMN for serving: a SavedModel for TF Serving, and optionally ONNX and LiteRT files.

    python tools/export.py --weights W --output models/osmn/1 [--server-config] [--onnx DIR] [--tflite FILE]

W is a .keras file or a TF1 checkpoint prefix of the original release, of any base
model (osvos, lite, deeplab, masktrack: the same signatures). TF Serving
serves `--model_base_path=$PWD/models/osmn` with `--output` as its version 1.
Signatures: encode_guide, segment, serving_default (preprocessed float inputs),
encode_guide_raw, segment_raw (uint8 frames and masks), encode_guide_image,
segment_image (JPEG/PNG bytes); see docs/serving.md. Every export holds TF
Serving's warm-up file (assets.extra/tf_serving_warmup_requests).
--server-config also writes models.config and batching_parameters.txt beside
the version folders (models/osmn/); with --batching the warm-up covers only
the signatures TF Serving's batching can run.
The version is written as temp-<version> beside its final name and renamed when
complete (warm-up file included): TF Serving never sees half a version, and the
leftover of a killed export is removed by the next one. A version folder is
never replaced; existing --server-config, --onnx and --tflite files only with
--overwrite.
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
                        help="WxH the segment_raw signature resizes frames to (default 854x480; lite pads it to "
                             "multiples of 32 inside the graph)")
    cli_args.add_base_model(parser, builds=False)
    parser.add_argument("--onnx", help="also write encode_guide.onnx and segment.onnx here (needs tf2onnx)")
    parser.add_argument("--onnx-parts", nargs="+", default=["encode_guide", "segment"],
                        choices=["encode_guide", "segment"],
                        help="which ONNX files (full size: only `segment` converts, see docs/serving.md)")
    parser.add_argument("--tflite", help="also write a LiteRT file (e.g. osmn.tflite) with encode_guide and segment")
    parser.add_argument("--model-name", default="osmn", help="the model's name in TF Serving (default osmn)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="do not write assets.extra/tf_serving_warmup_requests (needs tensorflow-serving-api)")
    parser.add_argument("--batching", action="store_true",
                        help="the server will run with --enable_batching: warm up only the batchable signatures "
                             "(encode_guide, segment, serving_default)")
    parser.add_argument("--server-config", action="store_true",
                        help="write models.config and batching_parameters.txt beside the version folder")
    parser.add_argument("--config-base-path",
                        help="the model's base path as the server sees it, in models.config (default: the "
                             "absolute path of --output's parent; /models/<name> for docker)")
    parser.add_argument("--max-batch-size", type=int, default=8, help="batching_parameters.txt (default 8)")
    parser.add_argument("--benchmark", action="store_true",
                        help="time `segment` at the working size, N=1, through the SavedModel and the Keras model")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing --server-config, --onnx and --tflite files (never a version folder)")
    cli_args.add_verbose(parser)
    args = parser.parse_args(argv)
    from osmn_tf.utils.outputs import OutputError, check_output_folder

    try:
        check_output_folder(args.output)
    except OutputError as e:
        parser.error(str(e))
    if os.path.exists(args.output) and os.listdir(args.output):
        parser.error(f"--output {args.output} exists and is not empty; TF Serving versions are never overwritten")
    version = os.path.basename(os.path.normpath(args.output))
    if args.server_config and not version.isdigit():
        parser.error(f"--server-config: --output {args.output} must end in a version number (e.g. models/osmn/1)")
    if args.max_batch_size < 1:
        parser.error(f"--max-batch-size must be at least 1, got {args.max_batch_size}")
    return args


SERVER_CONFIG_FILES = ("models.config", "batching_parameters.txt")


def model_base(args):
    """The folder holding the version folders (and --server-config's files)."""
    return os.path.dirname(os.path.normpath(args.output))


def check_side_outputs(args):
    """Refuses, before any work, --server-config, --onnx and --tflite files that exist (unless --overwrite)
    or that are the --weights file (even with --overwrite)."""
    from osmn_tf.utils import outputs

    files = []
    if args.server_config:
        files += [("--server-config", os.path.join(model_base(args), name)) for name in SERVER_CONFIG_FILES]
    if args.onnx:
        outputs.check_is_folder(args.onnx, "--onnx")
        files += [("--onnx", os.path.join(args.onnx, f"{part}.onnx")) for part in args.onnx_parts]
    if args.tflite:
        files.append(("--tflite", args.tflite))
    for option, path in files:
        if os.path.exists(path) and os.path.exists(args.weights) and os.path.samefile(path, args.weights):
            raise outputs.OutputError(f"{option} {path}: is the input --weights")
        outputs.check_output_file(path, option, args.overwrite)


def write_server_config(args, model_base):
    from osmn_tf.serving.server_config import BatchingParameters, models_config
    from osmn_tf.utils.atomic import atomic_output

    version = int(os.path.basename(os.path.normpath(args.output)))
    base_path = args.config_base_path or os.path.abspath(model_base)
    sizes = [s for s in (1, 2, 4, 8, 16, 32) if s < args.max_batch_size] + [args.max_batch_size]
    files = {
        "models.config": models_config(args.model_name, base_path, [version], {"stable": version}),
        "batching_parameters.txt": BatchingParameters(max_batch_size=args.max_batch_size,
                                                      allowed_batch_sizes=tuple(sizes)).text(),
    }
    for name, text in files.items():
        path = os.path.join(model_base, name)
        with atomic_output(path, "w") as f:
            f.write(text)
        print(f"{name}: {path}")


def folder_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    from osmn_tf.serving import conversion, latency, signatures, versions
    from osmn_tf.weights.checkpoints import CheckpointError, load_model, saved_config

    try:
        check_side_outputs(args)
        cli_args.check_base_model(args.base_model, saved_config(args.weights), args.weights)
        versions.remove_leftover(args.output, log=print)
        model = load_model(args.weights)
        served = signatures.ServingSignatures(model, args.working_size)
        tick = time.perf_counter()
        with versions.staged_version(args.output, log=print) as staging:
            signatures.export_saved_model(model, staging, working_size=args.working_size)
            size = folder_size(staging)
            if not args.no_warmup:
                from osmn_tf.serving import warmup

                names = set(signatures.BATCHABLE_SIGNATURES) if args.batching else None
                endpoints = {name: inputs for name, (_, inputs) in served.endpoints().items()
                             if names is None or name in names}
                logs = warmup.warmup_logs(endpoints, args.working_size, model.num_modulation_params,
                                          model.config.guide_size, args.model_name, served.scale,
                                          served.network_size)
                path = os.path.relpath(warmup.write_warmup(staging, logs), staging)
                warm = f"warm-up: {os.path.join(args.output, path)} ({len(logs)} requests: {', '.join(endpoints)})"
        print(f"SavedModel: {args.output} ({size / 2**20:.1f} MiB, {time.perf_counter() - tick:.0f} s); "
              f"signatures: {', '.join(signatures.signature_names(model))}")
        if not args.no_warmup:
            print(warm)
        if args.server_config:
            write_server_config(args, model_base(args))
        if args.onnx:
            for path in conversion.export_onnx(model, args.onnx, args.onnx_parts):
                print(f"onnx: {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
        if args.tflite:
            path = conversion.export_tflite(args.output, args.tflite)
            print(f"tflite: {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
        if args.benchmark:
            w, h = served.network_size  # lite's float `segment` takes multiples of 32
            for name, seconds in latency.segment_latency(model, args.output, served.network_size).items():
                print(f"{name}: {seconds * 1000:.0f} ms per frame ({w}x{h}, N=1, median of 5 after warm-up)")
    except (CheckpointError, FileNotFoundError, ValueError, OSError, ImportError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
