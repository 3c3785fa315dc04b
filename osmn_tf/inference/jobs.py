"""Segmenting whole videos and DAVIS splits into folders of palette PNGs.

Each sequence is written into a hidden temporary folder beside its final one,
whose files join the final folder when the sequence is complete, followed by a
record of what made them (`osmn_tf.utils.outputs`): an interrupted run leaves no
half-written sequence, a rerun skips the sequences that are complete for the
same inputs and refuses those that other inputs made (unless `overwrite`),
and files in the output folder that the tool did not write are never touched.
The dataset modes plan first (`plan`: what is complete, what may not be
replaced), without the model, then segment (`run_jobs`).
"""
import dataclasses
import io
import pathlib
import resource
import time

import numpy as np

from osmn_tf.data.annotations import image_size
from osmn_tf.data.davis import DAVIS_PALETTE, DavisDataset, write_mask
from osmn_tf.data.frames import resize_mask
from osmn_tf.data.prefetch import BackgroundWriter
from osmn_tf.inference.tracking import object_ids_of
from osmn_tf.utils import atomic, outputs


@dataclasses.dataclass
class SegmentationStats:
    """What a run did: frames the network segmented and the time it took."""

    sequences_done: int = 0
    sequences_skipped: int = 0
    frames: int = 0
    seconds: float = 0.0

    @property
    def frames_per_second(self):
        return self.frames / self.seconds if self.seconds else 0.0


def peak_memory_mb():
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while segmenting several videos; `stats` counts those finished (their results are kept)."""

    def __init__(self, stats):
        super().__init__()
        self.stats = stats


def segment_to_folder(segmenter, frames, names, first_mask, output_dir, palette=None, save_scores=False, on_frame=None,
                      annotations=None, annotation_paths=None, *, record=None, made_from=None, overwrite=False,
                      overlay=None, numbered=False, mask_size=None):
    """Segments one video and writes `output_dir/<name>.png` per frame (and the scores if asked).

    Args:
        segmenter: an `osmn_tf.inference.segmenter.VideoSegmenter`.
        frames: iterable of `uint8` RGB frames; names: one file name per frame.
        first_mask: frame 0's object ids.
        palette: the PNGs' palette; default the DAVIS palette.
        save_scores: also write `output_dir/<object id>/<name>.npy`, each
            object's probability at the working size (float16).
        on_frame: called as `on_frame(frame, labels)` after each frame (progress, overlays).
        annotations: `{frame index: object ids}` of later frames (`VideoLoop.segment`);
            `annotation_paths`, their files, name the file when a frame does not exist.
        record, made_from, overwrite, overlay: `osmn_tf.utils.outputs.commit_folder`'s: where the
            record is, what made the results, whether files this run did not write may be
            replaced, the overlay animation written beside.
        numbered: `frames` yields `(number in the video, frame)` (`VideoLoop.track`).
        mask_size: `(W, H)` the masks are written at (nearest); None: each frame's own size.
    Only the files written here replace files of `output_dir` (and those an
    earlier run listed in its record); other files stay.
    Frames are read and preprocessed ahead, and masks written behind, in
    threads that overlap the network (`osmn_tf.data.prefetch`).
    Returns:
        the number of frames written.
    """
    palette = DAVIS_PALETTE if palette is None else palette
    count, last = 0, -1

    def write(staging, name, result):
        labels = result.labels
        if mask_size is not None and labels.shape != (mask_size[1], mask_size[0]):
            labels = resize_mask(labels, mask_size)
        write_mask(staging / f"{name}.png", labels, palette)
        if save_scores and result.probabilities is not None:
            for object_id, probability in zip(result.object_ids, result.probabilities):
                (staging / str(object_id)).mkdir(exist_ok=True)
                # Through a buffer: numpy's own file writes fail without an errno ("N requested and M written").
                buffer = io.BytesIO()
                np.save(buffer, probability.astype(np.float16))
                with atomic.atomic_output(staging / str(object_id) / f"{name}.npy") as handle:
                    handle.write(buffer.getvalue())
        if on_frame is not None:
            on_frame(result.frame, result.labels)

    with outputs.staged_results(output_dir, save_scores, record=record, made_from=made_from, overwrite=overwrite,
                                overlay=overlay) as staging, BackgroundWriter() as writer:
        # Results first: a live source names a frame only once it has handed it out.
        for result, name in zip(segmenter.track(frames, first_mask, annotations, numbered=numbered), names):
            writer.submit(lambda name=name, result=result: write(staging, name, result))
            count += 1
            last = result.number if result.number is not None else count - 1
        if not count:
            where = getattr(frames, "path", None)
            raise ValueError(f"{where}: no frame to segment" if where else "no frame to segment")
        beyond = sorted(i for i in (annotations or {}) if i > last)
        if beyond:
            where = (annotation_paths or {}).get(beyond[0], f"the annotation of frame {beyond[0]}")
            raise ValueError(f"{where}: no such frame, the video has {last + 1} frames")
    return count


@dataclasses.dataclass
class VideoJob:
    """One video of a dataset: where its masks go and what they are made from.

    `read_masks()` gives `(first mask, later annotations or None, palette or None)`; it is called only
    for videos that are segmented. `record` is the path of the folder's record (None: inside it).
    `mask_size`: `(W, H)` the masks are written at, when not the frames' own.
    `source`: an `osmn_tf.data.video.FrameSource` (a frame folder or a video
    file) in place of `frame_paths`.
    """

    name: str
    target: pathlib.Path
    frame_paths: list
    read_masks: object
    made_from: dict = None
    record: pathlib.Path = None
    mask_size: tuple = None
    source: object = None

    @property
    def expected_masks(self):
        """The mask files a complete result holds; None for a video file (its length is known at the end)."""
        if self.source is not None:
            return None if self.source.names is None else [f"{name}.png" for name in self.source.names]
        return [f"{p.stem}.png" for p in self.frame_paths]

    def frames(self):
        """`(frames, names)`: the video's frames, read as the loop asks for them, and their names."""
        if self.source is not None:
            return self.source, self.source.frame_names()
        return load_frames(self.frame_paths), [p.stem for p in self.frame_paths]


def davis_jobs(dataset, output_dir, made_from=None):
    """A `VideoJob` per sequence of a `DavisDataset` split: `output_dir/<sequence>/<frame>.png`.

    `made_from`: what every sequence's results are made from besides its own
    frames and first annotation (weights, options). With frames of another
    resolution than the annotations (`DavisDataset.frame_resolution`, the
    release's `--use_full_res`), the first mask is resized (nearest) to the
    frames' size, so that the visual guide is cut from the larger frame, and
    the masks are written at the annotations' size.
    """
    if not isinstance(dataset, DavisDataset):
        raise TypeError(f"dataset must be a DavisDataset, got {type(dataset).__name__}")
    output_dir = pathlib.Path(output_dir)
    jobs = []
    for sequence in dataset.sequences:
        first_annotation = dataset.annotation_paths(sequence)[0]

        frame_paths = dataset.frame_paths(sequence)
        other_size = dataset.frame_resolution != dataset.resolution

        def read_masks(first_annotation=first_annotation, frame=frame_paths[0]):
            first_mask = dataset.read_annotation(first_annotation)
            if not object_ids_of(first_mask):
                raise ValueError(f"{first_annotation}: the first mask has no object")
            if other_size:
                first_mask = resize_mask(first_mask, image_size(frame))
            return first_mask, None, None

        own = None if made_from is None else {
            "frames": outputs.input_stamp(frame_paths[0].parent),
            "first mask": outputs.input_stamp(first_annotation, content=True), "DAVIS year": dataset.year,
            **made_from}
        jobs.append(VideoJob(sequence, output_dir / sequence, frame_paths, read_masks, own,
                             mask_size=image_size(first_annotation) if other_size else None))
    return jobs


def youtube_vos_jobs(dataset, output_dir, late_annotations=True, made_from=None):
    """A `VideoJob` per video of a `youtube_vos.YouTubeVOS` split: `output_dir/Annotations/<video>/<frame>.png`.

    The challenge's submission layout: a mask for every frame of `JPEGImages`,
    in the palette of the video's annotations; each object starts at its
    first annotation (`first_appearances`); without `late_annotations`,
    only the objects of the first annotated frame are segmented. The records
    live in `output_dir/.osmn-complete/<video>.json`, outside the tree a
    submission zips (the server takes PNGs only).
    """
    from osmn_tf.data.youtube_vos import starting_mask

    output_dir = pathlib.Path(output_dir)
    records = output_dir / outputs.RECORDS
    jobs = []
    for video in dataset.videos:
        def read_masks(video=video):
            annotations, palette = dataset.annotations(video)
            if not late_annotations:
                annotations = dict(list(annotations.items())[:1])
            first_mask, annotations = starting_mask(annotations, image_size(dataset.frame_paths(video)[0]))
            return first_mask, annotations, palette

        target = output_dir / "Annotations" / video
        record = outputs.record_file(target, records)
        legacy = target / outputs.MARKER  # where earlier versions kept it: moved out of the submission
        if legacy.is_file() and not record.exists():
            record.parent.mkdir(parents=True, exist_ok=True)
            legacy.replace(record)
        own = None if made_from is None else {
            "frames": outputs.input_stamp(dataset.image_dir / video),
            "annotations": outputs.input_stamp(dataset.annotation_dir / video, content=True),
            "first frame only": not late_annotations, **made_from}
        jobs.append(VideoJob(video, target, dataset.frame_paths(video), read_masks, own, record))
    return jobs


def youtube_objects_jobs(dataset, output_dir, made_from=None):
    """A `VideoJob` per sequence of a `youtube_objects.YouTubeObjects` root: `output_dir/<sequence>/<frame>.png`.

    Each sequence starts from its first frame's label (its one object, id 1),
    as the release's `osmn_eval_youtube.py` does; `youtube_objects_eval` scores the result.
    """
    output_dir = pathlib.Path(output_dir)
    jobs = []
    for sequence in dataset.sequences:
        first_label = dataset.first_label_path(sequence)

        def read_masks(first_label=first_label):
            first_mask = dataset.read_label(first_label)
            if not first_mask.any():
                raise ValueError(f"{first_label}: the first label has no object")
            return first_mask, None, None

        frame_paths = dataset.frame_paths(sequence)
        own = None if made_from is None else {
            "frames": outputs.input_stamp(frame_paths[0].parent),
            "first mask": outputs.input_stamp(first_label, content=True), **made_from}
        jobs.append(VideoJob(sequence, output_dir / sequence, frame_paths, read_masks, own))
    return jobs


def plan(jobs, save_scores=False, overwrite=False):
    """`(jobs to segment, jobs complete already)`, before any work; refuses what may not be replaced.

    Without `overwrite`, a video whose complete results other inputs made,
    or whose folder holds a file of this run's names that no record lists,
    stops the whole run (OutputError naming the folder or file).
    """
    todo, skipped = [], []
    for job in jobs:
        if not overwrite:
            outputs.check_made_from(job.target, job.made_from, job.record)
            if outputs.is_complete(job.target, job.expected_masks, save_scores, job.record):
                skipped.append(job)
                continue
            outputs.refuse_foreign(job.target, job.expected_masks, job.record)
        todo.append(job)
    return todo, skipped


def run_jobs(segmenter, todo, save_scores=False, overwrite=False, progress=None, skipped=()):
    """Segments the `VideoJob`s `todo` (`plan`'s), each into its folder; returns `SegmentationStats`.

    `progress(event, sequence, frames=None)` is told of each skipped video,
    each start and each frame. Ctrl-C raises `Interrupted` with the stats of
    the videos finished.
    """
    stats = SegmentationStats(sequences_skipped=len(skipped))
    for job in skipped:
        if progress:
            progress("skip", sequence=job.name)
    try:
        for job in todo:
            first_mask, annotations, palette = job.read_masks()
            if progress:
                progress("start", sequence=job.name, frames=len(job.frame_paths))
            on_frame = (lambda frame, labels, name=job.name: progress("frame", sequence=name)) if progress else None
            tick = time.perf_counter()
            stats.frames += segment_to_folder(
                segmenter, *job.frames(), first_mask, job.target, palette, save_scores, on_frame,
                annotations=annotations, record=job.record, made_from=job.made_from, overwrite=overwrite,
                mask_size=job.mask_size)
            stats.seconds += time.perf_counter() - tick
            stats.sequences_done += 1
    except KeyboardInterrupt:
        raise Interrupted(stats) from None
    return stats


def segment_davis(segmenter, dataset, output_dir, save_scores=False, overwrite=False, progress=None, made_from=None):
    """Segments every sequence of a `DavisDataset` split into `output_dir/<sequence>/<frame>.png`.

    The layout is the one the official DAVIS evaluation reads. Sequences whose
    folder is complete for the same inputs (`plan`) are skipped unless `overwrite`.

    Args:
        progress: optional callable `progress(event, **info)` for progress display.
        made_from: what the results are made from besides each sequence's own inputs (weights, options).
    Returns:
        `SegmentationStats`.
    """
    todo, skipped = plan(davis_jobs(dataset, output_dir, made_from), save_scores, overwrite)
    return run_jobs(segmenter, todo, save_scores, overwrite, progress, skipped)


def segment_youtube_vos(segmenter, dataset, output_dir, save_scores=False, overwrite=False, progress=None,
                        late_annotations=True, made_from=None):
    """Segments every video of a `youtube_vos.YouTubeVOS` split into `output_dir/Annotations/<video>/`.

    The layout and where the records live: `youtube_vos_jobs`. Complete videos are skipped unless
    `overwrite`, as `segment_davis` does.
    """
    todo, skipped = plan(youtube_vos_jobs(dataset, output_dir, late_annotations, made_from), save_scores, overwrite)
    return run_jobs(segmenter, todo, save_scores, overwrite, progress, skipped)


def load_frames(paths):
    """The frames of `paths` (image files), read one at a time as the video loop asks for them."""
    from osmn_tf.data.frames import load_rgb

    for path in paths:
        yield load_rgb(path)
