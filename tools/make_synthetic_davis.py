#!/usr/bin/env python3
"""Write the synthetic video dataset (`osmn_tf.data.synthetic`) in the DAVIS 2017 (or the YouTube-VOS) layout.

    python tools/make_synthetic_davis.py --output data/synthetic --train 200 --val 20
    python tools/make_synthetic_davis.py --output data/late --val 12 --late-entry-prob 1 --layout youtube-vos
    python tools/make_synthetic_davis.py --preview /tmp/synthetic.png --preview-index 3
    python tools/make_synthetic_davis.py --val 20 --baseline

Re-running with the same arguments resumes: complete sequences are skipped.
`--preview` writes a contact sheet (.png: frames above, masks overlaid below)
or an animation (.gif) of one sequence. `--baseline` prints the "copy the
first frame's mask" scores (J, F as the DAVIS evaluation computes them) on the
validation sequences.
"""
import argparse
import sys

import numpy as np

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli_args.add_output(parser, "dataset root to write (JPEGImages/, Annotations/, ImageSets/)", required=False)
    parser.add_argument("--train", type=int, default=0, help="number of training sequences")
    parser.add_argument("--val", type=int, default=0, help="number of validation sequences")
    parser.add_argument("--year", type=int, default=2017, choices=[2016, 2017],
                        help="ImageSets/<year>/ to list the splits in")
    parser.add_argument("--size", type=cli_args.size, default=None, help="frame size WxH (default 160x96)")
    parser.add_argument("--frames", type=int, default=None, help="frames per sequence (default 24)")
    parser.add_argument("--min-objects", type=int, default=None, help="fewest objects per sequence (default 2)")
    parser.add_argument("--max-objects", type=int, default=None, help="most objects per sequence (default 4)")
    for name, default in (("twin", 0.6), ("meet", 0.6), ("rider", 0.0), ("late-entry", 0.0)):
        parser.add_argument(f"--{name}-prob", type=float, default=None,
                            help=f"SyntheticConfig.{name.replace('-', '_')}_prob (default {default})")
    parser.add_argument("--layout", choices=("davis", "youtube-vos", "youtube-objects"), default="davis",
                        help="davis: JPEGImages/480p/<seq>, ImageSets; youtube-vos: <split>/JPEGImages/<video>, "
                             "meta.json (splits train and valid; objects that enter later need --late-entry-prob); "
                             "youtube-objects: the release's Images/, Labels/, all.txt (--val sequences only)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--overwrite", action="store_true",
                        help="rewrite every sequence (needed when OUTPUT holds another config)")
    parser.add_argument("--preview", help="write one sequence as a contact sheet (.png) or animation (.gif)")
    parser.add_argument("--preview-split", default="val", help="split of the previewed sequence (default val)")
    parser.add_argument("--preview-index", type=int, default=0, help="number of the previewed sequence in its split")
    parser.add_argument("--preview-columns", type=int, default=8, help="frames in the contact sheet")
    parser.add_argument("--preview-zoom", type=int, default=2, help="integer magnification of the preview")
    parser.add_argument("--baseline", action="store_true",
                        help="print the copy-the-first-mask J and F over the --val sequences")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    cli_args.add_verbose(parser)
    args = parser.parse_args(argv)
    if args.output is None and (args.train or (args.val and not args.baseline)):
        parser.error("--train/--val need --output")
    if not (args.output or args.preview or args.baseline):
        parser.error("nothing to do: give --output, --preview or --baseline")
    if min(args.train, args.val) < 0:
        parser.error("--train and --val must be >= 0")
    if args.layout == "youtube-objects" and args.train:
        parser.error("--layout youtube-objects is an evaluation set: give --val N, not --train")
    if args.baseline and args.val < 1:
        parser.error("--baseline needs --val N (N >= 1)")
    if args.preview and not args.preview.lower().endswith((".png", ".gif")):
        parser.error("--preview must end in .png or .gif")
    if args.preview_index < 0:
        parser.error(f"--preview-index must be >= 0, got {args.preview_index}")
    if args.preview_zoom < 1 or args.preview_columns < 1:
        parser.error("--preview-zoom and --preview-columns must be >= 1")
    return args


def make_config(args):
    from osmn_tf.data.synthetic import SyntheticConfig

    changes = {"seed": args.seed}
    if args.size is not None:
        changes["image_size"] = args.size
    if args.frames is not None:
        changes["num_frames"] = args.frames
    for name in ("twin_prob", "meet_prob", "rider_prob", "late_entry_prob"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.min_objects is not None:
        changes["min_objects"] = args.min_objects
    if args.max_objects is not None:
        changes["max_objects"] = args.max_objects
    if args.min_objects is not None and args.max_objects is None:
        changes["max_objects"] = max(args.min_objects, SyntheticConfig.max_objects)
    if args.max_objects is not None and args.min_objects is None:
        changes["min_objects"] = min(args.max_objects, SyntheticConfig.min_objects)
    return SyntheticConfig(**changes)


def _zoom(image, zoom):
    return np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1) if zoom > 1 else image


def write_preview(path, config, split, number, columns=8, zoom=2):
    """A contact sheet (.png) or an animation (.gif) of one sequence with its masks overlaid."""
    from PIL import Image

    from osmn_tf.data.synthetic import generate_sequence, split_first_index
    from osmn_tf.inference.visualize import overlay_labels
    from osmn_tf.utils.atomic import atomic_output

    frames, masks = generate_sequence(config, split_first_index(split) + number)
    if path.lower().endswith(".gif"):
        images = [Image.fromarray(_zoom(np.concatenate([rgb, overlay_labels(rgb, labels)], axis=1), zoom))
                  for rgb, labels in zip(frames, masks)]
        with atomic_output(path) as handle:
            images[0].save(handle, format="GIF", save_all=True, append_images=images[1:], duration=120, loop=0)
        return
    count = min(columns, len(frames))
    picks = np.unique(np.round(np.linspace(0, len(frames) - 1, count)).astype(int))
    gap = 2
    height, width = frames[0].shape[:2]
    sheet = np.full((2 * height + gap, len(picks) * (width + gap) - gap, 3), 255, np.uint8)
    for column, t in enumerate(picks):
        x = column * (width + gap)
        sheet[:height, x:x + width] = frames[t]
        sheet[height + gap:, x:x + width] = overlay_labels(frames[t], masks[t])
    with atomic_output(path) as handle:
        Image.fromarray(_zoom(sheet, zoom)).save(handle, format="PNG")


def print_baseline(config, count, progress):
    """Prints the copy-first-mask J and F means over `count` validation sequences."""
    from osmn_tf.data.synthetic import generate_sequence, split_first_index
    from osmn_tf.evaluation import boundary_measure, copy_first_mask_baseline

    j_means, f_means = [], []
    for number in progress(range(count), desc="baseline"):
        _, masks = generate_sequence(config, split_first_index("val") + number)
        j_means.extend(copy_first_mask_baseline(masks).values())
        f_means.extend(copy_first_mask_baseline(masks, boundary_measure).values())
    j, f = float(np.mean(j_means)), float(np.mean(f_means))
    print(f"copy-first-mask baseline over {count} val sequences, {len(j_means)} objects: "
          f"J-Mean {j:.3f}  F-Mean {f:.3f}  J&F-Mean {(j + f) / 2:.3f}")


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    try:
        run(args)
    except (ValueError, OSError) as error:
        sys.exit(f"error: {error}")


def run(args):
    from tqdm import tqdm

    from osmn_tf.data import synthetic
    from osmn_tf.utils.outputs import check_is_folder, check_output_file

    config = make_config(args)
    # Outputs are checked before any work: a bad one is reported at once.
    if args.output:
        check_is_folder(args.output)
    if args.preview:
        check_output_file(args.preview, "--preview", overwrite=True)

    def progress(iterable=None, **kwargs):
        return tqdm(iterable, disable=args.quiet, unit="seq", **kwargs)

    if args.output:
        for split, count in (("train", args.train), ("val", args.val)):
            if count == 0:
                continue
            with progress(total=count, desc=split) as bar:
                if args.layout == "youtube-objects":
                    synthetic.write_youtube_objects(args.output, config, count, overwrite=args.overwrite,
                                                    on_sequence=lambda name, written: bar.update(1))
                elif args.layout == "youtube-vos":
                    split = "valid" if split == "val" else split
                    synthetic.write_youtube_vos(args.output, config, count, split=split, overwrite=args.overwrite,
                                                on_sequence=lambda name, written: bar.update(1))
                else:
                    synthetic.write_davis(args.output, config, count, year=args.year, split=split,
                                          overwrite=args.overwrite, on_sequence=lambda name, written: bar.update(1))
            print(f"{split}: {count} sequences in {args.output}")
    if args.preview:
        write_preview(args.preview, config, args.preview_split, args.preview_index,
                      columns=args.preview_columns, zoom=args.preview_zoom)
        print(f"wrote {args.preview}")
    if args.baseline:
        print_baseline(config, args.val, progress)


if __name__ == "__main__":
    main()
