#!/usr/bin/env python3
"""Segment videos with OSMN, given the first frame's object masks.

One video (an image folder or a video file):
    python tools/segment.py --weights W --frames DIR_OR_VIDEO --first-mask 00000.png --output OUT [--overlay out.mp4]
A DAVIS split, in the layout the official evaluation reads (OUT/<sequence>/<frame>.png):
    python tools/segment.py --weights W --davis-root DAVIS --year 2017 --split val --output OUT [--save-scores]

W is a .keras file or a TF1 checkpoint prefix of the original release (converted on the fly).
"""
import argparse
import math
import os
import sys


def learning_rate(text):
    """An argparse type: a positive, finite learning rate."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"a learning rate must be a positive finite number, got {text}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help=".keras model or TF1 checkpoint prefix")
    parser.add_argument("--output", required=True, help="folder for the palette PNG masks")
    video = parser.add_argument_group("one video")
    video.add_argument("--frames", help="folder of frames (sorted by name) or a video file")
    video.add_argument("--first-mask", help="PNG of frame 0's object ids (palette or grey-level)")
    video.add_argument("--overlay", help="also write the masks drawn over the frames (.mp4, .gif, ...)")
    video.add_argument("--fps", type=float, help="frame rate of --overlay (default: the video's, or 10)")
    davis = parser.add_argument_group("a DAVIS split")
    davis.add_argument("--davis-root", help="DAVIS folder with JPEGImages/, Annotations/, ImageSets/")
    davis.add_argument("--year", type=int, choices=[2016, 2017], default=2017)
    davis.add_argument("--split", default="val")
    davis.add_argument("--sequences", nargs="+", help="only these sequences of the split")
    parser.add_argument("--save-scores", action="store_true",
                        help="also write each object's probabilities: OUT/[<sequence>/]<object id>/<frame>.npy")
    parser.add_argument("--working-size", default="854x480", help="WxH every frame is resized to (default 854x480)")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument("--online-finetune", type=int, default=0, metavar="N",
                        help="fine-tune a copy of the model on each video's frame 0 for N steps first (paper: 100)")
    parser.add_argument("--finetune-lr", type=learning_rate, default=1e-5, help="Adam learning rate of --online-finetune")
    speed = parser.add_argument_group("speed")
    speed.add_argument("--precision", default="float32", choices=["float32", "mixed_float16", "mixed_bfloat16"],
                       help="compute precision of the per-frame network (mixed: float32 weights, 16-bit compute; "
                            "for GPUs); the visual modulator stays float32")
    speed.add_argument("--xla", action="store_true", help="compile the per-frame network with XLA")
    given = sys.argv[1:] if argv is None else [str(a) for a in argv]
    for index, token in enumerate(given[:-1]):
        # argparse takes "-1e-3" for an option and would answer "expected one argument".
        if token == "--finetune-lr" and given[index + 1].startswith("-"):
            with_number = given[index + 1]
            try:
                float(with_number)
            except ValueError:
                continue
            parser.error(f"argument --finetune-lr: a learning rate must be a positive finite number, got {with_number}")
    args = parser.parse_args(argv)
    if bool(args.davis_root) == bool(args.frames):
        parser.error("give either --frames and --first-mask (one video) or --davis-root (a DAVIS split)")
    if args.frames and not args.first_mask:
        parser.error("--frames needs --first-mask")
    if args.davis_root and (args.first_mask or args.overlay):
        parser.error("--first-mask and --overlay are for one video (--frames), not --davis-root")
    from osmn_tf.frames import parse_size

    try:
        args.working_size = parse_size(args.working_size)
    except ValueError as e:
        parser.error(f"--working-size: {e}")
    if args.online_finetune < 0:
        parser.error(f"--online-finetune must be >= 0, got {args.online_finetune}")
    return args


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out of the way
    from osmn_tf.checkpoints import CheckpointError

    try:
        run(args)
    except (CheckpointError, FileNotFoundError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")


def run(args):
    from tqdm import tqdm

    from osmn_tf import outputs, segment_jobs
    from osmn_tf.checkpoints import load_model
    from osmn_tf.davis import DavisDataset
    from osmn_tf.inference import VideoSegmenter

    # Outputs are checked before any work: a bad one is reported at once, not after the whole video.
    outputs.check_output_folder(args.output, [args.frames, args.first_mask, args.davis_root, args.weights])
    if args.davis_root:
        dataset = DavisDataset(args.davis_root, args.year, args.split)
        if args.sequences:
            unknown = sorted(set(args.sequences) - set(dataset.sequences))
            if unknown:
                raise ValueError(f"--sequences {unknown} are not in {dataset.split_file}")
            dataset.sequences = [s for s in dataset.sequences if s in args.sequences]
    else:
        from osmn_tf.video import open_frames

        if args.overlay:
            outputs.check_output_file(args.overlay, "--overlay", overwrite=True)
            if os.path.exists(args.overlay) and os.path.exists(args.frames) \
                    and os.path.samefile(args.overlay, args.frames):
                raise outputs.OutputError(f"--overlay {args.overlay}: is the input video (--frames)")
        source = open_frames(args.frames)
        first_mask, palette = segment_jobs.read_first_mask(args.first_mask)
        expected = None if source.names is None else [f"{name}.png" for name in source.names]
        if not args.overwrite and outputs.is_complete(args.output, expected, args.save_scores):
            print(f"{args.output} is complete already; skipping it (--overwrite to redo)")
            return

    adapt = None
    if args.online_finetune:
        from osmn_tf.training.finetune import OnlineFinetuning

        adapt = OnlineFinetuning(args.online_finetune, learning_rate=args.finetune_lr)
    segmenter = VideoSegmenter(load_model(args.weights), working_size=args.working_size, adapt=adapt,
                               jit_compile=args.xla, precision=args.precision)
    if args.davis_root:
        bars = {}

        def progress(event, sequence, frames=None):
            if event == "skip":
                bars["sequences"].write(f"{sequence}: complete already, skipped")
                bars["sequences"].update()
            elif event == "start":
                if "frames" in bars:
                    bars["frames"].close()
                bars["frames"] = tqdm(total=frames, desc=sequence, unit="frame", leave=False)
            else:
                bars["frames"].update()
                if bars["frames"].n == bars["frames"].total:
                    bars["sequences"].update()

        bars["sequences"] = tqdm(total=len(dataset.sequences), desc="sequences", unit="seq")
        stats = segment_jobs.segment_davis(segmenter, dataset, args.output, args.save_scores, args.overwrite, progress)
        for bar in bars.values():
            bar.close()
        print(f"{stats.sequences_done} sequences segmented, {stats.sequences_skipped} skipped; "
              f"masks in {args.output}")
    else:
        stats = segment_video(args, segmenter, source, first_mask, palette)
    print(f"{stats.frames} frames at {stats.frames_per_second:.2f} frames/s (end to end, {segmenter.working_size[0]}x"
          f"{segmenter.working_size[1]}); peak memory {segment_jobs.peak_memory_mb():.0f} MiB")


def segment_video(args, segmenter, source, first_mask, palette):
    import contextlib
    import time

    from tqdm import tqdm

    from osmn_tf import segment_jobs
    from osmn_tf.frames import resize_frame
    from osmn_tf.video import animation_writer
    from osmn_tf.visualize import overlay_labels

    total = len(source.names) if source.names is not None else None
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=total, desc=os.path.basename(str(source.path)), unit="frame"))
        append = None
        if args.overlay:
            append = stack.enter_context(animation_writer(args.overlay, args.fps or source.fps or 10.0))

        overlay_size = []

        def on_frame(frame, labels):
            if append is not None:
                picture = overlay_labels(frame, labels, palette)
                # A video holds frames of one size: later frames of another size are fitted to frame 0's.
                if not overlay_size:
                    overlay_size.append((picture.shape[1], picture.shape[0]))
                elif (picture.shape[1], picture.shape[0]) != overlay_size[0]:
                    picture = resize_frame(picture, overlay_size[0])
                append(picture)
            bar.update()

        tick = time.perf_counter()
        frames = segment_jobs.segment_to_folder(
            segmenter, source, source.frame_names(), first_mask, args.output, palette, args.save_scores, on_frame
        )
        seconds = time.perf_counter() - tick
    print(f"wrote {frames} masks to {args.output}" + (f" and the overlay {args.overlay}" if args.overlay else ""))
    return segment_jobs.SegmentationStats(sequences_done=1, frames=frames, seconds=seconds)


if __name__ == "__main__":
    main()
