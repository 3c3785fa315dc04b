"""Training sample sources (`osmn_tf.training.samples`) on tiny generated COCO and DAVIS folders."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from osmn_tf.data.davis import DavisDataset, write_mask
from osmn_tf.data.frames import load_rgb, normalize_frame, resize_frame, resize_mask
from osmn_tf.data.guides import spatial_guide_params
from osmn_tf.data.synthetic import SyntheticConfig, write_davis
from osmn_tf.training import samples
from osmn_tf.training.samples import CocoSource, DavisTrainSource

KEYS = ("guide_image", "spatial_guide", "image", "label")

# pycocotools' decode trips numpy 2's `__array__(copy=...)` deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------
def position_image(width, height):
    """RGB whose red channel encodes the column and green the row: flips and crops are visible."""
    x = np.arange(width)[None, :].repeat(height, 0)
    y = np.arange(height)[:, None].repeat(width, 1)
    return np.stack([(5 * x) % 256, (7 * y) % 256, np.full_like(x, 90)], axis=2).astype(np.uint8)


def uncompressed_rle(mask):
    """COCO's uncompressed RLE of a binary mask: run lengths in column-major order, zeros first."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def compressed_rle(mask):
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def box_mask(height, width, x0, y0, x1, y1):
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def guide_centre_ok(guide, label):
    """The spatial guide's peak lies within the perturbation bound of `label`'s unperturbed centre."""
    params = spatial_guide_params(label)
    if params is None:
        return not guide.any()
    (cx, cy), (sx, sy) = params
    peak_y, peak_x = np.unravel_index(np.argmax(guide[:, :, 0]), guide.shape[:2])
    return (abs(peak_x - cx) <= 0.2 * sx + 0.5 + 1e-6) and (abs(peak_y - cy) <= 0.2 * sy + 0.5 + 1e-6)


def check_batch(batch, batch_size, expected_sizes):
    assert set(batch) == set(KEYS)
    for key in KEYS:
        assert batch[key].dtype == np.float32, key
        assert batch[key].shape[0] == batch_size, key
    assert batch["guide_image"].shape[1:] == (224, 224, 3)
    height, width = batch["image"].shape[1:3]
    assert (width, height) in expected_sizes
    assert batch["image"].shape[3] == 3
    assert batch["spatial_guide"].shape[1:] == (height, width, 1)
    assert batch["label"].shape[1:] == (height, width, 1)
    assert set(np.unique(batch["label"])) <= {0.0, 1.0}
    assert batch["spatial_guide"].min() >= 0 and batch["spatial_guide"].max() <= 1
    # BGR minus (104, 117, 123): values of a 0..255 image.
    for images in (batch["image"], batch["guide_image"]):
        assert images.min() >= -123 and images.max() <= 255 - 104
    return width, height


# ----------------------------------------------------------------------------
# COCO
# ----------------------------------------------------------------------------
# (image id, W, H); the images are PNG so that pixels are exact.
COCO_IMAGES = ((1, 40, 30), (2, 36, 36), (3, 50, 20))


def coco_annotations():
    anns = []
    # Image 1 (1200 px): a polygon square (kept), a crowd object (dropped), a tiny
    # polygon (dropped: under 3%), a large uncompressed-RLE object (kept).
    anns.append({"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 225.0,
                 "bbox": [4, 5, 15, 15], "segmentation": [[4, 5, 19, 5, 19, 20, 4, 20]]})
    crowd = box_mask(30, 40, 0, 0, 40, 15)
    anns.append({"id": 12, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 600.0,
                 "bbox": [0, 0, 40, 15], "segmentation": uncompressed_rle(crowd)})
    anns.append({"id": 13, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 9.0,
                 "bbox": [30, 2, 3, 3], "segmentation": [[30, 2, 33, 2, 33, 5, 30, 5]]})
    blob = box_mask(30, 40, 24, 12, 37, 28)
    blob[12:16, 24:28] = 0  # not a rectangle: asymmetric, so a flip shows
    anns.append({"id": 14, "image_id": 1, "category_id": 2, "iscrowd": 0, "area": float(blob.sum()),
                 "bbox": [24, 12, 13, 16], "segmentation": uncompressed_rle(blob)})
    # Image 2: compressed RLE (kept).
    anns.append({"id": 21, "image_id": 2, "category_id": 3, "iscrowd": 0, "area": 120.0,
                 "bbox": [2, 20, 12, 10], "segmentation": compressed_rle(box_mask(36, 36, 2, 20, 14, 30))})
    # Image 3 (1000 px): exactly 3% is dropped ("more than"), 31 pixels kept; no "area" field.
    exactly = box_mask(20, 50, 0, 0, 10, 3)  # 30 px
    above = box_mask(20, 50, 30, 10, 40, 13)
    above[13, 30] = 1  # 31 px
    anns.append({"id": 31, "image_id": 3, "category_id": 1, "iscrowd": 0, "area": 30.0,
                 "bbox": [0, 0, 10, 3], "segmentation": uncompressed_rle(exactly)})
    anns.append({"id": 32, "image_id": 3, "category_id": 1, "iscrowd": 0,
                 "bbox": [30, 10, 10, 4], "segmentation": uncompressed_rle(above)})
    return anns


KEPT_IDS = [11, 14, 21, 32]


@pytest.fixture()
def coco_dir(tmp_path):
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    images = []
    for image_id, width, height in COCO_IMAGES:
        name = f"{image_id:012d}.png"
        Image.fromarray(position_image(width, height)).save(image_dir / name)
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
    annotation_file = tmp_path / "annotations" / "instances_tiny.json"
    annotation_file.parent.mkdir()
    annotation_file.write_text(json.dumps({
        "images": images, "annotations": coco_annotations(),
        "categories": [{"id": i, "name": f"c{i}"} for i in (1, 2, 3)]}))
    return annotation_file, image_dir


def coco_source(coco_dir, **kwargs):
    kwargs.setdefault("image_size", (32, 24))
    kwargs.setdefault("scales", (0.5, 1.0, 1.5))
    kwargs.setdefault("cache_dir", coco_dir[0].parent / "cache")
    return CocoSource(*coco_dir, **kwargs)


def test_coco_filters_crowd_and_small_objects(coco_dir):
    source = coco_source(coco_dir)
    assert len(source) == len(KEPT_IDS)
    assert source.object_ids == KEPT_IDS
    assert source.image_size == (32, 24) and source.scales == (0.5, 1.0, 1.5)
    # The cached segmentation decodes to what pycocotools' annToMask gives.
    from pycocotools.coco import COCO

    coco = COCO(str(coco_dir[0]))
    for item, ann_id in enumerate(KEPT_IDS):
        np.testing.assert_array_equal(source.object_mask(item), coco.annToMask(coco.anns[ann_id]))
    # A lower threshold keeps the exactly-3% object and the tiny one is still out.
    lower = coco_source(coco_dir, min_area_fraction=0.02)
    assert lower.object_ids == [11, 14, 21, 31, 32]


def test_coco_cache_avoids_rescan(coco_dir, monkeypatch):
    first = coco_source(coco_dir)
    assert first.cache_file.is_file()

    def no_coco(*args, **kwargs):
        raise AssertionError("COCO annotations were scanned again")

    monkeypatch.setattr(samples.coco, "COCO", no_coco)
    second = coco_source(coco_dir)
    assert second.object_ids == KEPT_IDS
    np.testing.assert_array_equal(second.batch(2, 3, seed=5)["label"], first.batch(2, 3, seed=5)["label"])
    # A changed annotation file (size or time) is scanned again.
    stat = coco_dir[0].stat()
    os.utime(coco_dir[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="scanned again"):
        coco_source(coco_dir)


def test_coco_cache_beside_annotation_file_by_default(coco_dir):
    source = CocoSource(*coco_dir, image_size=(32, 24))
    assert source.cache_file.parent == coco_dir[0].parent and source.cache_file.is_file()


def test_coco_batch_shapes_scales_and_determinism(coco_dir):
    source = coco_source(coco_dir)
    expected = {(16, 12), (32, 24), (48, 36)}
    seen = set()
    for index in range(12):
        seen.add(check_batch(source.batch(index, 4, seed=3), 4, expected))
    assert len(seen) > 1  # the scale changes between batches
    a, b = source.batch(5, 4, seed=3), source.batch(5, 4, seed=3)
    for key in KEYS:
        np.testing.assert_array_equal(a[key], b[key])
    for other in (source.batch(6, 4, seed=3), source.batch(5, 4, seed=4)):
        assert any(a[key].shape != other[key].shape or not np.array_equal(a[key], other[key])
                   for key in KEYS)
    # A fresh source gives the same batch: nothing depends on earlier calls.
    again = coco_source(coco_dir).batch(5, 4, seed=3)
    for key in KEYS:
        np.testing.assert_array_equal(a[key], again[key])


def test_coco_label_is_object_mask_flipped_with_image(coco_dir):
    source = coco_source(coco_dir)
    size = (30, 20)
    flips = set()
    for seed in range(24):
        item = seed % len(source)
        sample = source.sample(item, np.random.default_rng(seed), size)
        expected_image = normalize_frame(resize_frame(load_rgb(source.image_path(item)), size))
        expected_label = resize_mask(source.object_mask(item), size).astype(np.float32)
        if np.array_equal(sample["image"], expected_image):
            flipped = False
        else:
            np.testing.assert_array_equal(sample["image"], expected_image[:, ::-1])
            flipped = True
        flips.add(flipped)
        np.testing.assert_array_equal(
            sample["label"][:, :, 0], expected_label[:, ::-1] if flipped else expected_label)
        # The spatial guide is the (flipped) object's own, perturbed.
        assert guide_centre_ok(sample["spatial_guide"], sample["label"][:, :, 0])
        assert sample["spatial_guide"].max() > 0.5
        # The visual guide shows the object: some pixels, not all.
        shown = np.any(sample["guide_image"] != 0, axis=2)
        assert 0.1 < shown.mean() < 1.0
    assert flips == {False, True}


def test_coco_without_flip_never_flips(coco_dir):
    source = coco_source(coco_dir, flip=False)
    for seed in range(6):
        sample = source.sample(1, np.random.default_rng(seed), (40, 30))
        np.testing.assert_array_equal(
            sample["image"], normalize_frame(load_rgb(source.image_path(1))))


def test_coco_random_crop_cuts_one_side(coco_dir):
    source = coco_source(coco_dir, random_crop_ratio=0.5, flip=False)
    size = (20, 15)
    rgb = load_rgb(source.image_path(1))
    mask = source.object_mask(1)
    height, width = mask.shape
    candidates = [(0, 0, width, height)]
    for cut in range(1, width // 2 + 1):
        candidates += [(cut, 0, width, height), (0, 0, width - cut, height)]
    for cut in range(1, height // 2 + 1):
        candidates += [(0, cut, width, height), (0, 0, width, height - cut)]
    boxes = set()
    for seed in range(10):
        sample = source.sample(1, np.random.default_rng(seed), size)
        for x0, y0, x1, y1 in candidates:
            image = normalize_frame(resize_frame(np.ascontiguousarray(rgb[y0:y1, x0:x1]), size))
            if np.array_equal(image, sample["image"]):
                np.testing.assert_array_equal(sample["label"][:, :, 0],
                                              resize_mask(mask[y0:y1, x0:x1], size).astype(np.float32))
                boxes.add((x0, y0, x1, y1))
                break
        else:
            pytest.fail(f"seed {seed}: the image is no one-side crop of the original")
    assert len(boxes) > 3


def test_coco_errors_name_the_file(coco_dir, tmp_path):
    annotation_file, image_dir = coco_dir
    with pytest.raises(FileNotFoundError, match="missing.json"):
        CocoSource(tmp_path / "missing.json", image_dir)
    with pytest.raises(FileNotFoundError, match="no_images"):
        CocoSource(annotation_file, tmp_path / "no_images")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        CocoSource(broken, image_dir, cache_dir=tmp_path / "cache")
    source = coco_source(coco_dir)
    path = source.image_path(2)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=path.name):
        source.sample(2, np.random.default_rng(0), (32, 24))
    with pytest.raises(ValueError, match="seed"):
        source.batch(0, 2, seed=-1)


# ----------------------------------------------------------------------------
# DAVIS
# ----------------------------------------------------------------------------
W, H = 64, 48  # 3072 px: "valid" needs more than 9.2 px
COLOURS = {  # per object, RGB as a function of the frame
    1: lambda t: (30 + 50 * t, 200, 40),
    2: lambda t: (220, 30 + 45 * t, 200),
    3: lambda t: (60, 60, 230),
}


def rule_sequence():
    """`labels[t]` of one sequence whose objects exercise the valid-frame rule.

    Object 1: tiny in frame 0 (4 px), a thin diagonal in frame 3 (16 px in a
    15 x 15 box: under 20%), big elsewhere: valid frames 1, 2, 4.
    Object 2: 9 px in every frame (not more than 0.3%): no valid frame, falls back to frame 0.
    Object 3: only in frame 0 (valid there), then gone.
    """
    labels = [np.zeros((H, W), dtype=np.uint8) for _ in range(5)]
    labels[0][20:22, 5:7] = 1
    labels[1][8:20, 4:16] = 1
    labels[2][10:22, 20:32] = 1
    for i in range(16):
        labels[3][24 + i, 8 + i] = 1
    labels[4][30:40, 40:50] = 1
    for t in range(5):
        labels[t][2 + 2 * t:5 + 2 * t, 50:53] = 2
    labels[0][36:46, 52:62] = 3
    return labels


def write_sequence(root, name, labels):
    for t, label in enumerate(labels):
        rgb = np.full((H, W, 3), 128, dtype=np.uint8)
        for object_id, colour in COLOURS.items():
            rgb[label == object_id] = colour(t)
        frame = root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg"
        frame.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(frame, quality=100, subsampling=0)
        write_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", label)


@pytest.fixture()
def rule_root(tmp_path):
    root = tmp_path / "davis_rule"
    write_sequence(root, "rules", rule_sequence())
    for year in (2016, 2017):
        split = root / "ImageSets" / str(year) / "train.txt"
        split.parent.mkdir(parents=True)
        split.write_text("rules\n")
    return root


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_davis")
    write_davis(root, SyntheticConfig(image_size=(64, 48), num_frames=5), num_sequences=2)
    return root


def test_davis_items_and_batches(synthetic_root):
    source = DavisTrainSource(synthetic_root, image_size=(64, 48), scales=(0.5, 0.75, 1.0))
    dataset = DavisDataset(synthetic_root, 2017, "train")
    expected_items = sum(dataset.num_objects(name) * 4 for name in dataset.sequences)
    assert len(source) == expected_items
    assert source.image_size == (64, 48) and source.scales == (0.5, 0.75, 1.0)
    seen = set()
    for index in range(10):
        seen.add(check_batch(source.batch(index, 3, seed=0), 3, {(32, 24), (48, 36), (64, 48)}))
    assert len(seen) > 1
    a, b = source.batch(4, 3, seed=9), source.batch(4, 3, seed=9)
    for key in KEYS:
        np.testing.assert_array_equal(a[key], b[key])
    c = source.batch(5, 3, seed=9)
    assert any(a[key].shape != c[key].shape or not np.array_equal(a[key], c[key]) for key in KEYS)


def test_guide_size_sets_the_visual_guides_side(synthetic_root):
    source = DavisTrainSource(synthetic_root, image_size=(64, 48), guide_size=64)
    assert source.batch(0, 2, seed=1)["guide_image"].shape == (2, 64, 64, 3)
    with pytest.raises(ValueError, match="guide_size"):
        DavisTrainSource(synthetic_root, image_size=(64, 48), guide_size=50)


def test_davis_sample_frame_label_and_spatial_guide(synthetic_root):
    source = DavisTrainSource(synthetic_root, image_size=(64, 48))
    dataset = source.dataset
    size = (48, 36)
    for item in range(0, len(source), 3):
        name, object_id, prev, t = source.item(item)
        assert prev == t - 1 and t >= 1
        sample = source.sample(item, np.random.default_rng(item), size)
        frames, annotations = dataset.frame_paths(name), dataset.annotation_paths(name)
        np.testing.assert_array_equal(
            sample["image"], normalize_frame(resize_frame(load_rgb(frames[t]), size)))
        expected_label = resize_mask(dataset.read_annotation(annotations[t]) == object_id, size)
        np.testing.assert_array_equal(sample["label"][:, :, 0], expected_label.astype(np.float32))
        reference = resize_mask(dataset.read_annotation(annotations[prev]) == object_id, size)
        assert guide_centre_ok(sample["spatial_guide"], reference)


def test_davis_valid_frame_rule_and_fallback(rule_root):
    source = DavisTrainSource(rule_root, image_size=(W, H), scales=(1.0,))
    assert source.sequences[0].object_ids == (1, 2, 3)
    assert len(source) == 3 * 4
    assert source.valid_frames("rules", 1) == [1, 2, 4]
    assert source.valid_frames("rules", 2) == [0]  # none valid: the first frame
    assert source.valid_frames("rules", 3) == [0]
    # The visual guide's colour tells which frame it came from.
    used = {1: set(), 2: set()}
    for seed in range(40):
        for object_id in (1, 2):
            item = next(i for i in range(len(source)) if source.item(i)[1] == object_id
                        and source.item(i)[3] == 1 + seed % 4)
            guide = source.sample(item, np.random.default_rng(seed), (W, H))["guide_image"]
            shown = np.any(guide != 0, axis=2)
            rgb = guide[shown][:, ::-1] + np.array([123.0, 117.0, 104.0])
            colour = np.median(rgb, axis=0)
            distances = [np.abs(colour - COLOURS[object_id](t)).max() for t in range(5)]
            frame = int(np.argmin(distances))
            assert distances[frame] < 20
            used[object_id].add(frame)
    assert used[1] == {1, 2, 4}
    assert used[2] == {0}
    assert DavisTrainSource(rule_root, image_size=(W, H), random_guide=False).valid_frames("rules", 1) == [0]


def test_davis_object_that_disappears(rule_root):
    source = DavisTrainSource(rule_root, image_size=(W, H), scales=(1.0,))
    for item in range(len(source)):
        name, object_id, prev, t = source.item(item)
        if object_id != 3:
            continue
        sample = source.sample(item, np.random.default_rng(item), (W, H))
        assert not sample["label"].any()
        assert sample["spatial_guide"].any() == (prev == 0)
        assert np.any(sample["guide_image"] != 0)
    # The original's `--randomize_guide` pairs only frames where the object is visible.
    skipping = DavisTrainSource(rule_root, image_size=(W, H), skip_blank_frames=True)
    pairs = [skipping.item(i) for i in range(len(skipping))]
    assert [(p, t) for _, o, p, t in pairs if o == 1] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert [p for p in pairs if p[1] == 3] == []


def test_davis_2016_is_one_object(rule_root):
    source = DavisTrainSource(rule_root, year=2016, image_size=(W, H), cache_dir=rule_root / "c16")
    assert source.sequences[0].object_ids == (1,)
    assert len(source) == 4
    sample = source.sample(0, np.random.default_rng(0), (W, H))
    union = np.isin(rule_sequence()[1], (1, 2, 3))
    np.testing.assert_array_equal(sample["label"][:, :, 0], union.astype(np.float32))


def test_davis_index_cache(rule_root, monkeypatch):
    first = DavisTrainSource(rule_root, image_size=(W, H))
    assert first.cache_file.is_file()

    def no_read(self, path):
        raise AssertionError(f"annotation {path} was read again")

    monkeypatch.setattr(DavisDataset, "read_annotation", no_read)
    second = DavisTrainSource(rule_root, image_size=(W, H))
    assert len(second) == len(first)
    assert second.valid_frames("rules", 1) == [1, 2, 4]
    # A changed annotation makes its sequence be read again.
    path = rule_root / "Annotations" / "480p" / "rules" / "00003.png"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="read again"):
        DavisTrainSource(rule_root, image_size=(W, H))


def test_davis_errors_name_the_file(rule_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        DavisTrainSource(tmp_path / "nowhere")
    (rule_root / "JPEGImages" / "480p" / "rules" / "00002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="00002.jpg"):
        DavisTrainSource(rule_root, image_size=(W, H))
