"""Calibration samples for INT8 quantization: the per-frame network's inputs on real video frames.

A sample is what the network sees while segmenting: the preprocessed frame,
one object's spatial guide from its float32 mask on the previous frame, and
that object's modulation parameters. They are recorded by segmenting the
first frames of each video in float32 (`VideoSegmenter`), one sample per
object and frame, so the activation ranges are those of real tracking.
"""
import itertools

import numpy as np

from osmn_tf.inference.segmenter import VideoSegmenter


class _RecordingSegmenter(VideoSegmenter):
    """A float32 `VideoSegmenter` that keeps each frame's network inputs, one sample per object."""

    def __init__(self, model, working_size, pad=False):
        super().__init__(model, working_size, pad=pad)
        self.samples = []

    def segment_frame(self, image, previous_masks, params):
        for k, mask in enumerate(previous_masks):
            sample = {"image": image[np.newaxis].astype(np.float32)}
            if "spatial_guide" in self._input_names:  # the spatial modulator's, or masktrack's 4th channel
                # As segment_frame makes it: masktrack's use_original_mask, lite's padding.
                sample["spatial_guide"] = self._padded(self._spatial_guide(mask))[np.newaxis].astype(np.float32)
            if params is not None:
                sample["modulation_params"] = np.asarray(params[k:k + 1], np.float32)
            self.samples.append(sample)
        return super().segment_frame(image, previous_masks, params)


def calibration_samples(model, videos, working_size, frames_per_video=8, progress=None, pad=False):
    """The per-frame network's inputs on the first `frames_per_video` frames of each video.

    Args:
        model: an `osmn_tf.OSMN` (float32).
        videos: iterable of `(frames, first_mask)`: an iterable of uint8 RGB frames
            and frame 0's object ids, as `VideoSegmenter.track` takes them.
        working_size: `(W, H)` the network runs at.
        progress: optional `progress(samples so far)` after each video.
        pad: pad frames to multiples of 32 (lite; `VideoSegmenter`'s `pad`): the
            samples are then at the padded size, which `quantize` must be given.
    Returns:
        a list of `{input name: float32 [1, ...] array}`.
    """
    if frames_per_video < 2:
        raise ValueError(f"frames_per_video must be at least 2 (frame 0 is the annotation), got {frames_per_video}")
    recorder = _RecordingSegmenter(model, working_size, pad)
    for frames, first_mask in videos:
        # Frame 0 has no prediction: frames_per_video - 1 frames go through the network.
        for _ in recorder.track(itertools.islice(frames, frames_per_video), first_mask):
            pass
        if progress:
            progress(len(recorder.samples))
    if not recorder.samples:
        raise ValueError("no calibration sample: the videos have no frame after the first")
    return recorder.samples


def random_samples(frame_model, working_size, count, seed=0):
    """Synthetic samples (for speed only, with random weights): a noise image in the preprocessed
    range, a Gaussian spatial guide and modulation parameters near 1 (as the benchmark's)."""
    rng = np.random.default_rng(seed)
    width, height = working_size
    samples = []
    for _ in range(count):
        sample = {}
        for tensor in frame_model.inputs:
            if tensor.name == "image":
                sample["image"] = rng.uniform(-120, 150, (1, height, width, 3)).astype(np.float32)
            elif tensor.name == "spatial_guide":
                y, x = np.mgrid[0:height, 0:width]
                cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
                guide = np.exp(-((y - cy) ** 2 / (0.08 * height ** 2) + (x - cx) ** 2 / (0.08 * width ** 2)))
                sample["spatial_guide"] = guide[np.newaxis, :, :, np.newaxis].astype(np.float32)
            else:
                sample[tensor.name] = rng.normal(1.0, 0.1, (1, *tensor.shape[1:])).astype(np.float32)
        samples.append(sample)
    return samples


def dataset_videos(dataset, sequences=None):
    """`(frames, first_mask)` of each sequence of a `DavisDataset` (frames read as they are used)."""
    from osmn_tf.data.frames import load_rgb

    for sequence in sequences or dataset.sequences:
        first_mask = dataset.read_annotation(dataset.annotation_paths(sequence)[0])
        yield (load_rgb(path) for path in dataset.frame_paths(sequence)), first_mask
