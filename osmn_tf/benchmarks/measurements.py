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
from osmn_tf.benchmarks.parity import trained_parity
from osmn_tf.benchmarks.precisions import measure_precisions
from osmn_tf.benchmarks.timing import (
    convolution_flops, device_name, interleaved, matmul_flops_per_second, median_seconds, rss_mb, run_times)
from osmn_tf.data.frames import load_rgb, preprocess_frame
from osmn_tf.data.guides import spatial_guide
from osmn_tf.inference.jobs import peak_memory_mb
from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.models import build_osmn
from osmn_tf.utils.atomic import atomic_output
from osmn_tf.utils.precision import auto_precision, cpu_bfloat16_flags, cpu_info



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
        with atomic_output(folder / f"{t:05d}.jpg") as handle:
            Image.fromarray(np.roll(base, 3 * t, axis=1)).save(handle, format="JPEG", quality=90)
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


def measure_first_mask(model, size, paths, first_mask):
    """The time to the first mask of a fresh segmenter (tracing, reading, the visual modulator included)."""
    tick = time.perf_counter()
    results = VideoSegmenter(model, size).track((load_rgb(p) for p in paths), first_mask)
    next(results)
    next(results)
    seconds = time.perf_counter() - tick
    results.close()
    return seconds


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


def measure_xla(model, size, one, repeats):
    """Per-frame time with XLA (float32), and how often its masks agree with the plain float32 graph's."""
    plain, xla = VideoSegmenter(model, size), VideoSegmenter(model, size, jit_compile=True)
    seconds = median_seconds(_segmenter_step(xla, one), repeats)
    agreement = np.mean((xla.segment_frame(one.image, one.masks, one.params) > 0.5)
                        == (plain.segment_frame(one.image, one.masks, one.params) > 0.5))
    return {"seconds": seconds, "mask_agreement": float(agreement)}


def int8_network(model, size, samples, log=print):
    """`model`'s INT8 per-frame network at `size`, or None (said in the log) without the `int8` extra."""
    from osmn_tf.quantization import MissingExtraError, quantize

    try:
        network = quantize(model, samples, size)
    except MissingExtraError as e:
        log(f"INT8 not measured: {e}")
        return None
    return network


def measure_trained_parity(config, output_dir, log=print):
    """`parity.trained_parity` on `config.trained_model` (a `tools/train.py` run folder) at its working size."""
    import json

    from osmn_tf.weights.checkpoints import load_model

    run = pathlib.Path(config.trained_model)
    train_config = json.loads((run / "train_config.json").read_text())
    working_size = tuple(train_config["eval_working_size"] or train_config["image_size"])
    log(f"parity on the trained model {run / 'model.keras'}: its validation videos at "
        f"{working_size[0]}x{working_size[1]}, once per precision...")
    model = load_model(run / "model.keras")
    networks = {}
    if config.int8:
        from osmn_tf.data.davis import DavisDataset
        from osmn_tf.quantization import calibration_samples, dataset_videos

        # Calibrated on training videos: the validation videos stay unseen.
        train = DavisDataset(run / "data", year=2017, split="train")
        samples = calibration_samples(model, dataset_videos(train, train.sequences[:2]), working_size)
        networks = {"int8": int8_network(model, working_size, samples, log)}
    parity = trained_parity(model, run / "data", working_size, config.precisions, output_dir,
                            frame_networks={k: v for k, v in networks.items() if v is not None})
    return {precision: dataclasses.asdict(row) for precision, row in parity.items()}


def run_benchmark(config=BenchmarkConfig(), log=print, output_dir=None):
    """Runs every measurement; returns a JSON-ready dict of numbers and the targets' verdicts.

    `output_dir`: where the trained-model parity writes its masks (a temporary folder when None).
    """
    rng = np.random.default_rng(config.seed)
    size = tuple(config.frame_size)
    brand, flags = cpu_info()
    results = {"config": dataclasses.asdict(config), "device": device_name(), "cpu": brand,
               "cpu_bfloat16": list(cpu_bfloat16_flags(flags)), "tensorflow": tf.__version__,
               "auto_precision": auto_precision(flags)}
    log("timing a matmul (the machine's FLOP/s)...")
    results["matmul_gflops"] = matmul_flops_per_second(config.matmul_size, config.repeats) / 1e9
    model = _random_model(config.width, config.seed)
    bare = _random_model(config.width, config.seed, use_visual_modulator=False, use_spatial_modulator=False)
    log(f"timing one object at {size[0]}x{size[1]}: OSMN vs the bare FCN...")
    results.update(measure_modulation(model, bare, size, config.repeats, rng))
    results["flops_efficiency"] = results["network_gflops_per_second"] / results["matmul_gflops"]
    log(f"timing 1..{config.max_objects} objects, shared and per-object...")
    results.update(measure_objects(model, size, config.max_objects, config.repeats, rng))
    inputs = {count: NetworkInputs(model, size, count, rng) for count in sorted({1, config.max_objects})}
    with tempfile.TemporaryDirectory() as scratch:
        paths = _write_frames(pathlib.Path(scratch), config.io_frames + 1, size, rng)
        log(f"float32, {', '.join(config.precisions)}: {config.io_frames} JPEG frames end to end, the network "
            f"alone, and the raw matmul/convolution rates...")
        others = {}
        if config.int8:
            from osmn_tf.quantization import random_samples

            log(f"quantizing the per-frame network to INT8 ({config.int8_calibration} synthetic calibration "
                "frames)...")
            samples = random_samples(model.frame_model(fold_batch_norm=True), size, config.int8_calibration)
            network = int8_network(model, size, samples, log)
            if network is not None:
                others["int8"] = VideoSegmenter(model, size, frame_network=network)
        results["precision"] = measure_precisions(model, size, config, inputs.__getitem__, paths,
                                                  results["network_gflops_per_frame"] * 1e9, others)
        results["time_to_first_mask_seconds"] = measure_first_mask(model, size, paths,
                                                                    inputs[1].masks[0].astype(np.uint8))
    results["peak_rss_mb"] = peak_memory_mb()
    float32 = results["precision"]["float32"]
    results["end_to_end_frames_per_second"] = float32["end_to_end_frames_per_second"]
    results["network_frames_per_second"] = float32["network_frames_per_second"]
    results["io_ratio"] = float32["io_ratio"]
    log(f"streaming {config.stream_frames} frames at {config.stream_size[0]}x{config.stream_size[1]} "
        "(memory, retracing)...")
    results["stream"] = measure_stream(model, config, rng, log)
    log(f"timing {config.finetune_steps_timed} fine-tuning steps of the bare FCN (batch 1)...")
    results["finetune"] = measure_finetune(model, bare, size, config, results["per_frame_seconds"], rng)
    if config.xla:
        log("timing XLA...")
        results["xla"] = measure_xla(model, size, inputs[1], config.repeats)
    if config.trained_model:
        with tempfile.TemporaryDirectory() as scratch:
            results["trained_parity"] = measure_trained_parity(config, output_dir or scratch, log)
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
    "objects_ratio_shared": ("<=", 2.45, "time for 3 objects / 1 object, shared early layers"),
}
# Every precision timed, against its own data type's rates. (Parity is a target on a trained model only:
# with random weights most logits sit near 0, where any rounding flips a pixel.)
PRECISION_TARGETS = {
    "io_ratio": (">=", 0.90, "end-to-end frames/s / network-only frames/s"),
    "flops_efficiency": (">=", 0.85, "network FLOP/s / the same data type's matmul FLOP/s"),
}
PARITY_TARGETS = {
    "mask_agreement": (">=", 0.99, "masks agree with float32 on the trained model's validation videos"),
    "abs_j_and_f_difference": ("<=", 0.01, "|J&F-Mean - float32's| on the trained model's validation videos"),
}
# `auto`'s speed-up over float32 against the raw convolution speed-up of the data type it picks.
AUTO_SPEEDUP_OF_RAW = 0.8


def _verdict(value, op, limit, meaning):
    return {"value": value, "limit": f"{op} {limit}", "meaning": meaning,
            "holds": bool(value <= limit if op == "<=" else value >= limit)}


def targets(results):
    """Each target's value and whether it holds (`<precision>/<row>` for the per-precision ones)."""
    verdicts = {key: _verdict(results[key], *target) for key, target in TARGETS.items()}
    for precision, row in results["precision"].items():
        for key, target in PRECISION_TARGETS.items():
            if row[key] is not None:
                verdicts[f"{precision}/{key}"] = _verdict(row[key], *target)
    for precision, row in results.get("trained_parity", {}).items():
        if precision != "float32":
            row = {**row, "abs_j_and_f_difference": abs(row["j_and_f_difference"])}
            for key, target in PARITY_TARGETS.items():
                verdicts[f"{precision}/trained_{key}"] = _verdict(row[key], *target)
    auto = results["auto_precision"]
    if auto != "float32" and auto in results["precision"]:
        verdicts["auto/end_to_end_speedup_of_raw"] = _verdict(
            results["precision"][auto]["end_to_end_speedup_of_raw"], ">=", AUTO_SPEEDUP_OF_RAW,
            f"auto ({auto}) end-to-end speed-up over float32 / its raw convolution speed-up")
    stream = results["stream"]
    verdicts["no_retracing"] = _verdict(stream["traces"], "<=", 1, "traces of the frame function")
    identical = all(o["masks_identical"] for o in results["objects"].values())
    verdicts["objects_identical"] = {"value": identical, "limit": "== True",
                                     "meaning": "shared and per-object masks equal", "holds": identical}
    return verdicts
