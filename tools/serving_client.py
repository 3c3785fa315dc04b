#!/usr/bin/env python3
"""Segment a video through TF Serving's REST API with an exported OSMN SavedModel.

    python tools/serving_client.py --url http://localhost:8501 --model osmn \
        --frames FRAME_DIR --first-mask 00000.png --output OUT [--raw]

Runs the loop of SPEC section 5 on the client: `encode_guide` once per object on
frame 0, then `segment` on every later frame with each object's spatial guide
from its own previous prediction, and the multi-object merge. By default the
client preprocesses with osmn_tf (exactly the original's numbers); with --raw it
sends uint8 frames and masks to the `_raw` signatures and needs only numpy and
Pillow. Writes OUT/<frame name>.png palette masks (frame 0: the first mask).
"""
import argparse
import os
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:8501", help="TF Serving's REST address")
    parser.add_argument("--model", default="osmn", help="model name in TF Serving (default osmn)")
    parser.add_argument("--version", type=int, help="model version (default: the latest)")
    parser.add_argument("--frames", required=True, help="folder of frames, sorted by name")
    parser.add_argument("--first-mask", required=True, help="PNG of frame 0's object ids (palette or grey-level)")
    parser.add_argument("--output", required=True, help="folder for the palette PNG masks")
    parser.add_argument("--raw", action="store_true", help="use encode_guide_raw/segment_raw (server-side preprocessing)")
    parser.add_argument("--working-size", default="854x480", help="WxH frames are resized to (not with --raw)")
    parser.add_argument("--no-visual", action="store_true", help="the served model has no visual modulator")
    parser.add_argument("--no-spatial", action="store_true", help="the served model has no spatial modulator")
    args = parser.parse_args(argv)
    from osmn_tf.frames import parse_size

    try:
        args.working_size = parse_size(args.working_size)
    except ValueError as e:
        parser.error(f"--working-size: {e}")
    return args


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def read_frames(folder):
    import numpy as np
    from PIL import Image

    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_SUFFIXES))
    if not names:
        raise FileNotFoundError(f"{folder}: no image files")
    for name in names:
        with Image.open(os.path.join(folder, name)) as image:
            yield name, np.asarray(image.convert("RGB"))


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PIL import Image

    from osmn_tf.export import RestPredictor, ServingError, ServingVideoSegmenter
    from osmn_tf.segment_jobs import read_first_mask

    try:
        first_mask, palette = read_first_mask(args.first_mask)
        frames = list(read_frames(args.frames))
        client = ServingVideoSegmenter(
            RestPredictor(args.url, args.model, args.version), raw=args.raw, working_size=args.working_size,
            use_visual_modulator=not args.no_visual, use_spatial_modulator=not args.no_spatial)
        os.makedirs(args.output, exist_ok=True)
        tick = time.perf_counter()
        for (name, _), labels in zip(frames, client.segment((f for _, f in frames), first_mask)):
            image = Image.fromarray(labels)  # mode L; putpalette makes it P with the same indices
            image.putpalette(palette.reshape(-1).tolist() if palette is not None
                             else [c for i in range(256) for c in (i, i, i)])
            image.save(os.path.join(args.output, os.path.splitext(name)[0] + ".png"))
        seconds = time.perf_counter() - tick
        print(f"{len(frames)} frames in {seconds:.1f} s through {client.send.endpoint}; masks in {args.output}")
    except (ServingError, FileNotFoundError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
