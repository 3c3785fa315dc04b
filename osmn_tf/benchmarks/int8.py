"""The INT8 route study: every route's parity on a trained model and its speed at full size, side by side.

Two phases, so that the slow conversions never run while the timing does:
`prepare` quantizes every route twice (the trained demo model, calibrated on
frames of its training videos and scored on its validation videos; and a
random-weight full-width model, calibrated on synthetic frames, for speed)
and writes the models and the parity results into a folder; `time_routes`
loads them all into one process and times them interleaved
(`osmn_tf.benchmarks.timing.interleaved`), with Keras float32 as the reference.
"""
import json
import os
import pathlib
import time
import traceback

import keras
import numpy as np
import tensorflow as tf

from osmn_tf.benchmarks.parity import mask_agreement
from osmn_tf.benchmarks.timing import interleaved
from osmn_tf.data.davis import DavisDataset
from osmn_tf.evaluation import evaluate_davis
from osmn_tf.inference.jobs import segment_davis
from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.models import build_osmn
from osmn_tf.quantization import routes as route_lib
from osmn_tf.quantization.calibration import calibration_samples, dataset_videos, random_samples
from osmn_tf.utils.atomic import atomic_output


def _score(model, davis_root, output_dir, working_size, frame_network=None):
    dataset = DavisDataset(davis_root, split="val")
    segmenter = VideoSegmenter(model, working_size, frame_network=frame_network)
    stats = segment_davis(segmenter, dataset, output_dir, overwrite=True)
    return evaluate_davis(davis_root, output_dir, split="val").global_metrics["J&F-Mean"], stats


def prepare(work_dir, demo_model, demo_root, demo_size, routes=route_lib.ROUTES, speed_size=(854, 480),
            speed_width=1.0, calibration_videos=2, frames_per_video=8, speed_samples=8, log=print):
    """Quantizes every route for parity (demo model) and speed (random weights); writes `work_dir/prepared.json`.

    A route that fails is recorded with its exception (type, message, last frames of the traceback).
    """
    from osmn_tf.weights.checkpoints import load_model

    work_dir = pathlib.Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    report = {"demo_size": list(demo_size), "speed_size": list(speed_size), "speed_width": speed_width,
              "routes": {}}

    model = load_model(demo_model)
    train = DavisDataset(demo_root, split="train")
    sequences = train.sequences[:calibration_videos]
    samples = calibration_samples(model, dataset_videos(train, sequences), demo_size, frames_per_video)
    report["demo_calibration"] = {"videos": list(sequences), "samples": len(samples)}
    log(f"demo calibration: {len(samples)} samples from {', '.join(sequences)}")
    frame_model = model.frame_model(fold_batch_norm=True)
    reference_dir = work_dir / "demo_results" / "keras_float32"
    tick = time.perf_counter()
    jf_float, stats = _score(model, demo_root, reference_dir, demo_size)
    report["demo_keras_float32"] = {"J&F-Mean": jf_float, "frames_per_second": stats.frames_per_second}
    log(f"keras float32: J&F-Mean {jf_float:.4f} ({time.perf_counter() - tick:.0f} s)")
    dataset = DavisDataset(demo_root, split="val")
    for route in routes:
        entry = report["routes"][route] = {}
        try:
            tick = time.perf_counter()
            paths = route_lib.build_route(route, frame_model, demo_size, samples, work_dir / "demo" / route)
            entry["demo_quantize_seconds"] = time.perf_counter() - tick
            for kind, path in zip(("float32", "int8"), paths):
                out = work_dir / "demo_results" / f"{route}_{kind}"
                network = route_lib.load_runner(route, path)
                jf, _ = _score(model, demo_root, out, demo_size, network)
                entry[f"{kind}_J&F-Mean"] = jf
                entry[f"{kind}_J&F_difference"] = jf - jf_float
                entry[f"{kind}_mask_agreement"] = mask_agreement(reference_dir, out, dataset)
                log(f"{route} {kind}: J&F-Mean {jf:.4f} ({jf - jf_float:+.4f}), "
                    f"mask agreement {entry[f'{kind}_mask_agreement']:.5f}")
        except Exception as e:  # the study reports a failing route and goes on with the others
            entry["error"] = _error(e)
            log(f"{route}: FAILED on the demo model: {entry['error']['message']}")

    keras.utils.set_random_seed(0)
    speed_model = build_osmn(width=speed_width)
    speed_frame = speed_model.frame_model(fold_batch_norm=True)
    speed_frame.save_weights(work_dir / "speed_frame.weights.h5")
    speed_calibration = random_samples(speed_frame, speed_size, speed_samples)
    with atomic_output(work_dir / "speed_inputs.npz") as handle:
        np.savez(handle, **random_samples(speed_frame, speed_size, 1, seed=1)[0])
    for route in routes:
        entry = report["routes"][route]
        if "error" in entry:
            continue
        try:
            tick = time.perf_counter()
            paths = route_lib.build_route(route, speed_frame, speed_size, speed_calibration, work_dir / "speed" / route)
            entry["speed_quantize_seconds"] = time.perf_counter() - tick
            entry["speed_paths"] = [os.fspath(p) for p in paths]
            log(f"{route}: full-size models written in {entry['speed_quantize_seconds']:.0f} s")
        except Exception as e:
            entry["error"] = _error(e)
            log(f"{route}: FAILED at full size: {entry['error']['message']}")
    report["speed_calibration"] = f"{speed_samples} synthetic frames (random_samples, seed 0)"
    with atomic_output(work_dir / "prepared.json", "w") as handle:
        json.dump(report, handle, indent=2)
    return report


def _error(e):
    return {"type": type(e).__name__, "message": str(e)[:2000],
            "traceback": traceback.format_exception(e)[-3:]}


def time_routes(work_dir, repeats=5, log=print):
    """Seconds per frame of Keras float32 and every prepared route's float32 and INT8 models, interleaved.

    Returns `{name: seconds}`, names `keras_float32` and `<route>_float32`/`<route>_int8`.
    """
    work_dir = pathlib.Path(work_dir)
    report = json.loads((work_dir / "prepared.json").read_text())
    keras.utils.set_random_seed(0)
    frame_model = build_osmn(width=report["speed_width"]).frame_model(fold_batch_norm=True)
    frame_model.load_weights(work_dir / "speed_frame.weights.h5")
    inputs = dict(np.load(work_dir / "speed_inputs.npz"))
    ordered = [tf.constant(inputs[t.name]) for t in frame_model.inputs]
    keras_call = tf.function(lambda *x: frame_model(list(x), training=False), autograph=False)
    functions = {"keras_float32": lambda: keras_call(*ordered).numpy()}
    reference = functions["keras_float32"]()
    for route, entry in report["routes"].items():
        if "speed_paths" not in entry:
            continue
        for kind, path in zip(("float32", "int8"), entry["speed_paths"]):
            runner = route_lib.load_runner(route, path)
            functions[f"{route}_{kind}"] = lambda runner=runner: runner(inputs)
            # A runner that does not compute the same function would time something else.
            agreement = float(np.mean((runner(inputs) > 0) == (reference > 0)))
            log(f"{route} {kind}: full-size mask agreement with Keras on the timing input {agreement:.4f}")
    log(f"timing {len(functions)} networks, {repeats} interleaved repeats each")
    return interleaved(functions, repeats)
