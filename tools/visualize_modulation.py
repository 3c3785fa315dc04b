#!/usr/bin/env python3
"""Draw the paper's modulation analyses (Figs. 5, 6 and 7) for a model and a set of objects.

MS-COCO objects, as in the paper (10 classes, 10 objects each by default):
    python tools/visualize_modulation.py --weights W --coco-annotations instances_val2017.json \\
        --coco-images val2017 --output FIGS
The first-frame objects of a DAVIS split (class: davis_semantics.json's category, else the sequence):
    python tools/visualize_modulation.py --weights W --davis-root DAVIS --year 2017 --split val --output FIGS
The embedded synthetic set, N validation sequences (class: the objects' texture, or --synthetic-class shape):
    python tools/visualize_modulation.py --weights W --synthetic 30 --output FIGS

W is a .keras file or a TF1 checkpoint prefix of the original release. Writes
FIGS/fig5_visual_mds.png (MDS of the visual modulation parameters, by class),
FIGS/fig6_visual_gamma.png (per layer: spread of the visual modulator's scales
across objects) and FIGS/fig7_spatial_scale.png (per layer: magnitudes of the
spatial modulator's scales); a figure whose modulator the model lacks is skipped.
"""
import argparse
import sys

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_args.add_weights(parser)
    cli_args.add_output(parser, "folder for the three PNG figures")
    parser.add_argument("--max-objects", type=int, default=None,
                        help="most objects to encode, spread evenly over the classes "
                             "(default: 100 for COCO, as the paper; every object otherwise)")
    parser.add_argument("--batch-size", type=int, default=16, help="visual guides per visual modulator call")
    coco = parser.add_argument_group("MS-COCO objects (the paper's)")
    coco.add_argument("--coco-annotations", help="COCO instances_*.json")
    coco.add_argument("--coco-images", help="folder of the images the annotations name")
    coco.add_argument("--coco-categories", nargs="+", metavar="NAME",
                      help="category names to show (default: the paper's bicycle motorcycle car bus truck "
                           "dog cat horse cow person); 'all' for every category")
    cli_args.add_davis(parser, title="first-frame objects of a DAVIS split")
    synthetic = parser.add_argument_group("the embedded synthetic set")
    synthetic.add_argument("--synthetic", type=int, metavar="N", help="objects of N synthetic validation sequences")
    synthetic.add_argument("--synthetic-size", type=cli_args.size_at_least(16), default=(160, 96),
                           metavar="WxH",
                           help="frame size of the synthetic sequences (default 160x96)")
    synthetic.add_argument("--synthetic-class", choices=["texture", "shape"], default="texture",
                           help="what a synthetic object's class is (default texture)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    cli_args.add_verbose(parser)
    args = parser.parse_args(argv)
    sources = [name for name, given in (("--coco-annotations/--coco-images", args.coco_annotations or args.coco_images),
                                        ("--davis-root", args.davis_root),
                                        ("--synthetic", args.synthetic is not None)) if given]
    if len(sources) != 1:
        parser.error("give exactly one object source: --coco-annotations and --coco-images, --davis-root, "
                     f"or --synthetic N (got {', '.join(sources) or 'none'})")
    if bool(args.coco_annotations) != bool(args.coco_images):
        parser.error("--coco-annotations and --coco-images go together")
    if args.synthetic is not None and args.synthetic < 1:
        parser.error(f"--synthetic must be >= 1, got {args.synthetic}")
    if args.max_objects is not None and args.max_objects < 2:
        parser.error(f"--max-objects must be >= 2 (MDS and a spread need two objects), got {args.max_objects}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    return args


def check_paths(args):
    """Missing inputs and an output that is a file, named by their argument, before the (slow) model is loaded."""
    from osmn_tf.utils.outputs import check_is_folder

    check_is_folder(args.output)
    cli_args.check_inputs(("--coco-annotations", args.coco_annotations, "file"),
                          ("--coco-images", args.coco_images, "folder"), ("--davis-root", args.davis_root, "folder"))
    cli_args.check_weights(args.weights)


def object_source(args):
    """A function that lists the chosen objects (called only when the model has a visual modulator)."""
    from osmn_tf import modulation_analysis as analysis

    if args.coco_annotations:
        categories = analysis.PAPER_COCO_CATEGORIES
        if args.coco_categories:
            categories = None if args.coco_categories == ["all"] else tuple(args.coco_categories)
        max_objects = 100 if args.max_objects is None else args.max_objects
        return lambda: analysis.coco_objects(args.coco_annotations, args.coco_images, max_objects, categories)
    if args.davis_root:
        return lambda: analysis.davis_objects(args.davis_root, args.year, args.split, args.max_objects)
    return lambda: analysis.synthetic_objects(args.synthetic, args.synthetic_size, args.synthetic_class,
                                              args.max_objects)


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    from osmn_tf.weights.checkpoints import CheckpointError

    try:
        check_paths(args)
        run(args)
    except (CheckpointError, FileNotFoundError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")


def run(args):
    from tqdm import tqdm

    from osmn_tf import modulation_analysis as analysis
    from osmn_tf.weights.checkpoints import load_model

    model = load_model(args.weights)
    list_objects = object_source(args)
    bar = None

    def objects():
        nonlocal bar
        found = list_objects()
        classes = len(set(o.label for o in found))
        print(f"{len(found)} objects in {classes} classes")
        bar = tqdm(total=len(found), desc="visual guides", unit="object", disable=args.quiet)
        return found

    def progress(n):
        bar.update(n)
        if bar.n >= bar.total:
            bar.close()  # encoding is done; the figures follow

    try:
        written = analysis.write_figures(model, objects, args.output, batch_size=args.batch_size,
                                         progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for path in written.values():
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
