#!/usr/bin/env python3
"""Convert YouTube-Objects' masks into the release's layout, as its preprocess_youtube.py does.

    python tools/prepare_youtube_objects.py --source youtube_masks --output YTO

SOURCE is the dataset as distributed (`<class>/data/<number>/shots/001/images/`
and `.../labels/` with JPEG masks); OUTPUT receives `Images/<class>_<number>/`,
`Labels/<class>_<number>/<frame>.png` (0/255, thresholded at 127) and
`all.txt`, which `tools/segment.py --youtube-objects-root` and
`tools/evaluate.py --youtube-objects-root` read. A rerun keeps the sequences
already converted.
"""
import argparse
import sys

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="the YouTube-Objects masks folder (<class>/data/...)")
    parser.add_argument("--output", required=True, help="the root to write (Images/, Labels/, all.txt)")
    cli_args.add_verbose(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tqdm import tqdm

    from osmn_tf.data.youtube_objects import prepare_youtube_objects
    from osmn_tf.utils.outputs import OutputError, check_output_folder

    try:
        check_output_folder(args.output, [args.source])
        with tqdm(unit="seq", desc="sequences") as bar:
            names = prepare_youtube_objects(args.source, args.output, on_sequence=lambda name: bar.update(1))
    except (OutputError, FileNotFoundError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    print(f"{len(names)} sequences in {args.output}")


if __name__ == "__main__":
    main()
