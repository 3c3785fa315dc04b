"""YouTube-Objects in the release's layout: reading it, the release's mIoU, the tools, and the converter."""
import numpy as np
import pytest
from PIL import Image

from osmn_tf.data.synthetic import SHAPES, SyntheticConfig, write_youtube_objects
from osmn_tf.data.youtube_objects import YouTubeObjects, class_of, prepare_youtube_objects
from osmn_tf.evaluation.youtube_objects import evaluate_youtube_objects

from conftest import run_tool

CONFIG = SyntheticConfig(image_size=(64, 48), num_frames=5)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("yto")
    write_youtube_objects(root, CONFIG, 6)
    return root


def release_miou(root, results):
    """The release's youtube_eval.py formula, written out: per sequence, IoU on labels 2..n, then the mean."""
    ious = []
    for sequence in (root / "all.txt").read_text().split():
        names = sorted(p.name for p in (root / "Labels" / sequence).iterdir())
        if len(names) < 2:
            continue
        per_frame = []
        for name in names[1:]:
            gt = np.asarray(Image.open(root / "Labels" / sequence / name)) > 0
            pred = np.asarray(Image.open(results / sequence / name)) > 0
            pred = np.asarray(Image.fromarray(pred.astype(np.uint8)).resize(gt.shape[::-1], Image.NEAREST)) > 0
            union = (gt | pred).sum()
            per_frame.append(1.0 if union == 0 else (gt & pred).sum() / union)
        ious.append(np.mean(per_frame))
    return float(np.mean(ious))


def test_the_layout_lists_sequences_of_two_or_more_frames(root, tmp_path):
    dataset = YouTubeObjects(root)
    assert len(dataset.sequences) == 6 and all(len(dataset.frame_paths(s)) == 5 for s in dataset.sequences)
    assert {class_of(s) for s in dataset.sequences} <= set(SHAPES)
    first = dataset.read_label(dataset.first_label_path(dataset.sequences[0]))
    assert first.dtype == np.uint8 and set(np.unique(first)) == {0, 1}
    # A one-frame sequence is left out, as the release leaves it out.
    short = tmp_path / "short"
    names = write_youtube_objects(short, SyntheticConfig(image_size=(64, 48), num_frames=2), 2)
    for folder in ("Images", "Labels"):
        next((short / folder / names[1]).glob("00001.*")).unlink()
    assert YouTubeObjects(short).sequences == [names[0]]
    assert list(evaluate_youtube_objects(short, short / "Labels").per_sequence) == [names[0]]


def test_the_score_is_the_releases_formula(root, tmp_path):
    # Results: each label moved two pixels right and shrunk to a third at frame 3, so the IoUs vary.
    results = tmp_path / "results"
    for sequence in YouTubeObjects(root).sequences:
        (results / sequence).mkdir(parents=True)
        for path in sorted((root / "Labels" / sequence).iterdir()):
            label = np.roll(np.asarray(Image.open(path)), 2, axis=1)
            if path.stem == "00003":
                label = label[::3, ::3]  # another size: resized nearest to the label's
            Image.fromarray(label).save(results / sequence / path.name)
    result = evaluate_youtube_objects(root, results)
    expected = release_miou(root, results)
    assert result.overall == pytest.approx(expected, abs=1e-12)
    assert 0.2 < expected < 0.99  # neither trivial nor perfect: the comparison could fail
    for name, value in result.per_class.items():
        members = [v for s, v in result.per_sequence.items() if class_of(s) == name]
        assert value == pytest.approx(np.mean(members))


@pytest.mark.slow
def test_segment_and_evaluate_tools(root, tmp_path, small_weights, capsys):
    out = tmp_path / "out"
    assert run_tool("segment", "--weights", small_weights, "--youtube-objects-root", root, "--output", out,
                    "--working-size", "64x48") == (0, "")
    for sequence in YouTubeObjects(root).sequences:
        assert sorted(p.name for p in (out / sequence).glob("*.png")) == [f"{t:05d}.png" for t in range(5)]
        np.testing.assert_array_equal(np.asarray(Image.open(out / sequence / "00000.png")) > 0,
                                      np.asarray(Image.open(root / "Labels" / sequence / "00000.png")) > 0)
    assert run_tool("evaluate", "--youtube-objects-root", root, "--results", out) == (0, "")
    printed = capsys.readouterr().out
    assert "all sequences" in printed
    lines = (out / "youtube-objects-per-class.csv").read_text().splitlines()
    assert lines[0] == "Class,mIoU,Sequences" and lines[-1].startswith("all sequences,")
    assert float(lines[-1].split(",")[1]) == pytest.approx(release_miou(root, out), abs=1e-6)


@pytest.mark.slow
def test_the_release_working_size_is_the_default(root, tmp_path, small_weights, monkeypatch):
    import segment_run

    seen = []
    monkeypatch.setattr(segment_run, "_segment_dataset", lambda r, progress, log: seen.append(r.working_size))
    assert run_tool("segment", "--weights", small_weights, "--youtube-objects-root", root, "--output",
                    tmp_path / "out") == (0, "")
    assert seen == [(640, 360)]


@pytest.mark.slow
def test_bad_roots_are_named(tmp_path):
    code, message = run_tool("evaluate", "--youtube-objects-root", tmp_path, "--results", tmp_path)
    assert code == 1 and message == (f"error: {tmp_path}/all.txt: no such sequence list (YouTube-Objects layout: "
                                     "ROOT/all.txt, ROOT/Images/<sequence>/, ROOT/Labels/<sequence>/)")
    code, message = run_tool("evaluate", "--youtube-objects-root", tmp_path, "--results", tmp_path, "--metric", "miou")
    assert code == 2


def write_raw_dataset(source):
    """The dataset's own layout: <class>/data/<number>/shots/001/images/*.png and labels/*.jpg (JPEG masks)."""
    rng = np.random.default_rng(0)
    for cls, videos in (("cat", ("0001", "0002")), ("train", ("0001",))):
        for video in videos:
            shot = source / cls / "data" / video / "shots" / "001"
            (shot / "images").mkdir(parents=True)
            (shot / "labels").mkdir()
            for t in range(3):
                Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(shot / "images" / f"{t:04d}.png")
                mask = np.zeros((24, 32), np.uint8)
                mask[5:15, 8 + t:20 + t] = 250  # JPEG rounds it: thresholded at 127
                Image.fromarray(mask).save(shot / "labels" / f"{t:04d}.jpg", quality=75)


@pytest.mark.slow
def test_the_converter_writes_the_release_layout_and_resumes(tmp_path):
    source, root = tmp_path / "youtube_masks", tmp_path / "yto"
    write_raw_dataset(source)
    assert prepare_youtube_objects(source, root) == ["cat_0001", "cat_0002", "train_0001"]
    dataset = YouTubeObjects(root)
    assert dataset.sequences == ["cat_0001", "cat_0002", "train_0001"]
    label = np.asarray(Image.open(root / "Labels" / "cat_0002" / "0001.png"))
    assert set(np.unique(label)) == {0, 255} and label[5:15, 9:21].all() and not label[:5].any()
    # A rerun keeps converted sequences (even when the source is gone) and writes the list again.
    (root / "Labels" / "cat_0001" / "0000.png").write_bytes(b"kept")
    assert run_tool("prepare_youtube_objects", "--source", source, "--output", root) == (0, "")
    assert (root / "Labels" / "cat_0001" / "0000.png").read_bytes() == b"kept"
    code, message = run_tool("prepare_youtube_objects", "--source", tmp_path / "missing", "--output", tmp_path / "o")
    assert code == 1 and "no <class>/data/ folder" in message
