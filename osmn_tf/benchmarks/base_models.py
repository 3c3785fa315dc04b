"""The base models side by side (issue 27): time per frame, FLOPs by layer type, and those layer types' own rates.

For each base model (random weights: speed does not depend on their values)
and each precision, in one run and interleaved, so that every ratio compares
numbers taken under the same machine state:

* network only: `VideoSegmenter.segment_frame` on a preprocessed frame, for
  1 and 3 objects (median seconds);
* end to end: `segment_to_folder` over JPEG frames at the frame size, PNG
  masks written (seconds per frame, median of the repeats), 1 and 3 objects;
* FLOPs per frame by layer type (`depthwise` 3x3, `pointwise` 1x1, `3x3`,
  `other`: 2 per multiply-add of the per-frame network's Keras convolutions;
  the fixed bilinear up-sampling is not counted), and each type's rate
  measured in the same run on a standalone layer of that type
  (`reference_rates`); `reference_efficiency` is the time the network would
  take at those rates over the time it takes (1.0: as fast as its layers
  alone; below: overhead between layers or slower shapes).

lite's network sees the frame padded to multiples of 32 (`VideoSegmenter(pad=True)`), as `tools/segment.py`
runs it. INT8 (`int8`, the `int8` extra) runs the per-frame network in OpenVINO, calibrated on synthetic
frames (`osmn_tf.quantization.random_samples`): TensorFlow has no INT8 layer rate to compare it with.
"""
import dataclasses
import pathlib
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from osmn_tf.benchmarks.precisions import COMPUTE_DTYPES
from osmn_tf.benchmarks.timing import device_name, run_times
from osmn_tf.config import BASE_MODELS
from osmn_tf.data.frames import load_rgb
from osmn_tf.data.guides import spatial_guide
from osmn_tf.inference.jobs import segment_to_folder
from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.models import build_osmn
from osmn_tf.utils.precision import cpu_info

LAYER_TYPES = ("depthwise", "pointwise", "3x3", "other")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "int8")


@dataclasses.dataclass(frozen=True)
class BaseModelBenchmark:
    """What `measure_base_models` runs; the defaults are the paper's width at DAVIS' 854 x 480.

    Attributes:
        base_models: the base models compared (`osmn_tf.config.BASE_MODELS`).
        precisions: `float32`, `mixed_bfloat16`, `mixed_float16`, `int8` (float32 always comes first).
        width: the models' channel multiplier.
        frame_size: `(W, H)` of the frames (the working size: no resize).
        objects: the object counts timed.
        repeats: timed runs of each measurement, interleaved over base models and precisions.
        end_to_end_frames: frames of each end-to-end run (frame 0, given, not counted).
        int8_calibration: synthetic calibration frames of the INT8 network.
        seed: of the weights and the frames.
    """

    base_models: tuple = ("osvos", "lite")
    precisions: tuple = ("float32",)
    width: float = 1.0
    frame_size: tuple = (854, 480)
    objects: tuple = (1, 3)
    repeats: int = 3
    end_to_end_frames: int = 6
    int8_calibration: int = 4
    seed: int = 0

    def __post_init__(self):
        unknown = [b for b in self.base_models if b not in BASE_MODELS]
        if unknown or not self.base_models:
            raise ValueError(f"base_models must be some of {BASE_MODELS}, got {self.base_models!r}")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad:
            raise ValueError(f"precisions must be some of {PRECISIONS}, got {self.precisions!r}")
        # float32 is the reference of every ratio.
        object.__setattr__(self, "precisions", ("float32",) + tuple(p for p in self.precisions if p != "float32"))
        for name in ("repeats", "end_to_end_frames"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")

    @classmethod
    def quick(cls, **changes):
        """Tiny models and frames: checks that everything runs (numbers not meaningful)."""
        return cls(**{"width": 0.125, "frame_size": (80, 60), "repeats": 1, "end_to_end_frames": 2, **changes})


def layer_type(layer):
    """`depthwise`, `pointwise`, `3x3` or `other` for a Keras convolution layer; None for anything else."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "depthwise"
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
        kernel = tuple(layer.kernel_size)
        if isinstance(layer, keras.layers.Conv2D) and kernel == (1, 1):
            return "pointwise"
        if isinstance(layer, keras.layers.Conv2D) and kernel == (3, 3):
            return "3x3"
        return "other"
    return None


def flops_by_layer_type(network, inputs):
    """`{layer type: FLOPs}` (2 per multiply-add) of the convolutions of a functional `network` on `inputs`."""
    convs = [layer for layer in network.layers if layer_type(layer)]
    totals = dict.fromkeys(LAYER_TYPES, 0)
    if not convs:
        return totals
    probe = keras.Model(network.inputs, [layer.output for layer in convs])
    outputs = probe([np.asarray(x) for x in inputs])
    for layer, output in zip(convs, outputs if isinstance(outputs, (list, tuple)) else [outputs]):
        kh, kw, cin, cout = layer.kernel.shape
        positions = int(np.prod(output.shape[:3]))
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            flops = 2 * positions * kh * kw * cin * cout  # cout: the depth multiplier
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            strides = int(np.prod(layer.strides))
            flops = 2 * positions * kh * kw * cin * cout // strides  # kernel [kh, kw, out, in], per input position
        else:
            flops = 2 * positions * kh * kw * cin * cout
        totals[layer_type(layer)] += flops
    return totals


def frame_flops(model, segmenter, frame, masks):
    """`{layer type: FLOPs}` of one frame's per-frame network (spatial modulator and segmentation network)."""
    image = segmenter.prepare_frame(frame)[np.newaxis]
    guides = np.stack([segmenter._padded(spatial_guide(m)) for m in masks])
    available = {"image": image, "spatial_guide": guides,
                 "modulation_params": np.ones((len(masks), max(model.num_modulation_params, 1)), np.float32)}
    totals = dict.fromkeys(LAYER_TYPES, 0)
    if model.spatial_modulator is not None:
        maps = model.spatial_modulator(guides)
        maps = maps if isinstance(maps, (list, tuple)) else [maps]
        available.update({f"spatial_biases{b}": m for b, m in zip(model.spatial_modulator.blocks, maps)})
        for kind, flops in flops_by_layer_type(model.spatial_modulator, [guides]).items():
            totals[kind] += flops
    network = model.segmentation_network
    for kind, flops in flops_by_layer_type(network, [available[t.name] for t in network.inputs]).items():
        totals[kind] += flops
    return totals


def reference_rates(frame_size, precisions, repeats):
    """`{precision: {layer type: GFLOP/s}}`: the best rate of one standalone layer of each type.

    Shapes: the frame's size / 4 with 128 channels for the depthwise 3x3 and
    the pointwise 128 -> 128 (MobileNet's stride-4 stage), 256 -> 256 for the
    3x3 (VGG16's block 3, also at a quarter of the frame). `other` has no
    rate. INT8 precisions are skipped (no TensorFlow INT8 layers).
    """
    width, height = frame_size
    h, w = max(height // 4, 8), max(width // 4, 8)
    functions, flops = {}, {}
    for precision in precisions:
        if precision not in COMPUTE_DTYPES:
            continue
        dtype = COMPUTE_DTYPES[precision]
        x128 = tf.cast(tf.random.normal([1, h, w, 128]), dtype)
        x256 = tf.cast(tf.random.normal([1, h, w, 256]), dtype)
        kernels = {"depthwise": tf.cast(tf.random.normal([3, 3, 128, 1], stddev=0.1), dtype),
                   "pointwise": tf.cast(tf.random.normal([1, 1, 128, 128], stddev=0.1), dtype),
                   "3x3": tf.cast(tf.random.normal([3, 3, 256, 256], stddev=0.01), dtype)}
        ops = {
            "depthwise": tf.function(lambda k=kernels["depthwise"], x=x128: tf.reduce_sum(
                tf.cast(tf.nn.depthwise_conv2d(x, k, [1, 1, 1, 1], "SAME"), tf.float32))),
            "pointwise": tf.function(lambda k=kernels["pointwise"], x=x128: tf.reduce_sum(
                tf.cast(tf.nn.conv2d(x, k, 1, "SAME"), tf.float32))),
            "3x3": tf.function(lambda k=kernels["3x3"], x=x256: tf.reduce_sum(
                tf.cast(tf.nn.conv2d(x, k, 1, "SAME"), tf.float32))),
        }
        for kind, op in ops.items():
            functions[f"{precision}/{kind}"] = lambda f=op: f().numpy()
        flops[f"{precision}/depthwise"] = 2 * h * w * 9 * 128
        flops[f"{precision}/pointwise"] = 2 * h * w * 128 * 128
        flops[f"{precision}/3x3"] = 2 * h * w * 9 * 256 * 256
    best = {name: min(times) for name, times in run_times(functions, max(repeats, 5)).items()}
    rates = {}
    for name, seconds in best.items():
        precision, kind = name.split("/")
        rates.setdefault(precision, {})[kind] = flops[name] / seconds / 1e9
    return rates


def _masks(size, count):
    width, height = size
    masks = np.zeros((count, height, width), bool)
    for k in range(count):
        masks[k, height // 4:height // 2, (k * width) // (count + 1):((k + 2) * width) // (count + 2)] = True
    return masks


def _first_mask(masks):
    first = np.zeros(masks.shape[1:], np.uint8)
    for k, mask in enumerate(masks, 1):
        first[mask] = k
    return first


def _write_jpegs(folder, count, size, rng):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    paths = []
    for t in range(count):
        paths.append(folder / f"{t:05d}.jpg")
        Image.fromarray(np.roll(base, 3 * t, axis=1)).save(paths[-1], quality=90)
    return paths


def _segmenters(model, config, log):
    """`{precision: VideoSegmenter}` for `model` (INT8 left out, said in the log, without the extra)."""
    pad = model.config.base_model == "lite"
    size = tuple(config.frame_size)
    segmenters = {}
    for precision in config.precisions:
        if precision != "int8":
            segmenters[precision] = VideoSegmenter(model, size, precision=precision, pad=pad)
            continue
        from osmn_tf.quantization import MissingExtraError, quantize, random_samples

        network_size = segmenters["float32"].network_size
        samples = random_samples(model.frame_model(fold_batch_norm=True), network_size, config.int8_calibration)
        try:
            network = quantize(model, samples, network_size)
        except MissingExtraError as e:
            log(f"INT8 not measured: {e}")
            continue
        segmenters[precision] = VideoSegmenter(model, size, frame_network=network, pad=pad)
    return segmenters


def measure_base_models(config=BaseModelBenchmark(), log=print):
    """Runs the comparison; returns a JSON-ready dict (see the module docstring)."""
    rng = np.random.default_rng(config.seed)
    size = tuple(config.frame_size)
    results = {"config": dataclasses.asdict(config), "cpu": cpu_info()[0], "device": device_name(),
               "tensorflow": tf.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    frame = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    masks = {count: _masks(size, count) for count in config.objects}
    segmenters, models = {}, {}
    for base_model in config.base_models:
        log(f"{base_model}: building (width {config.width:g}) and preparing {', '.join(config.precisions)}...")
        keras.utils.set_random_seed(config.seed)
        models[base_model] = model = build_osmn(width=config.width, base_model=base_model)
        for precision, segmenter in _segmenters(model, config, log).items():
            segmenters[base_model, precision] = segmenter
    rows = {key: {} for key in segmenters}
    log(f"network only, {' and '.join(map(str, config.objects))} object(s), {config.repeats} interleaved repeats...")
    for count in config.objects:
        steps = {}
        for key, segmenter in segmenters.items():
            image = segmenter.prepare_frame(frame)
            params = None
            if models[key[0]].visual_modulator is not None:
                params = rng.normal(1.0, 0.1, (count, models[key[0]].num_modulation_params)).astype(np.float32)
            steps[key] = (lambda s=segmenter, i=image, p=params: s.segment_frame(i, masks[count], p))
        runs = run_times(steps, config.repeats)
        for key, times in runs.items():
            rows[key][f"network_seconds_{count}"] = statistics.median(times)
            rows[key][f"network_best_seconds_{count}"] = min(times)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        paths = _write_jpegs(scratch / "frames", config.end_to_end_frames + 1, size, rng)
        names = [p.stem for p in paths]
        for count in config.objects:
            log(f"end to end (JPEG in, PNG out), {count} object(s), {config.end_to_end_frames} frames a run...")
            first = _first_mask(masks[count])
            for key, segmenter in segmenters.items():  # traces each frame function before timing
                list(segmenter.segment([load_rgb(p) for p in paths[:2]], first))

            def run(key, count=count, first=first):
                output = scratch / "out" / "_".join(key) / str(count)
                segment_to_folder(segmenters[key], (load_rgb(p) for p in paths), names, first, output,
                                  overwrite=True)

            runs = run_times({key: (lambda key=key: run(key)) for key in segmenters}, config.repeats)
            for key, times in runs.items():
                rows[key][f"end_to_end_seconds_{count}"] = statistics.median(times) / config.end_to_end_frames
    log("FLOPs per frame and the layer types' own rates...")
    rates = reference_rates(size, config.precisions, config.repeats)
    results["reference_gflops_per_second"] = rates
    for (base_model, precision), row in rows.items():
        model, segmenter = models[base_model], segmenters[base_model, precision]
        row["network_size"] = list(segmenter.network_size)
        for count in config.objects:
            flops = frame_flops(model, segmenters[base_model, "float32"], frame, masks[count])
            row[f"gflops_{count}"] = {kind: value / 1e9 for kind, value in flops.items()}
            total = sum(flops.values())
            row[f"gflops_per_second_{count}"] = total / row.pop(f"network_best_seconds_{count}") / 1e9
            rate = rates.get(precision)
            row[f"reference_efficiency_{count}"] = None
            if rate is not None and not flops["other"]:
                at_rates = sum(flops[kind] / (rate[kind] * 1e9) for kind in ("depthwise", "pointwise", "3x3"))
                row[f"reference_efficiency_{count}"] = at_rates / row[f"network_seconds_{count}"]
    results["rows"] = {f"{b}/{p}": row for (b, p), row in rows.items()}
    if "osvos" in config.base_models:
        results["ratio_to_osvos"] = {
            f"{b}/{p}": {key: row[key] / rows["osvos", p][key] for key in row
                         if key.startswith(("network_seconds", "end_to_end_seconds")) and ("osvos", p) in rows}
            for (b, p), row in rows.items() if b != "osvos"}
    return results


def format_base_models(results):
    """A plain-text table of `measure_base_models`' results (seconds per frame, GFLOPs, rates)."""
    counts = results["config"]["objects"]
    width, height = results["config"]["frame_size"]
    lines = [f"{results['cpu']} ({results['device']}), TensorFlow {results['tensorflow']}, {results['date']}; "
             f"{width}x{height} frames, width {results['config']['width']:g}; seconds per frame (median)"]
    header = ["model/precision"] + [f"net {c} obj" for c in counts] + [f"e2e {c} obj" for c in counts] + \
        [f"GFLOPs {counts[0]} obj", "GFLOP/s", "of layer rates"]
    table = [header]
    for name, row in results["rows"].items():
        first = counts[0]
        efficiency = row[f"reference_efficiency_{first}"]
        table.append([name] + [f"{row[f'network_seconds_{c}']:.3f}" for c in counts]
                     + [f"{row[f'end_to_end_seconds_{c}']:.3f}" for c in counts]
                     + [f"{sum(row[f'gflops_{first}'].values()):.1f}", f"{row[f'gflops_per_second_{first}']:.1f}",
                        "-" if efficiency is None else f"{efficiency:.2f}"])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in table]
    lines.append("GFLOPs by layer type (1st object count): " + "; ".join(
        f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row[f"gflops_{counts[0]}"].items() if v)
        for name, row in results["rows"].items() if name.endswith("/float32")))
    lines.append("layer rates, GFLOP/s: " + "; ".join(
        f"{p}: " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()) for p, r in
        results["reference_gflops_per_second"].items()))
    for name, ratios in results.get("ratio_to_osvos", {}).items():
        lines.append(f"{name} / osvos: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))
    return "\n".join(lines)
