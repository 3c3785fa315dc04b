"""A whole segmentation run as `tools/segment.py` makes it: outputs checked first, progress shown, a summary.

`segment_jobs` segments into folders; this module adds what a person at a
terminal needs around it: refusing bad outputs before the model loads,
progress bars, and a closing line with the speed and memory.
"""
import contextlib
import dataclasses
import os
import pathlib
import time

import numpy as np

from osmn_tf import davis, live, outputs, segment_jobs
from osmn_tf.frames import WORKING_SIZE


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
    `frames` may be live (`osmn_tf.live`: `-` for standard input, a URL, a
    camera, a named pipe): `frame_size` for raw frames on standard input,
    `input_format` for ffmpeg's `-f`, `max_lag` to drop frames rather than
    fall behind; Ctrl-C then ends the stream and the masks so far are kept.
    `weights` is a `.keras` file or a TF1 checkpoint prefix. `int8_model`:
    a folder `osmn_tf.quantization.Int8FrameNetwork.save` wrote from the same
    weights and working size, which then runs the per-frame network.
    """

    weights: str
    output: str
    frames: str = None
    first_mask: str = None
    annotations: str = None
    youtube_vos_root: str = None
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
    precision: str = "float32"
    jit_compile: bool = False
    int8_model: str = None


def precision_advice(requested, used):
    """One line on the precision a run uses, and on this CPU whether another would be faster."""
    from osmn_tf.precision import AUTO, auto_precision, cpu_bfloat16_flags, cpu_info

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
    `OSError` or `checkpoints.CheckpointError` for bad input, each naming
    the file or option; a bad output is refused before any work.
    """
    from osmn_tf.checkpoints import load_model
    from osmn_tf.inference import VideoSegmenter

    r = request
    outputs.check_output_folder(r.output, [r.frames, r.first_mask, r.annotations, r.davis_root,
                                           r.youtube_vos_root, r.weights, r.int8_model])
    if r.int8_model:
        from osmn_tf.quantization import check_extra

        check_extra()
    if r.davis_root:
        dataset = _davis_split(r)
    elif r.youtube_vos_root:
        from osmn_tf.youtube_vos import YouTubeVOS

        dataset = YouTubeVOS(r.youtube_vos_root, r.split)
    else:
        video = _open_video(r)
        if video is None:
            log(f"{r.output} is complete already; skipping it (--overwrite to redo)")
            return None
    adapt = None
    if r.online_finetune:
        from osmn_tf.training.finetune import OnlineFinetuning

        adapt = OnlineFinetuning(r.online_finetune, learning_rate=r.finetune_lr)
    model = load_model(r.weights)
    segmenter = VideoSegmenter(model, working_size=r.working_size, adapt=adapt, jit_compile=r.jit_compile,
                               precision=r.precision, frame_network=_int8_network(r, model))
    log(f"per-frame network in INT8 ({r.int8_model})" if r.int8_model
        else precision_advice(r.precision, segmenter.precision))
    if r.davis_root:
        with DavisProgress(len(dataset.sequences), disable=not progress) as bars:
            stats = segment_jobs.segment_davis(segmenter, dataset, r.output, r.save_scores, r.overwrite, bars)
        log(f"{stats.sequences_done} sequences segmented, {stats.sequences_skipped} skipped; masks in {r.output}")
    elif r.youtube_vos_root:
        with DavisProgress(len(dataset.videos), disable=not progress) as bars:
            stats = segment_jobs.segment_youtube_vos(segmenter, dataset, r.output, r.save_scores, r.overwrite, bars,
                                                     late_annotations=not r.first_frame_only)
        log(f"{stats.sequences_done} videos segmented, {stats.sequences_skipped} skipped; "
            f"masks in {os.path.join(r.output, 'Annotations')}")
    else:
        stats = _segment_video(r, segmenter, *video, progress=progress)
        log(f"wrote {stats.frames} masks to {r.output}" + (f" and the overlay {r.overlay}" if r.overlay else ""))
        if isinstance(video[0], live.LiveSource):
            log(f"{video[0].dropped} frames dropped" + (f" to stay within --max-lag {r.max_lag}" if r.max_lag else ""))
    width, height = segmenter.working_size
    log(f"{stats.frames} frames at {stats.frames_per_second:.2f} frames/s (end to end, {width}x{height}); "
        f"peak memory {segment_jobs.peak_memory_mb():.0f} MiB")
    return stats


def _int8_network(r, model):
    """The `--int8-model` network, checked against the model and working size; None without one."""
    if not r.int8_model:
        return None
    from osmn_tf.quantization import Int8FrameNetwork

    network = Int8FrameNetwork.load(r.int8_model, name="--int8-model")
    network.check_model(model, f"--weights {r.weights}")
    if network.working_size != tuple(r.working_size):
        raise ValueError(f"--int8-model {r.int8_model} was quantized at {network.working_size[0]}x"
                         f"{network.working_size[1]}; give --working-size {network.working_size[0]}x"
                         f"{network.working_size[1]} or quantize again")
    return network


def _davis_split(r):
    from osmn_tf.davis import DavisDataset

    dataset = DavisDataset(r.davis_root, r.year, r.split)
    if r.sequences:
        unknown = sorted(set(r.sequences) - set(dataset.sequences))
        if unknown:
            raise ValueError(f"--sequences {unknown} are not in {dataset.split_file}")
        dataset.sequences = [s for s in dataset.sequences if s in r.sequences]
    return dataset


def _open_video(r):
    """`(frame source, first mask, palette)`, or None when the output is complete and not to be redone."""
    from osmn_tf.video import open_frames

    if r.overlay:
        outputs.check_output_file(r.overlay, "--overlay", overwrite=True)
        if os.path.exists(r.overlay) and os.path.exists(r.frames) and os.path.samefile(r.overlay, r.frames):
            raise outputs.OutputError(f"--overlay {r.overlay}: is the input video (--frames)")
    if live.is_live(r.frames):
        source = live.LiveSource(r.frames, r.frame_size, r.input_format, r.max_lag)
    else:
        if r.frame_size or r.max_lag or r.input_format:
            raise ValueError(f"--frame-size, --input-format and --max-lag are for live input (-, a URL, a camera), "
                             f"not {r.frames}")
        source = open_frames(r.frames)
    annotations, files, palette = {}, {}, None
    if r.annotations:
        annotations, files, palette = _read_annotations(r.annotations, source)
    if r.first_mask:
        first_mask, palette = davis.read_first_mask(r.first_mask)
    else:
        first_mask = annotations.pop(0, None)
        if first_mask is None:
            first_mask = np.zeros(_frame_size(source, 0)[::-1], np.uint8)
    expected = None if source.names is None else [f"{name}.png" for name in source.names]
    # A live stream is new every time: it is never "complete already".
    if not live.is_live(r.frames) and not r.overwrite and outputs.is_complete(r.output, expected, r.save_scores):
        return None
    return source, first_mask, palette, annotations, files


def _frame_size(source, index):
    """`(W, H)` of frame `index` of a folder (its file's header) or a video (ffmpeg's report); None if unknown."""
    from osmn_tf.annotations import image_size

    if source.names is not None:
        return image_size(source._files[source.names[index]])
    size = source.size
    return None if size is None else tuple(size)


def _read_annotations(folder, source):
    """`({frame index: object ids}, {frame index: path}, palette)` of `--annotations`, each file checked."""
    from osmn_tf.annotations import annotation_files, read_annotations

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


def _segment_video(r, segmenter, source, first_mask, palette, annotations, files, progress=True):
    from tqdm import tqdm

    from osmn_tf.frames import resize_frame
    from osmn_tf.video import animation_writer
    from osmn_tf.visualize import overlay_labels

    total = len(source.names) if source.names is not None else None
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

        if isinstance(source, live.LiveSource):
            stack.enter_context(_ctrl_c_ends(source))
        tick = time.perf_counter()
        frames = segment_jobs.segment_to_folder(segmenter, source, source.frame_names(), first_mask, r.output,
                                                palette, r.save_scores, on_frame, annotations, files)
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
