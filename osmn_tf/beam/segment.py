"""`SegmentVideos`: a Beam PTransform from `VideoRef`s to each video's masks, written through `FileSystems`.

Each video is segmented into a temporary folder on the worker by the code
`tools/segment.py` runs (`osmn_tf.inference.jobs.segment_to_folder`), so
its files are the same bytes; then they are published to the output as
`osmn_tf.utils.outputs.commit_folder` does it locally: a record that is not
complete first (listing every file that may be ours), each file written
under a temporary name and renamed, the complete record last. A worker
killed at any point leaves no video that looks complete; the next run
redoes it. On a local output the records are the ones `tools/segment.py`
reads, so either tool resumes the other's run.
"""
import json
import posixpath
import tempfile
import time
import uuid

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

from osmn_tf.utils.outputs import MARKER

FAILED = "failed"
"""The tag of `SegmentVideos`' dead-letter output: `{"video": name, "error": reason}` per failed video."""

DONE = "done"
"""The tag of its main output: `{"video": name, "frames": n, "seconds": s}` per video segmented or skipped."""

NAMESPACE = "osmn_tf"
COUNTERS = ("videos", "frames", "videos_skipped", "videos_failed")


class SegmentVideos(beam.PTransform):
    """Segments every `VideoRef` of the input PCollection into `output`; returns its `DONE` and `FAILED` outputs.

    Args:
        options: an `osmn_tf.inference.factory.SegmenterOptions` (the weights must
            be readable where the workers run).
        output: the output folder, a local path or a URL Beam's `FileSystems` writes.
        made_from: what every video's results are made from besides its own
            inputs (weights, options), kept in each record as `tools/segment.py` keeps it.
        save_scores: also write each object's probabilities (`<object id>/<frame>.npy`).
        overwrite: redo complete videos, and replace files no record lists.
        quiet: the workers keep TensorFlow's start-up lines off their stderr (`osmn_tf.utils.quiet`).
    """

    def __init__(self, options, output, made_from=None, save_scores=False, overwrite=False, quiet=True):
        super().__init__()
        self._fn = SegmentVideoFn(options, output, made_from, save_scores, overwrite, quiet)

    def expand(self, refs):
        # Reshuffle: one video per element spread over the workers, whatever bundles the source made.
        return (refs | "Spread videos" >> beam.Reshuffle()
                | "Segment" >> beam.ParDo(self._fn).with_outputs(FAILED, main=DONE))


class SegmentVideoFn(beam.DoFn):
    """Segments one video per element; the model loads once per worker process (`setup`)."""

    def __init__(self, options, output, made_from=None, save_scores=False, overwrite=False, quiet=True):
        self.options, self.output, self.made_from = options, str(output), made_from
        self.save_scores, self.overwrite, self.quiet = save_scores, overwrite, quiet
        self.counters = {name: Metrics.counter(NAMESPACE, name) for name in COUNTERS}
        self.milliseconds_per_frame = Metrics.distribution(NAMESPACE, "milliseconds_per_frame")
        self.worker_memory = Metrics.distribution(NAMESPACE, "worker_peak_memory_mib")
        self.segmenter = None

    def setup(self):
        from osmn_tf.inference.factory import build_segmenter
        from osmn_tf.utils.quiet import quiet_tensorflow

        quiet_tensorflow(verbose=not self.quiet)
        self.segmenter = build_segmenter(self.options)

    def process(self, ref):
        try:
            result = self._segment(ref)
        except Exception as error:  # the video's: a damaged frame, a bad mask, an unwritable output
            self.counters["videos_failed"].inc()
            yield beam.pvalue.TaggedOutput(FAILED, {"video": ref.name, "error": f"{type(error).__name__}: {error}"})
            return
        yield result

    def _segment(self, ref):
        from osmn_tf.inference.jobs import peak_memory_mb, segment_to_folder

        with tempfile.TemporaryDirectory(prefix="osmn-beam-") as local:
            job = ref.job(local, self.made_from)
            target = _relative(job.target, local)
            record = _relative(job.record, local) if job.record is not None else posixpath.join(target, MARKER)
            published = Published(self.output, target, record)
            if not self.overwrite:
                published.check_made_from(job.made_from)
                if published.is_complete(job.expected_masks, self.save_scores):
                    self.counters["videos_skipped"].inc()
                    return {"video": ref.name, "frames": 0, "seconds": 0.0, "skipped": True}
            first_mask, annotations, palette = job.read_masks()
            frames, names = job.frames()
            tick = time.perf_counter()
            count = segment_to_folder(self.segmenter, frames, names, first_mask, job.target, palette,
                                      self.save_scores, annotations=annotations, record=job.record,
                                      made_from=job.made_from, mask_size=job.mask_size)
            seconds = time.perf_counter() - tick
            local_record = job.record if job.record is not None else job.target / MARKER
            published.publish(job.target, local_record, self.overwrite)
        self.counters["videos"].inc()
        self.counters["frames"].inc(count)
        self.milliseconds_per_frame.update(int(1000 * seconds / count))
        self.worker_memory.update(int(peak_memory_mb()))
        return {"video": ref.name, "frames": count, "seconds": seconds, "skipped": False}


class Published:
    """A video's results in the output (`FileSystems`): its folder `target` and its `record`, relative to `root`."""

    def __init__(self, root, target, record):
        self.folder = FileSystems.join(root, *target.split("/"))
        self.record = FileSystems.join(root, *record.split("/"))

    def _path(self, name):
        return FileSystems.join(self.folder, *name.split("/"))

    def read_record(self):
        if not FileSystems.exists(self.record):
            return None
        try:
            with FileSystems.open(self.record, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                record = json.loads(handle.read())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and isinstance(record.get("files"), list) else None

    def check_made_from(self, made_from):
        """Refuses results other inputs made (`outputs.check_made_from`'s rule), naming the difference."""
        from osmn_tf.utils.outputs import check_record_made_from

        check_record_made_from(self.read_record(), made_from, self.folder)

    def is_complete(self, expected_masks=None, scores=False):
        """`outputs.is_complete` through `FileSystems`: a complete record, its files and every expected mask."""
        record = self.read_record()
        if record is None or not record.get("complete", True) or (scores and not record.get("scores")):
            return False
        files = set(record["files"])
        if expected_masks is not None and not set(expected_masks) <= files:
            return False
        return all(FileSystems.exists(self._path(name)) for name in files)

    def publish(self, local_folder, local_record, overwrite=False):
        """Copies a finished local result here as `outputs.commit_folder` moves one: see the module docstring."""
        from osmn_tf.utils.outputs import OutputError

        final = json.loads(local_record.read_text())
        new_files = final["files"]
        old = self.read_record() or {}
        listed = set(old.get("files", []))
        if not overwrite:
            for name in new_files:
                if name not in listed and FileSystems.exists(self._path(name)):
                    raise OutputError(f"{self._path(name)}: exists and was not written by this tool (no record of "
                                      f"it in {self.folder}); move it away, or use --overwrite to replace it")
        self._write(self.record, json.dumps({**final, "files": sorted(listed | set(new_files)),
                                             "complete": False}).encode() + b"\n")
        stale = [self._path(n) for n in sorted(listed - set(new_files)) if ".." not in n.split("/")]
        stale = [path for path in stale if FileSystems.exists(path)]
        if stale:
            FileSystems.delete(stale)
        for name in new_files:
            self._write(self._path(name), (local_folder / name).read_bytes())
        self._write(self.record, local_record.read_bytes())

    @staticmethod
    def _write(path, data):
        """`data` at `path` under a temporary name first: a reader never sees a part of it."""
        directory, name = posixpath.split(path) if "://" in path else _split_local(path)
        temporary = FileSystems.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.partial")
        with FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            handle.write(data)
        FileSystems.rename([temporary], [path])


def metrics_summary(result):
    """From a finished pipeline's result: `{counter: total}` of `COUNTERS`, the mean `milliseconds_per_frame`
    and the largest `worker_peak_memory_mib` (None when no video was segmented)."""
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    summary = {name: 0 for name in COUNTERS}
    summary.update(milliseconds_per_frame=None, worker_peak_memory_mib=None)
    for counter in found["counters"]:
        summary[counter.key.metric.name] += counter.committed or 0
    merged = {}
    for distribution in found["distributions"]:  # one per step and worker on some runners
        value = distribution.committed
        if value is not None and value.count:
            total, count, largest = merged.get(distribution.key.metric.name, (0, 0, 0))
            merged[distribution.key.metric.name] = (total + value.sum, count + value.count, max(largest, value.max))
    if "milliseconds_per_frame" in merged:
        total, count, _ = merged["milliseconds_per_frame"]
        summary["milliseconds_per_frame"] = total / count
    if "worker_peak_memory_mib" in merged:
        summary["worker_peak_memory_mib"] = merged["worker_peak_memory_mib"][2]
    return summary


def _relative(path, root):
    import pathlib

    return pathlib.Path(path).relative_to(root).as_posix()


def _split_local(path):
    import os

    return os.path.split(path)
