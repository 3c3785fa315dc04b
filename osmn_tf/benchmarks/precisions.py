"""Each precision side by side: per-frame time, end to end, FLOP/s, and the machine's own 16-bit speed-up.

A precision's per-frame speed-up over float32 is only as good as what the
CPU gives that data type: the raw rate of a large matmul and of a 3x3
convolution like VGG16's block 3 at half the frame size, measured in the
same run, is the limit it is compared with.
"""
import pathlib
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from osmn_tf.benchmarks.timing import run_times
from osmn_tf.data.frames import load_rgb
from osmn_tf.inference.jobs import segment_to_folder
from osmn_tf.inference.segmenter import VideoSegmenter

COMPUTE_DTYPES = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16, "mixed_float16": tf.float16}


def raw_rates(precisions, matmul_size, conv_shape, repeats):
    """Best GFLOP/s of a square matmul and of a 3x3 convolution in each precision's compute type.

    `conv_shape`: `(H, W, C)` of the convolution's input; it has C output channels.
    """
    height, width, channels = conv_shape
    functions, flops = {}, {}
    for precision in precisions:
        dtype = COMPUTE_DTYPES[precision]
        a = tf.cast(tf.random.normal([matmul_size, matmul_size]), dtype)
        image = tf.cast(tf.random.normal([1, height, width, channels]), dtype)
        kernel = tf.cast(tf.random.normal([3, 3, channels, channels], stddev=0.01), dtype)
        matmul = tf.function(lambda a=a: tf.reduce_sum(tf.cast(tf.matmul(a, a), tf.float32)))
        conv = tf.function(lambda x=image, k=kernel: tf.reduce_sum(tf.cast(tf.nn.conv2d(x, k, 1, "SAME"), tf.float32)))
        functions[f"{precision}/matmul"] = lambda f=matmul: f().numpy()
        functions[f"{precision}/conv"] = lambda f=conv: f().numpy()
        flops[f"{precision}/matmul"] = 2 * matmul_size**3
        flops[f"{precision}/conv"] = 2 * height * width * 9 * channels * channels
    best = {name: min(times) for name, times in run_times(functions, max(repeats, 5)).items()}
    return {precision: {kind: flops[f"{precision}/{kind}"] / best[f"{precision}/{kind}"] / 1e9
                        for kind in ("matmul", "conv")} for precision in precisions}


def end_to_end_frames_per_second(segmenter, paths, first_mask, scratch):
    """Frames/s of `segment_to_folder` over JPEG `paths` (frame 0 given), the segmenter warmed up first."""
    list(segmenter.segment([load_rgb(p) for p in paths[:2]], first_mask))  # traces the frame function
    tick = time.perf_counter()
    segment_to_folder(segmenter, (load_rgb(p) for p in paths), [p.stem for p in paths], first_mask, scratch)
    return (len(paths) - 1) / (time.perf_counter() - tick)


def measure_precisions(model, size, config, inputs_of, frame_paths, flops_per_frame, others=None):
    """Per precision: seconds per frame (1 and `config.max_objects` objects), end to end, FLOP/s, agreement.

    Args:
        others: `{name: VideoSegmenter}` timed beside the precisions (e.g. `int8`:
            one with an INT8 `frame_network`); TensorFlow has no raw INT8 rate to
            compare them with, so their FLOP/s and raw speed-up rows are None.
        inputs_of: `inputs_of(objects)` -> the network inputs of one frame (`NetworkInputs`).
        frame_paths: JPEG frames for the end-to-end runs; their first mask is `inputs_of(1)`'s.
        flops_per_frame: the network's convolution FLOPs for one object.
    """
    segmenters = {p: VideoSegmenter(model, size, precision=p) for p in ("float32", *config.precisions)}
    rated = tuple(segmenters)
    segmenters.update(others or {})
    precisions = tuple(segmenters)
    results = {p: {} for p in precisions}
    for count in sorted({1, config.max_objects}):
        inputs = inputs_of(count)
        steps = {p: (lambda s=s: s.segment_frame(inputs.image, inputs.masks, inputs.params))
                 for p, s in segmenters.items()}
        runs = run_times(steps, config.repeats)
        for p in precisions:
            results[p][f"seconds_{count}_objects"] = statistics.median(runs[p])
            if count == 1:
                results[p]["best_seconds"] = min(runs[p])
        masks = {p: steps[p]() > 0.5 for p in precisions}
        for p in precisions:
            results[p].setdefault("mask_agreement", float(np.mean(masks[p] == masks["float32"])))
    one = inputs_of(1)
    first_mask = one.masks[0].astype(np.uint8)
    with tempfile.TemporaryDirectory() as scratch:
        for p in precisions:
            results[p]["end_to_end_frames_per_second"] = end_to_end_frames_per_second(
                segmenters[p], frame_paths, first_mask, pathlib.Path(scratch) / p)
    rates = raw_rates(rated, config.matmul_size, config.conv_shape, config.repeats)
    reference = results["float32"]["seconds_1_objects"]
    reference_end_to_end = results["float32"]["end_to_end_frames_per_second"]
    for p in precisions:
        row = results[p]
        row["end_to_end_speedup"] = row["end_to_end_frames_per_second"] / reference_end_to_end
        row["network_frames_per_second"] = 1 / row["seconds_1_objects"]
        row["io_ratio"] = row["end_to_end_frames_per_second"] / row["network_frames_per_second"]
        row["network_gflops_per_second"] = flops_per_frame / row.pop("best_seconds") / 1e9
        row["speedup"] = reference / row["seconds_1_objects"]
        row.update(matmul_gflops=None, conv_gflops=None, flops_efficiency=None, raw_conv_speedup=None,
                   speedup_of_raw=None, end_to_end_speedup_of_raw=None)
        if p in rates:
            row["matmul_gflops"], row["conv_gflops"] = rates[p]["matmul"], rates[p]["conv"]
            row["flops_efficiency"] = row["network_gflops_per_second"] / row["matmul_gflops"]
            row["raw_conv_speedup"] = row["conv_gflops"] / rates["float32"]["conv"]
            row["speedup_of_raw"] = row["speedup"] / row["raw_conv_speedup"]
            row["end_to_end_speedup_of_raw"] = row["end_to_end_speedup"] / row["raw_conv_speedup"]
    return results
