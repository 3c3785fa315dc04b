#!/usr/bin/env python3
"""Convert an original OSMN TF1 checkpoint into a ready `.keras` model.

    python tools/convert_checkpoint.py PREFIX OUT.keras [--variant full]

PREFIX is what the TF1 Saver wrote (PREFIX.index beside PREFIX.data-*). The
base model (osvos, lite, deeplab, masktrack), the variant (full, no_spatial,
no_visual, mod_early_conv, or the base model's name) and the width are read
from the variable names and shapes unless --variant is given.
"""
import argparse
import os
import sys

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Positional, as the documented command writes them; --weights/--output name the same in other tools.
    parser.add_argument("weights", metavar="PREFIX", help="TF1 checkpoint prefix, e.g. models/osmn.ckpt-300000")
    parser.add_argument("output", metavar="OUT.keras", help="the .keras file to write")
    parser.add_argument(
        "--variant",
        choices=["full", "no_spatial", "no_visual", "mod_early_conv", "lite", "deeplab", "masktrack"],
        help="the model variant the checkpoint must be (default: detected from its names)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    cli_args.add_verbose(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    if not args.output.endswith(".keras"):
        sys.exit(f"error: output {args.output!r} must end in .keras")
    if os.path.isdir(args.output):
        sys.exit(f"error: output {args.output} is a folder, not a .keras file")
    if os.path.exists(args.output) and not args.overwrite:
        sys.exit(f"error: {args.output} exists (use --overwrite to replace it)")

    from osmn_tf.utils.atomic import replacing
    from osmn_tf.weights import checkpoints

    try:
        config = checkpoints.config_from_tf1_checkpoint(args.weights)
        if args.variant:
            config = checkpoints.variant_config(args.variant, width=config.width)
        model = checkpoints.build_osmn(config)
        loaded = checkpoints.load_tf1_checkpoint(model, args.weights)
    except checkpoints.CheckpointError as e:
        sys.exit(f"error: {e}")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with replacing(args.output) as tmp:
            model.save(tmp)
    except OSError as e:
        sys.exit(f"error: cannot write {args.output}: {e.strerror or e}")
    print(f"loaded {len(loaded)} variables from {args.weights} ({checkpoints.variant_name(config)}, width {config.width})")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
