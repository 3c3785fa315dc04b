"""What every training sample source shares: the seeded `batch` of the contract and the argument checks."""
import json
import math
import warnings

import numpy as np

from osmn_tf.config import GUIDE_SIZE
from osmn_tf.data.frames import MEAN_BGR
from osmn_tf.data.guides import SpatialGuidePerturbation, VisualGuideAugmentation, spatial_guide
from osmn_tf.data.mask_guides import dilated_mask_guide, perturbed_mask
from osmn_tf.utils.atomic import atomic_output

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


def training_spatial_guide(mask, rng, spatial_perturb, original_mask=False):
    """A training sample's spatial guide from the reference `mask` at the sample's size.

    The perturbed Gaussian (`spatial_guide` with `spatial_perturb`), or with
    `original_mask` masktrack's: the mask moved and resized at random
    (`perturbed_mask`), dilated, times 255 (the release's `--use_original_mask`).
    """
    if original_mask:
        return dilated_mask_guide(perturbed_mask(mask, rng))
    return spatial_guide(mask, perturb=spatial_perturb, rng=rng if spatial_perturb is not None else None)


def check_augmentations(visual_augment, spatial_perturb):
    if visual_augment is not None and not isinstance(visual_augment, VisualGuideAugmentation):
        raise TypeError(f"visual_augment must be a VisualGuideAugmentation or None, "
                        f"got {type(visual_augment).__name__}")
    if spatial_perturb is not None and not isinstance(spatial_perturb, SpatialGuidePerturbation):
        raise TypeError(f"spatial_perturb must be a SpatialGuidePerturbation or None, "
                        f"got {type(spatial_perturb).__name__}")


def read_json_cache(path, key):
    """The cached payload at `path` when its key equals `key`, else None (missing, stale or unreadable)."""
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            cached = json.load(handle)
    except (OSError, ValueError) as error:
        warnings.warn(f"ignoring unreadable cache {path}: {error}", stacklevel=3)
        return None
    if not isinstance(cached, dict) or cached.get("key") != key:
        return None
    return cached.get("payload")


def write_json_cache(path, key, payload):
    """Writes the cache atomically; a location that cannot be written only warns."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, "w", encoding="utf-8") as handle:
            json.dump({"key": key, "payload": payload}, handle, separators=(",", ":"))
    except OSError as error:
        warnings.warn(f"could not write the cache {path} ({error}); the next construction scans "
                      "again (pass cache_dir= a writable folder)", stacklevel=3)


class SampleSource:
    """`batch` and `__len__` of every source; subclasses define `sample(item, rng, size)`."""

    image_size = (0, 0)
    scales = (1.0,)
    guide_size = GUIDE_SIZE
    mean = MEAN_BGR

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
