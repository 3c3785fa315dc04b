"""Speed measurements of OSMN inference, each a ratio taken side by side in one run.

`tools/benchmark.py` runs `run_benchmark` and prints, saves and plots what it
returns. Random weights are enough: speed does not depend on their values.
Timings are medians over interleaved repeats, so that the two sides of a ratio
see the same machine state; the FLOP/s comparison uses the best run of each
side (what the machine can do, not what a noisy neighbour left of it).
"""
import dataclasses
import gc
import os
import pathlib
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from osmn_tf.frames import preprocess_frame
from osmn_tf.guides import spatial_guide
from osmn_tf.inference import VideoSegmenter
from osmn_tf.models import build_osmn
from osmn_tf.segment_jobs import peak_memory_mb, segment_to_folder


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """What the benchmark runs; the defaults are the full model on 854 x 480 frames (the original's working size).

    Attributes:
        width: the model's channel multiplier (1.0 = the paper's network).
        frame_size: `(W, H)` of the frames.
        repeats: timed runs per measurement (after one warm-up), interleaved.
        max_objects: object counts 1 .. max_objects are timed.
        io_frames: frames of the end-to-end `segment_to_folder` run.
        stream_frames, stream_size: the long stream that checks memory and
            retracing (smaller frames, so that 1000 of them take minutes).
        finetune_steps_timed, finetune_steps, video_frames: the one-shot
            fine-tuning comparison (paper: 1000 steps, a 70-frame video).
        precisions, xla: extra per-frame timings (float32 is always timed).
        matmul_size: side of the square matmul that measures the machine's FLOP/s.
    """

    width: float = 1.0
    frame_size: tuple = (854, 480)
    repeats: int = 5
    max_objects: int = 3
    io_frames: int = 8
    stream_frames: int = 1000
    stream_size: tuple = (128, 96)
    finetune_steps_timed: int = 20
    finetune_steps: int = 1000
    video_frames: int = 70
    precisions: tuple = ("mixed_bfloat16", "mixed_float16")
    xla: bool = True
    matmul_size: int = 2048
    seed: int = 0

    @classmethod
    def quick(cls):
        """A smoke run of every measurement in well under a minute (numbers not meaningful)."""
        return cls(width=0.125, frame_size=(160, 96), repeats=2, io_frames=4, stream_frames=20,
                   stream_size=(64, 48), finetune_steps_timed=2, matmul_size=512)


def run_times(functions, repeats):
    """Wall times of each of `functions` (a dict), run in turn `repeats` times after one warm-up each."""
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            tick = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - tick)
    return times


def interleaved(functions, repeats):
    """Median seconds of each of `functions`, run in turn (`run_times`)."""
    return {name: statistics.median(values) for name, values in run_times(functions, repeats).items()}


def median_seconds(function, repeats):
    """Median wall time of `function()` over `repeats` runs (one untimed warm-up first)."""
    return interleaved({"f": function}, repeats)["f"]


def matmul_flops_per_second(size, repeats):
    """Best FLOP/s of a float32 `size x size` matmul: the machine's practical peak."""
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    return 2 * size**3 / min(run_times({"matmul": lambda: matmul().numpy()}, max(repeats, 10))["matmul"])


def convolution_flops(network, inputs):
    """FLOPs (2 per multiply-add) of every `Conv2D` of a functional `network` on `inputs`."""
    convs = [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    probe = keras.Model(network.inputs, [layer.output for layer in convs])
    total = 0
    for layer, output in zip(convs, probe([np.asarray(x) for x in inputs])):
        kh, kw, cin, cout = layer.kernel.shape
        total += 2 * int(np.prod(output.shape[:3])) * kh * kw * cin * cout
    return total


class _Frames:
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


def run_benchmark(config=BenchmarkConfig(), log=print):
    """Runs every measurement; returns a JSON-ready dict of numbers and the targets' verdicts."""
    rng = np.random.default_rng(config.seed)
    size = tuple(config.frame_size)
    repeats = config.repeats
    results = {"config": dataclasses.asdict(config), "device": _device_name(), "tensorflow": tf.__version__}

    # --- machine peak and the bare FCN ------------------------------------------------------
    log("timing a matmul (the machine's FLOP/s)...")
    results["matmul_gflops"] = matmul_flops_per_second(config.matmul_size, repeats) / 1e9
    model = _random_model(config.width, config.seed)
    bare = _random_model(config.width, config.seed, use_visual_modulator=False, use_spatial_modulator=False)
    osmn = VideoSegmenter(model, size)
    fcn = VideoSegmenter(bare, size)
    one = _Frames(model, size, 1, rng)

    # --- 1. modulation is free; 2. FLOP/s -------------------------------------------------------
    log(f"timing one object at {size[0]}x{size[1]}: OSMN vs the bare FCN...")
    runs = run_times({"osmn": _segmenter_step(osmn, one), "fcn": _segmenter_step(fcn, one)}, repeats)
    times = {name: statistics.median(values) for name, values in runs.items()}
    guide_seconds = median_seconds(lambda: spatial_guide(one.masks[0]), repeats)
    image = one.image[np.newaxis]
    guide = spatial_guide(one.masks[0])[np.newaxis]
    # Useful work per frame: the segmentation network's and the spatial modulator's convolutions.
    flops = (convolution_flops(model.segmentation_network, [image, one.params, *model.spatial_modulator(guide)])
             + convolution_flops(model.spatial_modulator, [guide]))
    flops_fcn = convolution_flops(bare.segmentation_network, [image])
    results["per_frame_seconds"] = {"osmn": times["osmn"], "fcn": times["fcn"], "spatial_guide": guide_seconds}
    results["modulation_ratio"] = times["osmn"] / times["fcn"]
    results["network_gflops_per_frame"] = flops / 1e9
    results["network_gflops_per_second"] = flops / min(runs["osmn"]) / 1e9
    results["fcn_gflops_per_second"] = flops_fcn / min(runs["fcn"]) / 1e9
    results["flops_efficiency"] = results["network_gflops_per_second"] / results["matmul_gflops"]

    # --- 3. objects share work ---------------------------------------------------------------
    log(f"timing 1..{config.max_objects} objects, shared and per-object...")
    per_object = VideoSegmenter(model, size, share_frame_features=False)
    objects = {}
    for count in range(1, config.max_objects + 1):
        frames = _Frames(model, size, count, rng)
        times = interleaved({"shared": _segmenter_step(osmn, frames),
                             "per_object": _segmenter_step(per_object, frames)}, repeats)
        shared_p = osmn.segment_frame(frames.image, frames.masks, frames.params)
        copied_p = per_object.segment_frame(frames.image, frames.masks, frames.params)
        objects[count] = {**times, "masks_identical": bool(np.array_equal(shared_p > 0.5, copied_p > 0.5)),
                          "max_probability_difference": float(np.abs(shared_p - copied_p).max())}
    results["objects"] = objects
    most = config.max_objects
    results["objects_ratio_shared"] = objects[most]["shared"] / objects[1]["shared"]
    results["objects_ratio_per_object"] = objects[most]["per_object"] / objects[1]["per_object"]

    # --- 4. I/O hides behind compute; 5. peak memory, time to first mask --------------------
    log(f"segmenting {config.io_frames} JPEG frames end to end...")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        paths = _write_frames(scratch / "frames", config.io_frames + 1, size, rng)
        first_mask = np.zeros((size[1], size[0]), np.uint8)
        first_mask[one.masks[0]] = 1
        from osmn_tf.frames import load_rgb

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
    results["end_to_end_frames_per_second"] = config.io_frames / end_to_end
    results["network_frames_per_second"] = 1 / network_only
    results["io_ratio"] = results["end_to_end_frames_per_second"] / results["network_frames_per_second"]
    results["peak_rss_mb"] = peak_memory_mb()

    # --- 5. no retracing, flat memory ---------------------------------------------------------
    log(f"streaming {config.stream_frames} frames at {config.stream_size[0]}x{config.stream_size[1]} "
        "(memory, retracing)...")
    results["stream"] = _stream(model, config, rng, log)

    # --- 6. versus one-shot fine-tuning ----------------------------------------------------
    log(f"timing {config.finetune_steps_timed} fine-tuning steps of the bare FCN (batch 1)...")
    step_seconds = _finetune_step_seconds(bare, size, config.finetune_steps_timed, rng)
    encode_seconds = median_seconds(
        lambda: osmn._encode(np.zeros((1, model.config.guide_size, model.config.guide_size, 3), np.float32)),
        repeats)
    frames = config.video_frames - 1  # frame 0 is given
    osmn_video = encode_seconds + frames * results["per_frame_seconds"]["osmn"]
    finetune_video = config.finetune_steps * step_seconds + frames * results["per_frame_seconds"]["fcn"]
    results["finetune"] = {"step_seconds": step_seconds, "encode_seconds": encode_seconds,
                           "osmn_video_seconds": osmn_video, "finetune_video_seconds": finetune_video,
                           "speedup": finetune_video / osmn_video}

    # --- 7. precision and XLA --------------------------------------------------------------
    variants = {"float32": osmn}
    for precision in config.precisions:
        variants[precision] = VideoSegmenter(model, size, precision=precision)
    if config.xla:
        variants["xla"] = VideoSegmenter(model, size, jit_compile=True)
    log(f"timing {', '.join(variants)}...")
    reference = osmn.segment_frame(one.image, one.masks, one.params) > 0.5
    results["precision"] = {}
    for name, segmenter in variants.items():
        seconds = median_seconds(_segmenter_step(segmenter, one), repeats)
        masks = segmenter.segment_frame(one.image, one.masks, one.params) > 0.5
        results["precision"][name] = {"seconds": seconds, "mask_agreement": float(np.mean(masks == reference))}
    results["targets"] = targets(results)
    return results


def _device_name():
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"{len(gpus)} GPU(s): " + ", ".join(tf.config.experimental.get_device_details(g).get(
            "device_name", g.name) for g in gpus)
    return f"CPU, {os.cpu_count()} cores"


def _rss_mb():
    """Current resident memory in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_memory_mb()


def _stream(model, config, rng, log):
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
            samples.append((t, _rss_mb()))
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
            "rss_growth_mb": growth, "traces": int(segmenter._probabilities.experimental_get_tracing_count())}


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
