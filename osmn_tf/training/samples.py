"""Training samples for OSMN's two training stages (SPEC section 7).

Two sources share one contract, so that one `tf.data` pipeline reads either:

* `CocoSource`: stage 1, MS-COCO objects (the object's own image is both the
  visual guide's source and the frame to segment; the spatial guide comes from
  the object's own mask).
* `DavisTrainSource`: stage 2, DAVIS train sequences (frame t is segmented, the
  spatial guide comes from frame t-1's ground truth and the visual guide from a
  random "valid" frame of the same object).

The contract::

    source.batch(batch_index, batch_size, seed) -> {
        "guide_image":   float32 [B, S, S, 3]      BGR minus the mean, 0 off the object
                                                   (S = the source's guide_size, 224 by default)
        "spatial_guide": float32 [B, H, W, 1]      in [0, 1]
        "image":         float32 [B, H, W, 3]      BGR minus the mean
        "label":         float32 [B, H, W, 1]      0 or 1
    }

A batch depends on `(seed, batch_index)` only: its random stream is
`numpy.random.default_rng([seed, batch_index])`, from which the batch's scale
(one `(H, W)` per batch, `image_size` times a scale from `scales`, truncated
to ints as the original did) and its items (drawn uniformly with replacement
from `range(len(source))`) are drawn, in this order; item `j`'s augmentations
come from its own stream `default_rng([seed, batch_index, j])`. So any batch
can be made again (resuming), in parts (replicas) and in
parallel, in any order. `source.sample(item, rng, size)` makes one item.

Reading, resizing and guides are `osmn_tf.frames` and `osmn_tf.guides`; this
module only decides what goes where.
"""
import contextlib
import dataclasses
import io
import json
import math
import pathlib
import warnings

import numpy as np

from osmn_tf.config import GUIDE_SIZE, check_guide_size
from osmn_tf.davis import DavisDataset, atomic_output
from osmn_tf.frames import _check_size, load_rgb, normalize_frame, resize_frame, resize_mask
from osmn_tf.guides import (
    SpatialGuidePerturbation, VisualGuideAugmentation, mask_bbox, spatial_guide, visual_guide)

try:  # pycocotools is only needed for COCO.
    from pycocotools import mask as coco_mask
    from pycocotools.coco import COCO
except ImportError:  # pragma: no cover - reported when CocoSource is built
    coco_mask = None
    COCO = None

COCO_MIN_AREA_FRACTION = 0.03
"""Stage 1 keeps non-crowd objects covering more than this fraction of their image."""

DAVIS_LABEL_VALID_RATIO = 0.003
"""A frame is a valid visual guide when the object covers more than this fraction of the image..."""

DAVIS_BBOX_VALID_RATIO = 0.2
"""...and more than this fraction of its bounding box (the original's `--bbox_valid_ratio`)."""

_CACHE_VERSION = 1


# ----------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------
def _check_scales(scales):
    try:
        scales = tuple(float(s) for s in scales)
    except TypeError:
        raise ValueError(f"scales must be a sequence of positive numbers, got {scales!r}") from None
    if not scales or not all(math.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"scales must be a non-empty sequence of positive numbers, got {scales!r}")
    return scales


def _check_augmentations(visual_augment, spatial_perturb):
    if visual_augment is not None and not isinstance(visual_augment, VisualGuideAugmentation):
        raise TypeError(f"visual_augment must be a VisualGuideAugmentation or None, "
                        f"got {type(visual_augment).__name__}")
    if spatial_perturb is not None and not isinstance(spatial_perturb, SpatialGuidePerturbation):
        raise TypeError(f"spatial_perturb must be a SpatialGuidePerturbation or None, "
                        f"got {type(spatial_perturb).__name__}")


def _read_json_cache(path, key):
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


def _write_json_cache(path, key, payload):
    """Writes the cache atomically; a location that cannot be written only warns."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, "w", encoding="utf-8") as handle:
            json.dump({"key": key, "payload": payload}, handle, separators=(",", ":"))
    except OSError as error:
        warnings.warn(f"could not write the cache {path} ({error}); the next construction scans "
                      "again (pass cache_dir= a writable folder)", stacklevel=3)


class _Source:
    """`batch`, `__len__` and the checks common to both sources; subclasses define `sample`."""

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


# ----------------------------------------------------------------------------
# Stage 1: MS-COCO
# ----------------------------------------------------------------------------
class CocoSource(_Source):
    """Stage 1 samples from a COCO-format instance segmentation set (SPEC section 7).

    Items are the objects that are not crowd and whose mask covers more than
    `min_area_fraction` of their image, in annotation file order (as the
    original's `prefilter`). One item gives: the visual guide from the object's
    bounding-box crop of the full image, with training augmentation; the image
    and the object's mask resized to the batch's size (optionally randomly
    cropped first), flipped together with p = 0.5; the spatial guide from the
    (flipped) label, perturbed.

    The first construction scans every annotation with `pycocotools` (masks
    as run-length encodings: the pixel count is exact without decoding) and
    caches the kept objects' compressed RLEs and image sizes in one `.npz`
    file; later constructions read only that file (no COCO object is built,
    and the COCO JSON is not kept in memory). The cache is keyed by the
    annotation file's name, size and modification time and by
    `min_area_fraction`.

    Args:
        annotation_file: COCO `instances_*.json`.
        image_dir: folder of the images named by the file's `file_name`s.
        image_size: `(W, H)` at scale 1; the original's `--im_size` (400, 400).
        scales: one is drawn per batch; the original's `--data_aug_scales`.
        min_area_fraction: kept objects cover strictly more than this fraction.
        random_crop_ratio: before the resize, one side of the image (drawn
            uniformly among the four) is cut by U(0, ratio) of the image's
            extent (the original's `--random_crop_ratio`, 0 = off).
        bbox_sup: visual guide not masked (`--bbox_sup`).
        cache_dir: folder of the object cache; None puts it beside the
            annotation file. An unwritable folder only warns.
        visual_augment: `VisualGuideAugmentation` (the release's by default);
            None turns it off (inference-style guide, 0.03 pad).
        spatial_perturb: `SpatialGuidePerturbation` (the release's by default);
            None turns it off (the paper's "no perturbation" ablation).
        flip: the shared horizontal flip of image and label, p = 0.5.
        guide_size: side of the visual guides (the model's `guide_size`).
    """

    def __init__(self, annotation_file, image_dir, image_size=(400, 400), scales=(0.8, 1.0, 1.2),
                 min_area_fraction=COCO_MIN_AREA_FRACTION, random_crop_ratio=0.0, bbox_sup=False,
                 cache_dir=None, visual_augment=VisualGuideAugmentation(),
                 spatial_perturb=SpatialGuidePerturbation(), flip=True, guide_size=GUIDE_SIZE):
        if coco_mask is None:
            raise ImportError("CocoSource needs pycocotools: pip install pycocotools")
        self.annotation_file = pathlib.Path(annotation_file)
        self.image_dir = pathlib.Path(image_dir)
        if not self.annotation_file.is_file():
            raise FileNotFoundError(f"COCO annotation file not found: {self.annotation_file}")
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"COCO image folder not found: {self.image_dir}")
        self.image_size = _check_size(image_size, "image_size")
        self.scales = _check_scales(scales)
        self.min_area_fraction = float(min_area_fraction)
        if not 0 <= self.min_area_fraction < 1:
            raise ValueError(f"min_area_fraction must be in [0, 1), got {min_area_fraction!r}")
        self.random_crop_ratio = float(random_crop_ratio)
        if not 0 <= self.random_crop_ratio < 1:
            raise ValueError(f"random_crop_ratio must be in [0, 1), got {random_crop_ratio!r}")
        self.bbox_sup = bool(bbox_sup)
        _check_augmentations(visual_augment, spatial_perturb)
        self.visual_augment = visual_augment
        self.spatial_perturb = spatial_perturb
        self.flip = bool(flip)
        self.guide_size = check_guide_size(guide_size, "guide_size")

        folder = pathlib.Path(cache_dir) if cache_dir is not None else self.annotation_file.parent
        self.cache_file = folder / (f"{self.annotation_file.name}.osmn-objects-"
                                    f"{self.min_area_fraction:g}.npz")
        stat = self.annotation_file.stat()
        key = json.dumps({"version": _CACHE_VERSION, "annotation_file": self.annotation_file.name,
                          "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                          "min_area_fraction": self.min_area_fraction}, sort_keys=True)
        table = self._read_cache(key)
        if table is None:
            table = self._scan()
            self._write_cache(key, table)
        self._table = table
        self._row_of_image = {int(i): row for row, i in enumerate(table["image_ids"])}
        self._num_items = len(table["ann_ids"])

    def __repr__(self):
        return (f"CocoSource({str(self.annotation_file)!r}, {len(self)} objects, "
                f"image_size={self.image_size}, scales={self.scales})")

    # -- object table -------------------------------------------------------
    # ann_ids, object_image_ids [N]; rle_offsets [N + 1] into rle_bytes (the
    # concatenated compressed RLE counts); image_ids, heights, widths,
    # file_names [I] for the images that have a kept object.
    _TABLE_KEYS = ("ann_ids", "object_image_ids", "rle_offsets", "rle_bytes",
                   "image_ids", "heights", "widths", "file_names")

    def _read_cache(self, key):
        if not self.cache_file.is_file():
            return None
        try:
            with np.load(self.cache_file, allow_pickle=False) as data:
                if str(data["key"]) != key:
                    return None
                return {name: data[name] for name in self._TABLE_KEYS}
        except (OSError, ValueError, KeyError) as error:
            warnings.warn(f"ignoring unreadable cache {self.cache_file}: {error}", stacklevel=3)
            return None

    def _write_cache(self, key, table):
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(self.cache_file) as handle:
                np.savez(handle, key=np.array(key), **table)
        except OSError as error:
            warnings.warn(f"could not write the cache {self.cache_file} ({error}); the next "
                          "construction scans again (pass cache_dir= a writable folder)", stacklevel=3)

    def _scan(self):
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # COCO prints progress
                coco = COCO(str(self.annotation_file))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"cannot read {self.annotation_file} as COCO annotations: {error}") from error
        ann_ids, object_image_ids, rles, images = [], [], [], {}
        for ann in coco.dataset.get("annotations", []):
            if ann.get("iscrowd", 0):
                continue
            info = coco.imgs.get(ann.get("image_id"))
            if info is None:
                raise ValueError(f"{self.annotation_file}: annotation {ann.get('id')} names image "
                                 f"{ann.get('image_id')}, which is not in 'images'")
            pixels = info["height"] * info["width"]
            # COCO's stored polygon area is within a few boundary pixels of the
            # mask's pixel count: objects under half the threshold cannot pass
            # and need no rasterising (the decision stays exact).
            if "area" in ann and ann["area"] < 0.5 * self.min_area_fraction * pixels:
                continue
            rle = coco.annToRLE(ann)  # what annToMask decodes
            if float(coco_mask.area(rle)) / pixels > self.min_area_fraction:
                counts = rle["counts"]
                ann_ids.append(int(ann.get("id", -1)))
                object_image_ids.append(int(info["id"]))
                rles.append(counts.encode("ascii") if isinstance(counts, str) else bytes(counts))
                images[int(info["id"])] = (info["height"], info["width"], info["file_name"])
        image_ids = sorted(images)
        lengths = np.array([len(r) for r in rles], dtype=np.int64)
        return {
            "ann_ids": np.array(ann_ids, dtype=np.int64),
            "object_image_ids": np.array(object_image_ids, dtype=np.int64),
            "rle_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            "rle_bytes": np.frombuffer(b"".join(rles), dtype=np.uint8),
            "image_ids": np.array(image_ids, dtype=np.int64),
            "heights": np.array([images[i][0] for i in image_ids], dtype=np.int64),
            "widths": np.array([images[i][1] for i in image_ids], dtype=np.int64),
            "file_names": np.array([images[i][2] for i in image_ids], dtype=str),
        }

    # -- items --------------------------------------------------------------
    @property
    def object_ids(self):
        """The annotation ids of the items, in item order."""
        return [int(i) for i in self._table["ann_ids"]]

    def image_path(self, item):
        row = self._row_of_image[int(self._table["object_image_ids"][item])]
        return self.image_dir / str(self._table["file_names"][row])

    def object_mask(self, item):
        """The item's full-resolution mask, `uint8` `[H, W]` (0/1), as `COCO.annToMask` gives it."""
        table = self._table
        row = self._row_of_image[int(table["object_image_ids"][item])]
        start, stop = table["rle_offsets"][item], table["rle_offsets"][item + 1]
        rle = {"size": [int(table["heights"][row]), int(table["widths"][row])],
               "counts": table["rle_bytes"][start:stop].tobytes()}
        return np.ascontiguousarray(coco_mask.decode(rle), dtype=np.uint8)

    def sample(self, item, rng, size):
        """Item `item` at `size` `(W, H)`, drawing every augmentation from `rng`.

        Returns the batch dict's arrays without the batch axis.
        """
        path = self.image_path(item)
        rgb = load_rgb(path)
        mask = self.object_mask(item)
        if mask.shape != rgb.shape[:2]:
            raise ValueError(f"{path} is {rgb.shape[1]}x{rgb.shape[0]} (W x H) but "
                             f"{self.annotation_file} says {mask.shape[1]}x{mask.shape[0]}")
        return object_sample(rgb, mask, rng, size, self.visual_augment, self.spatial_perturb,
                             bbox_sup=self.bbox_sup, random_crop_ratio=self.random_crop_ratio, flip=self.flip,
                             guide_size=self.guide_size)


def object_sample(rgb, mask, rng, size, visual_augment, spatial_perturb, bbox_sup=False, random_crop_ratio=0.0,
                  flip=True, guide_size=GUIDE_SIZE):
    """A sample made from one image and its object's mask (stage 1, and online fine-tuning).

    The visual guide is the object's crop of `rgb` (with `visual_augment`);
    the image and the label are `rgb` and `mask` resized to `size`, optionally
    cut on one side first (`random_crop_ratio`) and flipped together (p = 0.5);
    the spatial guide comes from the (flipped) label, with `spatial_perturb`.
    Every random draw comes from `rng`, in that order.
    """
    guide = visual_guide(rgb, mask, augment=visual_augment, rng=rng if visual_augment is not None else None,
                         bbox_sup=bbox_sup, size=guide_size)
    if random_crop_ratio > 0:
        # One side, drawn uniformly, moves in by U(0, ratio) of the extent.
        ratio = rng.uniform() * random_crop_ratio
        side = int(rng.integers(4))
        height, width = mask.shape
        box = [0, 0, width, height]
        cut = int(ratio * (width if side in (0, 2) else height))
        box[side] = cut if side < 2 else box[side] - cut
        rgb = np.ascontiguousarray(rgb[box[1]:box[3], box[0]:box[2]])
        mask = mask[box[1]:box[3], box[0]:box[2]]
    image = resize_frame(rgb, size)
    label = resize_mask(mask, size)
    if flip and rng.uniform() > 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    # The spatial guide comes after the flip, from the flipped label.
    return {
        "guide_image": guide,
        "spatial_guide": spatial_guide(label, perturb=spatial_perturb,
                                       rng=rng if spatial_perturb is not None else None),
        "image": normalize_frame(image),
        "label": label.astype(np.float32)[:, :, np.newaxis],
    }


class FirstFrameSource(_Source):
    """Online fine-tuning samples (paper Table 3): the objects of one annotated frame.

    Items are the objects of `first_mask`; each is made as a stage 1 sample
    (`object_sample`: augmented visual guide from the frame, perturbed spatial
    guide from the object's own mask, shared flip) at the working size.

    Args:
        frame: `uint8` RGB `[H, W, 3]`.
        first_mask: `uint8` `[H, W]` object ids (0 = background).
        image_size: `(W, H)` of the samples (the segmenter's working size).
        guide_size: side of the visual guides (the model's `guide_size`).
    """

    def __init__(self, frame, first_mask, image_size, visual_augment=VisualGuideAugmentation(),
                 spatial_perturb=SpatialGuidePerturbation(), guide_size=GUIDE_SIZE):
        if frame.shape[:2] != first_mask.shape:
            raise ValueError(f"the first mask is {first_mask.shape} but the frame {frame.shape[:2]}")
        self.frame, self.first_mask = frame, first_mask
        self.object_ids = [int(i) for i in np.unique(first_mask) if i]
        self.image_size = _check_size(image_size, "image_size")
        _check_augmentations(visual_augment, spatial_perturb)
        self.visual_augment, self.spatial_perturb = visual_augment, spatial_perturb
        self.guide_size = check_guide_size(guide_size, "guide_size")
        self._num_items = len(self.object_ids)

    def __repr__(self):
        return f"FirstFrameSource({len(self)} objects, image_size={self.image_size})"

    def sample(self, item, rng, size):
        mask = (self.first_mask == self.object_ids[item]).astype(np.uint8)
        return object_sample(self.frame, mask, rng, size, self.visual_augment, self.spatial_perturb,
                             guide_size=self.guide_size)


# ----------------------------------------------------------------------------
# Stage 2: DAVIS train
# ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _SequenceIndex:
    """What sampling needs to know about one sequence, from one pass over its annotations."""

    name: str
    stems: tuple            # annotation file stems, sorted: frame t is stems[t]
    object_ids: tuple       # ids in the first annotation
    areas: np.ndarray       # [objects, frames] foreground pixels
    bbox_areas: np.ndarray  # [objects, frames] (xmax - xmin) * (ymax - ymin), inclusive coords
    pixels: np.ndarray      # [frames] H * W of each annotation


class DavisTrainSource(_Source):
    """Stage 2 samples from DAVIS train sequences (SPEC section 7).

    Items are `(sequence, object, t)` for every object of the sequence's first
    annotation and every frame t >= 1 (`len` counts them). One item gives:
    frame t and the object's mask in it, resized to the batch's size (no
    flip); the spatial guide from the object's ground truth in frame t-1,
    resized (nearest) to the batch's size, perturbed; the visual guide from a
    frame drawn uniformly among the object's *valid* frames (object area
    > `label_valid_ratio` of the image and > `bbox_valid_ratio` of its
    bounding box, both at the annotation's own size; frame 0 when none is
    valid), with training augmentation. An object that leaves the sequence
    gives empty labels and all-zero spatial guides.

    Quirk of the original kept: the bounding box area is
    `(xmax - xmin) * (ymax - ymin)` of the inclusive extreme coordinates, so
    a one-pixel-wide object has box area 0 and passes the box test.

    Each annotation is read once at the first construction; per sequence the
    object areas are cached in a small JSON index (keyed by each annotation's
    name, size and modification time), so later constructions read no image.

    Args:
        root, year, split, resolution: as `osmn_tf.davis.DavisDataset`.
        image_size: `(W, H)` at scale 1; the original's `--im_size` (854, 480).
        scales: one is drawn per batch; `--data_aug_scales` (0.5, 0.8, 1).
        bbox_sup: visual guide not masked (`--bbox_sup`; the original's DAVIS
            loader ignored it and always masked).
        label_valid_ratio, bbox_valid_ratio: the valid-frame rule.
        random_guide: False uses frame 0 as every item's visual guide (the
            original without `--randomize_guide`).
        skip_blank_frames: the original with `--randomize_guide` trained only
            on the frames where the object is visible, pairing each with the
            previous such frame; True does that (and falls back to the first
            visible frame). False (default): every t >= 1 with t - 1.
        cache_dir: folder of the index; None puts it in `root`. An unwritable
            folder only warns.
        visual_augment, spatial_perturb, guide_size: as `CocoSource`.
    """

    def __init__(self, root, year=2017, split="train", image_size=(854, 480), scales=(0.5, 0.8, 1.0),
                 bbox_sup=False, resolution="480p", label_valid_ratio=DAVIS_LABEL_VALID_RATIO,
                 bbox_valid_ratio=DAVIS_BBOX_VALID_RATIO, random_guide=True, skip_blank_frames=False,
                 cache_dir=None, visual_augment=VisualGuideAugmentation(),
                 spatial_perturb=SpatialGuidePerturbation(), guide_size=GUIDE_SIZE):
        self.dataset = DavisDataset(root, year=year, split=split, resolution=resolution)
        self.image_size = _check_size(image_size, "image_size")
        self.scales = _check_scales(scales)
        self.bbox_sup = bool(bbox_sup)
        self.label_valid_ratio = float(label_valid_ratio)
        self.bbox_valid_ratio = float(bbox_valid_ratio)
        self.random_guide = bool(random_guide)
        self.skip_blank_frames = bool(skip_blank_frames)
        _check_augmentations(visual_augment, spatial_perturb)
        self.visual_augment = visual_augment
        self.spatial_perturb = spatial_perturb
        self.guide_size = check_guide_size(guide_size, "guide_size")
        folder = pathlib.Path(cache_dir) if cache_dir is not None else self.dataset.root
        self.cache_file = folder / f".osmn-davis-index-{self.dataset.year}-{split}-{resolution}.json"

        self.sequences = self._build_index()
        self._valid = {}
        items = []
        for s, seq in enumerate(self.sequences):
            for k, object_id in enumerate(seq.object_ids):
                visible = np.flatnonzero(seq.areas[k] > 0)
                if self.skip_blank_frames:
                    frames = visible
                    pairs = list(zip(frames[:-1], frames[1:]))
                else:
                    pairs = [(t - 1, t) for t in range(1, len(seq.stems))]
                valid = np.flatnonzero(
                    (seq.areas[k] > seq.pixels * self.label_valid_ratio)
                    & (seq.areas[k] > seq.bbox_areas[k] * self.bbox_valid_ratio))
                if not self.random_guide or valid.size == 0:
                    first = int(visible[0]) if (self.skip_blank_frames and visible.size) else 0
                    valid = np.array([first])
                self._valid[(s, k)] = valid
                items.extend((s, k, int(p), int(t)) for p, t in pairs)
        self._items = np.asarray(items, dtype=np.int64).reshape(-1, 4)
        self._num_items = len(self._items)

    def __repr__(self):
        return (f"DavisTrainSource({str(self.dataset.root)!r}, year={self.dataset.year}, "
                f"split={self.dataset.split!r}, {len(self.sequences)} sequences, {len(self)} items, "
                f"image_size={self.image_size}, scales={self.scales})")

    # -- index --------------------------------------------------------------
    def _build_index(self):
        dataset = self.dataset
        key = {"version": _CACHE_VERSION, "year": dataset.year, "split": dataset.split,
               "resolution": dataset.resolution}
        cached = _read_json_cache(self.cache_file, key) or {}
        index, payload, changed = [], {}, False
        for name in dataset.sequences:
            paths = dataset.annotation_paths(name)
            frame_stems = {p.stem for p in dataset.frame_paths(name)}
            missing = [p.stem + ".jpg" for p in paths if p.stem not in frame_stems]
            if missing:
                raise FileNotFoundError(f"DAVIS sequence {name}: no frame for annotation(s) "
                                        f"{', '.join(missing[:5])} in {dataset.image_dir / name}")
            files = [[p.name, st.st_size, st.st_mtime_ns] for p, st in ((p, p.stat()) for p in paths)]
            entry = cached.get(name)
            if entry is None or entry.get("files") != files:
                entry = {"files": files, **self._scan_sequence(paths)}
                changed = True
            payload[name] = entry
            index.append(_SequenceIndex(
                name=name, stems=tuple(p.stem for p in paths), object_ids=tuple(entry["object_ids"]),
                areas=np.asarray(entry["areas"], dtype=np.int64).reshape(len(entry["object_ids"]), -1),
                bbox_areas=np.asarray(entry["bbox_areas"], dtype=np.int64).reshape(
                    len(entry["object_ids"]), -1),
                pixels=np.asarray(entry["pixels"], dtype=np.int64)))
        if changed or set(cached) != set(payload):
            _write_json_cache(self.cache_file, key, payload)
        return index

    def _scan_sequence(self, paths):
        """Object ids, and per object and frame the area and box area, reading each annotation once."""
        object_ids, areas, bbox_areas, pixels = None, [], [], []
        for path in paths:
            labels = self.dataset.read_annotation(path)
            if object_ids is None:
                object_ids = [int(i) for i in np.unique(labels) if i != 0]
            pixels.append(int(labels.size))
            frame_areas, frame_boxes = [], []
            for object_id in object_ids:
                mask = labels == object_id
                area = int(np.count_nonzero(mask))
                if area:
                    xmin, ymin, xmax, ymax = mask_bbox(mask)
                    box = (xmax - xmin) * (ymax - ymin)
                else:
                    box = 0
                frame_areas.append(area)
                frame_boxes.append(int(box))
            areas.append(frame_areas)
            bbox_areas.append(frame_boxes)
        transpose = lambda rows: [list(col) for col in zip(*rows)] if object_ids else []  # noqa: E731
        return {"object_ids": object_ids, "areas": transpose(areas),
                "bbox_areas": transpose(bbox_areas), "pixels": pixels}

    # -- items --------------------------------------------------------------
    def item(self, item):
        """Item `item` as `(sequence name, object id, reference frame t-1, frame t)`."""
        s, k, prev, t = (int(v) for v in self._items[item])
        seq = self.sequences[s]
        return seq.name, seq.object_ids[k], prev, t

    def valid_frames(self, sequence, object_id):
        """The frame indices the visual guide of `object_id` in `sequence` is drawn from."""
        s = next((i for i, seq in enumerate(self.sequences) if seq.name == sequence), None)
        if s is None:
            raise KeyError(f"no sequence {sequence!r} in {self!r}")
        ids = self.sequences[s].object_ids
        if object_id not in ids:
            raise KeyError(f"sequence {sequence!r} has no object {object_id} (objects: {list(ids)})")
        return [int(t) for t in self._valid[(s, ids.index(object_id))]]

    def _paths(self, seq, t):
        stem = seq.stems[t]
        return (self.dataset.image_dir / seq.name / f"{stem}.jpg",
                self.dataset.annotation_dir / seq.name / f"{stem}.png")

    def sample(self, item, rng, size):
        """Item `item` at `size` `(W, H)`, drawing every augmentation from `rng`.

        Returns the batch dict's arrays without the batch axis.
        """
        s, k, prev, t = (int(v) for v in self._items[item])
        seq = self.sequences[s]
        object_id = seq.object_ids[k]
        valid = self._valid[(s, k)]
        guide_t = int(valid[rng.integers(len(valid))])

        guide_frame, guide_annotation = self._paths(seq, guide_t)
        guide_mask = self.dataset.read_annotation(guide_annotation) == object_id
        guide = visual_guide(load_rgb(guide_frame), guide_mask, augment=self.visual_augment,
                             rng=rng if self.visual_augment is not None else None,
                             bbox_sup=self.bbox_sup, size=self.guide_size)
        reference = self.dataset.read_annotation(self._paths(seq, prev)[1]) == object_id
        frame_path, annotation_path = self._paths(seq, t)
        label = resize_mask(self.dataset.read_annotation(annotation_path) == object_id, size)
        image = resize_frame(load_rgb(frame_path), size)
        sg = spatial_guide(resize_mask(reference, size), perturb=self.spatial_perturb,
                           rng=rng if self.spatial_perturb is not None else None)
        return {
            "guide_image": guide,
            "spatial_guide": sg,
            "image": normalize_frame(image),
            "label": label.astype(np.float32)[:, :, np.newaxis],
        }
