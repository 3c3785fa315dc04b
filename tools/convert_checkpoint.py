#!/usr/bin/env python3
"""Convert an original OSMN TF1 checkpoint into a ready `.keras` model.

    python tools/convert_checkpoint.py PREFIX OUT.keras [--variant full]

PREFIX is what the TF1 Saver wrote (PREFIX.index beside PREFIX.data-*). The
variant (full, no_spatial, no_visual, mod_early_conv) and the width are read
from the variable names and shapes unless --variant is given.
"""
import argparse
import os
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", help="TF1 checkpoint prefix, e.g. models/osmn.ckpt-300000")
    parser.add_argument("output", help="the .keras file to write")
    parser.add_argument(
        "--variant",
        choices=["full", "no_spatial", "no_visual", "mod_early_conv"],
        help="the model variant the checkpoint must be (default: detected from its names)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out of the way
    if not args.output.endswith(".keras"):
        sys.exit(f"error: output {args.output!r} must end in .keras")
    if os.path.isdir(args.output):
        sys.exit(f"error: output {args.output} is a folder, not a .keras file")
    if os.path.exists(args.output) and not args.overwrite:
        sys.exit(f"error: {args.output} exists (use --overwrite to replace it)")

    from osmn_tf import checkpoints
    from osmn_tf.outputs import remove_stale, temporary_name

    try:
        config = checkpoints.config_from_tf1_checkpoint(args.prefix)
        if args.variant:
            config = checkpoints.variant_config(args.variant, width=config.width)
        model = checkpoints.build_osmn(config)
        loaded = checkpoints.load_tf1_checkpoint(model, args.prefix)
    except checkpoints.CheckpointError as e:
        sys.exit(f"error: {e}")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    try:
        os.makedirs(out_dir, exist_ok=True)
        # Written under a temporary name and renamed: an interrupted run leaves no half file. The
        # name is opened as usual (not with mkstemp), so the file gets the user's umask, not 0600.
        remove_stale(args.output, "tmp")
        tmp = temporary_name(args.output, "tmp")
        try:
            model.save(tmp)
            os.replace(tmp, args.output)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except OSError as e:
        sys.exit(f"error: cannot write {args.output}: {e.strerror or e}")
    print(f"loaded {len(loaded)} variables from {args.prefix} ({checkpoints.variant_name(config)}, width {config.width})")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
