"""A whole segmentation run as `tools/segment.py` makes it: outputs checked first, progress shown, a summary.

`segment_jobs` segments into folders; this module adds what a person at a
terminal needs around it: one writer per output folder, refusing bad or
foreign outputs and answering "complete already" before the model (and
TensorFlow) loads, progress bars, a closing line with the speed and memory,
and one line when Ctrl-C ends the run.
"""
import contextlib
import dataclasses
import os
import pathlib
import time

import numpy as np

from osmn_tf.data import davis, live
from osmn_tf.data.frames import WORKING_SIZE
from osmn_tf.inference import jobs as segment_jobs
from osmn_tf.inference.tracking import annotated_labels
from osmn_tf.utils import outputs

OVERLAY_SUFFIXES = (".mp4", ".gif", ".avi", ".mkv", ".mov", ".webm")
"""What `--overlay` may be: the containers the animation writer (imageio's ffmpeg, or GIF) writes."""


@dataclasses.dataclass
class SegmentRequest:
    """What to segment, where to, and how.

    One video: `frames` (a folder of frames or a video file) and `first_mask`
    (a PNG of frame 0's object ids) and/or `annotations` (a folder of PNGs
    named like the frames, any subset: objects that join later, corrections),
    optionally an `overlay` animation. Or a DAVIS split: `davis_root`, `year`,
    `split` (optionally only `sequences`). Or a YouTube-VOS split:
    `youtube_vos_root` and `split` (written as `output/Annotations/<video>/`;
    `first_frame_only`: objects annotated after the first annotated frame are left out).
    Or the release's YouTube-Objects layout: `youtube_objects_root` (written
    as `output/<sequence>/`; the release's working size is
    `youtube_objects.WORKING_SIZE`, 640 x 360).
    `frames` may be live (`osmn_tf.data.live`: `-` for standard input, a URL, a
    camera, a named pipe): `frame_size` for raw frames on standard input,
    `input_format` for ffmpeg's `-f`, `max_lag` to drop frames rather than
    fall behind; Ctrl-C then ends the stream and the masks so far are kept.
    A folder of results records what made them (`made_from`): a rerun with
    the same inputs skips it, one with others is refused unless `overwrite`.
    `weights` is a `.keras` file or a TF1 checkpoint prefix. `int8_model`:
    a folder `osmn_tf.quantization.Int8FrameNetwork.save` wrote from the same
    weights and working size, which then runs the per-frame network.
    `crf`, `crf_merge`: the release's dense CRF on every object's mask
    (`VideoSegmenter`'s `crf` and `crf_merge`). `online_finetune` steps of
    `OnlineFinetuning` (`finetune_lr`, `finetune_scales`) per video, or with
    `finetune_per_object` per object at its first annotation. `vg_pad_ratio`,
    `vg_keep_aspect_ratio`, `bbox_sup`: how visual guides are cut (`VideoSegmenter`'s
    `guide_pad_ratio`, `guide_keep_aspect_ratio`, `guide_bbox_sup`).
    `use_original_mask`: masktrack's dilated-mask spatial guide. `finetune_options`:
    `OnlineFinetuning`'s other fields (`visual_augment` and `spatial_perturb`
    as dicts of their fields). `use_full_res`:
    a DAVIS split's frames from `JPEGImages/Full-Resolution`.
    """

    weights: str
    output: str
    frames: str = None
    first_mask: str = None
    annotations: str = None
    youtube_vos_root: str = None
    youtube_objects_root: str = None
    frame_size: tuple = None
    input_format: str = None
    max_lag: int = None
    first_frame_only: bool = False
    overlay: str = None
    fps: float = None
    davis_root: str = None
    year: int = 2017
    split: str = "val"
    sequences: list = None
    save_scores: bool = False
    working_size: tuple = WORKING_SIZE
    overwrite: bool = False
    online_finetune: int = 0
    finetune_lr: float = 1e-5
    finetune_scales: tuple = (1.0,)
    finetune_per_object: bool = False
    vg_pad_ratio: float = 0.03
    vg_keep_aspect_ratio: bool = False
    bbox_sup: bool = False
    use_original_mask: bool = False
    use_full_res: bool = False
    finetune_options: dict = None
    precision: str = "float32"
    jit_compile: bool = False
    int8_model: str = None
    crf: bool = False
    crf_merge: str = "refined"


class Interrupted(Exception):
    """Ctrl-C ended a run; the message says what was kept."""


def precision_advice(requested, used):
    """One line on the precision a run uses, and on this CPU whether another would be faster."""
    from osmn_tf.utils.precision import AUTO, auto_precision, cpu_bfloat16_flags, cpu_info

    if requested == AUTO:
        return f"precision auto: {used} on this CPU ({cpu_info()[0]})"
    faster = auto_precision()
    if used == "float32" and faster != used:
        return (f"precision float32; this CPU has {', '.join(cpu_bfloat16_flags()).upper()}: --precision auto "
                f"({faster}) runs the network faster, its masks agreeing with float32 on >= 99% of pixels "
                "(docs/performance.md)")
    return f"precision {used}"


def segment(request, progress=True, log=print):
    """Runs `request`; returns `segment_jobs.SegmentationStats` (None when the video was complete already).

    Raises `outputs.OutputError`, `ValueError`, `FileNotFoundError`,
    `OSError` or `errors.CheckpointError` for bad input, each naming
    the file or option; a bad or foreign output, and other inputs' results,
    are refused before any work, and a complete result is found without
    loading the model. Another process writing the same output is refused.
    Ctrl-C raises `Interrupted`, saying what was kept.
    """
    r = request
    outputs.check_output_folder(r.output, [r.frames, r.first_mask, r.annotations, r.davis_root,
                                           r.youtube_vos_root, r.youtube_objects_root, r.weights, r.int8_model])
    if r.overlay and pathlib.Path(r.overlay).suffix.lower() not in OVERLAY_SUFFIXES:
        raise outputs.OutputError(f"--overlay {r.overlay}: not a video file name; give one ending in "
                                  f"{', '.join(OVERLAY_SUFFIXES[:-1])} or {OVERLAY_SUFFIXES[-1]}")
    if r.crf:
        from osmn_tf.utils.extras import require

        require("pydensecrf.densecrf", "crf", "--crf (the dense CRF)")  # before any work
    with outputs.folder_lock(r.output):
        try:
            if r.davis_root or r.youtube_vos_root or r.youtube_objects_root:
                return _segment_dataset(r, progress, log)
            return _segment_one_video(r, progress, log)
        except KeyboardInterrupt as interrupt:
            done = getattr(getattr(interrupt, "stats", None), "sequences_done", 0)  # `segment_jobs.Interrupted`
            if done:
                kind = ("sequence" if r.davis_root else "video") + ("" if done == 1 else "s")
                raise Interrupted(f"the {done} {kind} finished {'is' if done == 1 else 'are'} in {r.output}; run "
                                  "again to resume") from None
            if r.davis_root or r.youtube_vos_root or r.youtube_objects_root:
                raise Interrupted(f"{r.output} is unchanged; run again to resume") from None
            raise Interrupted(f"{r.output} is unchanged (a video's masks are written once it is finished); run "
                              "again to segment it") from None


def beam_options(runner, beam_args, verbose=False):
    """Beam's `PipelineOptions` for `runner` and the user's `beam_args`; without `verbose`, Beam and its
    workers log only errors (their INFO lines and start-up warnings would bury the tool's own)."""
    import logging

    from apache_beam.options.pipeline_options import PipelineOptions

    args = [f"--runner={runner}", *beam_args]
    if not verbose:
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        if not any(a.startswith("--default_sdk_harness_log_level") for a in beam_args):
            args.append("--default_sdk_harness_log_level=ERROR")
    return PipelineOptions(args)


def segment_on_beam(r, runner, beam_args=(), videos=None, log=print, verbose=False):
    """Runs `r` (a DAVIS or YouTube-VOS split, or the `videos` list) on Apache Beam's `runner`; returns the
    number of videos that failed, each printed with its reason (the others are complete).

    `beam_args`: Beam's own pipeline options (`--direct_num_workers 2`, `--flink_master`, ...).
    The outputs, records and masks are `segment`'s; `osmn_tf.beam` says how they are written.
    """
    import json

    from osmn_tf.utils.extras import require

    require("apache_beam", "beam", "--runner (Apache Beam)")
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from osmn_tf import beam as osmn_beam

    local = "://" not in r.output
    if local:
        outputs.check_output_folder(r.output, [r.davis_root, r.youtube_vos_root, r.weights, videos])
    if videos:
        refs = osmn_beam.read_video_list(videos)
    else:
        if r.davis_root:
            _davis_split(r)  # unknown --sequences are named before the pipeline starts
        refs = osmn_beam.dataset_refs(r.davis_root, r.youtube_vos_root, r.split, r.year, r.sequences, r.use_full_res,
                                      r.first_frame_only)
    made_from = _made_from(r)
    failed_file = FileSystems.join(r.output, ".osmn-beam", "failed.jsonl")
    pipeline = beam.Pipeline(options=beam_options(runner, beam_args, verbose))
    results = (pipeline | "Videos" >> beam.Create(refs)
               | "Segment videos" >> osmn_beam.SegmentVideos(segmenter_options(r), r.output, made_from,
                                                            r.save_scores, r.overwrite, quiet=not verbose))
    _ = (results[osmn_beam.FAILED] | "As JSON" >> beam.Map(json.dumps)
         | "Dead letters" >> beam.io.WriteToText(failed_file[:-len(".jsonl")], file_name_suffix=".jsonl",
                                                 shard_name_template=""))
    log(f"{len(refs)} videos on {runner}")
    tick = time.perf_counter()
    with outputs.folder_lock(r.output) if local else contextlib.nullcontext():
        result = pipeline.run()
        result.wait_until_finish()
    seconds = time.perf_counter() - tick
    counts = osmn_beam.metrics_summary(result)
    with FileSystems.open(failed_file) as handle:
        failures = [json.loads(line) for line in handle.read().decode().splitlines() if line.strip()]
    for failure in failures:
        log(f"{failure['video']}: failed: {failure['error']}")
    log(f"{counts['videos']} videos segmented, {counts['videos_skipped']} skipped, {counts['videos_failed']} failed; "
        f"{counts['frames']} frames in {seconds:.1f} s ({counts['frames'] / seconds:.2f} frames/s, "
        f"{3600 * counts['videos'] / seconds:.0f} videos/hour"
        + (f", worker peak memory {counts['worker_peak_memory_mib']} MiB" if counts["worker_peak_memory_mib"] else "")
        + f"); masks in {r.output}"
        + (f"; failures in {failed_file}" if failures else ""))
    return len(failures)


def _made_from(r):
    """What every result of `r` is made from besides its video's own inputs: the network and the options."""
    return {
        "weights": outputs.input_stamp(r.weights),
        "working size": f"{r.working_size[0]}x{r.working_size[1]}",
        "precision": r.precision,
        "XLA": bool(r.jit_compile),
        "INT8 model": outputs.input_stamp(r.int8_model) if r.int8_model else None,
        "online fine-tuning steps": r.online_finetune,
        "fine-tuning learning rate": r.finetune_lr if r.online_finetune else None,
        "fine-tuning scales": list(r.finetune_scales) if r.online_finetune else None,
        "fine-tuning per object": bool(r.finetune_per_object) if r.online_finetune else None,
        "dense CRF": f"{r.crf_merge} merge" if r.crf else None,
        # None when the release's: records made before these options match.
        "visual guide pad ratio": None if r.vg_pad_ratio == 0.03 else r.vg_pad_ratio,
        "visual guide keeps aspect ratio": True if r.vg_keep_aspect_ratio else None,
        "visual guide unmasked (bbox_sup)": True if r.bbox_sup else None,
        "spatial guide: dilated previous mask": True if r.use_original_mask else None,
    }


def segmenter_options(r):
    """The `osmn_tf.inference.factory.SegmenterOptions` of a `SegmentRequest`."""
    from osmn_tf.inference.factory import SegmenterOptions

    adapt = None
    if r.online_finetune:
        from osmn_tf.data.guides import SpatialGuidePerturbation, VisualGuideAugmentation
        from osmn_tf.training.finetune import OnlineFinetuning

        options = dict(r.finetune_options or {})
        if "visual_augment" in options:
            options["visual_augment"] = VisualGuideAugmentation(**options["visual_augment"])
        if "spatial_perturb" in options:
            options["spatial_perturb"] = SpatialGuidePerturbation(**options["spatial_perturb"])
        adapt = OnlineFinetuning(r.online_finetune, learning_rate=r.finetune_lr, scales=r.finetune_scales, **options)
    return SegmenterOptions(
        r.weights, tuple(r.working_size), r.precision, r.jit_compile, r.int8_model, r.crf, r.crf_merge, adapt,
        r.finetune_per_object, r.vg_pad_ratio, r.vg_keep_aspect_ratio, r.bbox_sup, r.use_original_mask)


def _segmenter(r, log):
    """The `VideoSegmenter` of `r`: the model loaded (TensorFlow imported) only now."""
    from osmn_tf.inference.factory import build_segmenter

    segmenter = build_segmenter(segmenter_options(r))
    if segmenter.pad and segmenter.network_size != tuple(r.working_size):
        log(f"lite: the network sees the working size padded to {segmenter.network_size[0]}x"
            f"{segmenter.network_size[1]}")
    log(f"per-frame network in INT8 ({r.int8_model})" if r.int8_model
        else precision_advice(r.precision, segmenter.precision))
    return segmenter


def _summary(segmenter, stats, log):
    width, height = segmenter.working_size
    log(f"{stats.frames} frames at {stats.frames_per_second:.2f} frames/s (end to end, {width}x{height}); "
        f"peak memory {segment_jobs.peak_memory_mb():.0f} MiB")


def _segment_dataset(r, progress, log):
    made_from = _made_from(r)
    if r.davis_root:
        kind, where = "sequences", r.output
        jobs = segment_jobs.davis_jobs(_davis_split(r), r.output, made_from)
    elif r.youtube_objects_root:
        from osmn_tf.data.youtube_objects import YouTubeObjects

        kind, where = "sequences", r.output
        jobs = segment_jobs.youtube_objects_jobs(YouTubeObjects(r.youtube_objects_root), r.output, made_from)
    else:
        from osmn_tf.data.youtube_vos import YouTubeVOS

        kind, where = "videos", os.path.join(r.output, "Annotations")
        jobs = segment_jobs.youtube_vos_jobs(YouTubeVOS(r.youtube_vos_root, r.split), r.output,
                                             late_annotations=not r.first_frame_only, made_from=made_from)
    todo, skipped = segment_jobs.plan(jobs, r.save_scores, r.overwrite)
    if not todo:
        for job in skipped:
            log(f"{job.name}: complete already, skipped")
        log(f"0 {kind} segmented, {len(skipped)} skipped; masks in {where}")
        return segment_jobs.SegmentationStats(sequences_skipped=len(skipped))
    segmenter = _segmenter(r, log)
    with DavisProgress(len(jobs), disable=not progress) as bars:
        stats = segment_jobs.run_jobs(segmenter, todo, r.save_scores, r.overwrite, bars, skipped)
    log(f"{stats.sequences_done} {kind} segmented, {stats.sequences_skipped} skipped; masks in {where}")
    _summary(segmenter, stats, log)
    return stats


def _segment_one_video(r, progress, log):
    video = _open_video(r, log)
    if video is None:
        log(f"{r.output} is complete already; skipping it (--overwrite to redo)")
        return None
    segmenter = _segmenter(r, log)
    source = video[0]
    stats = _segment_video(r, segmenter, *video, progress=progress)
    log(f"wrote {stats.frames} masks to {r.output}" + (f" and the overlay {r.overlay}" if r.overlay else ""))
    if isinstance(source, live.LiveSource):
        log(f"{source.dropped} frames dropped" + (f" to stay within --max-lag {r.max_lag}" if r.max_lag else ""))
        if source.partial_frame():
            log(f"warning: {source.partial_frame()}")
    _summary(segmenter, stats, log)
    return stats


def _davis_split(r):
    from osmn_tf.data.davis import DavisDataset

    # The release's --use_full_res: frames from Full-Resolution, annotations (and the masks written) at 480p.
    dataset = DavisDataset(r.davis_root, r.year, r.split, frame_resolution="Full-Resolution" if r.use_full_res else None)
    if r.sequences:
        unknown = sorted(set(r.sequences) - set(dataset.sequences))
        if unknown:
            raise ValueError(f"--sequences {unknown} are not in {dataset.split_file}")
        dataset.sequences = [s for s in dataset.sequences if s in r.sequences]
    return dataset


def _open_video(r, log):
    """`(frame source, first mask, palette, annotations, files, made_from)`, or None when complete already.

    Everything that may refuse the run is checked before a live stream is
    opened (it may block until the stream starts): the output's record, the
    overlay, files of ours that would replace a user's.
    """
    from osmn_tf.data.annotations import annotation_files
    from osmn_tf.data.video import open_frames

    live_input = live.is_live(r.frames)
    overlay = os.path.abspath(r.overlay) if r.overlay else None
    if r.overlay:
        outputs.check_output_file(r.overlay, "--overlay", overwrite=True)
        if os.path.exists(r.overlay) and os.path.exists(r.frames) and os.path.samefile(r.overlay, r.frames):
            raise outputs.OutputError(f"--overlay {r.overlay}: is the input video (--frames)")
    if not live_input and (r.frame_size or r.max_lag or r.input_format):
        raise ValueError(f"--frame-size, --input-format and --max-lag are for live input (-, a URL, a camera), "
                         f"not {r.frames}")
    made_from = {
        "frames": outputs.live_stamp(r.frames) if live_input else outputs.input_stamp(r.frames),
        "first mask": outputs.input_stamp(r.first_mask, content=True) if r.first_mask else None,
        "annotations": outputs.input_stamp(r.annotations, content=True) if r.annotations else None,
        **_made_from(r),
    }
    record = outputs.read_marker(r.output) or {}
    source = None if live_input else open_frames(r.frames)
    if not r.overwrite:
        outputs.check_made_from(r.output, made_from, name=f"--output {r.output}")
        expected = None if source is None or source.names is None else [f"{n}.png" for n in source.names]
        overlay_done = overlay is None or (record.get("overlay") == overlay and os.path.isfile(overlay))
        if source is not None and overlay_done and outputs.is_complete(r.output, expected, r.save_scores):
            return None
        if overlay and os.path.exists(overlay) and overlay not in record.get("overlays", []):
            raise outputs.OutputError(f"--overlay {r.overlay}: exists and this tool did not write it; use "
                                      "--overwrite to replace it")
        if expected is not None:
            outputs.refuse_foreign(r.output, expected)
        elif live_input and os.path.isdir(r.output):
            # A live stream's masks are named 00000.png, ... up to an end not known yet: any such file
            # not ours is refused now, not after the stream (a video file's are refused when written).
            outputs.refuse_foreign(r.output, sorted(p.name for p in pathlib.Path(r.output).glob("*.png")
                                                    if p.stem.isdigit()))
    if live_input:
        keep = annotation_files(r.annotations).keys() if r.annotations else ()
        source = live.LiveSource(r.frames, r.frame_size, r.input_format, r.max_lag, keep=keep)
    annotations, files, palette = {}, {}, None
    if r.annotations:
        annotations, files, palette = _read_annotations(r.annotations, source)
    if r.first_mask:
        first_mask, palette = davis.read_first_mask(r.first_mask)
        if 0 in annotations:
            first_mask = _frame_0_annotated(r.first_mask, first_mask, files[0], annotations.pop(0), log)
    else:
        first_mask = annotations.pop(0, None)
        if first_mask is None:
            first_mask = np.zeros(_frame_size(source, 0)[::-1], np.uint8)
    return source, first_mask, palette, annotations, files, made_from


def _frame_0_annotated(first_path, first_mask, path, annotation, log):
    """Frame 0's mask when the first mask and an annotation both give it: the annotation wins (said once)."""
    if annotation.shape != first_mask.shape:
        raise ValueError(f"{path}: the annotation is {annotation.shape[1]}x{annotation.shape[0]} (WxH) but the first "
                         f"mask {first_path} is {first_mask.shape[1]}x{first_mask.shape[0]}: they must be the same "
                         "size")
    merged = annotated_labels(first_mask, annotation)
    differ = int((merged != first_mask).sum())
    if differ:
        log(f"frame 0 has the first mask {first_path} and the annotation {path}: they differ on {differ} pixels, "
            "where the annotation wins")
    return merged


def _frame_size(source, index):
    """`(W, H)` of frame `index` of a folder (its file's header) or a video (ffmpeg's report); None if unknown."""
    from osmn_tf.data.annotations import image_size

    if source.names is not None:
        return image_size(source._files[source.names[index]])
    size = source.size
    return None if size is None else tuple(size)


def _read_annotations(folder, source):
    """`({frame index: object ids}, {frame index: path}, palette)` of `--annotations`, each file checked."""
    from osmn_tf.data.annotations import annotation_files, read_annotations

    files = annotation_files(folder, source.names)
    annotations, palette = read_annotations(files, lambda index: _frame_size(source, index))
    return annotations, files, palette


class DavisProgress:
    """Progress bars of a DAVIS split: one over the sequences, one over the current sequence's frames.

    An instance is the `progress(event, sequence, frames=None)` callable of
    `segment_jobs.segment_davis`; use it as a context manager to close the bars.
    """

    def __init__(self, sequences, disable=False):
        from tqdm import tqdm

        self._tqdm = tqdm
        self._disable = disable
        self.sequences = tqdm(total=sequences, desc="sequences", unit="seq", disable=disable)
        self.frames = None

    def __call__(self, event, sequence, frames=None):
        if event == "skip":
            self.sequences.write(f"{sequence}: complete already, skipped")
            self.sequences.update()
        elif event == "start":
            if self.frames is not None:
                self.frames.close()
            self.frames = self._tqdm(total=frames, desc=sequence, unit="frame", leave=False, disable=self._disable)
        else:
            self.frames.update()
            if self.frames.n == self.frames.total:
                self.sequences.update()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for bar in (self.frames, self.sequences):
            if bar is not None:
                bar.close()


def _segment_video(r, segmenter, source, first_mask, palette, annotations, files, made_from, progress=True):
    from tqdm import tqdm

    from osmn_tf.data.frames import resize_frame
    from osmn_tf.data.video import animation_writer
    from osmn_tf.inference.visualize import overlay_labels

    total = len(source.names) if source.names is not None else None
    live_input = isinstance(source, live.LiveSource)
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=total, desc=pathlib.Path(str(source.path)).name, unit="frame",
                                       disable=not progress))
        append = None
        if r.overlay:
            append = stack.enter_context(animation_writer(r.overlay, r.fps or source.fps or 10.0))
        overlay_size = []

        def on_frame(frame, labels):
            if append is not None:
                picture = overlay_labels(frame, labels, palette)
                # A video holds frames of one size: later frames of another size are fitted to frame 0's.
                if not overlay_size:
                    overlay_size.append((picture.shape[1], picture.shape[0]))
                elif (picture.shape[1], picture.shape[0]) != overlay_size[0]:
                    picture = resize_frame(picture, overlay_size[0])
                append(picture)
            bar.update()

        if live_input:
            stack.enter_context(_ctrl_c_ends(source))
        tick = time.perf_counter()
        # A live stream's frames come numbered: annotations are matched to stream numbers, not to a count.
        frames = segment_jobs.segment_to_folder(
            segmenter, source.numbered() if live_input else source, source.frame_names(), first_mask, r.output,
            palette, r.save_scores, on_frame, annotations, files, made_from=made_from, overwrite=r.overwrite,
            overlay=os.path.abspath(r.overlay) if r.overlay else None, numbered=live_input)
        seconds = time.perf_counter() - tick
    return segment_jobs.SegmentationStats(sequences_done=1, frames=frames, seconds=seconds)


@contextlib.contextmanager
def _ctrl_c_ends(source):
    """The first Ctrl-C ends a live stream (the masks so far are written); a second one interrupts."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        source.stop()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
