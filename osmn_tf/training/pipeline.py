"""`tf.data` input pipelines over the training sources (`osmn_tf.training.samples`).

A source makes batch `i` of a seeded stream on its own (`source.batch`), so the
pipeline is a range of batch indices mapped in parallel through
`tf.numpy_function`, kept in order (`deterministic=True`) and prefetched.
Resuming at optimizer step `s` is starting the range at `s * accumulation`.

Under `tf.distribute`, each replica reads its own shard of every global batch
(`distributed_dataset`): the union over replicas is exactly the batch one
device would read, so replicas and one device train on the same samples.
"""
import tensorflow as tf

from osmn_tf.config import input_scale_of

KEYS = ("guide_image", "spatial_guide", "image", "label")
_CHANNELS = {"guide_image": 3, "spatial_guide": 1, "image": 3, "label": 1}
# The inputs encoded with the model's pixel scale (the spatial guide is not, as in the release).
SCALED = ("guide_image", "image")


def model_inputs(model, batch):
    """The model's inputs, in its order, from a batch (the model's input names are the batch's keys).

    The sources encode pixels at scale 1 (`frames.normalize_frame`); a model
    whose `OSMNConfig.input_scale` (the release's `--scale_value`) differs gets
    its frame and visual guide multiplied by it here, which equals encoding
    them at that scale (the guide's zeroed background stays 0).
    """
    scale = input_scale_of(model.config)
    names = [tensor.name.split(":")[0] for tensor in model.inputs]
    return [batch[name] * scale if scale != 1.0 and name in SCALED else batch[name] for name in names]


def _set_shapes(tensors, batch_size):
    batch = {}
    for key, tensor in zip(KEYS, tensors):
        # Sizes vary: per-batch scales, and the source's guide_size.
        tensor.set_shape([batch_size, None, None, _CHANNELS[key]])
        batch[key] = tensor
    return batch


def batch_dataset(source, batch_size, seed, start_batch=0, shards=(0,), num_shards=1, parallel_calls=None):
    """An endless `tf.data.Dataset` of batches `start_batch, start_batch + 1, ...` of `source`.

    Args:
        source: a `CocoSource`, `DavisTrainSource` or anything with the same
            `batch(batch_index, batch_size, seed, shard, num_shards)`.
        batch_size: the global batch size.
        seed: the stream's seed; the same seed gives the same batches.
        start_batch: the first batch index (resuming).
        shards, num_shards: of every batch, yield these of its `num_shards`
            shards, one element each, in this order (the parts of one worker's
            replicas); the default yields whole batches.
        parallel_calls: elements made at once (default: `tf.data.AUTOTUNE`).
    Yields: dicts of `guide_image`, `spatial_guide`, `image`, `label` (float32).
    """
    shards = tf.constant(list(shards), tf.int64)

    def make(index, shard):
        batch = source.batch(int(index), batch_size, seed, int(shard), num_shards)
        return tuple(batch[key] for key in KEYS)

    def load(index, shard):
        tensors = tf.numpy_function(make, [index, shard], [tf.float32] * len(KEYS), stateful=False)
        return _set_shapes(tensors, batch_size // num_shards)

    indices = tf.data.Dataset.range(int(start_batch), 2**62)
    pairs = indices.flat_map(lambda i: tf.data.Dataset.from_tensor_slices(shards).map(lambda s: (i, s)))
    dataset = pairs.map(load, num_parallel_calls=parallel_calls or tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(2 * len(shards))


def distributed_dataset(strategy, source, batch_size, seed, start_batch=0, parallel_calls=None):
    """The batches of `batch_dataset`, split over `strategy`'s replicas.

    Replica `r` of `R` receives items `[r * B/R, (r + 1) * B/R)` of global
    batch `i`. Each worker builds one pipeline for its local replicas, which
    `tf.distribute` hands consecutive elements in turn.
    """
    num_replicas = strategy.num_replicas_in_sync
    if batch_size % num_replicas:
        raise ValueError(f"the batch size {batch_size} must be a multiple of the {num_replicas} replicas")

    def dataset_fn(context):
        local = context.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * local
        return batch_dataset(source, batch_size, seed, start_batch, range(first, first + local), num_replicas,
                             parallel_calls)

    return strategy.distribute_datasets_from_function(dataset_fn)
