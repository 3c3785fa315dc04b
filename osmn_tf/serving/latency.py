"""How long the exported `segment` signature takes per frame, beside the Keras model it came from."""
import time

import numpy as np
import tensorflow as tf


def segment_latency(model, saved_model_dir, working_size, runs=5):
    """Median seconds per `segment` call (N=1) for the SavedModel and the Keras model, interleaved.

    Args:
        model: the `osmn_tf.OSMN` that was exported to `saved_model_dir`.
        working_size: `(W, H)` of the random test frame.
        runs: timed calls of each, after one warm-up call (tracing).
    Returns:
        `{description: seconds}`.
    """
    width, height = working_size
    rng = np.random.default_rng(0)
    values = {
        "image": rng.normal(0, 50, (1, height, width, 3)).astype("float32"),
        "spatial_guide": rng.uniform(0, 1, (1, height, width, 1)).astype("float32"),
        "modulation_params": rng.uniform(0.5, 1.5, (1, model.num_modulation_params)).astype("float32"),
    }
    frame_model = model.frame_model()
    names = [t.name for t in frame_model.inputs]

    def probabilities(*inputs):
        return tf.sigmoid(frame_model(list(inputs), training=False))

    keras_fn = tf.function(probabilities)
    signature = tf.saved_model.load(str(saved_model_dir)).signatures["segment"]
    calls = {
        "SavedModel segment": lambda: signature(**{n: tf.constant(values[n]) for n in names})["probabilities"].numpy(),
        "Keras frame_model (tf.function)": lambda: keras_fn(*[tf.constant(values[n]) for n in names]).numpy(),
    }
    times = {k: [] for k in calls}
    for call in calls.values():
        call()
    for _ in range(runs):
        for name, call in calls.items():
            tick = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - tick)
    return {k: float(np.median(v)) for k, v in times.items()}
