"""What every training sample source shares: the seeded `batch` of the contract and the argument checks."""
import math

import numpy as np

from osmn_tf.config import GUIDE_SIZE
from osmn_tf.data.guides import SpatialGuidePerturbation, VisualGuideAugmentation

CACHE_VERSION = 1
"""Part of every source's cache key: another value makes older caches stale."""


def check_scales(scales):
    try:
        scales = tuple(float(s) for s in scales)
    except TypeError:
        raise ValueError(f"scales must be a sequence of positive numbers, got {scales!r}") from None
    if not scales or not all(math.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"scales must be a non-empty sequence of positive numbers, got {scales!r}")
    return scales


def check_augmentations(visual_augment, spatial_perturb):
    if visual_augment is not None and not isinstance(visual_augment, VisualGuideAugmentation):
        raise TypeError(f"visual_augment must be a VisualGuideAugmentation or None, "
                        f"got {type(visual_augment).__name__}")
    if spatial_perturb is not None and not isinstance(spatial_perturb, SpatialGuidePerturbation):
        raise TypeError(f"spatial_perturb must be a SpatialGuidePerturbation or None, "
                        f"got {type(spatial_perturb).__name__}")


class SampleSource:
    """`batch` and `__len__` of every source; subclasses define `sample(item, rng, size)`."""

    image_size = (0, 0)
    scales = (1.0,)
    guide_size = GUIDE_SIZE

    def __len__(self):
        return self._num_items

    def scaled_size(self, scale):
        """The `(W, H)` of a batch at `scale`: `int(W * scale), int(H * scale)` as the original."""
        width, height = self.image_size
        return int(width * scale), int(height * scale)

    def batch(self, batch_index, batch_size, seed, shard=0, num_shards=1):
        """Batch `batch_index` of the stream seeded with `seed`; see the module docstring.

        With `num_shards > 1`, only the items of shard `shard` (a contiguous
        `batch_size / num_shards` of the batch, in order): what one replica
        trains on. The shards of a batch concatenate to the whole batch.
        """
        batch_index, batch_size, seed = int(batch_index), int(batch_size), int(seed)
        shard, num_shards = int(shard), int(num_shards)
        if batch_index < 0 or seed < 0:
            raise ValueError(f"batch_index and seed must be >= 0, got {batch_index} and {seed}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_shards < 1 or batch_size % num_shards or not 0 <= shard < num_shards:
            raise ValueError(f"cannot take shard {shard} of {num_shards} of a batch of {batch_size}")
        if len(self) == 0:
            raise ValueError(f"{self!r} has no training items")
        rng = np.random.default_rng([seed, batch_index])
        scale = self.scales[int(rng.integers(len(self.scales)))]
        size = self.scaled_size(scale)
        if min(size) < 1:
            raise ValueError(f"scale {scale} of image_size {self.image_size} gives an empty image")
        items = rng.integers(0, len(self), size=batch_size)
        per_shard = batch_size // num_shards
        positions = range(shard * per_shard, (shard + 1) * per_shard)
        # Each item has its own stream, so a shard costs only its own items.
        samples = [self.sample(int(items[j]), np.random.default_rng([seed, batch_index, j]), size)
                   for j in positions]
        return {key: np.stack([s[key] for s in samples]) for key in samples[0]}


class ScaledSource:
    """A source whose `image` and `guide_image` are multiplied by `scale`: the pixel scale of the model's inputs.

    The sources normalise pixels at scale 1 (BGR minus the mean); lite's
    inputs are at 0.00787 (`osmn_tf.config.input_scale_of`), as at inference,
    so training must feed them so too. Everything else is the wrapped
    source's (`source`).
    """

    SCALED = ("image", "guide_image")

    def __init__(self, source, scale):
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
        self.source = source
        self.scale = float(scale)

    def __getattr__(self, name):
        return getattr(self.source, name)

    def __len__(self):
        return len(self.source)

    def __repr__(self):
        return f"{self.source!r} at pixel scale {self.scale:g}"

    def batch(self, *args, **kwargs):
        batch = self.source.batch(*args, **kwargs)
        # The original multiplies in float64, then feeds float32 (osmn_tf.data.frames.normalize_frame).
        return {key: (value * np.float64(self.scale)).astype(np.float32) if key in self.SCALED else value
                for key, value in batch.items()}


def scaled_source(source, scale):
    """`source` itself at scale 1, else a `ScaledSource`; None stays None."""
    return source if source is None or scale == 1 else ScaledSource(source, scale)
