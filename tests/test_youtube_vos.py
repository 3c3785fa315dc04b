"""Videos whose objects are annotated at different frames: --annotations, YouTube-VOS segmenting and evaluation."""
import json

import numpy as np
import pytest
from PIL import Image

from osmn_tf.data.davis import read_mask, write_mask
from osmn_tf.evaluation import boundary_measure, region_similarity

from conftest import run_tool, synthetic_video

NUM_FRAMES, LATE = 6, 2
PALETTE = np.array([[0, 0, 0], [10, 200, 30], [200, 10, 30], [0, 0, 0], [0, 0, 0], [30, 30, 220]], np.uint8)


def ground_truth():
    """Frames and every frame's ids; object 5 enters at frame LATE (drawn over a plain background before)."""
    frames, _ = synthetic_video(num_frames=NUM_FRAMES)
    masks = []
    for t in range(NUM_FRAMES):
        mask = np.zeros((60, 80), np.uint8)
        mask[5:20, 5 + 2 * t:20 + 2 * t], mask[10:25, 40 + 2 * t:55 + 2 * t] = 1, 2
        if t >= LATE:
            mask[35:50, 20 + 2 * t:35 + 2 * t] = 5
        else:
            frames[t][35:50, 20 + 2 * t:35 + 2 * t] = 128
        masks.append(mask)
    return frames, masks


def write_split(root, split, sparse):
    frames, masks = ground_truth()
    for video in ("vid_a", "vid_b"):
        for t, (frame, mask) in enumerate(zip(frames, masks)):
            path = root / split / "JPEGImages" / video / f"{5 * t:05d}.jpg"  # YouTube-VOS steps by 5
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame).save(path, quality=95)
            if not sparse:
                write_mask(root / split / "Annotations" / video / f"{5 * t:05d}.png", mask, PALETTE)
        if sparse:
            first = np.where(masks[0] == 5, 0, masks[0]).astype(np.uint8)
            write_mask(root / split / "Annotations" / video / "00000.png", first, PALETTE)
            write_mask(root / split / "Annotations" / video / f"{5 * LATE:05d}.png",
                       np.where(masks[LATE] == 5, 5, 0).astype(np.uint8), PALETTE)
    objects = {"1": {"category": "cat"}, "2": {"category": "dog"}, "5": {"category": "cat"}}
    (root / split / "meta.json").write_text(json.dumps({"videos": {v: {"objects": objects}
                                                                    for v in ("vid_a", "vid_b")}}))
    return frames, masks


@pytest.mark.slow
def test_a_youtube_vos_split_is_segmented_as_a_submission_and_resumes(tmp_path, small_weights):
    frames, masks = write_split(tmp_path / "ytvos", "valid", sparse=True)
    out = tmp_path / "out"
    code, text = run_tool("segment", "--weights", small_weights, "--youtube-vos-root", tmp_path / "ytvos",
                          "--split", "valid", "--output", out, "--working-size", "64x48")
    assert code == 0, text
    for video in ("vid_a", "vid_b"):
        written = sorted(p.name for p in (out / "Annotations" / video).glob("*.png"))
        assert written == [f"{5 * t:05d}.png" for t in range(NUM_FRAMES)]
        labels = [read_mask(out / "Annotations" / video / name, return_palette=True) for name in written]
        np.testing.assert_array_equal(labels[0][1][:6], PALETTE)  # the annotations' palette
        np.testing.assert_array_equal(labels[0][0], np.where(masks[0] == 5, 0, masks[0]))
        assert not any((l == 5).any() for l, _ in labels[:LATE])
        np.testing.assert_array_equal(labels[LATE][0] == 5, masks[LATE] == 5)
        assert set(np.unique(labels[-1][0])) <= {0, 1, 2, 5}
    first_only = tmp_path / "first_only"
    code, text = run_tool("segment", "--weights", small_weights, "--youtube-vos-root", tmp_path / "ytvos",
                          "--split", "valid", "--output", first_only, "--working-size", "64x48", "--first-frame-only")
    assert code == 0, text
    assert not any((read_mask(p) == 5).any() for p in (first_only / "Annotations" / "vid_a").glob("*.png"))
    before = (out / "Annotations" / "vid_a" / "00025.png").stat().st_mtime_ns
    code, _ = run_tool("segment", "--weights", small_weights, "--youtube-vos-root", tmp_path / "ytvos",
                       "--split", "valid", "--output", out, "--working-size", "64x48")
    assert code == 0 and (out / "Annotations" / "vid_a" / "00025.png").stat().st_mtime_ns == before


@pytest.mark.slow
def test_a_held_out_split_is_segmented_and_evaluated_end_to_end(tmp_path, small_weights, capsys):
    _, masks = write_split(tmp_path / "ytvos", "train", sparse=False)
    out = tmp_path / "out"
    code, text = run_tool("segment", "--weights", small_weights, "--youtube-vos-root", tmp_path / "ytvos",
                          "--split", "train", "--output", out, "--working-size", "64x48")
    assert code == 0, text
    predictions = [read_mask(out / "Annotations" / "vid_a" / f"{5 * t:05d}.png") for t in range(NUM_FRAMES)]
    # Full ground truth: each object still starts at its first appearance only.
    assert not any((p == 5).any() for p in predictions[:LATE])
    (tmp_path / "seen.txt").write_text("cat\n")
    code, text = run_tool("evaluate", "--youtube-vos-root", tmp_path / "ytvos", "--split", "train",
                          "--results", out, "--seen-classes", tmp_path / "seen.txt")
    assert code == 0, text
    per_object = (out / "per-object_results-train.csv").read_text().splitlines()
    rows = {line.split(",")[0]: line.split(",") for line in per_object[1:]}
    assert sorted(rows) == ["vid_a_1", "vid_a_2", "vid_a_5", "vid_b_1", "vid_b_2", "vid_b_5"]
    assert rows["vid_a_1"][3] == str(NUM_FRAMES - 1) and rows["vid_a_5"][3] == str(NUM_FRAMES - 1 - LATE)
    assert rows["vid_a_5"][4:] == ["cat", "seen"] and rows["vid_a_2"][4:] == ["dog", "unseen"]
    expected = {}
    for object_id, start in ((1, 0), (2, 0), (5, LATE)):
        pairs = [(masks[t] == object_id, predictions[t] == object_id) for t in range(start + 1, NUM_FRAMES)]
        expected[object_id] = (np.mean([region_similarity(*p) for p in pairs]),
                               np.mean([boundary_measure(*p) for p in pairs]))
        assert float(rows[f"vid_a_{object_id}"][1]) == pytest.approx(expected[object_id][0], abs=6e-4)
        assert float(rows[f"vid_a_{object_id}"][2]) == pytest.approx(expected[object_id][1], abs=6e-4)
    header, values = (out / "overall_results-train.csv").read_text().splitlines()
    overall = dict(zip(header.split(","), map(float, values.split(","))))
    j_seen = np.mean([expected[1][0], expected[5][0]])
    assert overall["J-seen"] == pytest.approx(j_seen, abs=6e-4)
    assert overall["J-unseen"] == pytest.approx(expected[2][0], abs=6e-4)
    four = (j_seen, np.mean([expected[1][1], expected[5][1]]), expected[2][0], expected[2][1])
    assert overall["Overall"] == pytest.approx(np.mean(four), abs=1e-3)


@pytest.mark.slow
def test_the_ground_truth_itself_scores_one(tmp_path):
    write_split(tmp_path / "ytvos", "train", sparse=False)
    code, text = run_tool("evaluate", "--youtube-vos-root", tmp_path / "ytvos", "--split", "train",
                          "--results", tmp_path / "ytvos" / "train")
    assert code == 0, text
    header, values = (tmp_path / "ytvos" / "train" / "overall_results-train.csv").read_text().splitlines()
    assert header == "Overall,J-Mean,F-Mean" and values == "1.000,1.000,1.000"


def _video_with_annotations(tmp_path):
    frames, masks = ground_truth()
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:05d}.png")
    annotations = tmp_path / "annotations"
    write_mask(annotations / "00000.png", np.where(masks[0] == 5, 0, masks[0]).astype(np.uint8), PALETTE)
    write_mask(annotations / f"{LATE:05d}.png", np.where(masks[LATE] == 5, 5, 0).astype(np.uint8), PALETTE)
    return folder, annotations, masks


@pytest.mark.slow
def test_annotations_folder_for_a_frame_folder(tmp_path, small_weights):
    folder, annotations, masks = _video_with_annotations(tmp_path)
    out = tmp_path / "out"
    code, text = run_tool("segment", "--weights", small_weights, "--frames", folder, "--annotations", annotations,
                          "--output", out, "--working-size", "64x48")
    assert code == 0, text
    labels = [read_mask(out / f"{t:05d}.png") for t in range(NUM_FRAMES)]
    np.testing.assert_array_equal(labels[0], np.where(masks[0] == 5, 0, masks[0]))
    assert not any((l == 5).any() for l in labels[:LATE])
    np.testing.assert_array_equal(labels[LATE] == 5, masks[LATE] == 5)


@pytest.mark.parametrize("case, message", [
    ("size", "00002.png: the annotation is 40x30 (WxH) but its frame is 80x60"),
    ("palette", "00002.png: object id(s) [5] have no colour in the mask's palette (5 colours)"),
    ("name", "00099.png: no frame is named '00099'"),
    ("empty", "00002.png: the annotation has no object"),
])
@pytest.mark.slow
def test_bad_annotations_stop_naming_the_file_and_leave_no_output(tmp_path, small_weights, case, message):
    folder, annotations, masks = _video_with_annotations(tmp_path)
    late = annotations / f"{LATE:05d}.png"
    if case == "size":
        write_mask(late, np.ones((30, 40), np.uint8) * 5, PALETTE)
    elif case == "palette":
        image = Image.fromarray(np.where(masks[LATE] == 5, 5, 0).astype(np.uint8), mode="P")
        image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
        image.save(late)
    elif case == "name":
        write_mask(annotations / "00099.png", masks[3], PALETTE)
    elif case == "empty":
        write_mask(late, np.zeros((60, 80), np.uint8), PALETTE)
    code, text = run_tool("segment", "--weights", small_weights, "--frames", folder, "--annotations", annotations,
                          "--output", tmp_path / "out", "--working-size", "64x48")
    assert code != 0 and text.startswith("error: ") and message in text, text
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_an_annotation_past_the_end_of_a_video_file_leaves_no_output(tmp_path, small_weights):
    import imageio.v3 as iio

    frames, masks = ground_truth()
    video = tmp_path / "clip.mp4"
    iio.imwrite(video, np.stack(frames), fps=5, plugin="FFMPEG", macro_block_size=1)
    annotations = tmp_path / "annotations"
    write_mask(annotations / "00000.png", masks[0], PALETTE)
    write_mask(annotations / "00040.png", masks[3], PALETTE)
    code, text = run_tool("segment", "--weights", small_weights, "--frames", video, "--annotations", annotations,
                          "--output", tmp_path / "out", "--working-size", "64x48")
    assert code != 0 and "00040.png: no such frame, the video has 6 frames" in text, text
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_demo_evaluation_scores_late_entries_with_and_without_their_annotations(tmp_path, small_model):
    from conftest import tiny_train_config
    from osmn_tf.data import synthetic
    from osmn_tf.training import experiment

    config = tiny_train_config(tmp_path / "data")
    results = experiment.evaluate_late_entries(small_model, config, tmp_path, tmp_path / "late", (64, 48), count=2)
    assert sorted(results) == ["first_frame_only", "with_late_annotations"]
    late_config = synthetic.SyntheticConfig(image_size=(64, 48), seed=config.seed, late_entry_prob=1.0)
    late_ids = {}
    for number in range(2):
        scene = synthetic.sample_scene(late_config, synthetic.SPLIT_FIRST_INDEX["val"] + number)
        late_ids[f"synth-valid-{number:04d}"] = scene.late_objects
    names = {f"{video}_{i}" for video, ids in late_ids.items() for i in ids}
    assert names and names <= set(results["first_frame_only"].per_object)
    for name in names:  # never segmented without their annotations: nothing of them is found
        assert results["first_frame_only"].per_object[name]["J"] == 0.0
    _, masks = synthetic.generate_sequence(late_config, synthetic.SPLIT_FIRST_INDEX["val"])
    video = "synth-valid-0000"
    for object_id, first in late_ids[video].items():
        written = read_mask(tmp_path / "late/with_late_annotations/Annotations" / video / f"{first:05d}.png")
        np.testing.assert_array_equal(written == object_id, masks[first] == object_id)
    assert (tmp_path / "late/first_frame_only/overall_results-valid.csv").is_file()


@pytest.mark.slow
def test_evaluation_names_a_missing_result_frame(tmp_path):
    write_split(tmp_path / "ytvos", "train", sparse=False)
    results = tmp_path / "results" / "Annotations"
    for video in ("vid_a", "vid_b"):
        for t in range(NUM_FRAMES):
            if (video, t) != ("vid_b", 3):
                write_mask(results / video / f"{5 * t:05d}.png", np.zeros((60, 80), np.uint8))
    code, text = run_tool("evaluate", "--youtube-vos-root", tmp_path / "ytvos", "--split", "train",
                          "--results", tmp_path / "results")
    assert code == 1 and f"result frame missing: {results / 'vid_b' / '00015.png'}" in text, text
    assert not list((tmp_path / "results").glob("*.csv"))


@pytest.mark.slow
def test_the_submission_tree_holds_only_masks_and_resumes_per_video(tmp_path, small_weights, capsys):
    """Issue 26: the records of what is complete live beside Annotations/, not in the tree that is zipped."""
    write_split(tmp_path / "ytvos", "valid", sparse=True)
    out = tmp_path / "out"
    args = ["--weights", small_weights, "--youtube-vos-root", tmp_path / "ytvos", "--split", "valid", "--output", out,
            "--working-size", "64x48"]
    assert run_tool("segment", *args)[0] == 0
    files = [p for p in (out / "Annotations").rglob("*") if p.is_file()]
    assert len(files) == 2 * NUM_FRAMES and all(p.suffix == ".png" for p in files), files
    (out / "Annotations" / "vid_b" / "00010.png").unlink()
    stamp = (out / "Annotations" / "vid_a" / "00025.png").stat().st_mtime_ns
    capsys.readouterr()
    assert run_tool("segment", *args)[0] == 0
    assert "1 videos segmented, 1 skipped" in capsys.readouterr().out
    assert (out / "Annotations" / "vid_b" / "00010.png").is_file()
    assert (out / "Annotations" / "vid_a" / "00025.png").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("options,size", [([], (448, 256)), (["--working-size", "854x480"], (854, 480))])
def test_the_release_working_size_is_the_default(options, size, tmp_path):
    import segment

    args = segment.parse_args(["--weights", str(tmp_path / "w.keras"), "--youtube-vos-root", str(tmp_path),
                               "--output", str(tmp_path / "out"), *options])
    assert args.working_size == size
