"""Segmenting videos: the original's loop (SPEC 5), tools/segment.py as users run it, bad input."""
import numpy as np
import pytest
from PIL import Image

from osmn_tf.data.davis import DAVIS_PALETTE, read_mask, write_mask
from osmn_tf.inference import segmenter as segmenter_module
from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.utils.outputs import MARKER

from conftest import assert_objects_together_equal_each_alone, DATA, run_tool, run_tool_process, synthetic_video, write_frames

SOLO = DATA / "sequence_solo"
WORKING = (64, 48)


def test_all_objects_in_one_batch_equal_one_object_at_a_time(small_model):
    frames, first = synthetic_video()
    segmenter = VideoSegmenter(small_model, working_size=WORKING)
    assert_objects_together_equal_each_alone(segmenter, frames, first)


def test_the_visual_modulator_encodes_one_object_per_call_as_the_original(small_model):
    # The convolutions' round-off depends on the batch size and the video loop
    # amplifies it (tests/test_multi_object_fidelity.py): a batch of K guides
    # gave other masks than the original's one object at a time.
    frames, first = synthetic_video()
    segmenter = VideoSegmenter(small_model, working_size=WORKING)
    batches = []
    encode = segmenter._encode
    segmenter._encode = lambda guides: batches.append(len(guides)) or encode(guides)
    params = segmenter.encode_objects(frames[0], first, (1, 2, 5))
    assert batches == [1, 1, 1] and params.shape == (3, small_model.num_modulation_params)
    guide = segmenter_module.visual_guide(frames[0], first == 2, size=small_model.config.guide_size)
    np.testing.assert_array_equal(params[1], encode(guide[np.newaxis]).numpy()[0])


def test_labels_follow_the_original_merge_and_frame_sizes(small_model):
    frames, first = synthetic_video(size=(81, 61))
    results = list(VideoSegmenter(small_model, working_size=WORKING).track(frames, first))
    assert len(results) == len(frames)
    np.testing.assert_array_equal(results[0].labels, first)
    for r in results[1:]:
        assert r.labels.shape == (61, 81) and r.labels.dtype == np.uint8
        assert r.probabilities.shape == (3, 48, 64)
        # Merge by hand: background 0.5, argmax, ids 0, 1, 2, 5, resized nearest to the frame.
        p = r.probabilities
        expected = np.zeros(p.shape[1:], np.uint8)
        best = np.full(p.shape[1:], 0.5, np.float32)
        for k, object_id in enumerate((1, 2, 5)):
            wins = p[k] > best
            expected[wins], best[wins] = object_id, p[k][wins]
        # PIL's nearest neighbour samples at pixel centres.
        rows = ((np.arange(61) + 0.5) * 48 / 61).astype(int)
        cols = ((np.arange(81) + 0.5) * 64 / 81).astype(int)
        np.testing.assert_array_equal(r.labels, expected[rows][:, cols])


def test_spatial_guides_come_from_each_objects_own_previous_prediction(small_model, monkeypatch):
    frames, first = synthetic_video(num_frames=4)
    seen = []
    real = segmenter_module.spatial_guide
    monkeypatch.setattr(segmenter_module, "spatial_guide", lambda mask: seen.append(np.array(mask)) or real(mask))
    results = list(VideoSegmenter(small_model, working_size=WORKING).track(frames, first))
    assert len(seen) == 3 * 3
    working_first = np.asarray(Image.fromarray(first).resize(WORKING, Image.NEAREST))
    for k, object_id in enumerate((1, 2, 5)):
        np.testing.assert_array_equal(seen[k], working_first == object_id)  # frame 1: the first mask
        for t in (2, 3):  # then this object's own thresholded probability
            np.testing.assert_array_equal(seen[3 * (t - 1) + k], results[t - 1].probabilities[k] > 0.5)


def test_a_vanished_object_keeps_being_tracked_with_a_blank_guide(small_model, monkeypatch):
    fuse = small_model.segmentation_network.get_layer("upscore-fuse")
    old = fuse.bias.numpy()
    fuse.bias.assign([-1000.0])  # every prediction empty
    guides = []
    real = segmenter_module.spatial_guide
    monkeypatch.setattr(segmenter_module, "spatial_guide", lambda mask: guides.append(real(mask)) or guides[-1])
    try:
        frames, first = synthetic_video(num_frames=4)
        labels = list(VideoSegmenter(small_model, working_size=WORKING).segment(frames, first))
    finally:
        fuse.bias.assign(old)
    assert len(labels) == 4 and all(not l.any() for l in labels[1:])
    assert all(g.any() for g in guides[:3]) and not any(g.any() for g in guides[3:])


@pytest.mark.parametrize(
    "first,message",
    [(np.zeros((60, 80), np.uint8), "no object"), (np.ones((30, 80), np.uint8), "same size")],
)
def test_segmenter_rejects_bad_first_masks(small_model, first, message):
    frames, _ = synthetic_video()
    with pytest.raises(ValueError, match=message):
        list(VideoSegmenter(small_model, working_size=WORKING).segment(frames, first))


@pytest.mark.large
@pytest.mark.slow
def test_tool_reproduces_the_originals_label_maps_on_the_fidelity_sequence(tmp_path, tf1_checkpoint):
    expected = np.load(SOLO / "expected.npz")
    result = run_tool_process("segment", "--weights", tf1_checkpoint("full"), "--davis-root", SOLO / "davis",
                              "--year", "2017", "--split", "val", "--output", tmp_path / "out", "--save-scores")
    assert result.returncode == 0, result.stderr
    assert "frames/s" in result.stdout and "peak memory" in result.stdout
    np.testing.assert_array_equal(read_mask(tmp_path / "out/solo/00000.png"), read_mask(SOLO / "davis/Annotations/480p/solo/00000.png"))
    for k in range(1, 6):
        labels, palette = read_mask(tmp_path / f"out/solo/{k:05d}.png", return_palette=True)
        agreement = np.mean(labels == expected[f"solo/{k:05d}/labels"])
        np.testing.assert_array_equal(palette, DAVIS_PALETTE)
        prob = np.load(tmp_path / f"out/solo/1/{k:05d}.npy").astype(np.float32)
        difference = np.abs(prob - expected[f"solo/1/{k:05d}/prob"].astype(np.float32)).max()
        print(f"frame {k}: labels agree on {agreement:.6%}, probabilities within {difference:.1e}")  # for -rP
        assert agreement >= 0.999, (k, agreement)
        assert difference < 2e-3


@pytest.mark.slow
def test_tool_on_a_frame_folder_writes_pngs_in_the_masks_palette_and_an_overlay(tmp_path, small_weights):
    frames, first = synthetic_video()
    write_frames(tmp_path / "frames", frames, ".jpg")
    palette = np.zeros((8, 3), np.uint8)
    palette[1], palette[2], palette[5] = (10, 20, 30), (40, 50, 60), (70, 80, 90)
    mask = Image.fromarray(first, mode="P")
    mask.putpalette(palette.reshape(-1).tolist())
    mask.save(tmp_path / "first.png")
    code, message = run_tool("segment",
        "--weights", small_weights, "--frames", tmp_path / "frames", "--first-mask", tmp_path / "first.png",
        "--output", tmp_path / "out", "--overlay", tmp_path / "overlay.gif", "--working-size", "64x48")
    assert code == 0, message
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [MARKER] + [f"{t:05d}.png" for t in range(5)]
    labels, written_palette = read_mask(tmp_path / "out/00003.png", return_palette=True)
    assert labels.shape == (60, 80)
    np.testing.assert_array_equal(written_palette[:8], palette)
    overlay = Image.open(tmp_path / "overlay.gif")
    assert overlay.n_frames == 5 and overlay.size == (80, 60)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".") and p.name != MARKER]  # no temporary left


@pytest.mark.slow
def test_tool_reads_a_video_file_and_writes_an_mp4_overlay(tmp_path, small_weights):
    from osmn_tf.data.video import animation_writer, open_frames

    frames, first = synthetic_video(size=(96, 64))
    with animation_writer(tmp_path / "video.mp4", fps=5) as append:
        for frame in frames:
            append(frame)
    write_mask(tmp_path / "first.png", first)
    code, message = run_tool("segment",
        "--weights", small_weights, "--frames", tmp_path / "video.mp4", "--first-mask", tmp_path / "first.png",
        "--output", tmp_path / "out", "--overlay", tmp_path / "overlay.mp4", "--working-size", "64x48")
    assert code == 0, message
    assert len(list((tmp_path / "out").glob("*.png"))) == 5
    decoded = list(open_frames(tmp_path / "overlay.mp4"))
    assert len(decoded) == 5 and decoded[0].shape == (64, 96, 3)


def make_davis(root, sequences, year="2017"):
    for name, (frames, first) in sequences.items():
        write_frames(root / "JPEGImages/480p" / name, frames, ".jpg")
        write_mask(root / "Annotations/480p" / name / "00000.png", first)
    (root / "ImageSets" / year).mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / year / "val.txt").write_text("\n".join(sequences) + "\n")
    return root


@pytest.mark.slow
def test_dataset_mode_resumes_and_overwrites(tmp_path, small_weights, capsys):
    root = make_davis(tmp_path / "davis", {"a": synthetic_video(seed=1), "b": synthetic_video(num_frames=3, seed=2)})
    args = ["--weights", small_weights, "--davis-root", root, "--output", tmp_path / "out", "--working-size", "64x48"]
    assert run_tool("segment", *args)[0] == 0
    assert sorted(p.name for p in (tmp_path / "out/b").iterdir()) == [MARKER, "00000.png", "00001.png", "00002.png"]
    stamp = (tmp_path / "out/a/00004.png").stat().st_mtime_ns
    capsys.readouterr()
    assert run_tool("segment", *args)[0] == 0
    out = capsys.readouterr()
    assert "0 sequences segmented, 2 skipped" in out.out
    assert (tmp_path / "out/a/00004.png").stat().st_mtime_ns == stamp
    assert run_tool("segment", *args, "--overwrite")[0] == 0
    assert (tmp_path / "out/a/00004.png").stat().st_mtime_ns != stamp


@pytest.mark.slow
def test_dataset_mode_2016_treats_every_object_as_one(tmp_path, small_weights):
    root = make_davis(tmp_path / "davis", {"a": synthetic_video(seed=1)}, year="2016")
    code, message = run_tool("segment", "--weights", small_weights, "--davis-root", root, "--year", "2016",
                                       "--output", tmp_path / "out", "--working-size", "64x48", "--save-scores")
    assert code == 0, message
    assert sorted(p.name for p in (tmp_path / "out/a").iterdir() if p.is_dir()) == ["1"]
    assert set(np.unique(read_mask(tmp_path / "out/a/00000.png"))) == {0, 1}


def bad_case(tmp_path, case):
    frames, first = synthetic_video()
    folder = write_frames(tmp_path / "frames", frames, ".jpg")
    write_mask(tmp_path / "first.png", first)
    frames_arg, mask_arg = folder, tmp_path / "first.png"
    if case == "missing frames":
        frames_arg = tmp_path / "nowhere"
    elif case == "unreadable frame":
        (folder / "00003.jpg").write_bytes(b"not a jpeg")
    elif case == "mask size":
        write_mask(mask_arg, np.ones((30, 40), np.uint8))
    elif case == "empty mask":
        write_mask(mask_arg, np.zeros((60, 80), np.uint8))
    elif case == "id not in palette":
        image = Image.fromarray(first, mode="P")
        # 5 colours (ids 0..4): id 5 has none. (PNG stores this at 4 bits a pixel, keeping the 5.)
        image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
        image.save(mask_arg)
    elif case == "undecodable video":
        frames_arg = tmp_path / "broken.mp4"
        frames_arg.write_bytes(b"\x00" * 4096)
    return frames_arg, mask_arg


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing frames", "nowhere: no such frame folder or video file"),
        ("unreadable frame", "00003.jpg"),
        ("mask size", "same size"),
        ("empty mask", "first.png: the first mask has no object"),
        ("id not in palette", "first.png: object id(s) [5] have no colour in the mask's palette (5 colours)"),
        ("undecodable video", "broken.mp4: cannot decode as a video"),
    ],
)
@pytest.mark.slow
def test_bad_input_fails_clearly_and_leaves_no_output(tmp_path, small_weights, case, message):
    frames_arg, mask_arg = bad_case(tmp_path, case)
    code, text = run_tool("segment", "--weights", small_weights, "--frames", frames_arg, "--first-mask", mask_arg,
                                    "--output", tmp_path / "out", "--overlay", tmp_path / "o.gif",
                                    "--working-size", "64x48")
    assert code != 0
    assert text.startswith("error: ") and message in text, text
    assert not (tmp_path / "out").exists() and not (tmp_path / "o.gif").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_weights_of_the_wrong_kind_are_named(tmp_path):
    frames_arg, mask_arg = bad_case(tmp_path, "none")
    (tmp_path / "w.h5").write_bytes(b"hdf5?")
    code, text = run_tool("segment", "--weights", tmp_path / "w.h5", "--frames", frames_arg, "--first-mask", mask_arg,
                                    "--output", tmp_path / "out")
    assert code != 0 and "w.h5: not OSMN weights" in text
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_online_finetuning_trains_a_copy_on_frame_0_for_each_video(small_model, monkeypatch):
    from osmn_tf.training.finetune import OnlineFinetuning

    frames, first = synthetic_video()
    before = [w.copy() for w in small_model.get_weights()]
    adapted = []
    finetune = OnlineFinetuning(3, learning_rate=1e-3)

    def adapt(model, frame, first_mask, working_size):
        assert model is small_model and working_size == WORKING
        np.testing.assert_array_equal(frame, frames[0])
        adapted.append(finetune(model, frame, first_mask, working_size))
        return adapted[-1]

    tuned = list(VideoSegmenter(small_model, WORKING, adapt=adapt).segment(frames, first))
    plain = list(VideoSegmenter(small_model, WORKING).segment(frames, first))
    assert len(adapted) == 1
    for a, b in zip(before, small_model.get_weights()):  # the model given stays as it was
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(before, adapted[0].get_weights()))
    # The fine-tuned copy is what segmented the video.
    again = list(VideoSegmenter(adapted[0], WORKING).segment(frames, first))
    for a, b in zip(tuned, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(tuned[1:], plain[1:]))
    # A second video starts again from the given model.
    list(VideoSegmenter(small_model, WORKING, adapt=adapt).segment(frames[:2], first))
    assert len(adapted) == 2


@pytest.mark.slow
def test_tool_online_finetune_flag(tmp_path, small_weights, monkeypatch, capsys):
    from osmn_tf.training.finetune import OnlineFinetuning

    frames, first = synthetic_video(num_frames=3)
    write_frames(tmp_path / "frames", frames, ".jpg")
    write_mask(tmp_path / "first.png", first)
    # The flag must reach the segmenter: the video is segmented by a model fine-tuned for 2 steps on frame 0.
    tuned = []
    real = OnlineFinetuning.__call__

    def recording(self, model, frame, first_mask, working_size):
        result = real(self, model, frame, first_mask, working_size)
        tuned.append((self.steps, tuple(working_size), np.array_equal(first_mask, first),
                      any(not np.array_equal(a, b) for a, b in zip(model.get_weights(), result.get_weights()))))
        return result

    monkeypatch.setattr(OnlineFinetuning, "__call__", recording)
    code, message = run_tool("segment",
        "--weights", small_weights, "--frames", tmp_path / "frames", "--first-mask", tmp_path / "first.png",
        "--output", tmp_path / "out", "--working-size", "64x48", "--online-finetune", "2")
    assert code == 0, message
    assert tuned == [(2, (64, 48), True, True)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER] + [f"{t:05d}.png" for t in range(3)]
    code, message = run_tool("segment",
        "--weights", small_weights, "--frames", tmp_path / "frames", "--first-mask", tmp_path / "first.png",
        "--output", tmp_path / "out2", "--online-finetune", "-1")
    assert code == 2 and "--online-finetune" in capsys.readouterr().err


@pytest.mark.large
def test_mixed_precision_masks_agree_with_float32_on_the_fidelity_sequence(tf1_checkpoint):
    from osmn_tf.data.frames import preprocess_frame
    from osmn_tf.weights.checkpoints import load_model

    model = load_model(tf1_checkpoint("full"))
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((SOLO / "davis/JPEGImages/480p/solo").iterdir())]
    first = read_mask(SOLO / "davis/Annotations/480p/solo/00000.png")
    # Four frames: three steps of the video loop, each frame's at 854x480 with the full-size network.
    results = list(VideoSegmenter(model).track(frames[:4], first))
    for precision in ("mixed_bfloat16", "mixed_float16"):
        mixed = VideoSegmenter(model, precision=precision)
        params = mixed.encode_objects(frames[0], first, [1])
        previous = first[np.newaxis] == 1  # the fixture's frames are at the working size already
        # Every frame from float32's previous mask, so that only the arithmetic
        # differs: run freely, a flipped pixel moves the next spatial guide, and
        # this fixture's random weights leave many pixels near 0.5 (README).
        for k, result in enumerate(results[1:], start=1):
            probabilities = mixed.segment_frame(preprocess_frame(frames[k], mixed.working_size), previous, params)
            agreement = np.mean((probabilities > 0.5) == (result.probabilities > 0.5))
            print(f"{precision} frame {k}: masks agree with float32 on {agreement:.4%}")  # for -rP
            assert agreement >= 0.995, (precision, k, agreement)
            previous = result.probabilities > 0.5


@pytest.mark.slow
def test_tool_precision_and_xla_flags(tmp_path, small_weights, monkeypatch):
    frames, first = synthetic_video()
    write_frames(tmp_path / "frames", frames, ".jpg")
    write_mask(tmp_path / "first.png", first)
    built = []

    class Recording(VideoSegmenter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(segmenter_module, "VideoSegmenter", Recording)
    common = ["--weights", small_weights, "--frames", tmp_path / "frames", "--first-mask", tmp_path / "first.png",
              "--working-size", "64x48", "--save-scores"]
    assert run_tool("segment", *common, "--output", tmp_path / "f32")[0] == 0
    code, message = run_tool("segment", *common, "--output", tmp_path / "bf16", "--precision", "mixed_bfloat16",
                             "--xla")
    assert code == 0, message
    assert [(s.precision, s.jit_compile) for s in built] == [("float32", False), ("mixed_bfloat16", True)]
    assert sorted(p.name for p in (tmp_path / "bf16").iterdir()) == \
        sorted([MARKER, "1", "2", "5"] + [f"{t:05d}.png" for t in range(5)])
    # The run computed in bfloat16: its scores differ from float32's. Frame 1 has the same guides in both
    # runs (from the first mask), so only the arithmetic differs there: by about bfloat16's 8-bit mantissa.
    def scores(run, object_id, t):
        return np.load(tmp_path / run / str(object_id) / f"{t:05d}.npy").astype(np.float32)

    frame1 = max(np.abs(scores("bf16", i, 1) - scores("f32", i, 1)).max() for i in (1, 2, 5))
    print(f"frame 1: bfloat16 scores within {frame1:.3g} of float32's")  # for -rP
    assert 1e-3 < frame1 < 0.1, frame1
    agreement = np.mean(read_mask(tmp_path / "bf16" / "00001.png") == read_mask(tmp_path / "f32" / "00001.png"))
    assert agreement >= 0.99, agreement


@pytest.mark.slow
def test_xla_gives_the_masks_of_the_plain_graph(small_model):
    frames, first = synthetic_video()
    plain = list(VideoSegmenter(small_model, working_size=WORKING).track(frames, first))
    compiled = list(VideoSegmenter(small_model, working_size=WORKING, jit_compile=True).track(frames, first))
    for a, b in zip(plain[1:], compiled[1:]):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)
        assert np.mean(a.labels == b.labels) >= 0.999


def test_frames_are_read_in_a_thread_and_a_failing_frame_is_reported_at_its_index(small_model):
    import threading

    frames, first = synthetic_video()
    readers = set()

    def reader():
        for frame in frames[:3]:
            readers.add(threading.get_ident())
            yield frame
        raise OSError("frame 3 is unreadable")

    segmenter = VideoSegmenter(small_model, working_size=WORKING)
    results = segmenter.track(reader(), first)
    assert len([next(results) for _ in range(3)]) == 3
    assert readers and threading.get_ident() not in readers
    with pytest.raises(OSError, match="frame 3 is unreadable"):
        next(results)


@pytest.mark.parametrize("num_objects", [1, 2, 3])
def test_merge_is_the_originals_argmax_over_a_half_background(num_objects):
    from osmn_tf.inference.tracking import merge_probabilities

    rng = np.random.default_rng(num_objects)
    # Quantised so that ties (with the background's 0.5 and between objects) are common.
    probabilities = rng.integers(0, 9, (num_objects, 40, 50)).astype(np.float32) / 8
    object_ids = (3, 7, 200)[:num_objects]
    scores = np.concatenate([np.full((1, 40, 50), 0.5, np.float32), probabilities])
    expected = np.asarray((0, *object_ids), np.uint8)[np.argmax(scores, axis=0)]
    merged = merge_probabilities(probabilities, object_ids)
    assert merged.dtype == np.uint8 and np.isin(0.5, probabilities)
    np.testing.assert_array_equal(merged, expected)
