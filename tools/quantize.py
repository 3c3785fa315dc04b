#!/usr/bin/env python3
"""Quantize OSMN's per-frame network to INT8 (OpenVINO + NNCF), calibrated on the first frames of videos.

One video (a folder of frames or a video file) and its first mask:
    python tools/quantize.py --weights W --frames DIR_OR_VIDEO --first-mask 00000.png --output model.int8
A DAVIS split (the first frames of each sequence, or of --sequences):
    python tools/quantize.py --weights W --davis-root DAVIS --split val --output model.int8
Then segment with it (same --weights and --working-size):
    python tools/segment.py --weights W --int8-model model.int8 ...

The calibration frames are segmented in float32 first; their network inputs
(frame, spatial guide, modulation parameters) set the INT8 ranges.
Every base model quantizes (the base model comes from W); lite's network runs
at the working size padded to multiples of 32, as tools/segment.py runs it.
Needs the int8 extra: pip install -e ".[int8]".
"""
import argparse
import os
import sys

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_args.add_weights(parser)
    cli_args.add_base_model(parser, builds=False)
    cli_args.add_output(parser, "folder for the INT8 network: model.xml, model.bin and osmn_int8.json are written "
                                "(replaced if they exist), other files there are left alone")
    parser.add_argument("--frames", help="one video: a folder of frames or a video file")
    parser.add_argument("--first-mask", help="--frames: PNG of frame 0's object ids")
    davis = cli_args.add_davis(parser, title="or a DAVIS split")
    davis.add_argument("--sequences", nargs="+", help="only these sequences of the split")
    parser.add_argument("--working-size", type=cli_args.size, default=(854, 480),
                        help="WxH the network will run at (default 854x480); segment with the same")
    parser.add_argument("--calibration-frames", type=cli_args.positive_int, default=8,
                        help="frames of each video used for calibration, frame 0 included (default 8)")
    parser.add_argument("--max-videos", type=cli_args.positive_int, default=4,
                        help="--davis-root: calibrate on at most this many sequences (default 4)")
    cli_args.add_verbose(parser)
    args = parser.parse_args(argv)
    if bool(args.frames) == bool(args.davis_root):
        parser.error("give either --frames and --first-mask (one video) or --davis-root (a DAVIS split)")
    if args.frames and not args.first_mask:
        parser.error("--frames needs --first-mask")
    if args.calibration_frames < 2:
        parser.error(f"--calibration-frames must be at least 2 (frame 0 is the annotation), got "
                     f"{args.calibration_frames}")
    try:
        cli_args.check_weights(args.weights)
        cli_args.check_inputs(("--first-mask", args.first_mask, "file"), ("--davis-root", args.davis_root, "folder"))
        if args.frames and not os.path.exists(args.frames):
            raise FileNotFoundError(f"--frames: no such folder or video file: {args.frames}")
    except FileNotFoundError as e:
        parser.error(str(e))
    return args


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    import time

    from osmn_tf.data.frames import padded_size
    from osmn_tf.quantization import MissingExtraError, calibration_samples, check_extra, dataset_videos, quantize
    from osmn_tf.quantization.network import check_network_folder
    from osmn_tf.utils.outputs import OutputError, check_output_folder
    from osmn_tf.weights.checkpoints import CheckpointError, load_model, saved_config

    try:
        check_extra()
        check_output_folder(args.output)  # not `.` or `/`, before any work
        check_network_folder(args.output, "--output")
        cli_args.check_base_model(args.base_model, saved_config(args.weights), args.weights)
        model = load_model(args.weights)
        pad = model.config.base_model == "lite"  # as tools/segment.py runs lite
        network_size = padded_size(args.working_size) if pad else args.working_size
        if args.davis_root:
            from osmn_tf.data.davis import DavisDataset

            dataset = DavisDataset(args.davis_root, args.year, args.split)
            unknown = sorted(set(args.sequences or []) - set(dataset.sequences))
            if unknown:
                raise ValueError(f"--sequences {unknown} are not in {dataset.split_file}")
            sequences = (args.sequences or dataset.sequences)[:args.max_videos]
            videos, count = dataset_videos(dataset, sequences), len(sequences)
        else:
            from osmn_tf.data.davis import read_first_mask
            from osmn_tf.data.video import open_frames

            videos, count = [(open_frames(args.frames), read_first_mask(args.first_mask)[0])], 1
        tick = time.perf_counter()

        def progress(samples, done=[0]):
            done[0] += 1
            elapsed = time.perf_counter() - tick
            print(f"calibration: video {done[0]}/{count}, {samples} samples, {elapsed:.0f} s, "
                  f"ETA {elapsed / done[0] * (count - done[0]):.0f} s (then quantization)", flush=True)

        samples = calibration_samples(model, videos, args.working_size, args.calibration_frames, progress, pad)
        network = quantize(model, samples, network_size)
        network.save(args.output, "--output")
    except (MissingExtraError, CheckpointError, OutputError, FileNotFoundError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    width, height = network_size
    print(f"wrote the INT8 network ({width}x{height}, {len(samples)} calibration samples) to {args.output}")


if __name__ == "__main__":
    main()
