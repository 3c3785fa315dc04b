"""Stage 1 samples from MS-COCO objects, and `object_sample`, one image's object made into a sample."""
import contextlib
import io
import json
import pathlib
import warnings

import numpy as np

from osmn_tf.config import GUIDE_SIZE, check_guide_size
from osmn_tf.data.frames import MEAN_BGR, check_size, load_rgb, normalize_frame, resize_frame, resize_mask
from osmn_tf.data.guides import SpatialGuidePerturbation, VisualGuideAugmentation, visual_guide
from osmn_tf.config import check_mean
from osmn_tf.training.samples.base import (CACHE_VERSION, SampleSource, check_augmentations, check_scales,
                                          training_spatial_guide)
from osmn_tf.utils.atomic import atomic_output

try:  # pycocotools is only needed for COCO.
    from pycocotools import mask as coco_mask
    from pycocotools.coco import COCO
except ImportError:  # pragma: no cover - reported when CocoSource is built
    coco_mask = None
    COCO = None

COCO_MIN_AREA_FRACTION = 0.03
"""Stage 1 keeps non-crowd objects covering more than this fraction of their image."""


class CocoSource(SampleSource):
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
        mean: the B, G, R values subtracted from guides and images (the
            model's `osmn_tf.config.input_mean_of`).
        use_original_mask: masktrack's spatial guide, the reference mask
            moved and resized at random, dilated, times 255 (the release's
            `--use_original_mask`), instead of the perturbed Gaussian.
    """

    def __init__(self, annotation_file, image_dir, image_size=(400, 400), scales=(0.8, 1.0, 1.2),
                 min_area_fraction=COCO_MIN_AREA_FRACTION, random_crop_ratio=0.0, bbox_sup=False,
                 cache_dir=None, visual_augment=VisualGuideAugmentation(),
                 spatial_perturb=SpatialGuidePerturbation(), flip=True, guide_size=GUIDE_SIZE, mean=MEAN_BGR,
                 use_original_mask=False):
        if coco_mask is None:
            raise ImportError("CocoSource needs pycocotools: pip install pycocotools")
        self.annotation_file = pathlib.Path(annotation_file)
        self.image_dir = pathlib.Path(image_dir)
        if not self.annotation_file.is_file():
            raise FileNotFoundError(f"COCO annotation file not found: {self.annotation_file}")
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"COCO image folder not found: {self.image_dir}")
        self.image_size = check_size(image_size, "image_size")
        self.scales = check_scales(scales)
        self.mean = check_mean(mean)
        self.use_original_mask = bool(use_original_mask)
        self.min_area_fraction = float(min_area_fraction)
        if not 0 <= self.min_area_fraction < 1:
            raise ValueError(f"min_area_fraction must be in [0, 1), got {min_area_fraction!r}")
        self.random_crop_ratio = float(random_crop_ratio)
        if not 0 <= self.random_crop_ratio < 1:
            raise ValueError(f"random_crop_ratio must be in [0, 1), got {random_crop_ratio!r}")
        self.bbox_sup = bool(bbox_sup)
        check_augmentations(visual_augment, spatial_perturb)
        self.visual_augment = visual_augment
        self.spatial_perturb = spatial_perturb
        self.flip = bool(flip)
        self.guide_size = check_guide_size(guide_size, "guide_size")

        folder = pathlib.Path(cache_dir) if cache_dir is not None else self.annotation_file.parent
        self.cache_file = folder / (f"{self.annotation_file.name}.osmn-objects-"
                                    f"{self.min_area_fraction:g}.npz")
        stat = self.annotation_file.stat()
        key = json.dumps({"version": CACHE_VERSION, "annotation_file": self.annotation_file.name,
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
                             guide_size=self.guide_size, mean=self.mean, original_mask=self.use_original_mask)


def object_sample(rgb, mask, rng, size, visual_augment, spatial_perturb, bbox_sup=False, random_crop_ratio=0.0,
                  flip=True, guide_size=GUIDE_SIZE, mean=MEAN_BGR, original_mask=False):
    """A sample made from one image and its object's mask (stage 1, and online fine-tuning).

    The visual guide is the object's crop of `rgb` (with `visual_augment`);
    the image and the label are `rgb` and `mask` resized to `size`, optionally
    cut on one side first (`random_crop_ratio`) and flipped together (p = 0.5);
    the spatial guide comes from the (flipped) label, with `spatial_perturb`.
    Every random draw comes from `rng`, in that order. `mean`: the B, G, R
    values subtracted from the guide and the image (`frames.normalize_frame`).
    `original_mask`: masktrack's spatial guide (`base.training_spatial_guide`).
    """
    guide = visual_guide(rgb, mask, augment=visual_augment, rng=rng if visual_augment is not None else None,
                         bbox_sup=bbox_sup, size=guide_size, mean=mean)
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
        "spatial_guide": training_spatial_guide(label, rng, spatial_perturb, original_mask),
        "image": normalize_frame(image, mean=mean),
        "label": label.astype(np.float32)[:, :, np.newaxis],
    }
