"""The synthetic video dataset: determinism, exact masks, motion, DAVIS layout and CLI."""
import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from osmn_tf.data import synthetic
from osmn_tf.data.davis import DavisDataset, read_mask
from osmn_tf.data.frames import load_rgb
from osmn_tf.data.synthetic import SyntheticConfig
from osmn_tf.evaluation import boundary_measure, copy_first_mask_baseline

from conftest import load_tool, run_tool_process

CONFIG = SyntheticConfig()
SMALL = SyntheticConfig(image_size=(64, 48), num_frames=6, seed=3)
VAL = synthetic.SPLIT_FIRST_INDEX["val"]


@pytest.fixture(scope="module")
def val_scenes():
    """Twelve validation scenes of the default config, with their rendered frames."""
    scenes = []
    for index in range(VAL, VAL + 12):
        scene = synthetic.sample_scene(CONFIG, index)
        rendered = [synthetic.render_frame(scene, t) for t in range(CONFIG.num_frames)]
        scenes.append((scene, [r[0] for r in rendered], [r[1] for r in rendered]))
    return scenes


# --- determinism ----------------------------------------------------------------

def test_same_seed_and_index_give_the_same_sequence():
    frames_a, masks_a = synthetic.generate_sequence(CONFIG, 7)
    frames_b, masks_b = synthetic.generate_sequence(dataclasses.replace(CONFIG), 7)
    assert len(frames_a) == len(masks_a) == CONFIG.num_frames
    for a, b in zip(frames_a + masks_a, frames_b + masks_b):
        np.testing.assert_array_equal(a, b)
    width, height = CONFIG.image_size
    assert frames_a[0].shape == (height, width, 3) and frames_a[0].dtype == np.uint8
    assert masks_a[0].shape == (height, width) and masks_a[0].dtype == np.uint8


def test_sequences_match_recorded_pixels():
    """Pixels and labels recorded from an earlier version of the generator: datasets stay reproducible."""
    import hashlib

    for config, index, digest, areas in (
            (SMALL, 0, "79d6f24ca4b3e2f8", [477, 545, 628, 721, 814, 895]),
            (dataclasses.replace(CONFIG, rider_prob=0.5), VAL + 2, "509466a3c820910e",
             [1845, 1820, 1790, 1758, 1721, 1657])):
        frames, masks = synthetic.generate_sequence(config, index)
        data = np.stack(frames).tobytes() + np.stack(masks).tobytes()
        assert hashlib.sha256(data).hexdigest()[:16] == digest
        assert [int(np.count_nonzero(m)) for m in masks[:6]] == areas


def test_other_seed_or_index_give_other_sequences():
    frames, _ = synthetic.generate_sequence(CONFIG, 7)
    other_index, _ = synthetic.generate_sequence(CONFIG, 8)
    other_seed, _ = synthetic.generate_sequence(dataclasses.replace(CONFIG, seed=1), 7)
    assert not np.array_equal(frames[0], other_index[0])
    assert not np.array_equal(frames[0], other_seed[0])


def test_config_round_trips_and_validates():
    assert SyntheticConfig.from_dict(CONFIG.to_dict()) == CONFIG
    assert SyntheticConfig(image_size=[64, 48]).image_size == (64, 48)
    for bad in ({"image_size": (8, 48)}, {"num_frames": 1}, {"min_objects": 3, "max_objects": 2},
                {"object_radius": (0.3, 0.1)}, {"twin_prob": 1.5}, {"rider_prob": -0.1}, {"speed": (0, 0.1)}):
        with pytest.raises(ValueError):
            SyntheticConfig(**bad)


# --- exact masks ------------------------------------------------------------------

def test_masks_are_exactly_what_is_drawn(val_scenes):
    for scene, frames, masks in val_scenes[:6]:
        depth = {obj.object_id: obj.depth for obj in scene.objects}
        for t in (0, CONFIG.num_frames // 2, CONFIG.num_frames - 1):
            rgb, labels = frames[t], masks[t]
            background = synthetic.render_background(scene, t)
            covered = np.zeros(labels.shape, dtype=bool)
            for obj in scene.objects:
                silhouette, alone = synthetic.render_object(scene, obj.object_id, t)
                mine = labels == obj.object_id
                # Every labelled pixel lies in the object's silhouette and shows its colours.
                assert not (mine & ~silhouette).any()
                np.testing.assert_array_equal(rgb[mine], alone[mine])
                # A silhouette pixel labelled otherwise is covered by an object in front.
                hidden = silhouette & ~mine
                assert (labels[hidden] != 0).all()
                assert all(depth[int(i)] > obj.depth for i in np.unique(labels[hidden]))
                covered |= silhouette
            # Background pixels are outside every silhouette and show the background.
            assert not (covered & (labels == 0)).any()
            np.testing.assert_array_equal(rgb[labels == 0], background[labels == 0])


def test_every_object_is_visible_in_every_frame(val_scenes):
    for scene, _, masks in val_scenes:
        ids = [obj.object_id for obj in scene.objects]
        assert ids == list(range(1, len(ids) + 1))
        assert CONFIG.min_objects <= len(ids) <= CONFIG.max_objects
        assert sorted(np.unique(masks[0])[1:].tolist()) == ids
        for t, labels in enumerate(masks):
            for object_id in ids:
                silhouette, _ = synthetic.render_object(scene, object_id, t)
                visible = np.count_nonzero(labels == object_id)
                needed = CONFIG.min_first_visible_fraction if t == 0 else CONFIG.min_visible_fraction
                assert visible >= needed * np.count_nonzero(silhouette)


# --- what makes both modulators matter ----------------------------------------------

def test_twins_look_identical_and_others_do_not(val_scenes):
    with_twins = [scene for scene, _, _ in val_scenes if scene.twins]
    assert len(with_twins) >= 3  # twin_prob 0.6 of 12 scenes
    for scene in with_twins:
        a_id, b_id = scene.twins[0]
        a, b = (obj for obj in scene.objects if obj.object_id in (a_id, b_id))
        assert a.appearance is b.appearance and not np.allclose(a.centres, b.centres)
        # Drawn at the same place, the twin gives the same pixels.
        moved = dataclasses.replace(b, centres=a.centres)
        swapped = dataclasses.replace(scene, objects=tuple(moved if o is b else o for o in scene.objects))
        for t in (0, CONFIG.num_frames - 1):
            sil_a, rgb_a = synthetic.render_object(scene, a.object_id, t)
            sil_b, rgb_b = synthetic.render_object(swapped, b.object_id, t)
            np.testing.assert_array_equal(sil_a, sil_b)
            np.testing.assert_array_equal(rgb_a, rgb_b)
    for scene, _, _ in val_scenes:
        looks = {obj.appearance_id: obj.appearance for obj in scene.objects}
        colours = [look.colours for look in looks.values()]
        for i in range(len(colours)):
            for j in range(i + 1, len(colours)):
                assert not np.allclose(colours[i], colours[j])


def test_riders_move_with_their_host_in_front_of_it(val_scenes):
    assert not any(obj.host_id for scene, _, _ in val_scenes for obj in scene.objects)  # off by default
    config = dataclasses.replace(CONFIG, rider_prob=0.3)
    scenes = [synthetic.sample_scene(config, index) for index in range(VAL, VAL + 12)]
    riders = [(scene, obj) for scene in scenes for obj in scene.objects if obj.host_id]
    assert len(riders) >= 2  # 0.3 per eligible object of 12 scenes (3 here)
    for scene, rider in riders:
        host = next(obj for obj in scene.objects if obj.object_id == rider.host_id)
        assert host.host_id == 0 and rider.appearance_id != host.appearance_id
        assert sum(obj.host_id == host.object_id for obj in scene.objects) == 1
        offsets = rider.centres - host.centres
        np.testing.assert_allclose(offsets, offsets[:1].repeat(len(offsets), 0))
        assert np.linalg.norm(offsets[0]) <= 0.25 * host.appearance.radius
        assert 0.4 <= rider.appearance.radius / host.appearance.radius <= 0.65
        np.testing.assert_array_equal(rider.appearance.scales, host.appearance.scales)
        assert rider.depth > host.depth


def test_objects_meet_and_occlude(val_scenes):
    occluded = 0
    for scene, _, masks in val_scenes:
        hidden = False
        for t, labels in enumerate(masks):
            for obj in scene.objects:
                silhouette, _ = synthetic.render_object(scene, obj.object_id, t)
                inside = labels[silhouette]
                hidden |= bool(((inside != obj.object_id) & (inside > 0)).any())
        occluded += hidden
    assert occluded >= len(val_scenes) // 3


def test_objects_move_and_copying_the_first_mask_is_poor(val_scenes):
    first_last, baseline, scale_changes = [], [], []
    for scene, _, masks in val_scenes:
        for obj in scene.objects:
            a, b = masks[0] == obj.object_id, masks[-1] == obj.object_id
            first_last.append(np.count_nonzero(a & b) / np.count_nonzero(a | b))
            look = obj.appearance
            scale_changes.append(abs(np.log(look.scales[-1] / look.scales[0])))
            travel = np.linalg.norm(np.diff(obj.centres, axis=0), axis=1).sum()
            assert travel >= 2 * look.radius * CONFIG.speed[0] * (CONFIG.num_frames - 1) * 0.99
        baseline.extend(copy_first_mask_baseline(masks).values())
    print(f"\ncopy-first-mask mean IoU over {len(baseline)} objects: {np.mean(baseline):.3f}; "
          f"first-vs-last IoU {np.mean(first_last):.3f}")
    assert np.mean(first_last) < 0.15
    assert np.mean(baseline) < 0.2
    assert np.mean(scale_changes) > 0.1


def test_copy_first_mask_baseline():
    first = np.zeros((4, 4), np.uint8)
    first[:2, :2] = 1
    half = np.zeros((4, 4), np.uint8)
    half[:2, :1] = 1
    # Frames 1..T-2 are scored: the last frame (all background) is left out.
    assert copy_first_mask_baseline([first, first, half, np.zeros_like(first)]) == {1: 0.75}
    # Another measure over the same frames: F is 1 on the exact copy and 0 where the object is gone.
    empty = np.zeros_like(first)
    assert copy_first_mask_baseline([first, first, empty, first], boundary_measure) == {1: 0.5}
    assert copy_first_mask_baseline([first, empty]) == {1: 0.0}  # two frames: frame 1 is scored


# --- DAVIS layout ---------------------------------------------------------------

def test_write_davis_is_readable_and_resumes(tmp_path):
    names = synthetic.write_davis(tmp_path, SMALL, 2, split="train")
    assert names == ["synth-train-0000", "synth-train-0001"]
    assert synthetic.write_davis(tmp_path, SMALL, 1, split="val") == ["synth-val-0000"]
    for split, count, first in (("train", 2, 0), ("val", 1, VAL)):
        dataset = DavisDataset(tmp_path, year=2017, split=split)
        assert len(dataset.sequences) == count
        for number, name in enumerate(dataset.sequences):
            frames, masks = synthetic.generate_sequence(SMALL, first + number)
            frame_paths, mask_paths = dataset.frame_paths(name), dataset.annotation_paths(name)
            assert len(frame_paths) == len(mask_paths) == SMALL.num_frames
            assert dataset.num_objects(name) == masks[0].max()
            for rgb, labels, frame_path, mask_path in zip(frames, masks, frame_paths, mask_paths):
                np.testing.assert_array_equal(dataset.read_annotation(mask_path), labels)
                assert Image.open(mask_path).mode == "P"
                stored = load_rgb(frame_path)
                assert stored.shape == rgb.shape
                assert np.abs(stored.astype(int) - rgb).mean() < 4  # JPEG quality 95
    # Resuming writes nothing; a missing file makes its sequence written again.
    calls = []
    synthetic.write_davis(tmp_path, SMALL, 2, split="train", on_sequence=lambda *a: calls.append(a))
    assert calls == [("synth-train-0000", False), ("synth-train-0001", False)]
    (tmp_path / "Annotations" / "480p" / "synth-train-0001" / "00003.png").unlink()
    calls.clear()
    synthetic.write_davis(tmp_path, SMALL, 2, split="train", on_sequence=lambda *a: calls.append(a))
    assert calls == [("synth-train-0000", False), ("synth-train-0001", True)]
    assert read_mask(tmp_path / "Annotations" / "480p" / "synth-train-0001" / "00003.png").shape == (48, 64)
    assert not list(tmp_path.rglob(".*.tmp-*"))
    # Another config is refused.
    with pytest.raises(ValueError, match="another config"):
        synthetic.write_davis(tmp_path, dataclasses.replace(SMALL, seed=4), 1, split="train")
    with pytest.raises(ValueError, match="another config"):
        synthetic.write_davis(tmp_path, dataclasses.replace(SMALL, rider_prob=0.2), 1, split="train")
    # A record lacking a field is another config too.
    record_file = tmp_path / synthetic.CONFIG_FILE
    record = json.loads(record_file.read_text())
    del record["config"]["rider_prob"]
    record_file.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="another config"):
        synthetic.write_davis(tmp_path, SMALL, 2, split="train")


# --- command line ---------------------------------------------------------------

@pytest.mark.slow
def test_cli_writes_dataset_and_preview(tmp_path):
    root, preview = tmp_path / "synthetic", tmp_path / "preview.png"
    result = run_tool_process("make_synthetic_davis", "--output", root, "--train", "2", "--val", "1", "--size", "64x48",
                              "--frames", "5", "--seed", "3", "--preview", preview, "--preview-columns", "4",
                              "--preview-zoom", "1", "--rider-prob", "0.5", "--quiet", timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads((root / synthetic.CONFIG_FILE).read_text())["config"]["rider_prob"] == 0.5
    assert len(DavisDataset(root, year=2017, split="train").sequences) == 2
    assert DavisDataset(root, year=2017, split="val").sequences == ["synth-val-0000"]
    with Image.open(preview) as image:
        assert image.size == (4 * 64 + 3 * 2, 2 * 48 + 2)


def test_preview_gif(tmp_path):
    tool = load_tool("make_synthetic_davis")
    path = tmp_path / "preview.gif"
    tool.write_preview(str(path), SMALL, "train", 0, zoom=2)
    with Image.open(path) as image:
        assert image.n_frames == SMALL.num_frames
        assert image.size == (2 * 2 * 64, 2 * 48)
    with pytest.raises(SystemExit):
        tool.parse_args(["--train", "1"])  # no --output


# --- objects that enter later ---------------------------------------------------

LATE = SyntheticConfig(image_size=(64, 48), num_frames=8, seed=3, late_entry_prob=1.0)


def test_late_objects_are_absent_before_they_enter_and_visible_from_then_on():
    entries = {}
    for index in range(VAL, VAL + 6):
        scene = synthetic.sample_scene(LATE, index)
        _, masks = synthetic.generate_sequence(LATE, index)
        assert scene.objects[0].first_frame == 0
        for obj in scene.objects[1:]:
            assert 1 <= obj.first_frame <= LATE.num_frames // 2
            entries[(index, obj.object_id)] = obj.first_frame
            ids_per_frame = [obj.object_id in np.unique(m) for m in masks]
            assert ids_per_frame == [t >= obj.first_frame for t in range(LATE.num_frames)], (index, obj)
    assert len(set(entries.values())) > 1  # entry frames vary


def test_late_entries_off_leave_every_sequence_as_it_was():
    for index in (0, VAL + 1):
        a = synthetic.generate_sequence(SMALL, index)
        b = synthetic.generate_sequence(dataclasses.replace(SMALL, late_entry_prob=0.0), index)
        for x, y in zip(a[0] + a[1], b[0] + b[1]):
            np.testing.assert_array_equal(x, y)
    assert all(o.first_frame == 0 for o in synthetic.sample_scene(SMALL, 0).objects)


def test_a_root_recorded_before_late_entries_existed_is_still_accepted(tmp_path):
    synthetic.write_davis(tmp_path, SMALL, 1, split="val")
    record = json.loads((tmp_path / synthetic.CONFIG_FILE).read_text())
    del record["config"]["late_entry_prob"]
    (tmp_path / synthetic.CONFIG_FILE).write_text(json.dumps(record))
    assert synthetic.write_davis(tmp_path, SMALL, 1, split="val") == ["synth-val-0000"]
    with pytest.raises(ValueError, match="another config"):
        synthetic.write_davis(tmp_path, LATE, 1, split="val")


def test_youtube_vos_layout_with_late_entries_reads_back_and_resumes(tmp_path):
    from osmn_tf.data.youtube_vos import YouTubeVOS

    names = synthetic.write_youtube_vos(tmp_path, LATE, 2, split="valid")
    assert names == ["synth-valid-0000", "synth-valid-0001"]
    dataset = YouTubeVOS(tmp_path, "valid")
    assert dataset.videos == names
    scene = synthetic.sample_scene(LATE, VAL)  # "valid" holds the val sequences
    frames, masks = synthetic.generate_sequence(LATE, VAL)
    assert len(dataset.frame_paths(names[0])) == LATE.num_frames
    annotations, _ = dataset.annotations(names[0])
    assert sorted(annotations) == sorted({0, *scene.late_objects.values()})
    for obj in scene.objects:
        first = annotations[obj.first_frame]
        np.testing.assert_array_equal(first == obj.object_id, masks[obj.first_frame] == obj.object_id)
    np.testing.assert_array_equal(read_mask(tmp_path / "valid/Annotations" / names[0] / "00005.png"), masks[5])
    categories = dataset.categories()[names[0]]
    assert categories == {o.object_id: o.appearance.shape for o in scene.objects}
    before = (tmp_path / "valid/JPEGImages" / names[1] / "00000.jpg").stat().st_mtime_ns
    written = []
    synthetic.write_youtube_vos(tmp_path, LATE, 2, split="valid", on_sequence=lambda n, w: written.append(w))
    assert written == [False, False]
    assert (tmp_path / "valid/JPEGImages" / names[1] / "00000.jpg").stat().st_mtime_ns == before


@pytest.mark.slow
def test_cli_writes_late_entries_in_the_youtube_vos_layout(tmp_path):
    result = run_tool_process("make_synthetic_davis", "--output", tmp_path / "d", "--val", 1, "--size", "64x48",
                              "--frames", 8, "--seed", 3, "--late-entry-prob", 1, "--layout", "youtube-vos",
                              "--quiet")
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "d" / synthetic.CONFIG_FILE).read_text())["config"]
    assert SyntheticConfig.from_dict(record) == LATE
    _, masks = synthetic.generate_sequence(LATE, VAL)
    np.testing.assert_array_equal(read_mask(tmp_path / "d/valid/Annotations/synth-valid-0000/00007.png"), masks[7])
