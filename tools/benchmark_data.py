#!/usr/bin/env python3
"""Measure how many training samples per second the sample sources make.

    python tools/benchmark_data.py                       # synthetic data in a temporary folder
    python tools/benchmark_data.py --coco-annotations instances_train2017.json --coco-images train2017
    python tools/benchmark_data.py --davis-root DAVIS --batches 40

For each source (`osmn_tf.training.samples`): COCO-like at 400 x 400 (scales
0.8, 1, 1.2) and DAVIS at 854 x 480 (scales 0.5, 0.8, 1), batch 8 by default,
it times `source.batch` in one process, then a `tf.data` pipeline that makes
batches with a parallel map over batch indices::

    tf.data.Dataset.range(n)
        .map(lambda i: tf.numpy_function(batch_i, [i], ...),
             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)

Without `--coco-*` or `--davis-root`, the data are generated with
`osmn_tf.data.synthetic`: DAVIS-layout sequences at 854 x 480 and, from 640 x 480
synthetic frames, a COCO-format folder (JPEG images, RLE masks of every object).
The first batch of each run is not timed (file caches, TensorFlow's start-up).
"""
import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco-annotations", help="COCO instances JSON (with --coco-images)")
    parser.add_argument("--coco-images", help="folder of the COCO images")
    cli_args.add_davis(parser, split="train")
    parser.add_argument("--batch-size", type=cli_args.positive_int, default=8)
    parser.add_argument("--batches", type=cli_args.positive_int, default=12, help="timed batches per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["coco", "davis"], help="benchmark one source only")
    parser.add_argument("--synthetic-sequences", type=cli_args.positive_int, default=3,
                        help="sequences generated per synthetic dataset")
    parser.add_argument("--synthetic-frames", type=cli_args.positive_int, default=6,
                        help="frames per synthetic sequence")
    parser.add_argument("--train-steps", type=int, default=3,
                        help="also time this many training steps on the same batches (0: data only)")
    parser.add_argument("--width", type=cli_args.width, default=1.0, help="model width of the timed training steps")
    parser.add_argument("--work-dir", help="where synthetic data go (default: a temporary folder, deleted after)")
    cli_args.add_verbose(parser)
    args = parser.parse_args(argv)
    if bool(args.coco_annotations) != bool(args.coco_images):
        parser.error("--coco-annotations and --coco-images go together")
    if args.train_steps < 0:
        parser.error(f"--train-steps must be >= 0, got {args.train_steps}")
    return args


def write_synthetic_coco(folder, num_sequences, num_frames):
    """A COCO-format folder made of synthetic 640 x 480 frames; returns (annotation file, image dir)."""
    from PIL import Image
    from pycocotools import mask as coco_mask

    from osmn_tf.data.synthetic import SyntheticConfig, generate_sequence

    folder = pathlib.Path(folder)
    image_dir = folder / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    config = SyntheticConfig(image_size=(640, 480), num_frames=num_frames, seed=1)
    images, annotations = [], []
    for index in range(num_sequences):
        frames, masks = generate_sequence(config, index)
        for rgb, labels in zip(frames, masks):
            image_id = len(images) + 1
            name = f"{image_id:012d}.jpg"
            Image.fromarray(rgb).save(image_dir / name, quality=90)
            images.append({"id": image_id, "file_name": name, "width": 640, "height": 480})
            for object_id in (int(v) for v in np.unique(labels) if v):
                rle = coco_mask.encode(np.asfortranarray((labels == object_id).astype(np.uint8)))
                x, y, w, h = (float(v) for v in coco_mask.toBbox(rle))
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                    "area": float(coco_mask.area(rle)), "bbox": [x, y, w, h],
                    "segmentation": {"size": [480, 640], "counts": rle["counts"].decode("ascii")}})
    annotation_file = folder / "instances_synthetic.json"
    annotation_file.write_text(json.dumps({"images": images, "annotations": annotations,
                                           "categories": [{"id": 1, "name": "object"}]}))
    return annotation_file, image_dir


def time_single_process(source, args):
    source.batch(0, args.batch_size, args.seed)  # warm-up
    start = time.perf_counter()
    for index in range(1, args.batches + 1):
        source.batch(index, args.batch_size, args.seed)
    return args.batches * args.batch_size / (time.perf_counter() - start)


def time_tf_data(source, args):
    from osmn_tf.training.pipeline import batch_dataset

    iterator = iter(batch_dataset(source, args.batch_size, args.seed).take(args.batches + 1))
    next(iterator)  # warm-up: start-up and the first batch
    start = time.perf_counter()
    count = 0
    for _ in iterator:
        count += 1
    return count * args.batch_size / (time.perf_counter() - start)


def time_training(source, args, model_dir):
    """Training samples/s of OSMN at `--width` on this source's batches (the loop's step on one device).

    `model_dir` receives the trainer's summaries; the caller deletes it.
    """
    import tensorflow as tf

    from osmn_tf.config import OSMNConfig
    from osmn_tf.training.config import TrainConfig
    from osmn_tf.training.pipeline import distributed_dataset
    from osmn_tf.training.trainer import Trainer

    model = OSMNConfig(width=args.width, guide_size=source.guide_size)
    config = TrainConfig(dataset="davis", data_root="-", model=model, batch_size=args.batch_size,
                         steps=args.train_steps + 1, eval_working_size=None)
    trainer = Trainer(config, source, tf.distribute.get_strategy(), model_dir, log=None)
    step = trainer.train_step
    iterator = iter(distributed_dataset(trainer.strategy, source, args.batch_size, args.seed))
    float(step(iterator)[0])  # warm-up: tracing
    start = time.perf_counter()
    for _ in range(args.train_steps):
        float(step(iterator)[0])
    return args.train_steps * args.batch_size / (time.perf_counter() - start)


def report(name, source, args, scratch):
    single = time_single_process(source, args)
    print(f"{name}: {len(source)} items, image_size {source.image_size}, scales {source.scales}, "
          f"batch {args.batch_size}", flush=True)
    print(f"  1 process:                {single:7.1f} samples/s", flush=True)
    parallel = time_tf_data(source, args)
    print(f"  tf.data parallel map:     {parallel:7.1f} samples/s "
          f"({os.cpu_count()} CPUs visible)", flush=True)
    if args.train_steps:
        training = time_training(source, args, pathlib.Path(scratch) / f"train-{name.lower()}")
        print(f"  training, width {args.width:g}:    {training:7.2f} samples/s "
              f"(data makes {parallel / training:.0f}x what training consumes)", flush=True)


def check_paths(args):
    """Missing inputs and a --work-dir that is a file, named by their argument, before any work."""
    cli_args.check_inputs(("--coco-annotations", args.coco_annotations, "file"),
                          ("--coco-images", args.coco_images, "folder"), ("--davis-root", args.davis_root, "folder"))
    if args.work_dir and os.path.exists(args.work_dir) and not os.path.isdir(args.work_dir):
        raise FileExistsError(f"--work-dir {args.work_dir}: exists and is not a folder")


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    try:
        check_paths(args)
        run(args)
    except (FileNotFoundError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    return 0


def run(args):
    from osmn_tf.data.synthetic import SyntheticConfig, write_davis
    from osmn_tf.training.samples import CocoSource, DavisTrainSource

    with tempfile.TemporaryDirectory(prefix="osmn_benchmark_") as temporary:
        work = pathlib.Path(args.work_dir or temporary)
        if args.only != "davis":
            if args.coco_annotations:
                coco_files = (args.coco_annotations, args.coco_images)
            else:
                print(f"writing synthetic COCO-format data to {work / 'coco'} ...", flush=True)
                coco_files = write_synthetic_coco(work / "coco", args.synthetic_sequences,
                                                  args.synthetic_frames)
            start = time.perf_counter()
            coco = CocoSource(*coco_files, image_size=(400, 400), scales=(0.8, 1.0, 1.2))
            print(f"CocoSource built in {time.perf_counter() - start:.2f} s", flush=True)
            report("COCO", coco, args, temporary)
        if args.only != "coco":
            davis_root = args.davis_root
            if davis_root is None:
                davis_root = work / "davis"
                print(f"writing synthetic DAVIS-layout data to {davis_root} ...", flush=True)
                write_davis(davis_root, SyntheticConfig(image_size=(854, 480),
                                                        num_frames=args.synthetic_frames),
                            args.synthetic_sequences, year=args.year, split=args.split)
            start = time.perf_counter()
            davis = DavisTrainSource(davis_root, year=args.year, split=args.split,
                                     image_size=(854, 480), scales=(0.5, 0.8, 1.0))
            print(f"DavisTrainSource built in {time.perf_counter() - start:.2f} s", flush=True)
            report("DAVIS", davis, args, temporary)


if __name__ == "__main__":
    sys.exit(main())
