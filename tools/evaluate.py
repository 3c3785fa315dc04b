"""Evaluates a folder of DAVIS result masks: J & F (DAVIS benchmark) or OSMN's mIoU.

    python tools/evaluate.py --davis-root DAVIS --results RESULTS --split val \\
        [--year 2017] [--metric davis|miou] [--correct-decay]

YouTube-Objects in the release's layout (its mIoU per class and overall, paper Table 1):

    python tools/evaluate.py --youtube-objects-root YTO --results RESULTS

A YouTube-VOS-layout split with every frame's ground truth (e.g. held-out train videos):

    python tools/evaluate.py --youtube-vos-root YTVOS --split train --results RESULTS \\
        [--seen-classes seen.txt]

J and F per sequence in parallel on Apache Beam (pip install -e ".[beam]"; Beam's pipeline options may follow):

    python tools/evaluate.py --davis-root DAVIS --results RESULTS --runner DirectRunner \\
        --direct_num_workers 2 --direct_running_mode multi_processing

RESULTS holds one folder per sequence of indexed PNGs named as the
annotations (for YouTube-VOS, also RESULTS/Annotations/<video>/, the
submission layout). YouTube-VOS scores each object from the frame after its
first annotation, and splits seen/unseen classes with --seen-classes (one
meta.json category a line); it writes `overall_results-<split>.csv` and
`per-object_results-<split>.csv`. Prints the tables and writes, into RESULTS,
`global_results-<split>.csv` and `per-sequence_results-<split>.csv` (davis), or
`miou_results-<split>.csv` (miou).
"""
import argparse
import pathlib
import sys

import cli_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli_args.add_davis(parser)
    parser.add_argument("--youtube-vos-root", type=pathlib.Path,
                        help="a YouTube-VOS root (ROOT/<--split>/Annotations with every frame, meta.json) instead; "
                             "J and F only (the released valid and test splits, annotated only where objects "
                             "first appear, are refused)")
    parser.add_argument("--youtube-objects-root", type=pathlib.Path,
                        help="a YouTube-Objects root in the release's layout instead (ROOT/all.txt, Labels/): "
                             "the release's mIoU per sequence, per class and overall")
    parser.add_argument("--seen-classes", type=pathlib.Path,
                        help="YouTube-VOS: file of the categories seen in training, one a line")
    parser.add_argument("--results", required=True, type=pathlib.Path,
                        help="folder of result masks, one sub-folder per sequence; the CSVs go here")
    parser.add_argument("--metric", default="davis", choices=("davis", "miou"),
                        help="davis: J & F as the official DAVIS 2017 package; miou: OSMN's own mIoU")
    parser.add_argument("--correct-decay", action="store_true",
                        help="compute the decay correctly for sequences over 256 frames instead of "
                             "reproducing the official package's uint8 wrap")
    parser.add_argument("--runner", help="--davis-root: score the sequences in parallel on Apache Beam "
                        "(DirectRunner, FlinkRunner, SparkRunner, DataflowRunner, ...); the same CSVs")
    cli_args.add_verbose(parser)
    args, beam_args = parser.parse_known_args(argv)
    if beam_args and not args.runner:
        parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
    args.beam_args = beam_args
    if args.runner and not (args.davis_root and args.metric == "davis"):
        parser.error("--runner scores --davis-root with J and F (--metric davis)")
    if sum(map(bool, (args.davis_root, args.youtube_vos_root, args.youtube_objects_root))) != 1:
        parser.error("give one of --davis-root, --youtube-vos-root and --youtube-objects-root")
    if args.seen_classes and not args.youtube_vos_root:
        parser.error("--seen-classes is for --youtube-vos-root")
    if args.youtube_objects_root and (args.metric != "davis" or args.correct_decay):
        parser.error("--youtube-objects-root is scored with the release's mIoU only (no --metric, no --correct-decay)")
    if args.youtube_vos_root and args.metric == "miou":
        parser.error("--metric miou is for --davis-root; --youtube-vos-root is scored with J and F (the challenge's "
                     "metrics)")
    return args


def main(argv=None):
    args = parse_args(argv)
    cli_args.quiet_tensorflow(args.verbose)
    try:
        return run(args)
    except (FileNotFoundError, ValueError, OSError) as e:
        # User errors (a missing folder, frame or split list, a result of the wrong size or ids)
        # end in one line naming the file; anything else is a bug and keeps its traceback.
        sys.exit(f"error: {e}")


def run(args):
    from osmn_tf import evaluation

    if args.youtube_vos_root:
        return run_youtube_vos(args)
    if args.youtube_objects_root:
        return run_youtube_objects(args)
    if args.runner:
        return run_on_beam(args)
    if args.metric == "miou":
        result = evaluation.evaluate_miou(args.davis_root, args.results, args.split, args.year)
        rows = [[name, value] for name, value in result.per_object.items()]
        print(f"---------- mIoU per {'sequence' if args.year == 2016 else 'object'} "
              f"for {args.split} ----------")
        print(evaluation.format_table(("Sequence", "mIoU"), rows + [["all", result.mean]]))
        path = evaluation.write_miou_csv(result, args.results, args.split)
        print(f"\nmIoU results saved in {path}")
        return 0
    result = evaluation.evaluate_davis(args.davis_root, args.results, args.split, args.year,
                                       decay_uint8_wrap=not args.correct_decay)
    print(f"--------------------------- Global results for {args.split} ---------------------------")
    print(evaluation.format_table(*evaluation.global_rows(result)))
    print(f"\n---------- Per sequence results for {args.split} ----------")
    print(evaluation.format_table(*evaluation.per_sequence_rows(result)))
    global_path, sequence_path = evaluation.write_davis_csvs(result, args.results, args.split)
    print(f"\nGlobal results saved in {global_path}\nPer-sequence results saved in {sequence_path}")
    return 0


def run_on_beam(args):
    from osmn_tf.utils.extras import require

    require("apache_beam", "beam", "--runner (Apache Beam)")
    import apache_beam as beam

    from osmn_tf.beam import EvaluateDavis
    from osmn_tf.data.davis import DavisDataset
    from segment_run import beam_options

    if not args.results.is_dir():
        raise FileNotFoundError(f"results folder not found: {args.results}")
    sequences = DavisDataset(args.davis_root, year=args.year, split=args.split).sequences
    pipeline = beam.Pipeline(options=beam_options(args.runner, args.beam_args, args.verbose))
    _ = (pipeline | "Sequences" >> beam.Create(sequences)
         | "J and F" >> EvaluateDavis(args.davis_root, args.results, args.split, args.year,
                                      decay_uint8_wrap=not args.correct_decay))
    pipeline.run().wait_until_finish()
    global_path = args.results / f"global_results-{args.split}.csv"
    print(f"{len(sequences)} sequences scored on {args.runner}\n{global_path.read_text()}")
    print(f"Global results saved in {global_path}\nPer-sequence results saved in "
          f"{args.results / f'per-sequence_results-{args.split}.csv'}")
    return 0


def run_youtube_vos(args):
    from osmn_tf import evaluation
    from osmn_tf.evaluation import youtube_vos as youtube_vos_eval

    seen = youtube_vos_eval.read_class_list(args.seen_classes) if args.seen_classes else None
    result = youtube_vos_eval.evaluate_youtube_vos(args.youtube_vos_root, args.results, args.split, seen)
    print(f"---------- Overall results for {args.split} ----------")
    print(evaluation.format_table(*youtube_vos_eval.overall_rows(result)))
    print(f"\n---------- Per object results for {args.split} ----------")
    print(evaluation.format_table(*youtube_vos_eval.per_object_rows(result)))
    paths = youtube_vos_eval.write_csvs(result, args.results, args.split)
    print(f"\nResults saved in {paths[0]} and {paths[1]}")
    return 0


def run_youtube_objects(args):
    from osmn_tf import evaluation
    from osmn_tf.evaluation import youtube_objects as youtube_objects_eval

    result = youtube_objects_eval.evaluate_youtube_objects(args.youtube_objects_root, args.results)
    print("---------- mIoU per class (the mean over its sequences) ----------")
    rows = [[name, value] for name, value in result.per_class.items()]
    print(evaluation.format_table(("Class", "mIoU"), rows + [["all sequences", result.overall]]))
    paths = youtube_objects_eval.write_youtube_objects_csvs(result, args.results)
    print(f"\nResults saved in {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
