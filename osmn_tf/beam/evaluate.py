"""`EvaluateDavis`: J and F of a DAVIS results folder, a sequence per element, the two CSVs at the end."""
import apache_beam as beam

from osmn_tf.evaluation.metrics import BOUND_TH


class EvaluateDavis(beam.PTransform):
    """Scores the sequences of the input PCollection (names) as `osmn_tf.evaluation.evaluate_davis` does.

    The sequences are scored in parallel; one last step puts them in the
    split's order and writes `global_results-<split>.csv` and
    `per-sequence_results-<split>.csv` into `results_dir` (the files
    `tools/evaluate.py` writes, byte for byte). Its output is the path of
    the global CSV. `results_dir` must be readable and writable where the
    workers run (a local or shared path).
    """

    def __init__(self, davis_root, results_dir, split="val", year=2017, decay_uint8_wrap=True, bound_th=BOUND_TH):
        super().__init__()
        self.davis_root, self.results_dir, self.split, self.year = str(davis_root), str(results_dir), split, year
        self.decay_uint8_wrap, self.bound_th = decay_uint8_wrap, bound_th

    def expand(self, sequences):
        return (sequences
                | "Spread sequences" >> beam.Reshuffle()
                | "Score" >> beam.Map(self._score)
                | "Gather" >> beam.combiners.ToList()
                | "Write CSVs" >> beam.Map(self._write))

    def _dataset(self):
        from osmn_tf.beam.videos import _davis

        return _davis(self.davis_root, self.year, self.split, False)

    def _score(self, sequence):
        from osmn_tf.evaluation.davis import evaluate_davis_sequence

        return sequence, evaluate_davis_sequence(self._dataset(), self.results_dir, sequence, self.decay_uint8_wrap,
                                                 self.bound_th)

    def _write(self, scored):
        from osmn_tf.evaluation.davis import davis_results
        from osmn_tf.evaluation.reports import write_davis_csvs

        order = {name: i for i, name in enumerate(self._dataset().sequences)}
        results = davis_results([result for _, result in sorted(scored, key=lambda item: order[item[0]])])
        return str(write_davis_csvs(results, self.results_dir, self.split)[0])
