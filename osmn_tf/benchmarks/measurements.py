"""The benchmark's measurements, one function each, and `run_benchmark`, which runs them all.

Random weights are enough: speed does not depend on their values. Timings are
medians over interleaved repeats, so that the two sides of a ratio see the
same machine state; the FLOP/s comparison uses the best run of each side
(what the machine can do, not what a noisy neighbour left of it).
"""
import dataclasses
import gc
import pathlib
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from osmn_tf.benchmarks.config import BenchmarkConfig
from osmn_tf.benchmarks.timing import (
    convolution_flops, device_name, interleaved, matmul_flops_per_second, median_seconds, rss_mb, run_times)
from osmn_tf.frames import load_rgb, preprocess_frame
from osmn_tf.guides import spatial_guide
from osmn_tf.inference import VideoSegmenter
from osmn_tf.models import build_osmn
from osmn_tf.segment_jobs import peak_memory_mb, segment_to_folder


class NetworkInputs:
    """Network-only inputs of one frame for `objects` objects, at the segmenter's working size."""

    def __init__(self, model, size, objects, rng):
        width, height = size
        frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        self.image = preprocess_frame(frame, size)
        masks = np.zeros((objects, height, width), bool)
        for k in range(objects):
            masks[k, height // 4:height // 2, (k * width) // (objects + 1):((k + 2) * width) // (objects + 2)] = True
        self.masks = masks
        self.params = (rng.normal(1.0, 0.1, (objects, model.num_modulation_params)).astype(np.float32)
                       if model.visual_modulator is not None else None)


def _segmenter_step(segmenter, frames):
    return lambda: segmenter.segment_frame(frames.image, frames.masks, frames.params)


def _random_model(width, seed, **variant):
    keras.utils.set_random_seed(seed)
    return build_osmn(width=width, **variant)


def _write_frames(folder, count, size, rng):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    for t in range(count):
        Image.fromarray(np.roll(base, 3 * t, axis=1)).save(folder / f"{t:05d}.jpg", quality=90)
    return sorted(folder.iterdir())


def measure_modulation(model, bare, size, repeats, rng):
    """1. Modulation is almost free: OSMN vs the bare FCN per frame, one object; 2. their FLOP/s."""
    osmn, fcn = VideoSegmenter(model, size), VideoSegmenter(bare, size)
    one = NetworkInputs(model, size, 1, rng)
    runs = run_times({"osmn": _segmenter_step(osmn, one), "fcn": _segmenter_step(fcn, one)}, repeats)
    times = {name: statistics.median(values) for name, values in runs.items()}
    guide_seconds = median_seconds(lambda: spatial_guide(one.masks[0]), repeats)
    image = one.image[np.newaxis]
    guide = spatial_guide(one.masks[0])[np.newaxis]
    # Useful work per frame: the segmentation network's and the spatial modulator's convolutions.
    flops = (convolution_flops(model.segmentation_network, [image, one.params, *model.spatial_modulator(guide)])
             + convolution_flops(model.spatial_modulator, [guide]))
    flops_fcn = convolution_flops(bare.segmentation_network, [image])
    return {
        "per_frame_seconds": {"osmn": times["osmn"], "fcn": times["fcn"], "spatial_guide": guide_seconds},
        "modulation_ratio": times["osmn"] / times["fcn"],
        "network_gflops_per_frame": flops / 1e9,
        "network_gflops_per_second": flops / min(runs["osmn"]) / 1e9,
        "fcn_gflops_per_second": flops_fcn / min(runs["fcn"]) / 1e9,
    }


def measure_objects(model, size, max_objects, repeats, rng):
    """3. Objects share the frame's early layers: time for 1..max_objects objects, shared vs per object."""
    shared, per_object = VideoSegmenter(model, size), VideoSegmenter(model, size, share_frame_features=False)
    objects = {}
    for count in range(1, max_objects + 1):
        inputs = NetworkInputs(model, size, count, rng)
        times = interleaved({"shared": _segmenter_step(shared, inputs),
                             "per_object": _segmenter_step(per_object, inputs)}, repeats)
        shared_p = shared.segment_frame(inputs.image, inputs.masks, inputs.params)
        copied_p = per_object.segment_frame(inputs.image, inputs.masks, inputs.params)
        objects[count] = {**times, "masks_identical": bool(np.array_equal(shared_p > 0.5, copied_p > 0.5)),
                          "max_probability_difference": float(np.abs(shared_p - copied_p).max())}
    return {"objects": objects,
            "objects_ratio_shared": objects[max_objects]["shared"] / objects[1]["shared"],
            "objects_ratio_per_object": objects[max_objects]["per_object"] / objects[1]["per_object"]}


def measure_io(model, size, io_frames, repeats, rng):
    """4. Reading and writing hide behind compute; 5. the time to the first mask and the peak memory."""
    osmn = VideoSegmenter(model, size)
    one = NetworkInputs(model, size, 1, rng)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        paths = _write_frames(scratch / "frames", io_frames + 1, size, rng)
        first_mask = np.zeros((size[1], size[0]), np.uint8)
        first_mask[one.masks[0]] = 1
        # A fresh segmenter: the first mask's time includes tracing, reading and the visual modulator.
        tick = time.perf_counter()
        results_iter = VideoSegmenter(model, size).track((load_rgb(p) for p in paths), first_mask)
        next(results_iter)
        next(results_iter)
        results["time_to_first_mask_seconds"] = time.perf_counter() - tick
        results_iter.close()
        tick = time.perf_counter()
        segment_to_folder(osmn, (load_rgb(p) for p in paths), [p.stem for p in paths], first_mask, scratch / "out")
        end_to_end = (time.perf_counter() - tick)
        # Frame 0 is the given mask: the network runs on the others (and the visual modulator once).
        network_only = median_seconds(_segmenter_step(osmn, one), repeats)
    results["end_to_end_frames_per_second"] = io_frames / end_to_end
    results["network_frames_per_second"] = 1 / network_only
    results["io_ratio"] = results["end_to_end_frames_per_second"] / results["network_frames_per_second"]
    results["peak_rss_mb"] = peak_memory_mb()
    return results


def measure_stream(model, config, rng, log=print):
    """5. A long stream: resident memory stays flat and the frame function is traced once for every size."""
    size = tuple(config.stream_size)
    segmenter = VideoSegmenter(model, size)
    width, height = size
    first = np.zeros((height, width), np.uint8)
    first[height // 4:3 * height // 4, width // 4:width // 2] = 1
    first[height // 4:3 * height // 4, width // 2 + 2:3 * width // 4] = 2
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    frames = (np.roll(base, t, axis=1) for t in range(config.stream_frames))
    samples, tick = [], time.perf_counter()
    every = max(config.stream_frames // 20, 1)
    for t, _ in enumerate(segmenter.segment(frames, first)):
        if t % every == 0 or t == config.stream_frames - 1:
            gc.collect()
            samples.append((t, rss_mb()))
        if t and t % (every * 5) == 0:
            rate = t / (time.perf_counter() - tick)
            log(f"  frame {t}/{config.stream_frames}  {rate:.1f} frames/s  "
                f"ETA {(config.stream_frames - t) / rate:.0f} s  RSS {samples[-1][1]:.0f} MiB")
    # Other working sizes must not trace again: the input signature has dynamic H and W.
    for other in ((width + 16, height), (width, height + 32)):
        segmenter.working_size = other
        list(segmenter.segment([base] * 2, first))
    half = len(samples) // 2
    # Growth: the second half's mean over the first half's (after warm-up).
    growth = statistics.mean(r for _, r in samples[half:]) - statistics.mean(r for _, r in samples[1:half])
    return {"frames": config.stream_frames, "size": list(size), "rss_mb": samples,
            "rss_growth_mb": growth, "traces": segmenter.frame_traces}


def measure_finetune(model, bare, size, config, per_frame_seconds, rng):
    """6. A video segmented by OSMN vs one-shot fine-tuning of the bare FCN (paper: 1000 steps, 70 frames)."""
    step_seconds = _finetune_step_seconds(bare, size, config.finetune_steps_timed, rng)
    osmn = VideoSegmenter(model, size)
    guides = np.zeros((1, model.config.guide_size, model.config.guide_size, 3), np.float32)
    encode_seconds = median_seconds(lambda: osmn.encode_guides(guides), config.repeats)
    frames = config.video_frames - 1  # frame 0 is given
    osmn_video = encode_seconds + frames * per_frame_seconds["osmn"]
    finetune_video = config.finetune_steps * step_seconds + frames * per_frame_seconds["fcn"]
    return {"step_seconds": step_seconds, "encode_seconds": encode_seconds, "osmn_video_seconds": osmn_video,
            "finetune_video_seconds": finetune_video, "speedup": finetune_video / osmn_video}


def measure_precision(model, size, config, rng):
    """7. Per-frame time under each precision and XLA, and how often their masks agree with float32."""
    osmn = VideoSegmenter(model, size)
    one = NetworkInputs(model, size, 1, rng)
    variants = {"float32": osmn}
    for precision in config.precisions:
        variants[precision] = VideoSegmenter(model, size, precision=precision)
    if config.xla:
        variants["xla"] = VideoSegmenter(model, size, jit_compile=True)
    reference = osmn.segment_frame(one.image, one.masks, one.params) > 0.5
    results = {}
    for name, segmenter in variants.items():
        seconds = median_seconds(_segmenter_step(segmenter, one), config.repeats)
        masks = segmenter.segment_frame(one.image, one.masks, one.params) > 0.5
        results[name] = {"seconds": seconds, "mask_agreement": float(np.mean(masks == reference))}
    return results


def run_benchmark(config=BenchmarkConfig(), log=print):
    """Runs every measurement; returns a JSON-ready dict of numbers and the targets' verdicts."""
    rng = np.random.default_rng(config.seed)
    size = tuple(config.frame_size)
    results = {"config": dataclasses.asdict(config), "device": device_name(), "tensorflow": tf.__version__}
    log("timing a matmul (the machine's FLOP/s)...")
    results["matmul_gflops"] = matmul_flops_per_second(config.matmul_size, config.repeats) / 1e9
    model = _random_model(config.width, config.seed)
    bare = _random_model(config.width, config.seed, use_visual_modulator=False, use_spatial_modulator=False)
    log(f"timing one object at {size[0]}x{size[1]}: OSMN vs the bare FCN...")
    results.update(measure_modulation(model, bare, size, config.repeats, rng))
    results["flops_efficiency"] = results["network_gflops_per_second"] / results["matmul_gflops"]
    log(f"timing 1..{config.max_objects} objects, shared and per-object...")
    results.update(measure_objects(model, size, config.max_objects, config.repeats, rng))
    log(f"segmenting {config.io_frames} JPEG frames end to end...")
    results.update(measure_io(model, size, config.io_frames, config.repeats, rng))
    log(f"streaming {config.stream_frames} frames at {config.stream_size[0]}x{config.stream_size[1]} "
        "(memory, retracing)...")
    results["stream"] = measure_stream(model, config, rng, log)
    log(f"timing {config.finetune_steps_timed} fine-tuning steps of the bare FCN (batch 1)...")
    results["finetune"] = measure_finetune(model, bare, size, config, results["per_frame_seconds"], rng)
    log(f"timing float32, {', '.join(config.precisions)}{', xla' if config.xla else ''}...")
    results["precision"] = measure_precision(model, size, config, rng)
    results["targets"] = targets(results)
    return results


def _finetune_step_seconds(model, size, steps, rng):
    """Seconds per one-shot fine-tuning step (batch 1, Adam) of the bare FCN at `size`."""
    width, height = size
    image = tf.constant(rng.normal(0, 50, (1, height, width, 3)).astype(np.float32))
    label = tf.constant((rng.uniform(size=(1, height, width, 1)) > 0.7).astype(np.float32))
    optimizer = keras.optimizers.Adam(1e-6)
    variables = model.trainable_variables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = model(image, training=True)
            loss = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=label, logits=logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    step().numpy()
    tick = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.numpy()
    return (time.perf_counter() - tick) / steps


TARGETS = {
    "modulation_ratio": ("<=", 1.05, "OSMN / bare FCN time per frame, one object"),
    "flops_efficiency": (">=", 0.85, "network FLOP/s / matmul FLOP/s"),
    "objects_ratio_shared": ("<=", 2.45, "time for 3 objects / 1 object, shared early layers"),
    "io_ratio": (">=", 0.90, "end-to-end frames/s / network-only frames/s"),
}


def targets(results):
    """Each target's value and whether it holds."""
    verdicts = {}
    for key, (op, limit, meaning) in TARGETS.items():
        value = results[key]
        verdicts[key] = {"value": value, "limit": f"{op} {limit}", "meaning": meaning,
                         "holds": bool(value <= limit if op == "<=" else value >= limit)}
    stream = results["stream"]
    verdicts["no_retracing"] = {"value": stream["traces"], "limit": "== 1", "meaning": "traces of the frame function",
                                "holds": stream["traces"] == 1}
    verdicts["objects_identical"] = {
        "value": all(o["masks_identical"] for o in results["objects"].values()), "limit": "== True",
        "meaning": "shared and per-object masks equal", "holds": all(
            o["masks_identical"] for o in results["objects"].values())}
    return verdicts
