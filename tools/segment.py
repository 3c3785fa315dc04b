#!/usr/bin/env python3
"""Segment videos with OSMN, given object masks of the first frame (or of any frames).

One video (an image folder or a video file):
    python tools/segment.py --weights W --frames DIR_OR_VIDEO --first-mask 00000.png --output OUT [--overlay out.mp4]
Live input (a camera, a stream, standard input), segmented as frames arrive; --max-lag drops frames to keep up:
    ffmpeg -i rtsp://cam/stream -f rawvideo -pix_fmt rgb24 -s 854x480 - | \\
        python tools/segment.py --weights W --frames - --frame-size 854x480 --first-mask m.png --output OUT --max-lag 4
Objects that appear later, or corrected masks: PNGs named like the frames (any subset), with or without --first-mask:
    python tools/segment.py --weights W --frames DIR_OR_VIDEO --annotations ANNOTATIONS --output OUT
A DAVIS split, in the layout the official evaluation reads (OUT/<sequence>/<frame>.png):
    python tools/segment.py --weights W --davis-root DAVIS --year 2017 --split val --output OUT [--save-scores]
A corpus on Apache Beam, a video per work item (pip install -e ".[beam]"; docs/scale.md):
    python tools/segment.py --weights W --davis-root DAVIS --output OUT --runner DirectRunner \\
        --direct_num_workers 2 --direct_running_mode multi_processing
A YouTube-VOS split (ROOT/<split>/JPEGImages, sparse Annotations), as a submission (OUT/Annotations/<video>/):
    python tools/segment.py --weights W --youtube-vos-root YTVOS --split valid --output OUT
  with the release's online fine-tuning (one model per object, trained where the object first appears):
    python tools/segment.py --weights W --youtube-vos-root YTVOS --split valid --output OUT --online-finetune 100

W is a .keras file or a TF1 checkpoint prefix of the original release (converted on the fly).
"""
import argparse
import math
import sys

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_args.add_weights(parser)
    cli_args.add_base_model(parser, builds=False)
    cli_args.add_output(parser, "folder for the palette PNG masks")
    video = parser.add_argument_group("one video")
    video.add_argument("--frames", help="folder of frames (sorted by name), a video file, or live: - (standard "
                       "input), a stream URL (rtsp://...), a camera (/dev/video0) or a named pipe")
    video.add_argument("--first-mask", help="PNG of frame 0's object ids (palette or grey-level)")
    video.add_argument("--annotations", help="folder of PNG object ids named like the frames (00012.png for a "
                       "video's frame 12), for any frames: new ids join there, known ids are corrected")
    video.add_argument("--frame-size", type=cli_args.size,
                       help="--frames -: raw rgb24 frames of this WxH on standard input (default: ffmpeg probes it)")
    video.add_argument("--input-format", help="live --frames: ffmpeg's input format (-f), e.g. mjpeg, image2pipe")
    video.add_argument("--max-lag", type=int, metavar="N",
                       help="live --frames: at most N frames wait; older ones are dropped rather than falling behind")
    video.add_argument("--overlay", help="also write the masks drawn over the frames (.mp4, .gif, ...)")
    video.add_argument("--fps", type=float, help="frame rate of --overlay (default: the video's, or 10)")
    davis = cli_args.add_davis(parser, title="a dataset split: DAVIS (--davis-root) or YouTube-VOS (--youtube-vos-root)")
    davis.add_argument("--sequences", nargs="+", help="only these sequences of the split")
    davis.add_argument("--use-full-res", action="store_true",
                       help="--davis-root: frames from JPEGImages/Full-Resolution (the visual guide is cut from the "
                            "larger frame), annotations and masks at 480p (the release's --use_full_res)")
    davis.add_argument("--first-frame-only", action="store_true",
                       help="--youtube-vos-root: only the first annotated frame's objects (later ones are not tracked)")
    davis.add_argument("--youtube-vos-root", help="a YouTube-VOS root instead (ROOT/<--split>/JPEGImages, "
                       "Annotations, meta.json); --split valid, train, ...")
    davis.add_argument("--youtube-objects-root",
                       help="a YouTube-Objects root in the release's layout instead (ROOT/all.txt, Images/, Labels/; "
                            "tools/prepare_youtube_objects.py writes it); working size 640x360 unless given")
    parser.add_argument("--save-scores", action="store_true",
                        help="also write each object's probabilities: OUT/[<sequence>/]<object id>/<frame>.npy")
    parser.add_argument("--working-size", type=cli_args.size,
                        help="WxH every frame is resized to (default 854x480; as the release, 640x360 for "
                             "--youtube-objects-root and 448x256 for --youtube-vos-root); lite's network sees it "
                             "padded to multiples of 32")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument("--online-finetune", type=int, default=0, metavar="N",
                        help="fine-tune a copy of the model on each video's frame 0 for N steps first (paper: 100)")
    parser.add_argument("--finetune-lr", type=cli_args.learning_rate, default=1e-5,
                        help="Adam learning rate of --online-finetune")
    parser.add_argument("--finetune-scales", type=float, nargs="+", metavar="S",
                        help="--online-finetune: one scale drawn per step, times --working-size (the release's: "
                             "0.8 1 1.5 for --youtube-vos-root, else 0.5 0.8 1)")
    parser.add_argument("--finetune-per-object", action=argparse.BooleanOptionalAction, default=None,
                        help="--online-finetune: one fine-tuned model per object, trained at the object's first "
                             "annotated frame, as the release (default for --youtube-vos-root); "
                             "--no-finetune-per-object: one model per video, trained on the first annotated frame")
    tuning = parser.add_argument_group(
        "online fine-tuning samples", "options of --online-finetune N, the release's shared training options "
        "(--bbox-sup, --vg-keep-aspect-ratio and --use-original-mask shape the samples' guides too)")
    tuning.add_argument("--finetune-fix-bn", action="store_true", help="BatchNorm keeps its weights and statistics "
                        "(the release's --fix_bn)")
    tuning.add_argument("--finetune-fix-seg", action="store_true", help="only the modulators train (the release's "
                        "--fix_seg; MaskTrack-M and OSVOS-M)")
    tuning.add_argument("--vg-random-crop-ratio", type=float, help="each side of the object's box moves by up to "
                        "this fraction (0.1)")
    tuning.add_argument("--vg-random-rotate-angle", type=float, help="rotation by up to this many degrees (10)")
    tuning.add_argument("--vg-color-aug", action="store_true", default=None,
                        help="brightness and contrast times U(0.8, 1.3)")
    tuning.add_argument("--sg-center-perturb-ratio", type=float, help="spatial guide centre jitter, in units of its "
                        "scale (0.2)")
    tuning.add_argument("--sg-std-perturb-ratio", type=float, help="spatial guide scale jitter: times "
                        "U(1/(1+r), 1+r) (0.4)")
    guide = parser.add_argument_group("visual guide")
    guide.add_argument("--vg-pad-ratio", type=float, default=0.03,
                       help="margin around the object's box, as a fraction of the box (the release's 0.03)")
    guide.add_argument("--vg-keep-aspect-ratio", action="store_true",
                       help="fit the object's box into the guide undistorted (for a model trained with "
                            "tools/train.py --vg-keep-aspect-ratio)")
    guide.add_argument("--bbox-sup", action="store_true",
                       help="keep the background inside the object's box (for a model trained with "
                            "tools/train.py --bbox-sup, the release's --bbox_sup)")
    guide.add_argument("--use-original-mask", action="store_true",
                       help="masktrack: the spatial guide is the previous mask dilated by a disk of radius 5 "
                            "(the release's --use_original_mask) instead of the Gaussian")
    speed = parser.add_argument_group("speed")
    cli_args.add_precision(speed, help="compute precision of the per-frame network (mixed: float32 weights, "
                                       "16-bit compute); auto: mixed_bfloat16 on a CPU with bfloat16 "
                                       "instructions, else float32; the visual modulator stays float32",
                           allow_auto=True)
    crf = parser.add_argument_group("post-processing")
    crf.add_argument("--crf", action="store_true",
                     help="refine each object's mask on every frame with the release's dense CRF (its "
                          "--crf_postprocessing); the refined mask is the next frame's spatial guide (needs "
                          "pip install -e \".[crf]\")")
    crf.add_argument("--crf-merge", choices=("refined", "release"), default="refined",
                     help="--crf with several objects: labels from the refined masks (default), or the release's "
                          "DAVIS 2017 merge of the probabilities before the CRF (docs/evaluation.md)")
    speed.add_argument("--int8-model", metavar="DIR",
                       help="run the per-frame network in INT8: a folder tools/quantize.py wrote from the same "
                            "--weights and --working-size (needs pip install -e \".[int8]\")")
    scale = parser.add_argument_group(
        "a corpus on Apache Beam", "with --runner, Beam's own pipeline options may follow (e.g. --direct_num_workers "
        "2 --direct_running_mode multi_processing, --flink_master, --project, --region, --temp_location); needs "
        "pip install -e \".[beam]\" (docs/scale.md)")
    scale.add_argument("--runner", help="run the --davis-root, --youtube-vos-root or --videos job on Beam: "
                       "DirectRunner, FlinkRunner, SparkRunner, DataflowRunner, ...")
    scale.add_argument("--videos", metavar="LIST", help="--runner: a list of videos, a line FRAMES,FIRST_MASK[,NAME] "
                       "each (FRAMES a frame folder or a video file), written as OUT/<NAME>/")
    cli_args.refuse_negative_learning_rates(parser, argv, ("--finetune-lr",))
    cli_args.add_verbose(parser)
    args, beam_args = parser.parse_known_args(argv)
    args.beam_args = beam_args
    if args.beam_args and not args.runner:
        parser.error(f"unrecognized arguments: {' '.join(args.beam_args)}")
    if args.videos and not args.runner:
        parser.error("--videos is for --runner (a corpus on Apache Beam)")
    if args.runner and not (args.davis_root or args.youtube_vos_root or args.videos):
        parser.error("--runner segments a corpus: --davis-root, --youtube-vos-root or --videos")
    if sum(map(bool, (args.davis_root, args.frames, args.youtube_vos_root, args.youtube_objects_root,
                      args.videos))) != 1:
        parser.error("give either --frames and --first-mask (one video), --davis-root (a DAVIS split), "
                     "--youtube-vos-root (a YouTube-VOS split), --youtube-objects-root (YouTube-Objects) or "
                     "--runner with --videos (a list of videos)")
    if args.frames and not (args.first_mask or args.annotations):
        parser.error("--frames needs --first-mask or --annotations")
    dataset = args.davis_root or args.youtube_vos_root or args.youtube_objects_root
    if dataset and (args.first_mask or args.overlay or args.annotations):
        parser.error("--first-mask, --annotations and --overlay are for one video (--frames), not a dataset root")
    if (args.youtube_vos_root or args.youtube_objects_root) and args.sequences:
        parser.error("--sequences is for --davis-root")
    if args.working_size is None:
        # The release's sizes: YouTube-Objects 640x360 (osmn_eval_youtube.py), YouTube-VOS 448x256 (--im_size of
        # osmn_train_eval_ytvos.py and osmn_online_finetune_ytvos.py), DAVIS 854x480.
        args.working_size = ((640, 360) if args.youtube_objects_root else (448, 256) if args.youtube_vos_root
                             else (854, 480))
    if args.use_full_res and not args.davis_root:
        parser.error("--use-full-res is for --davis-root")
    if args.first_frame_only and not args.youtube_vos_root:
        parser.error("--first-frame-only is for --youtube-vos-root")
    if args.max_lag is not None and args.max_lag < 1:
        parser.error(f"--max-lag must be >= 1 frame, got {args.max_lag}")
    if args.online_finetune < 0:
        parser.error(f"--online-finetune must be >= 0, got {args.online_finetune}")
    if (args.finetune_scales or args.finetune_per_object is not None) and not args.online_finetune:
        parser.error("--finetune-scales and --finetune-per-object are options of --online-finetune N")
    tuning = ("finetune_fix_bn", "finetune_fix_seg", "vg_random_crop_ratio", "vg_random_rotate_angle", "vg_color_aug",
              "sg_center_perturb_ratio", "sg_std_perturb_ratio")
    given = [f"--{n.replace('_', '-')}" for n in tuning if getattr(args, n) not in (None, False)]
    if given and not args.online_finetune:
        parser.error(f"{', '.join(given)}: options of --online-finetune N")
    for name, low, high in (("vg_random_crop_ratio", 0, 0.5), ("vg_random_rotate_angle", 0, 180),
                            ("sg_center_perturb_ratio", 0, math.inf), ("sg_std_perturb_ratio", 0, math.inf)):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and low <= value < high):
            parser.error(f"--{name.replace('_', '-')} must be in [{low}, {high}), got {value}")
    if args.finetune_scales is None:
        # The release's fine-tuning scripts: osmn_online_finetune_ytvos.py and osmn_online_finetune.py.
        args.finetune_scales = (0.8, 1.0, 1.5) if args.youtube_vos_root else (0.5, 0.8, 1.0)
    elif not all(s > 0 for s in args.finetune_scales):
        parser.error(f"--finetune-scales must be positive, got {' '.join(map(str, args.finetune_scales))}")
    if not (math.isfinite(args.vg_pad_ratio) and args.vg_pad_ratio > -0.5):
        parser.error(f"--vg-pad-ratio must be a number > -0.5, got {args.vg_pad_ratio}")
    if args.finetune_per_object is None:
        args.finetune_per_object = bool(args.youtube_vos_root)
    if args.int8_model and (args.online_finetune or args.precision != "float32" or args.xla):
        parser.error("--int8-model replaces the per-frame network: not with --online-finetune, --precision or --xla")
    return args


def finetune_options(args):
    """`OnlineFinetuning`'s sample and freezing options from the flags; a guide flag not given is left out, so that
    `VisualGuideAugmentation` and `SpatialGuidePerturbation` keep their own defaults (the release's)."""
    def given(fields):
        return {field: getattr(args, flag) for flag, field in fields.items() if getattr(args, flag) is not None}

    return {"fix_bn": args.finetune_fix_bn, "fix_seg": args.finetune_fix_seg, "bbox_sup": args.bbox_sup,
            "use_original_mask": args.use_original_mask,
            "visual_augment": {**given({"vg_random_crop_ratio": "crop_ratio", "vg_random_rotate_angle": "max_rotation",
                                        "vg_color_aug": "color_aug"}),
                               "keep_aspect_ratio": args.vg_keep_aspect_ratio},
            "spatial_perturb": given({"sg_center_perturb_ratio": "center_ratio",
                                      "sg_std_perturb_ratio": "scale_ratio"})}


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    # Light imports: arguments, folders and a complete result are checked before TensorFlow loads.
    from osmn_tf.utils.errors import CheckpointError, MissingExtraError
    from segment_run import Interrupted, SegmentRequest, segment, segment_on_beam

    request = SegmentRequest(
        weights=args.weights, output=args.output, frames=args.frames, first_mask=args.first_mask,
        annotations=args.annotations, youtube_vos_root=args.youtube_vos_root, first_frame_only=args.first_frame_only,
        youtube_objects_root=args.youtube_objects_root,
        frame_size=args.frame_size, input_format=args.input_format, max_lag=args.max_lag,
        overlay=args.overlay, fps=args.fps, davis_root=args.davis_root, year=args.year, split=args.split,
        sequences=args.sequences, save_scores=args.save_scores, working_size=args.working_size,
        overwrite=args.overwrite, online_finetune=args.online_finetune, finetune_lr=args.finetune_lr,
        finetune_scales=tuple(args.finetune_scales), finetune_per_object=args.finetune_per_object,
        vg_pad_ratio=args.vg_pad_ratio, vg_keep_aspect_ratio=args.vg_keep_aspect_ratio, bbox_sup=args.bbox_sup,
        use_original_mask=args.use_original_mask, use_full_res=args.use_full_res,
        finetune_options=finetune_options(args),
        precision=args.precision, jit_compile=args.xla, int8_model=args.int8_model, crf=args.crf,
        crf_merge=args.crf_merge)
    try:
        if args.base_model:
            from osmn_tf.weights.checkpoints import saved_config

            cli_args.check_base_model(args.base_model, saved_config(args.weights), args.weights)
        if args.runner:
            failed = segment_on_beam(request, args.runner, args.beam_args, args.videos, verbose=args.verbose)
            if failed:
                sys.exit(f"error: {failed} video{'s' if failed > 1 else ''} failed (listed above); the others are "
                         "complete")
            return
        segment(request)
    except (CheckpointError, FileNotFoundError, ValueError, OSError, MissingExtraError) as e:
        sys.exit(f"error: {e}")
    except Interrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        sys.exit(130)  # the shell's status for Ctrl-C


if __name__ == "__main__":
    main()
