"""Choosing a `tf.distribute` strategy, and which worker writes files."""
import json
import os

import tensorflow as tf


def split_cpu(num_devices):
    """Splits the CPU into `num_devices` logical devices (before TF starts using it).

    Lets MirroredStrategy run on a machine without GPUs: tests and CPU demos of
    multi-replica training. It cannot speed anything up.
    """
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices)


def make_strategy(name="auto", cpu_replicas=1):
    """A `tf.distribute.Strategy` by name.

    * `auto`: `multi_worker` when `TF_CONFIG` names a cluster, else `mirrored`
      when there are several GPUs (or `cpu_replicas > 1`), else `one_device`.
    * `one_device`: the first GPU, or the CPU.
    * `mirrored`: every local GPU (or the `cpu_replicas` logical CPUs).
    * `multi_worker`: `MultiWorkerMirroredStrategy` over the cluster in
      `TF_CONFIG` (every worker runs the same command).

    Must run before any other TensorFlow op (multi-worker and CPU splitting need it).
    """
    if int(cpu_replicas) > 1:
        split_cpu(int(cpu_replicas))
    if name == "auto":
        if _cluster():
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1 or int(cpu_replicas) > 1:
            name = "mirrored"
        else:
            name = "one_device"
    if name == "multi_worker":
        if not _cluster():
            raise ValueError("strategy multi_worker needs TF_CONFIG with a cluster and this task")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    raise ValueError(f"unknown strategy {name!r}: use auto, one_device, mirrored or multi_worker")


def _cluster():
    return json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster")


def is_chief(strategy):
    """Whether this process writes checkpoints, summaries and results (worker 0, or the only one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())


def worker_name(strategy):
    """`worker-<id>` of this process in a cluster (for its private scratch folders)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return f"{resolver.task_type}-{resolver.task_id}" if resolver is not None else "worker-0"


def strategy_name(strategy):
    """The public name of a strategy (`MultiWorkerMirroredStrategy`'s class is `CollectiveAllReduceStrategy`)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    return type(strategy).__name__
