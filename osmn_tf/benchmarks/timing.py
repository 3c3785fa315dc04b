"""Timing and machine probes the measurements share: interleaved medians, FLOP counts, memory."""
import os
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from osmn_tf.inference.jobs import peak_memory_mb


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


def device_name():
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"{len(gpus)} GPU(s): " + ", ".join(tf.config.experimental.get_device_details(g).get(
            "device_name", g.name) for g in gpus)
    return f"CPU, {os.cpu_count()} cores"


def rss_mb():
    """Current resident memory in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_memory_mb()
