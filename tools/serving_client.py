#!/usr/bin/env python3
"""Segment a video through TF Serving (REST or gRPC) with an exported OSMN SavedModel.

    python tools/serving_client.py --url http://localhost:8501 --model osmn \\
        --frames FRAMES --first-mask 00000.png --output OUT [--signatures float|raw|png|jpeg]
    python tools/serving_client.py --grpc localhost:8500 ...

Runs the library's video loop (SPEC section 5, as tools/segment.py) with every
network call sent to TF Serving: `encode_guide` once per object on frame 0,
then `segment` on every later frame with each object's spatial guide from its
own previous prediction, and the multi-object merge. By default the client
preprocesses with osmn_tf (exactly the original's numbers); with --raw it sends
uint8 frames and masks to the `_raw` signatures, which preprocess in the
server's graph; --signatures png/jpeg sends the frame as a PNG/JPEG file and
the masks as PNG files to the `_image` signatures (far smaller requests).
Unreachable or overloaded servers (HTTP 503, gRPC UNAVAILABLE) are retried
--retries times. FRAMES is a folder of images (sorted by name) or a video file.
The float signatures make visual guides at the served model's guide size, read
from TF Serving's model metadata (or --guide-size), and encode pixels as the
served model was trained to take them: --base-model lite (scale 0.00787, and
frames padded to multiples of 32 as tools/segment.py pads them), or the model's
--input-mean/--input-scale; the other signatures apply the model's own.
Writes OUT/<frame name>.png palette masks (frame 0: the first mask) and a
completion marker, as tools/segment.py: OUT may hold other files, which are
never touched; a complete OUT is skipped unless --overwrite; OUT may not be
`.`, `/`, or a folder holding FRAMES or the first mask.
"""
import argparse
import sys
import time

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:8501", help="TF Serving's REST address")
    parser.add_argument("--grpc", metavar="HOST:PORT",
                        help="use TF Serving's gRPC API at HOST:PORT (e.g. localhost:8500) instead of --url")
    parser.add_argument("--model", default="osmn", help="model name in TF Serving (default osmn)")
    parser.add_argument("--version", type=int, help="model version (default: the latest)")
    parser.add_argument("--frames", required=True, help="folder of frames, sorted by name, or a video file")
    parser.add_argument("--first-mask", required=True, help="PNG of frame 0's object ids (palette or grey-level)")
    parser.add_argument("--output", required=True, help="folder for the palette PNG masks")
    parser.add_argument("--overwrite", action="store_true",
                        help="segment again into a complete --output (only the masks are replaced)")
    parser.add_argument("--signatures", choices=["float", "raw", "png", "jpeg"], default="float",
                        help="what is sent: preprocessed floats (default), uint8 arrays (_raw), or the frame "
                             "as PNG/JPEG bytes (_image)")
    parser.add_argument("--raw", action="store_true", help="same as --signatures raw")
    parser.add_argument("--retries", type=int, default=3,
                        help="retries of a request while the server is unavailable (default 3)")
    parser.add_argument("--working-size", type=cli_args.size, default="854x480",
                        help="WxH frames are resized to (not with --raw)")
    parser.add_argument("--no-visual", action="store_true", help="the served model has no visual modulator")
    parser.add_argument("--no-spatial", action="store_true", help="the served model has no spatial modulator")
    parser.add_argument("--guide-size", type=guide_size,
                        help="side of the float signatures' visual guides (default: the served model's, from its "
                             "metadata)")
    cli_args.add_base_model(parser, help="--signatures float: the served model's base model, for its default "
                            "pixel encoding and lite's padding (default osvos)")
    parser.add_argument("--input-mean", type=cli_args.finite, nargs=3, metavar=("B", "G", "R"),
                        help="--signatures float: the served model's --input-mean (default 104 117 123)")
    parser.add_argument("--input-scale", type=cli_args.pixel_scale,
                        help="--signatures float: the served model's --input-scale (default: the base model's, "
                             "1.0, lite 0.00787)")
    cli_args.add_verbose(parser)
    args = parser.parse_args(argv)
    if args.raw:
        args.signatures = "raw"
    encoding = [flag for flag, value in (("--base-model", args.base_model), ("--input-mean", args.input_mean),
                                         ("--input-scale", args.input_scale)) if value is not None]
    if encoding and args.signatures != "float":
        parser.error(f"{' and '.join(encoding)}: for --signatures float only (the {args.signatures} signatures "
                     "encode pixels as the served model does)")
    if args.retries < 0:
        parser.error(f"--retries must be 0 or more, got {args.retries}")
    if args.grpc is None:
        try:
            check_rest_url(args.url)
        except ValueError as e:
            parser.error(f"--url {args.url}: {e}")
    if args.grpc is not None:
        host, _, port = args.grpc.rpartition(":")
        if not host or not port.isdigit():
            parser.error(f"--grpc must be HOST:PORT (e.g. localhost:8500), got {args.grpc!r}")
        # gRPC would take the port modulo 65536 and name that one in its errors.
        if not 1 <= int(port) <= 65535:
            parser.error(f"--grpc {args.grpc}: port {int(port)} is not in 1..65535")
    return args


def check_rest_url(url):
    """Raises ValueError unless `url` is an http(s) address: no retries for what no server could answer."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("not an http:// or https:// address of TF Serving's REST API "
                         "(e.g. http://localhost:8501)")


def guide_size(text):
    """argparse type: a guide size, a positive multiple of 32."""
    from osmn_tf.config import check_guide_size

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    try:
        return check_guide_size(value, "guide size")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    from osmn_tf.config import DEFAULT_INPUT_MEAN, DEFAULT_INPUT_SCALE
    from osmn_tf.data.davis import read_first_mask
    from osmn_tf.inference.jobs import segment_to_folder
    from osmn_tf.utils import outputs
    from osmn_tf.serving.client import (RestPredictor, ServingError, ServingVideoSegmenter, TransientServingError,
                                        served_guide_size)
    from osmn_tf.data.video import open_frames

    try:
        # The rules of tools/segment.py, before anything is read or sent.
        outputs.check_output_folder(args.output, [args.frames, args.first_mask])
        first_mask, palette = read_first_mask(args.first_mask)
        source = open_frames(args.frames)
        expected = None if source.names is None else [f"{name}.png" for name in source.names]
        if not args.overwrite and outputs.is_complete(args.output, expected):
            print(f"{args.output} is complete already; skipping it (--overwrite to redo)")
            return
        if args.grpc:
            from osmn_tf.serving.grpc_client import GrpcPredictor

            server = GrpcPredictor(args.grpc, args.model, args.version, retries=args.retries)
        else:
            server = RestPredictor(args.url, args.model, args.version, retries=args.retries)
        size = args.guide_size
        if size is None and args.signatures == "float" and not args.no_visual:
            try:
                signature_inputs = server.signature_inputs()
            except TransientServingError:
                raise  # unreachable: a guide size would not help
            except ServingError as e:
                raise ServingError(f"{e} (the float signatures need the model's guide size: give --guide-size "
                                   f"where the server does not answer metadata requests)") from None
            size = served_guide_size(signature_inputs)
        base_model = args.base_model or "osvos"
        client = ServingVideoSegmenter(
            server.predict, signatures=args.signatures, working_size=args.working_size,
            use_visual_modulator=not args.no_visual, use_spatial_modulator=not args.no_spatial,
            input_mean=args.input_mean or DEFAULT_INPUT_MEAN,
            input_scale=DEFAULT_INPUT_SCALE[base_model] if args.input_scale is None else args.input_scale,
            pad=base_model == "lite", **({"guide_size": size} if size else {}))
        tick = time.perf_counter()
        count = segment_to_folder(client, source, source.frame_names(), first_mask, args.output, palette=palette)
        print(f"{count} frames in {time.perf_counter() - tick:.1f} s through {server.endpoint}; masks in {args.output}")
    except (ServingError, FileNotFoundError, ValueError, OSError, ImportError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
