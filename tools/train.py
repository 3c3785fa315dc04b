#!/usr/bin/env python3
"""Train OSMN.

With no arguments: the embedded demo. It writes a synthetic video dataset (no
download) into runs/demo/data, trains a CPU-sized model (width 0.125, 160x96
frames), then segments the held-out synthetic videos and writes the official
DAVIS CSVs for the model (runs/demo/eval/) and for the copy-the-first-mask
baseline (runs/demo/eval/baseline_first_mask/).

The demo with another base model (e.g. MobileNet v1, the release's lite):
    python tools/train.py --base-model lite --model-dir runs/demo_lite

The release's two stages, and its YouTube-VOS training:
    python tools/train.py --stage coco --data-root COCO --init vgg_16.ckpt --model-dir runs/coco
    python tools/train.py --stage davis --data-root DAVIS --init runs/coco/model.keras --model-dir runs/davis
    python tools/train.py --stage youtube-vos --data-root YTVOS --init vgg_16.ckpt --model-dir runs/ytvos

MaskTrack-M / OSVOS-M (a visual modulator on a fixed segmentation network, the release's --fix_seg):
    python tools/train.py --stage davis --data-root DAVIS --base-model masktrack --fix-seg \\
        --seg-model-path masktrack.keras --vis-mod-model-path vgg_16.ckpt --model-dir runs/masktrack_m

Rerunning with the same --model-dir resumes from its latest checkpoint.
Several GPUs: --strategy mirrored; several machines: --strategy multi_worker with TF_CONFIG set on each.
TensorBoard: tensorboard --logdir MODEL_DIR
"""
import argparse
import os
import sys
import time

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="demo", choices=["demo", "coco", "davis", "youtube-vos"],
                        help="preset: the embedded demo, the release's stage 1 (coco) or 2 (davis), or its "
                             "YouTube-VOS training (youtube-vos)")
    parser.add_argument("--model-dir", help="checkpoints, TensorBoard events, model.keras (default runs/<stage>)")
    data = parser.add_argument_group("data (defaults from --stage)")
    data.add_argument("--dataset", choices=["synthetic", "coco", "davis", "youtube-vos"])
    data.add_argument("--data-root", help="COCO, DAVIS or YouTube-VOS folder (the one holding train/); synthetic: "
                                          "where it is written (default MODEL_DIR/data)")
    data.add_argument("--image-size", type=cli_args.size, help="training frame size WxH at scale 1")
    data.add_argument("--scales", type=float, nargs="+", help="one drawn per batch, times --image-size")
    data.add_argument("--synthetic-sequences", type=int, nargs=2, metavar=("TRAIN", "VAL"),
                      help="sequences of the synthetic set")
    data.add_argument("--sg-center-perturb-ratio", type=float,
                      help="spatial guide centre jitter in training, in units of its scale (0.2)")
    data.add_argument("--sg-std-perturb-ratio", type=float,
                      help="spatial guide scale jitter in training: times U(1/(1+r), 1+r) (0.4)")
    data.add_argument("--vg-random-crop-ratio", type=float,
                      help="visual guide in training: each side of the object's box moves by up to this fraction (0.1)")
    data.add_argument("--vg-random-rotate-angle", type=float,
                      help="visual guide in training: rotation by up to this many degrees (10)")
    data.add_argument("--vg-color-aug", action="store_true", default=None,
                      help="visual guide in training: brightness and contrast times U(0.8, 1.3)")
    data.add_argument("--vg-keep-aspect-ratio", action="store_true", default=None,
                      help="visual guide in training: the object's box fits the square undistorted (segment with "
                           "tools/segment.py --vg-keep-aspect-ratio then)")
    data.add_argument("--use-original-mask", action="store_true", default=None,
                      help="masktrack: the spatial guide is the previous mask moved and resized at random, dilated "
                           "(the release's --use_original_mask; segment with tools/segment.py --use-original-mask)")
    data.add_argument("--bbox-sup", action="store_true", default=None,
                      help="visual guides are the object's box, not masked (the release's --bbox_sup)")
    data.add_argument("--random-crop-ratio", type=float,
                      help="COCO: cut one side of each image by up to this fraction before resizing (0 = off)")
    data.add_argument("--random-guide", action=argparse.BooleanOptionalAction, default=None,
                      help="DAVIS, YouTube-VOS: the visual guide from a random valid frame (default) or always "
                           "the object's first frame")
    data.add_argument("--label-valid-ratio", type=float,
                      help="DAVIS, YouTube-VOS: a valid visual guide frame has the object on more than this "
                           "fraction of the image (0.003)")
    data.add_argument("--bbox-valid-ratio", type=float,
                      help="... and on more than this fraction of its bounding box (0.2)")
    data.add_argument("--skip-blank-frames", action="store_true", default=None,
                      help="DAVIS: train only on frames where the object is visible, each with the previous such frame")
    model = parser.add_argument_group("model")
    cli_args.add_base_model(model, help="network the modulators adapt: osvos (VGG16, the paper's; default), lite "
                                        "(MobileNet v1), deeplab, masktrack; the demo has a CPU-sized model of each; "
                                        "with an OSMN --init, its base model by default")
    model.add_argument("--aligned-size", type=cli_args.size,
                       help="masktrack: zero-pad its input to WxH (the release's --aligned_size, e.g. 865x481)")
    model.add_argument("--input-scale", type=cli_args.pixel_scale,
                       help="pixel scale after the mean is subtracted (the release's --scale_value; default: the "
                            "base model's, 1.0, lite 0.00787); saved with the model")
    model.add_argument("--input-mean", type=cli_args.finite, nargs=3, metavar=("B", "G", "R"),
                       help="values subtracted from every pixel before --input-scale (the release's --mean_value; "
                            "104 117 123); saved with the model")
    model.add_argument("--width", type=cli_args.width,
                       help="channel multiplier of VGG16 (or lite's MobileNet) (1.0 = the paper)")
    cli_args.add_variant(model)
    model.add_argument("--mod-early-conv", action=argparse.BooleanOptionalAction,
                       help="also modulate conv1_1 .. conv2_2 (on in the demo, off in the release's stages)")
    model.add_argument("--guide-size", type=int,
                       help="side of the visual guide, a multiple of 32 (224 = the paper; the demo uses 64)")
    model.add_argument("--dropout", type=float, help="dropout rate after fc6 and fc7 of the visual modulator (0.5)")
    model.add_argument("--init", help="start from: ImageNet VGG16 (vgg_16.ckpt or Keras .h5; lite: "
                                      "mobilenet_v1_1.0_224.ckpt or its Keras .h5), a TF1 OSMN checkpoint prefix, "
                                      "or a .keras model")
    model.add_argument("--seg-model-path", help="the segmentation network's weights only, after --init (the "
                                                "release's --seg_model_path): .keras, TF1 OSMN prefix or ImageNet; "
                                                "an OSVOS/MaskTrack network is a .keras model without modulators")
    model.add_argument("--vis-mod-model-path", help="the visual modulator's weights only, after --init (the "
                                                    "release's --vis_mod_model_path): .keras, TF1 OSMN prefix or "
                                                    "ImageNet")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--steps", type=int, help="optimizer steps in all")
    optim.add_argument("--batch-size", type=int, help="global batch size (split over replicas)")
    optim.add_argument("--accumulation", type=int, help="micro-batches whose gradients add up to one step")
    optim.add_argument("--lr", type=cli_args.learning_rate, nargs="+", help="learning rate(s) of a piecewise-constant schedule")
    optim.add_argument("--lr-boundaries", type=int, nargs="*", help="steps where the next --lr starts")
    optim.add_argument("--weight-decay", type=float, help="L2 rate on conv kernels (2e-4)")
    optim.add_argument("--visual-modulator-init", choices=["keras", "he"],
                       help="how the visual modulator starts when --init does not set it (the demo: he, "
                            "for training it from random weights; the release's stages: keras; see docs/training.md)")
    optim.add_argument("--visual-modulator-pretrain-steps", type=int,
                       help="before training, teach the visual modulator for N steps to tell the training "
                            "objects apart (0; skipped with --init; see docs/training.md)")
    optim.add_argument("--visual-modulator-lr-multiplier", type=float,
                       help="learning rate factor of the visual modulator's VGG16 and fc6/fc7 "
                            "(the demo: 0.1; the release's stages: 1)")
    optim.add_argument("--fix-bn", action="store_true", default=None, help="freeze BatchNorm statistics")
    optim.add_argument("--fix-seg", action="store_true",
                       help="keep the segmentation network's weights (from --seg-model-path or --init); train only "
                            "the modulators (with --no-spatial-modulator, or masktrack: only the visual modulator)")
    optim.add_argument("--seed", type=int, help="seed of the data stream and the initial weights")
    run = parser.add_argument_group("run")
    run.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (the last 2 are kept)")
    run.add_argument("--log-every", type=int, help="steps between TensorBoard scalars")
    run.add_argument("--image-every", type=int, help="steps between image summaries and histograms")
    run.add_argument("--validate-every", type=int, help="steps between validation J")
    run.add_argument("--strategy", default="auto", choices=["auto", "one_device", "mirrored", "multi_worker"])
    run.add_argument("--cpu-replicas", type=int, default=1,
                     help="split the CPU into N logical devices (MirroredStrategy without GPUs)")
    cli_args.add_precision(run, default=None)
    run.add_argument("--no-eval", action="store_true", help="skip the evaluation after training")
    run.add_argument("--quiet", action="store_true", help="periodic lines instead of a progress bar")
    cli_args.refuse_negative_learning_rates(parser, argv, ("--lr",))
    cli_args.add_verbose(parser)
    args = parser.parse_args(argv)
    if args.cpu_replicas < 1:
        parser.error("--cpu-replicas must be >= 1")
    # Checked here, before TensorFlow loads: every stage but the demo reads a dataset.
    if (args.dataset or args.stage) not in ("synthetic", "demo") and not args.data_root:
        parser.error(f"{f'--dataset {args.dataset}' if args.dataset else f'--stage {args.stage}'} needs a data "
                     "root (--data-root)")
    return args


def make_config(args):
    """`TrainConfig` of `--stage` with the flags given on top."""
    from osmn_tf.training.config import preset

    flags = {
        "dataset": args.dataset, "data_root": args.data_root, "image_size": args.image_size,
        "scales": args.scales, "sg_center_perturb_ratio": args.sg_center_perturb_ratio,
        "sg_std_perturb_ratio": args.sg_std_perturb_ratio, "bbox_sup": args.bbox_sup,
        "random_crop_ratio": args.random_crop_ratio, "random_guide": args.random_guide,
        "skip_blank_frames": args.skip_blank_frames, "label_valid_ratio": args.label_valid_ratio,
        "bbox_valid_ratio": args.bbox_valid_ratio, "vg_random_crop_ratio": args.vg_random_crop_ratio,
        "vg_random_rotate_angle": args.vg_random_rotate_angle, "vg_color_aug": args.vg_color_aug,
        "vg_keep_aspect_ratio": args.vg_keep_aspect_ratio, "use_original_mask": args.use_original_mask,
        "init": args.init, "seg_model_path": args.seg_model_path, "vis_mod_model_path": args.vis_mod_model_path,
        "steps": args.steps,
        "batch_size": args.batch_size, "accumulation": args.accumulation, "learning_rates": args.lr,
        "lr_boundaries": args.lr_boundaries, "weight_decay": args.weight_decay, "fix_bn": args.fix_bn,
        "visual_modulator_init": args.visual_modulator_init,
        "visual_modulator_lr_multiplier": args.visual_modulator_lr_multiplier,
        "visual_modulator_pretrain_steps": args.visual_modulator_pretrain_steps,
        "seed": args.seed, "checkpoint_every": args.checkpoint_every, "log_every": args.log_every,
        "image_every": args.image_every, "validate_every": args.validate_every,
        "synthetic_sequences": args.synthetic_sequences, "precision": args.precision, "jit_compile": args.xla,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    model_flags = {"width": args.width, "dropout_rate": args.dropout, "guide_size": args.guide_size,
                   "mod_early_conv": args.mod_early_conv, "base_model": args.base_model,
                   "aligned_size": args.aligned_size, "input_scale": args.input_scale,
                   "input_mean": args.input_mean}
    model = {k: v for k, v in model_flags.items() if v is not None}
    base_model = base_model_to_train(args)
    if base_model is not None:
        model["base_model"] = base_model
    if args.lr is not None and args.lr_boundaries is None:
        overrides["lr_boundaries"] = ()
    model.update(cli_args.variant_fields(args))
    if args.fix_seg:
        overrides["fix_seg"] = True
    if args.image_size:
        overrides["eval_working_size"] = args.image_size
    if args.no_eval:
        overrides["eval_working_size"] = None
    return preset(args.stage, model=model, **overrides)


def base_model_to_train(args):
    """`--base-model`, or that of an OSMN `--init`; ValueError naming the flags when the two contradict."""
    from osmn_tf.weights.checkpoints import saved_config

    for flag, path in (("--init", args.init), ("--seg-model-path", args.seg_model_path),
                       ("--vis-mod-model-path", args.vis_mod_model_path)):
        if not path:
            continue
        config = saved_config(path)
        cli_args.check_base_model(args.base_model, config, path, flag)
        if args.base_model is None and config is not None and flag == "--init":
            return config.base_model
    return args.base_model


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    # The strategy comes first: multi-worker and CPU splitting need TF untouched.
    from osmn_tf.training.distribute import make_strategy

    try:
        strategy = make_strategy(args.strategy, args.cpu_replicas)
        config = make_config(args)
    except (ValueError, RuntimeError, OSError) as e:
        sys.exit(f"error: {e}")
    from osmn_tf.weights.checkpoints import CheckpointError

    try:
        run(args, config, strategy)
    except (CheckpointError, FileNotFoundError, ValueError, OSError, FloatingPointError) as e:
        sys.exit(f"error: {e}")


def run(args, config, strategy):
    from tqdm import tqdm

    from osmn_tf.evaluation import format_table, global_rows
    from osmn_tf.training import experiment
    from osmn_tf.training.distribute import strategy_name
    from osmn_tf.training.trainer import Trainer

    model_dir = args.model_dir or os.path.join("runs", args.stage)
    tick = time.perf_counter()
    bar = None
    if config.dataset == "synthetic":
        bar = tqdm(total=sum(config.synthetic_sequences), unit="seq", desc="synthetic data", disable=args.quiet)
    source, validation = experiment.make_sources(config, model_dir,
                                                 on_sequence=(lambda name, written: bar.update(1)) if bar else None)
    if bar is not None:
        bar.close()
    print(f"{strategy_name(strategy)} with {strategy.num_replicas_in_sync} replica(s); "
          f"training on {source!r}", flush=True)
    trainer = Trainer(config, source, strategy, model_dir, validation_source=validation)
    trainer.train(progress=not args.quiet)
    train_seconds = time.perf_counter() - tick
    print(f"trained to step {trainer.step} in {train_seconds / 60:.1f} min; model: "
          f"{os.path.join(model_dir, 'model.keras')}", flush=True)
    if not trainer.chief or config.eval_working_size is None or validation is None:
        return
    eval_dir = os.path.join(model_dir, experiment.EVAL_DIR)
    frames = tqdm(unit="frame", desc="evaluate", disable=args.quiet)
    results, baseline = experiment.evaluate_on_split(
        trainer.model, validation.dataset.root, eval_dir, config.eval_working_size,
        progress=lambda event, **info: frames.update(1) if event == "frame" else None)
    frames.close()
    print(format_table(*global_rows(results)))
    print(f"model J&F-Mean {results.global_metrics['J&F-Mean']:.3f}, copy-the-first-mask baseline "
          f"{baseline.global_metrics['J&F-Mean']:.3f}; CSVs in {eval_dir} and "
          f"{os.path.join(eval_dir, experiment.BASELINE_DIR)}", flush=True)
    if config.dataset == "synthetic":
        late_dir = os.path.join(eval_dir, experiment.LATE_DIR)
        frames = tqdm(unit="frame", desc="late entries", disable=args.quiet)
        late = experiment.evaluate_late_entries(
            trainer.model, config, model_dir, late_dir, config.eval_working_size,
            progress=lambda event, **info: frames.update(1) if event == "frame" else None)
        frames.close()
        print(f"{experiment.LATE_SEQUENCES} sequences with objects entering later: J&F "
              f"{late['with_late_annotations'].overall['Overall']:.3f} with their late annotations, "
              f"{late['first_frame_only'].overall['Overall']:.3f} from the first frame's only; CSVs in {late_dir}")
    print(f"{(time.perf_counter() - tick) / 60:.1f} min in all")


if __name__ == "__main__":
    main()
