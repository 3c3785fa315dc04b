"""Segmenting and evaluating a whole video corpus on Apache Beam (the `beam` extra).

    pip install -e ".[beam]"

`SegmentVideos` takes a PCollection of `VideoRef`s (a video of a DAVIS or
YouTube-VOS split, or a frame folder or video file with its first mask) and
writes each video's masks as `tools/segment.py` does, through Beam's
`FileSystems` (local paths, and `gs://`, `s3://`, `hdfs://` where the Beam
installation has them). The video is the unit of parallelism: its frames
depend on each other. Each worker process loads the model once. A video
complete already (its record) is skipped; one that fails goes to the
dead-letter output with its reason; a killed worker leaves nothing that looks
complete (masks are written under temporary names and the record last).
`EvaluateDavis` scores a DAVIS results folder, a sequence per element.

`tools/segment.py --runner` and `tools/evaluate.py --runner` build these
pipelines; `docs/scale.md` says how to run them on Flink, Spark and Dataflow.
"""
from osmn_tf.utils.extras import require

require("apache_beam", "beam", "osmn_tf.beam (Apache Beam pipelines)")

from osmn_tf.beam.evaluate import EvaluateDavis  # noqa: E402
from osmn_tf.beam.segment import FAILED, SegmentVideos, metrics_summary  # noqa: E402
from osmn_tf.beam.videos import VideoRef, dataset_refs, read_video_list  # noqa: E402

__all__ = ["EvaluateDavis", "FAILED", "SegmentVideos", "VideoRef", "dataset_refs", "metrics_summary",
           "read_video_list"]
