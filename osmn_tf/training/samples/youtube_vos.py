"""Training samples from a YouTube-VOS train split (the release's `osmn_train_eval_ytvos.py`)."""
import dataclasses
import pathlib

import numpy as np

from osmn_tf.config import GUIDE_SIZE, check_guide_size
from osmn_tf.data.davis import read_mask
from osmn_tf.data.frames import MEAN_BGR, check_size, load_rgb, normalize_frame, resize_frame, resize_mask
from osmn_tf.data.guides import SpatialGuidePerturbation, VisualGuideAugmentation, mask_bbox, visual_guide
from osmn_tf.data.youtube_vos import YouTubeVOS
from osmn_tf.config import check_mean
from osmn_tf.training.samples.base import (CACHE_VERSION, SampleSource, check_augmentations, check_scales,
                                          training_spatial_guide,
                                          read_json_cache, write_json_cache)
from osmn_tf.training.samples.davis import DAVIS_BBOX_VALID_RATIO, DAVIS_LABEL_VALID_RATIO


@dataclasses.dataclass(frozen=True)
class _ObjectIndex:
    """One object of one video: the frames it is annotated in and its areas there."""

    video: str
    object_id: int
    stems: tuple            # meta.json's frames of the object, in its order
    areas: np.ndarray       # [frames] the object's pixels, at image_size
    bbox_areas: np.ndarray  # [frames] (xmax - xmin) * (ymax - ymin), inclusive coords, at image_size


class YouTubeVOSTrainSource(SampleSource):
    """Samples from a YouTube-VOS split with full annotations (`train`), as the release trained on it.

    Objects and their frames come from `meta.json` (`YouTubeVOS.object_frames`):
    an object is annotated only from the frame where it appears, and often
    not in every frame of the video. Items are `(video, object, f_{i-1}, f_i)`
    for consecutive frames `f` of the object's list; an object annotated in
    one frame only gives none (as in the release). One item gives: frame
    `f_i` and the object's mask there at the batch's size; the spatial guide
    from its mask in `f_{i-1}`, resized (nearest) and perturbed; the visual
    guide from one of the object's *valid* frames (object area above
    `label_valid_ratio` of the image and above `bbox_valid_ratio` of its box,
    both measured on the annotation resized to `image_size` (nearest), as the
    release; the object's first frame when none is), with training
    augmentation. Frames are not flipped.

    Difference from the release: it drew each item's visual guide frame once,
    when it listed the items; here it is drawn per sample (as
    `DavisTrainSource`), so a long run sees every valid guide of an item.

    Annotations are read once at the first construction; per video the
    areas are cached in a JSON index (keyed by each annotation file's name,
    size and modification time, and by `image_size`).

    Args:
        root: the YouTube-VOS root (`root/<split>/JPEGImages`, `Annotations`, `meta.json`).
        split: the split with full annotations, `train`.
        image_size: `(W, H)` at scale 1; the release's `--im_size` (448, 256).
        scales: one is drawn per batch; the release's `--data_aug_scales` (1).
        label_valid_ratio, bbox_valid_ratio: the valid-frame rule
            (`--label_valid_ratio` 0.003, `--bbox_valid_ratio` 0.2).
        random_guide: False uses the object's first frame as every item's
            visual guide (the release without `--randomize_guide`).
        bbox_sup: visual guide not masked (`--bbox_sup`).
        cache_dir: folder of the index; None puts it in the split's folder.
        visual_augment, spatial_perturb, guide_size, mean, use_original_mask: as `CocoSource`.
    """

    def __init__(self, root, split="train", image_size=(448, 256), scales=(1.0,),
                 label_valid_ratio=DAVIS_LABEL_VALID_RATIO, bbox_valid_ratio=DAVIS_BBOX_VALID_RATIO,
                 random_guide=True, bbox_sup=False, cache_dir=None, visual_augment=VisualGuideAugmentation(),
                 spatial_perturb=SpatialGuidePerturbation(), guide_size=GUIDE_SIZE, mean=MEAN_BGR,
                 use_original_mask=False):
        self.dataset = YouTubeVOS(root, split)
        self.image_size = check_size(image_size, "image_size")
        self.scales = check_scales(scales)
        self.mean = check_mean(mean)
        self.use_original_mask = bool(use_original_mask)
        for name, value in (("label_valid_ratio", label_valid_ratio), ("bbox_valid_ratio", bbox_valid_ratio)):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        self.label_valid_ratio = float(label_valid_ratio)
        self.bbox_valid_ratio = float(bbox_valid_ratio)
        self.random_guide = bool(random_guide)
        self.bbox_sup = bool(bbox_sup)
        check_augmentations(visual_augment, spatial_perturb)
        self.visual_augment = visual_augment
        self.spatial_perturb = spatial_perturb
        self.guide_size = check_guide_size(guide_size, "guide_size")
        folder = pathlib.Path(cache_dir) if cache_dir is not None else self.dataset.split_dir
        self.cache_file = folder / f".osmn-ytvos-index-{split}.json"

        self.objects = self._build_index()
        pixels = self.image_size[0] * self.image_size[1]
        self._valid, items = [], []
        for k, obj in enumerate(self.objects):
            valid = np.flatnonzero((obj.areas > pixels * self.label_valid_ratio)
                                   & (obj.areas > obj.bbox_areas * self.bbox_valid_ratio))
            if not self.random_guide or valid.size == 0:
                valid = np.array([0])
            self._valid.append(valid)
            items.extend((k, i - 1, i) for i in range(1, len(obj.stems)))
        self._items = np.asarray(items, dtype=np.int64).reshape(-1, 3)
        self._num_items = len(self._items)

    def __repr__(self):
        return (f"YouTubeVOSTrainSource({str(self.dataset.root)!r}, split={self.dataset.split!r}, "
                f"{len(self.objects)} objects, {len(self)} items, image_size={self.image_size}, "
                f"scales={self.scales})")

    # -- index --------------------------------------------------------------
    def _build_index(self):
        dataset = self.dataset
        key = {"version": CACHE_VERSION, "split": dataset.split, "image_size": list(self.image_size)}
        cached = read_json_cache(self.cache_file, key) or {}
        payload, objects, changed = {}, [], False
        for video, frames in sorted(dataset.object_frames().items()):
            stems = sorted({stem for object_stems in frames.values() for stem in object_stems})
            paths = [dataset.annotation_dir / video / f"{stem}.png" for stem in stems]
            for stem, path in zip(stems, paths):
                if not path.is_file():
                    raise FileNotFoundError(f"{dataset.meta_file} lists frame {stem} of {video}, but {path} "
                                            "does not exist")
                if not (dataset.image_dir / video / f"{stem}.jpg").is_file():
                    raise FileNotFoundError(f"{dataset.meta_file} lists frame {stem} of {video}, but "
                                            f"{dataset.image_dir / video / (stem + '.jpg')} does not exist")
            files = [[p.name, st.st_size, st.st_mtime_ns] for p, st in ((p, p.stat()) for p in paths)]
            ids = sorted(frames)
            entry = cached.get(video)
            if entry is None or entry.get("files") != files or entry.get("ids") != ids:
                entry = {"files": files, "ids": ids, **self._scan_video(paths, ids)}
                changed = True
            payload[video] = entry
            column = {stem: c for c, stem in enumerate(stems)}
            for r, object_id in enumerate(ids):
                columns = [column[stem] for stem in frames[object_id]]
                objects.append(_ObjectIndex(
                    video=video, object_id=object_id, stems=tuple(frames[object_id]),
                    areas=np.asarray(entry["areas"][r], dtype=np.int64)[columns],
                    bbox_areas=np.asarray(entry["bbox_areas"][r], dtype=np.int64)[columns]))
        if changed or set(cached) != set(payload):
            write_json_cache(self.cache_file, key, payload)
        return objects

    def _scan_video(self, paths, ids):
        """Per object and annotation file: the object's area and box area at `image_size`."""
        areas = [[] for _ in ids]
        boxes = [[] for _ in ids]
        for path in paths:
            labels = resize_mask(read_mask(path), self.image_size)
            for r, object_id in enumerate(ids):
                mask = labels == object_id
                area = int(np.count_nonzero(mask))
                box = 0
                if area:
                    xmin, ymin, xmax, ymax = mask_bbox(mask)
                    box = (xmax - xmin) * (ymax - ymin)
                areas[r].append(area)
                boxes[r].append(int(box))
        return {"areas": areas, "bbox_areas": boxes}

    # -- items --------------------------------------------------------------
    def item(self, item):
        """Item `item` as `(video, object id, reference frame stem, frame stem)`."""
        k, prev, i = (int(v) for v in self._items[item])
        obj = self.objects[k]
        return obj.video, obj.object_id, obj.stems[prev], obj.stems[i]

    def valid_frames(self, video, object_id):
        """The frame stems the visual guide of `object_id` in `video` is drawn from."""
        for k, obj in enumerate(self.objects):
            if obj.video == video and obj.object_id == object_id:
                return [obj.stems[int(i)] for i in self._valid[k]]
        raise KeyError(f"no object {object_id} of video {video!r} in {self!r}")

    def _mask(self, obj, stem):
        # The ids as stored, as the release compared them (an annotation may hold no object).
        return read_mask(self.dataset.annotation_dir / obj.video / f"{stem}.png") == obj.object_id

    def _frame(self, obj, stem):
        return load_rgb(self.dataset.image_dir / obj.video / f"{stem}.jpg")

    def sample(self, item, rng, size):
        """Item `item` at `size` `(W, H)`, drawing every augmentation from `rng`."""
        k, prev, i = (int(v) for v in self._items[item])
        obj = self.objects[k]
        valid = self._valid[k]
        guide_stem = obj.stems[int(valid[rng.integers(len(valid))])]
        guide = visual_guide(self._frame(obj, guide_stem), self._mask(obj, guide_stem),
                             augment=self.visual_augment, rng=rng if self.visual_augment is not None else None,
                             bbox_sup=self.bbox_sup, size=self.guide_size, mean=self.mean)
        reference = resize_mask(self._mask(obj, obj.stems[prev]), size)
        label = resize_mask(self._mask(obj, obj.stems[i]), size)
        image = resize_frame(self._frame(obj, obj.stems[i]), size)
        sg = training_spatial_guide(reference, rng, self.spatial_perturb, self.use_original_mask)
        return {
            "guide_image": guide,
            "spatial_guide": sg,
            "image": normalize_frame(image, mean=self.mean),
            "label": label.astype(np.float32)[:, :, np.newaxis],
        }
