#!/usr/bin/env python3
"""Request size and client-side time of one frame in each way a client can send it to TF Serving.

    python tools/serving_payloads.py [--frame IMAGE] [--size 854x480] [--repeats 5]

For one frame at --size (the image given, resized; by default the DAVIS
fixture frame of tests/data), prints per way of sending: the REST body size,
the time to build and serialise it (encode) and to parse it back (parse, as
the server must), and the gRPC PredictRequest's size:
JSON float lists (`segment`), JSON uint8 lists (`segment_raw`), b64 PNG and
b64 JPEG (`segment_image`). Median of --repeats runs.
"""
import argparse
import json
import pathlib
import sys
import time

import cli_args

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "tests/data/sequence_solo/davis/JPEGImages/480p/solo/00005.jpg"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frame", default=str(FIXTURE), help="an RGB image (default: a DAVIS fixture frame)")
    parser.add_argument("--size", type=cli_args.size, default="854x480", help="WxH the frame is resized to")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each (default 5)")
    cli_args.add_verbose(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    return args


def median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        function()
        times.append(time.perf_counter() - tick)
    return sorted(times)[len(times) // 2]


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    import numpy as np
    from PIL import Image

    from osmn_tf.data.frames import pil_bilinear, preprocess_frame
    from osmn_tf.serving.client import encode_image, predict_request

    try:
        frame = np.asarray(pil_bilinear(Image.open(args.frame).convert("RGB"), args.size))
    except OSError as e:
        sys.exit(f"error: --frame {args.frame}: {e}")
    ways = {
        "JSON float lists (segment)": ("segment", lambda: {"image": preprocess_frame(frame, args.size)[np.newaxis]}),
        "JSON uint8 lists (segment_raw)": ("segment_raw", lambda: {"frame": frame}),
        "b64 PNG (segment_image)": ("segment_image", lambda: {"frame_bytes": encode_image(frame, "png")}),
        "b64 JPEG q95 (segment_image)": ("segment_image", lambda: {"frame_bytes": encode_image(frame, "jpeg")}),
    }
    try:
        from osmn_tf.serving.grpc_client import predict_request as grpc_request
    except ImportError:
        grpc_request = None
    w, h = args.size
    print(f"one {w}x{h} frame ({args.frame}), median of {args.repeats}")
    print("| request | REST body | encode | parse | gRPC request |")
    print("| --- | --- | --- | --- | --- |")
    for name, (signature, inputs) in ways.items():
        def encode():
            return json.dumps(predict_request(signature, inputs()))

        body = encode()
        encode_s = median_seconds(encode, args.repeats)
        parse_s = median_seconds(lambda: json.loads(body), args.repeats)
        proto = len(grpc_request("osmn", signature, inputs()).SerializeToString()) if grpc_request else None
        proto_text = f"{proto / 2**20:.2f} MiB" if proto is not None else "n/a"
        print(f"| {name} | {len(body) / 2**20:.2f} MiB | {encode_s * 1000:.1f} ms | {parse_s * 1000:.1f} ms "
              f"| {proto_text} |")


if __name__ == "__main__":
    main()
