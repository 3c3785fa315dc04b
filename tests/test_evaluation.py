"""DAVIS mask I/O and the J & F / mIoU metrics, checked against the definitions.

The reference values here are computed independently of `osmn_tf.evaluation`:
boundary maps from an edge-replicating formulation, boundary matching by brute
force over explicit pairwise distances, J from pixel counts, decay bins from
the closed-form edges, and hand-derived constants.
"""
import csv
import json
import math
import os
import pathlib
import re
import shutil
import stat
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, run_tool_process
from osmn_tf import evaluation
from osmn_tf.data import davis

SEQUENCES = ["bike-packing", "blackswan", "car-shadow", "dogs-jump", "gold-fish", "india", "judo", "pigs"]
N_OBJECTS = {"bike-packing": 2, "blackswan": 1, "car-shadow": 1, "dogs-jump": 3,
             "gold-fish": 5, "india": 3, "judo": 2, "pigs": 3}
THREE_DECIMALS = re.compile(r"^-?\d+\.\d{3}$")


# ----------------------------------------------------------------------------
# Independent references
# ----------------------------------------------------------------------------
def ref_bmap(seg):
    """Boundary map by definition: differs from the east, south or south-east pixel,
    with the image extended by replicating its last row and column (which gives the
    official last-row/last-column rules)."""
    seg = np.asarray(seg, dtype=bool)
    p = np.pad(seg, ((0, 1), (0, 1)), mode="edge")
    return (seg != p[:-1, 1:]) | (seg != p[1:, :-1]) | (seg != p[1:, 1:])


def ref_radius(h, w):
    return math.ceil(0.008 * math.sqrt(h * h + w * w))


def _fraction_within(src, dst, r):
    """Fraction of points `src` (K, 2) with some point of `dst` at squared distance <= r^2."""
    hits = 0
    for start in range(0, len(src), 512):
        chunk = src[start:start + 512]
        d2 = ((chunk[:, None, :] - dst[None, :, :]) ** 2).sum(axis=2)
        hits += int(np.count_nonzero(d2.min(axis=1) <= r * r))
    return hits / len(src)


def ref_f(gt, pred):
    r = ref_radius(*gt.shape)
    g = np.argwhere(ref_bmap(gt)).astype(np.int64)
    p = np.argwhere(ref_bmap(pred)).astype(np.int64)
    if len(p) == 0 and len(g) == 0:
        return 1.0
    if len(p) == 0 or len(g) == 0:
        return 0.0
    precision = _fraction_within(p, g, r)
    recall = _fraction_within(g, p, r)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def ref_j(gt, pred):
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    union = int(gt.sum() + pred.sum() - (gt & pred).sum())
    return 1.0 if union == 0 else int((gt & pred).sum()) / union


def ref_statistics(values):
    """Mean, recall, decay by definition, with bin edges round_half_up(1 + i (N - 1) / 4) - 1."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    edges = [int(math.floor(1 + i * (n - 1) / 4 + 0.5)) - 1 for i in range(5)]
    first = values[edges[0]:edges[1] + 1]
    last = values[edges[3]:edges[4] + 1]
    return values.mean(), (values > 0.5).mean(), first.mean() - last.mean()


def load(path):
    with Image.open(path) as image:
        return np.array(image)


# ----------------------------------------------------------------------------
# Fixtures: the shifted-masks case in DAVIS layout
# ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def masks_dir():
    folder = DATA / "davis2017_osvos_masks"
    if not folder.is_dir():
        pytest.fail(f"{folder} is missing")
    return folder


@pytest.fixture(scope="session")
def shifted_case(tmp_path_factory, masks_dir):
    """Masks as ground truth; result[t] = mask[min(t + 2, T - 1)], result[0] = mask[0]."""
    base = tmp_path_factory.mktemp("shifted")
    root, results = base / "DAVIS", base / "results"
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(SEQUENCES) + "\n")
    (root / "ImageSets" / "2017" / "mini.txt").write_text("judo\ncar-shadow\n")
    for seq in SEQUENCES:
        files = sorted((masks_dir / seq).glob("*.png"))
        (root / "Annotations" / "480p" / seq).mkdir(parents=True)
        (results / seq).mkdir(parents=True)
        for t, f in enumerate(files):
            shutil.copyfile(f, root / "Annotations" / "480p" / seq / f.name)
            src = files[0] if t == 0 else files[min(t + 2, len(files) - 1)]
            shutil.copyfile(src, results / seq / f.name)
    return root, results


@pytest.fixture(scope="session")
def shifted_eval(shifted_case):
    root, results = shifted_case
    return evaluation.evaluate_davis(root, results, split="val", year=2017)


@pytest.fixture(scope="session")
def reference_j(masks_dir):
    """Per object, J over frames 1..T-2 of the shifted case, from pixel counts."""
    out = {}
    for seq in SEQUENCES:
        masks = [load(f) for f in sorted((masks_dir / seq).glob("*.png"))]
        T = len(masks)
        for k in range(1, N_OBJECTS[seq] + 1):
            out[f"{seq}_{k}"] = np.array(
                [ref_j(masks[t] == k, masks[min(t + 2, T - 1)] == k) for t in range(1, T - 1)])
    return out


# ----------------------------------------------------------------------------
# Mask files and the palette
# ----------------------------------------------------------------------------
def test_palette_is_the_davis_palette(masks_dir):
    with Image.open(masks_dir / "blackswan" / "00000.png") as image:
        official = np.array(image.getpalette(), dtype=np.uint8).reshape(-1, 3)
    palette = np.asarray(davis.DAVIS_PALETTE)
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    np.testing.assert_array_equal(palette, official)
    np.testing.assert_array_equal(palette[:6], [[0, 0, 0], [128, 0, 0], [0, 128, 0],
                                                [128, 128, 0], [0, 0, 128], [128, 0, 128]])


def test_read_mask_ids_and_sizes(masks_dir):
    labels, palette = davis.read_mask(masks_dir / "gold-fish" / "00000.png", return_palette=True)
    assert labels.dtype == np.uint8 and labels.shape == (480, 854)
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4, 5}
    np.testing.assert_array_equal(palette, davis.DAVIS_PALETTE)
    assert davis.read_mask(masks_dir / "bike-packing" / "00000.png").shape == (480, 910)
    np.testing.assert_array_equal(labels, load(masks_dir / "gold-fish" / "00000.png"))


def test_palette_round_trip(tmp_path, masks_dir):
    labels = davis.read_mask(masks_dir / "dogs-jump" / "00020.png")
    out = tmp_path / "sub" / "00020.png"
    davis.write_mask(out, labels)
    with Image.open(out) as image:
        assert image.mode == "P"
        assert image.size == (854, 480)
    back, palette = davis.read_mask(out, return_palette=True)
    np.testing.assert_array_equal(back, labels)
    np.testing.assert_array_equal(palette, davis.DAVIS_PALETTE)
    # a custom palette, and ids up to 255
    ids = (np.arange(16 * 16) % 256).reshape(16, 16).astype(np.uint8)
    custom = np.random.default_rng(0).integers(0, 256, size=(256, 3), dtype=np.uint8)
    davis.write_mask(tmp_path / "custom.png", ids, palette=custom)
    back, palette = davis.read_mask(tmp_path / "custom.png", return_palette=True)
    np.testing.assert_array_equal(back, ids)
    np.testing.assert_array_equal(palette, custom)


def test_write_mask_rejects_bad_ids(tmp_path):
    with pytest.raises(ValueError, match="0..255"):
        davis.write_mask(tmp_path / "x.png", np.full((4, 4), 300))
    with pytest.raises(ValueError, match="2-D"):
        davis.write_mask(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    assert not list(tmp_path.iterdir())


def test_write_mask_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "00000.png"
    davis.write_mask(target, np.ones((8, 8), np.uint8))
    before = target.read_bytes()
    plain = tmp_path / "plain"
    plain.write_bytes(b"")  # the permissions an ordinary new file gets (umask), not 0600
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    plain.unlink()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        davis.write_mask(target, np.full((8, 8), 2, np.uint8))
    assert target.read_bytes() == before  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["00000.png"]  # no temporary left


def test_a_file_being_written_is_not_listed_under_its_suffix(tmp_path):
    # Another process lists frames by suffix while this one writes (two training workers writing the data).
    from osmn_tf.utils.atomic import atomic_output

    with atomic_output(tmp_path / "00003.jpg") as handle:
        handle.write(b"x")
        assert len(list(tmp_path.iterdir())) == 1 and list(tmp_path.glob("*.jpg")) == []
    assert [p.name for p in tmp_path.iterdir()] == ["00003.jpg"]


def test_write_goes_through_os_replace_in_same_folder(tmp_path, monkeypatch):
    calls = []
    real_replace = os.replace

    def spy(src, dst):
        calls.append((pathlib.Path(src), pathlib.Path(dst)))
        assert pathlib.Path(src).is_file()
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    davis.write_mask(tmp_path / "m.png", np.zeros((4, 4), np.uint8))
    result = evaluation.DavisResults({"s_1": dict.fromkeys(
        ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"), 0.5)},
        dict.fromkeys(evaluation.GLOBAL_COLUMNS, 0.5), {}, {})
    evaluation.write_davis_csvs(result, tmp_path)
    assert {dst.name for _, dst in calls} == {"m.png", "global_results-val.csv",
                                              "per-sequence_results-val.csv"}
    for src, dst in calls:
        assert src.parent == dst.parent and src != dst
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "global_results-val.csv", "m.png", "per-sequence_results-val.csv"]


def test_mask_read_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope" / "00000.png"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        davis.read_mask(missing)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png at all")
    with pytest.raises(OSError, match=re.escape(str(corrupt))):
        davis.read_mask(corrupt)
    rgb = tmp_path / "rgb.png"
    Image.new("RGB", (4, 4)).save(rgb)
    with pytest.raises(ValueError, match=re.escape(str(rgb))):
        davis.read_mask(rgb)


# ----------------------------------------------------------------------------
# The dataset layout
# ----------------------------------------------------------------------------
def _tiny_layout(root, sequences, n_frames, year="2017", split="val", images=True):
    (root / "ImageSets" / year).mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / year / f"{split}.txt").write_text("\n".join(sequences) + "\n\n")
    for seq in sequences:
        for t in range(n_frames):
            labels = np.zeros((6, 8), np.uint8)
            labels[1:4, 1 + t % 3: 4 + t % 3] = 1
            labels[4:, 6:] = 2
            davis.write_mask(root / "Annotations" / "480p" / seq / f"{t:05d}.png", labels)
            if images:
                img_dir = root / "JPEGImages" / "480p" / seq
                img_dir.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 6)).save(img_dir / f"{t:05d}.jpg")


def test_dataset_layout(tmp_path):
    _tiny_layout(tmp_path, ["b-seq", "a-seq"], 3)
    ds = davis.DavisDataset(tmp_path, 2017, "val")
    assert ds.sequences == ["b-seq", "a-seq"]
    assert [p.name for p in ds.frame_paths("a-seq")] == ["00000.jpg", "00001.jpg", "00002.jpg"]
    assert [p.name for p in ds.annotation_paths("a-seq")] == ["00000.png", "00001.png", "00002.png"]
    assert ds.num_objects("a-seq") == 2
    # 2016: every non-zero pixel is the one object
    (tmp_path / "ImageSets" / "2016").mkdir()
    (tmp_path / "ImageSets" / "2016" / "val.txt").write_text("a-seq\n")
    ds16 = davis.DavisDataset(tmp_path, 2016, "val")
    labels = ds16.read_annotation(ds16.annotation_paths("a-seq")[0])
    assert set(np.unique(labels)) == {0, 1} and ds16.num_objects("a-seq") == 1
    raw = load(ds16.annotation_paths("a-seq")[0])
    np.testing.assert_array_equal(labels, raw > 0)


def test_dataset_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "absent"))):
        davis.DavisDataset(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "ImageSets" / "2017" / "val.txt"))):
        davis.DavisDataset(tmp_path)
    _tiny_layout(tmp_path, ["a-seq", "ghost"], 3)
    shutil.rmtree(tmp_path / "Annotations" / "480p" / "ghost")
    shutil.rmtree(tmp_path / "JPEGImages" / "480p" / "ghost")
    ds = davis.DavisDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "Annotations" / "480p" / "ghost"))):
        ds.annotation_paths("ghost")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "JPEGImages" / "480p" / "ghost"))):
        ds.frame_paths("ghost")


# ----------------------------------------------------------------------------
# Per-frame measures
# ----------------------------------------------------------------------------
def test_seg2bmap_hand_example():
    seg = np.zeros((4, 4), bool)
    seg[1:3, 1:3] = True
    expected = np.array([[1, 1, 1, 0],
                         [1, 0, 1, 0],
                         [1, 1, 1, 0],
                         [0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(evaluation.seg2bmap(seg), expected)
    # a full mask has no boundary; one touching the bottom-right edges follows the edge rules
    assert not evaluation.seg2bmap(np.ones((5, 7), bool)).any()
    corner = np.zeros((3, 3), bool)
    corner[1:, 1:] = True
    np.testing.assert_array_equal(evaluation.seg2bmap(corner),
                                  [[1, 1, 1], [1, 0, 0], [1, 0, 0]])


def test_seg2bmap_matches_definition(masks_dir):
    rng = np.random.default_rng(1)
    for _ in range(20):
        seg = rng.random((int(rng.integers(1, 30)), int(rng.integers(1, 30)))) > 0.6
        np.testing.assert_array_equal(evaluation.seg2bmap(seg), ref_bmap(seg))
    labels = load(masks_dir / "india" / "00030.png")
    for k in (1, 2, 3):
        np.testing.assert_array_equal(evaluation.seg2bmap(labels == k), ref_bmap(labels == k))


def test_boundary_radius():
    # sqrt(480^2 + 854^2) * 0.008 = 7.84 -> 8; sqrt(480^2 + 910^2) * 0.008 = 8.23 -> 9
    assert evaluation.boundary_radius((480, 854)) == 8
    assert evaluation.boundary_radius((480, 910)) == 9
    assert evaluation.boundary_radius((480, 854), bound_th=3) == 3


def test_edge_cases_j_and_f():
    empty = np.zeros((40, 50), bool)
    blob = empty.copy()
    blob[10:20, 10:30] = True
    assert evaluation.region_similarity(blob, empty) == 0.0  # empty prediction
    assert evaluation.region_similarity(empty, blob) == 0.0  # empty ground truth
    assert evaluation.region_similarity(empty, empty) == 1.0
    assert evaluation.boundary_measure(blob, empty) == 0.0
    assert evaluation.boundary_measure(empty, blob) == 0.0
    assert evaluation.boundary_measure(empty, empty) == 1.0
    assert evaluation.boundary_measure(blob, blob) == 1.0
    # a full mask has an empty boundary map: F is 1 against an empty mask (official quirk), J is 0
    full = np.ones_like(empty)
    assert evaluation.boundary_measure(full, empty) == 1.0
    assert evaluation.region_similarity(full, empty) == 0.0
    # a one-pixel shift stays within the tolerance; J by hand: 9 x 20 / (11 x 20)
    shifted = np.roll(blob, 1, axis=0)
    assert evaluation.boundary_measure(blob, shifted) == 1.0
    assert evaluation.region_similarity(blob, shifted) == pytest.approx(180 / 220)
    with pytest.raises(ValueError, match="shape"):
        evaluation.region_similarity(blob, blob[:-1])


def test_f_far_apart_and_partial():
    # two 1-pixel-wide vertical bars 20 px apart on a 480 x 854 canvas: r = 8, nothing matches
    a = np.zeros((480, 854), bool)
    b = a.copy()
    a[100:200, 100:110] = True
    b[100:200, 130:140] = True
    assert evaluation.boundary_measure(a, b) == 0.0
    c = a.copy()
    c[100:200, 117:120] = True  # a second bar 7 px right of the first: partially within 8 px
    assert evaluation.boundary_measure(a, c) == pytest.approx(ref_f(a, c), abs=1e-12)
    assert 0 < evaluation.boundary_measure(a, c) < 1


@pytest.mark.slow
def test_random_masks_match_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(12):
        h, w = int(rng.integers(5, 60)), int(rng.integers(5, 60))
        gt = rng.random((h, w)) > 0.7
        pred = rng.random((h, w)) > 0.7
        for th in (0.008, 0.05, 2):
            ref = _ref_f_th(gt, pred, th)
            assert evaluation.boundary_measure(gt, pred, bound_th=th) == pytest.approx(ref, abs=1e-12)


def _ref_f_th(gt, pred, th):
    r = th if th >= 1 else math.ceil(th * math.sqrt(gt.shape[0] ** 2 + gt.shape[1] ** 2))
    g = np.argwhere(ref_bmap(gt))
    p = np.argwhere(ref_bmap(pred))
    if len(p) == 0 and len(g) == 0:
        return 1.0
    if len(p) == 0 or len(g) == 0:
        return 0.0
    pr, rc = _fraction_within(p, g, r), _fraction_within(g, p, r)
    return 0.0 if pr + rc == 0 else 2 * pr * rc / (pr + rc)


# A handful of real frames: (sequence, evaluated frame t in 1..T-2, object id)
REAL_FRAMES = [("bike-packing", 5, 1), ("bike-packing", 40, 2), ("gold-fish", 30, 3),
               ("dogs-jump", 10, 1), ("india", 78, 2), ("judo", 32, 1), ("pigs", 1, 3)]


@pytest.mark.parametrize("seq,t,k", REAL_FRAMES)
@pytest.mark.slow
def test_real_frames_match_brute_force(masks_dir, shifted_eval, seq, t, k):
    files = sorted((masks_dir / seq).glob("*.png"))
    T = len(files)
    gt = load(files[t]) == k
    pred = load(files[min(t + 2, T - 1)]) == k
    j, f = ref_j(gt, pred), ref_f(gt, pred)
    assert evaluation.region_similarity(gt, pred) == pytest.approx(j, abs=1e-12)
    assert evaluation.boundary_measure(gt, pred) == pytest.approx(f, abs=1e-12)
    # the folder evaluation puts the same values at index t - 1 (frame 0 is not evaluated)
    assert shifted_eval.per_frame_j[f"{seq}_{k}"][t - 1] == pytest.approx(j, abs=1e-12)
    assert shifted_eval.per_frame_f[f"{seq}_{k}"][t - 1] == pytest.approx(f, abs=1e-12)


# ----------------------------------------------------------------------------
# Statistics and the folder evaluation
# ----------------------------------------------------------------------------
def test_db_statistics_short_sequence():
    values = np.linspace(1.0, 0.0, 11)  # edges 0, 3, 5, 8, 10 (1 + i * 2.5, rounded half up)
    mean, recall, decay = evaluation.db_statistics(values)
    assert mean == pytest.approx(0.5)
    assert recall == pytest.approx(5 / 11)  # 1.0 .. 0.6 are above 0.5, 0.5 is not
    assert decay == pytest.approx(values[0:4].mean() - values[8:11].mean())
    for n in (1, 2, 5, 48, 256):
        v = np.random.default_rng(n).random(n)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = evaluation.db_statistics(v)
        np.testing.assert_allclose(got, ref_statistics(v), atol=1e-12)


def test_decay_over_256_frames_wraps_like_official():
    v = np.random.default_rng(3).random(400)
    # edges for N = 400: 0, 100, 200, 299, 399; as uint8: 0, 100, 200, 43, 143
    official = v[0:101].mean() - v[43:144].mean()
    correct = v[0:101].mean() - v[299:400].mean()
    with pytest.warns(UserWarning, match="uint8"):
        mean, recall, decay = evaluation.db_statistics(v)
    assert decay == pytest.approx(official, abs=1e-12)
    assert mean == pytest.approx(v.mean()) and recall == pytest.approx((v > 0.5).mean())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluation.db_statistics(v, decay_uint8_wrap=False)[2] == pytest.approx(correct, abs=1e-12)
    # N = 300: the last bin's edges 224 and 299 -> 43 leave it empty: the official decay is NaN
    w = np.random.default_rng(4).random(300)
    with pytest.warns(UserWarning, match="uint8"):
        assert math.isnan(evaluation.db_statistics(w)[2])
    assert evaluation.db_statistics(w, decay_uint8_wrap=False)[2] == pytest.approx(
        w[0:76].mean() - w[224:300].mean(), abs=1e-12)


@pytest.mark.slow
def test_decay_over_256_frames_in_a_folder(tmp_path):
    root, results = tmp_path / "DAVIS", tmp_path / "res"
    n = 402  # 400 evaluated frames
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("long\n")
    j_expected = []
    for t in range(n):
        gt = np.zeros((4, 10), np.uint8)
        gt[:, :5] = 1
        pred = np.zeros_like(gt)
        width = 5 if t < 150 else 1 + t % 5  # perfect early, worse later
        pred[:, :width] = 1
        davis.write_mask(root / "Annotations" / "480p" / "long" / f"{t:05d}.png", gt)
        davis.write_mask(results / "long" / f"{t:05d}.png", pred)
        if 0 < t < n - 1:
            j_expected.append(width / 5)
    j_expected = np.array(j_expected)
    with pytest.warns(UserWarning, match="uint8"):
        official = evaluation.evaluate_davis(root, results)
    np.testing.assert_allclose(official.per_frame_j["long_1"], j_expected)
    assert official.per_object["long_1"]["J-Decay"] == pytest.approx(
        j_expected[0:101].mean() - j_expected[43:144].mean())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = evaluation.evaluate_davis(root, results, decay_uint8_wrap=False)
    assert fixed.per_object["long_1"]["J-Decay"] == pytest.approx(
        j_expected[0:101].mean() - j_expected[299:400].mean())


@pytest.mark.slow
def test_shifted_masks_statistics(shifted_eval, reference_j):
    assert list(shifted_eval.per_object) == [f"{s}_{k}" for s in SEQUENCES
                                             for k in range(1, N_OBJECTS[s] + 1)]
    for name, j in reference_j.items():
        np.testing.assert_allclose(shifted_eval.per_frame_j[name], j, atol=1e-12)
        jm, jr, jd = ref_statistics(j)
        row = shifted_eval.per_object[name]
        assert (row["J-Mean"], row["J-Recall"], row["J-Decay"]) == pytest.approx((jm, jr, jd), abs=1e-12)
        fm, fr, fd = ref_statistics(shifted_eval.per_frame_f[name])
        assert (row["F-Mean"], row["F-Recall"], row["F-Decay"]) == pytest.approx((fm, fr, fd), abs=1e-12)
    g = shifted_eval.global_metrics
    assert list(g) == list(evaluation.GLOBAL_COLUMNS)
    j_mean = np.mean([reference_j[n].mean() for n in reference_j])
    f_mean = np.mean([v["F-Mean"] for v in shifted_eval.per_object.values()])
    assert g["J-Mean"] == pytest.approx(j_mean, abs=1e-12)
    assert g["J&F-Mean"] == pytest.approx((j_mean + f_mean) / 2, abs=1e-12)


@pytest.mark.slow
def test_shifted_masks_equal_the_official_packages_numbers(shifted_eval):
    """Every global and per-object number the official DAVIS 2017 package computed on this case
    (`data/davis2017_osvos_masks/official_shifted_results.json`, data/README.md says how)."""
    official = json.loads((DATA / "davis2017_osvos_masks" / "official_shifted_results.json").read_text())
    assert list(official["global"]) == list(evaluation.GLOBAL_COLUMNS)
    for column, value in official["global"].items():
        assert shifted_eval.global_metrics[column] == pytest.approx(value, abs=1e-12), column
    assert list(shifted_eval.per_object) == list(official["per_object"])
    for name, row in official["per_object"].items():
        for column, value in row.items():
            assert shifted_eval.per_object[name][column] == pytest.approx(value, abs=1e-12), (name, column)


def test_csv_format(shifted_eval, reference_j, tmp_path):
    global_path, seq_path = evaluation.write_davis_csvs(shifted_eval, tmp_path, split="val")
    assert global_path == tmp_path / "global_results-val.csv"
    assert seq_path == tmp_path / "per-sequence_results-val.csv"
    lines = global_path.read_text().splitlines()
    assert lines[0] == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    assert len(lines) == 2
    cells = lines[1].split(",")
    assert len(cells) == 7 and all(THREE_DECIMALS.match(c) for c in cells)
    j_mean = np.mean([j.mean() for j in reference_j.values()])
    assert abs(float(cells[1]) - j_mean) <= 0.0005 + 1e-9
    with open(seq_path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Sequence", "J-Mean", "F-Mean"]
    assert [r[0] for r in rows[1:]] == list(reference_j)
    for name, jm, fm in rows[1:]:
        assert THREE_DECIMALS.match(jm) and THREE_DECIMALS.match(fm)
        assert abs(float(jm) - reference_j[name].mean()) <= 0.0005 + 1e-9
    assert b"\r" not in seq_path.read_bytes()


def test_missing_result_frame_names_the_file(shifted_case, tmp_path):
    root, results = shifted_case
    partial = tmp_path / "partial"
    shutil.copytree(results / "judo", partial / "judo")
    (partial / "judo" / "00017.png").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(partial / "judo" / "00017.png"))):
        evaluation.evaluate_davis(root, partial, split="mini")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere"))):
        evaluation.evaluate_davis(root, tmp_path / "nowhere", split="mini")


def test_result_with_unknown_object_id(tmp_path):
    _tiny_layout(tmp_path / "DAVIS", ["s"], 4, images=False)
    bad = np.zeros((6, 8), np.uint8)
    bad[0, 0] = 7
    for t in range(4):
        davis.write_mask(tmp_path / "res" / "s" / f"{t:05d}.png", bad)
    with pytest.raises(ValueError, match="00001.png"):
        evaluation.evaluate_davis(tmp_path / "DAVIS", tmp_path / "res")


# ----------------------------------------------------------------------------
# OSMN mIoU
# ----------------------------------------------------------------------------
@pytest.mark.slow
def test_miou_on_shifted_masks(shifted_case, reference_j):
    root, results = shifted_case
    miou = evaluation.evaluate_miou(root, results, split="val", year=2017)
    assert list(miou.per_object) == list(reference_j)
    for name, j in reference_j.items():
        assert miou.per_object[name] == pytest.approx(j.mean(), abs=1e-12)
    assert miou.mean == pytest.approx(np.mean([j.mean() for j in reference_j.values()]), abs=1e-12)


def test_miou_resizes_and_2016(tmp_path):
    root, res = tmp_path / "DAVIS", tmp_path / "res"
    rng = np.random.default_rng(5)
    n = 5
    gts, preds = [], []
    for t in range(n):
        gt = (rng.random((20, 30)) > 0.5).astype(np.uint8) * rng.integers(1, 3, size=(20, 30)).astype(np.uint8)
        gt[0, 0] = 2  # both objects present in frame 0
        gt[0, 1] = 1
        small = rng.integers(0, 3, size=(10, 15)).astype(np.uint8)
        davis.write_mask(root / "Annotations" / "480p" / "s" / f"{t:05d}.png", gt)
        davis.write_mask(res / "s" / f"{t:05d}.png", small)
        gts.append(gt)
        preds.append(small.repeat(2, axis=0).repeat(2, axis=1))  # nearest 2x up-sampling
    for year in ("2016", "2017"):
        (root / "ImageSets" / year).mkdir(parents=True)
        (root / "ImageSets" / year / "val.txt").write_text("s\n")
    m17 = evaluation.evaluate_miou(root, res, year=2017)
    for k in (1, 2):
        expected = np.mean([ref_j(gts[t] == k, preds[t] == k) for t in range(1, n - 1)])
        assert m17.per_object[f"s_{k}"] == pytest.approx(expected, abs=1e-12)
    m16 = evaluation.evaluate_miou(root, res, year=2016)
    expected16 = np.mean([ref_j(gts[t] > 0, preds[t] > 0) for t in range(1, n - 1)])
    assert list(m16.per_object) == ["s"]
    assert m16.mean == pytest.approx(expected16, abs=1e-12)
    # the DAVIS metric does not resize: a size mismatch is an error naming the result file
    with pytest.raises(ValueError, match=re.escape(str(res / "s" / "00001.png"))):
        evaluation.evaluate_davis(root, res)


# ----------------------------------------------------------------------------
# The command-line tool
# ----------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_end_to_end(shifted_case, reference_j, tmp_path):
    root, results = shifted_case
    out = tmp_path / "results"
    for seq in ("judo", "car-shadow"):
        shutil.copytree(results / seq, out / seq)
    proc = run_tool_process("evaluate", "--davis-root", root, "--results", out, "--split", "mini", "--year", "2017")
    assert proc.returncode == 0, proc.stderr
    assert "J&F-Mean" in proc.stdout and "judo_2" in proc.stdout
    lines = (out / "global_results-mini.csv").read_text().splitlines()
    assert lines[0] == ",".join(evaluation.GLOBAL_COLUMNS)
    with open(out / "per-sequence_results-mini.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert [r[0] for r in rows[1:]] == ["judo_1", "judo_2", "car-shadow_1"]
    for name, jm, _ in rows[1:]:
        assert abs(float(jm) - reference_j[name].mean()) <= 0.0005 + 1e-9
    j_mean = np.mean([reference_j[r[0]].mean() for r in rows[1:]])
    assert abs(float(lines[1].split(",")[1]) - j_mean) <= 0.0005 + 1e-9

    proc = run_tool_process("evaluate", "--davis-root", root, "--results", out, "--split", "mini", "--metric", "miou")
    assert proc.returncode == 0, proc.stderr
    with open(out / "miou_results-mini.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Sequence", "mIoU"] and rows[-1][0] == "all"
    assert abs(float(rows[-1][1]) - j_mean) <= 0.0005 + 1e-9

    (out / "judo" / "00010.png").unlink()
    proc = run_tool_process("evaluate", "--davis-root", root, "--results", out, "--split", "mini")
    assert proc.returncode != 0
    assert "00010.png" in proc.stderr
