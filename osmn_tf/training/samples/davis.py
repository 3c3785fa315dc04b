"""Stage 2 samples from DAVIS train sequences, with a per-sequence index of object areas."""
import dataclasses
import pathlib

import numpy as np

from osmn_tf.config import GUIDE_SIZE, check_guide_size
from osmn_tf.data.davis import DavisDataset
from osmn_tf.data.frames import MEAN_BGR, check_size, load_rgb, normalize_frame, resize_frame, resize_mask
from osmn_tf.data.guides import SpatialGuidePerturbation, VisualGuideAugmentation, mask_bbox, visual_guide
from osmn_tf.config import check_mean
from osmn_tf.training.samples.base import (CACHE_VERSION, SampleSource, check_augmentations, check_scales,
                                          training_spatial_guide,
                                          read_json_cache, write_json_cache)

DAVIS_LABEL_VALID_RATIO = 0.003
"""A frame is a valid visual guide when the object covers more than this fraction of the image..."""

DAVIS_BBOX_VALID_RATIO = 0.2
"""...and more than this fraction of its bounding box (the original's `--bbox_valid_ratio`)."""


@dataclasses.dataclass(frozen=True)
class _SequenceIndex:
    """What sampling needs to know about one sequence, from one pass over its annotations."""

    name: str
    stems: tuple            # annotation file stems, sorted: frame t is stems[t]
    object_ids: tuple       # ids in the first annotation
    areas: np.ndarray       # [objects, frames] foreground pixels
    bbox_areas: np.ndarray  # [objects, frames] (xmax - xmin) * (ymax - ymin), inclusive coords
    pixels: np.ndarray      # [frames] H * W of each annotation


class DavisTrainSource(SampleSource):
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
        root, year, split, resolution: as `osmn_tf.data.davis.DavisDataset`.
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
        visual_augment, spatial_perturb, guide_size, mean, use_original_mask: as `CocoSource`.
    """

    def __init__(self, root, year=2017, split="train", image_size=(854, 480), scales=(0.5, 0.8, 1.0),
                 bbox_sup=False, resolution="480p", label_valid_ratio=DAVIS_LABEL_VALID_RATIO,
                 bbox_valid_ratio=DAVIS_BBOX_VALID_RATIO, random_guide=True, skip_blank_frames=False,
                 cache_dir=None, visual_augment=VisualGuideAugmentation(),
                 spatial_perturb=SpatialGuidePerturbation(), guide_size=GUIDE_SIZE, mean=MEAN_BGR,
                 use_original_mask=False):
        self.dataset = DavisDataset(root, year=year, split=split, resolution=resolution)
        self.image_size = check_size(image_size, "image_size")
        self.scales = check_scales(scales)
        self.mean = check_mean(mean)
        self.use_original_mask = bool(use_original_mask)
        self.bbox_sup = bool(bbox_sup)
        self.label_valid_ratio = float(label_valid_ratio)
        self.bbox_valid_ratio = float(bbox_valid_ratio)
        self.random_guide = bool(random_guide)
        self.skip_blank_frames = bool(skip_blank_frames)
        check_augmentations(visual_augment, spatial_perturb)
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
        key = {"version": CACHE_VERSION, "year": dataset.year, "split": dataset.split,
               "resolution": dataset.resolution}
        cached = read_json_cache(self.cache_file, key) or {}
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
            write_json_cache(self.cache_file, key, payload)
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
                             bbox_sup=self.bbox_sup, size=self.guide_size, mean=self.mean)
        reference = self.dataset.read_annotation(self._paths(seq, prev)[1]) == object_id
        frame_path, annotation_path = self._paths(seq, t)
        label = resize_mask(self.dataset.read_annotation(annotation_path) == object_id, size)
        image = resize_frame(load_rgb(frame_path), size)
        sg = training_spatial_guide(resize_mask(reference, size), rng, self.spatial_perturb, self.use_original_mask)
        return {
            "guide_image": guide,
            "spatial_guide": sg,
            "image": normalize_frame(image, mean=self.mean),
            "label": label.astype(np.float32)[:, :, np.newaxis],
        }
