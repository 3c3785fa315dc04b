"""Segmenting whole videos and DAVIS splits into folders of palette PNGs.

Each sequence is written into a hidden temporary folder beside its final one,
whose files join the final folder when the sequence is complete, followed by a
completion marker (`osmn_tf.outputs`): an interrupted run leaves no
half-written sequence, a rerun skips the sequences that are complete, and
files in the output folder that the tool did not write are never touched.
"""
import dataclasses
import pathlib
import resource
import time

import numpy as np

from osmn_tf import outputs
from osmn_tf.davis import DAVIS_PALETTE, DavisDataset, write_mask
from osmn_tf.prefetch import BackgroundWriter
from osmn_tf.tracking import object_ids_of


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




def segment_to_folder(segmenter, frames, names, first_mask, output_dir, palette=None, save_scores=False, on_frame=None,
                      annotations=None, annotation_paths=None):
    """Segments one video and writes `output_dir/<name>.png` per frame (and the scores if asked).

    Args:
        segmenter: an `osmn_tf.inference.VideoSegmenter`.
        frames: iterable of `uint8` RGB frames; names: one file name per frame.
        first_mask: frame 0's object ids.
        palette: the PNGs' palette; default the DAVIS palette.
        save_scores: also write `output_dir/<object id>/<name>.npy`, each
            object's probability at the working size (float16).
        on_frame: called as `on_frame(frame, labels)` after each frame (progress, overlays).
        annotations: `{frame index: object ids}` of later frames (`VideoLoop.segment`);
            `annotation_paths`, their files, name the file when a frame does not exist.
    Only the files written here replace files of `output_dir` (and those an
    earlier run listed in its completion marker); other files stay.
    Frames are read and preprocessed ahead, and masks written behind, in
    threads that overlap the network (`osmn_tf.prefetch`).
    Returns:
        the number of frames written.
    """
    palette = DAVIS_PALETTE if palette is None else palette
    count = 0

    def write(staging, name, result):
        write_mask(staging / f"{name}.png", result.labels, palette)
        if save_scores and result.probabilities is not None:
            for object_id, probability in zip(result.object_ids, result.probabilities):
                (staging / str(object_id)).mkdir(exist_ok=True)
                np.save(staging / str(object_id) / f"{name}.npy", probability.astype(np.float16))
        if on_frame is not None:
            on_frame(result.frame, result.labels)

    with outputs.staged_results(output_dir, save_scores) as staging, BackgroundWriter() as writer:
        # Results first: a live source names a frame only once it has handed it out.
        for result, name in zip(segmenter.track(frames, first_mask, annotations), names):
            writer.submit(lambda name=name, result=result: write(staging, name, result))
            count += 1
        beyond = sorted(i for i in (annotations or {}) if i >= count)
        if beyond:
            where = (annotation_paths or {}).get(beyond[0], f"the annotation of frame {beyond[0]}")
            raise ValueError(f"{where}: no such frame, the video has {count} frames")
    return count


def segment_davis(segmenter, dataset, output_dir, save_scores=False, overwrite=False, progress=None):
    """Segments every sequence of a `DavisDataset` split into `output_dir/<sequence>/<frame>.png`.

    The layout is the one the official DAVIS evaluation reads. Sequences whose
    folder is complete (`osmn_tf.outputs.is_complete`: every frame's mask,
    and the scores if asked) are skipped unless `overwrite`.

    Args:
        progress: optional callable `progress(event, **info)` for progress display.
    Returns:
        `SegmentationStats`.
    """
    if not isinstance(dataset, DavisDataset):
        raise TypeError(f"dataset must be a DavisDataset, got {type(dataset).__name__}")
    output_dir = pathlib.Path(output_dir)

    def read_masks(sequence):
        first_annotation = dataset.annotation_paths(sequence)[0]
        first_mask = dataset.read_annotation(first_annotation)
        if not object_ids_of(first_mask):
            raise ValueError(f"{first_annotation}: the first mask has no object")
        return first_mask, None, None

    videos = ((sequence, output_dir / sequence, dataset.frame_paths(sequence), read_masks)
              for sequence in dataset.sequences)
    return _segment_videos(segmenter, videos, save_scores, overwrite, progress)


def segment_youtube_vos(segmenter, dataset, output_dir, save_scores=False, overwrite=False, progress=None,
                        late_annotations=True):
    """Segments every video of a `youtube_vos.YouTubeVOS` split into `output_dir/Annotations/<video>/<frame>.png`.

    The challenge's submission layout: a mask for every frame of `JPEGImages`,
    in the palette of the video's annotations; each object starts at its
    first annotation (`first_appearances`); without `late_annotations`,
    only the objects of the first annotated frame are segmented. Complete
    videos are skipped unless `overwrite`, as `segment_davis` does.
    """
    from osmn_tf.annotations import image_size
    from osmn_tf.youtube_vos import starting_mask

    output_dir = pathlib.Path(output_dir) / "Annotations"

    def read_masks(video):
        annotations, palette = dataset.annotations(video)
        if not late_annotations:
            annotations = dict(list(annotations.items())[:1])
        first_mask, annotations = starting_mask(annotations, image_size(dataset.frame_paths(video)[0]))
        return first_mask, annotations, palette

    videos = ((video, output_dir / video, dataset.frame_paths(video), read_masks) for video in dataset.videos)
    return _segment_videos(segmenter, videos, save_scores, overwrite, progress)


def _segment_videos(segmenter, videos, save_scores, overwrite, progress):
    """The loop of the dataset modes: `videos` yields `(name, output folder, frame paths, read_masks)`.

    `read_masks(name)` gives `(first mask, later annotations or None, palette or None)`; it is called
    only for videos that are segmented, since folders that are complete already are skipped.
    """
    stats = SegmentationStats()
    for name, target, frame_paths, read_masks in videos:
        if not overwrite and outputs.is_complete(target, [f"{p.stem}.png" for p in frame_paths], save_scores):
            stats.sequences_skipped += 1
            if progress:
                progress("skip", sequence=name)
            continue
        first_mask, annotations, palette = read_masks(name)
        if progress:
            progress("start", sequence=name, frames=len(frame_paths))
        on_frame = (lambda frame, labels, name=name: progress("frame", sequence=name)) if progress else None
        tick = time.perf_counter()
        stats.frames += segment_to_folder(segmenter, _load_frames(frame_paths), [p.stem for p in frame_paths],
                                          first_mask, target, palette, save_scores, on_frame, annotations=annotations)
        stats.seconds += time.perf_counter() - tick
        stats.sequences_done += 1
    return stats


def _load_frames(paths):
    from osmn_tf.frames import load_rgb

    for path in paths:
        yield load_rgb(path)

