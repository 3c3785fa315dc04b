"""tools/segment.py and the segmenting library: what they refuse, and that they never lose a file they did not write.

The data-loss tests run on an output folder that also holds unrelated files
(`notes.txt`, `sub/x`) and check them untouched afterwards.
"""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from osmn_tf import outputs
from osmn_tf.davis import DAVIS_PALETTE, DavisDataset, read_mask, void_as_background, write_mask
from osmn_tf.inference import VideoSegmenter
from osmn_tf.davis import read_first_mask

from conftest import run_tool, synthetic_video

WORKING = "64x48"


def write_frames(folder, frames):
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:05d}.png")
    return folder


def video(tmp_path, num_frames=4, first=None):
    frames, mask = synthetic_video(num_frames=num_frames)
    write_frames(tmp_path / "frames", frames)
    write_mask(tmp_path / "first.png", mask if first is None else first)
    return tmp_path / "frames", tmp_path / "first.png"


def unrelated_files(folder):
    """Files a user keeps in a folder: a run must leave them exactly as they are."""
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("my notes")
    (folder / "sub" / "x").write_text("x")


def assert_untouched(folder):
    assert (folder / "notes.txt").read_text() == "my notes"
    assert (folder / "sub" / "x").read_text() == "x"


def segment(weights, frames, first, output, *extra):
    return run_tool("segment", "--weights", weights, "--frames", frames, "--first-mask", first, "--output", output,
                    "--working-size", WORKING, *extra)


def masks_in(folder):
    return sorted(p.name for p in folder.glob("*.png"))


class TestOutputFolder:
    """Items 1, 2 and the output checks of 7: only the tool's own files are ever replaced."""

    def test_overwrite_replaces_only_the_masks(self, tmp_path, small_weights):
        frames, first = video(tmp_path)
        out = tmp_path / "out"
        unrelated_files(out)
        assert segment(small_weights, frames, first, out)[0] == 0
        stamp = (out / "00003.png").stat().st_mtime_ns
        code, message = segment(small_weights, frames, first, out, "--overwrite")
        assert code == 0, message
        assert_untouched(out)
        assert masks_in(out) == [f"{t:05d}.png" for t in range(4)]
        assert (out / "00003.png").stat().st_mtime_ns != stamp

    def test_overwrite_with_a_shorter_video_removes_only_the_masks_it_wrote_before(self, tmp_path, small_weights):
        frames, first = video(tmp_path)
        out = tmp_path / "out"
        unrelated_files(out)
        (out / "99999.png").write_bytes(b"a user's own png")
        assert segment(small_weights, frames, first, out)[0] == 0
        (frames / "00003.png").unlink()
        assert segment(small_weights, frames, first, out, "--overwrite")[0] == 0
        assert masks_in(out) == ["00000.png", "00001.png", "00002.png", "99999.png"]
        assert (out / "99999.png").read_bytes() == b"a user's own png"
        assert_untouched(out)

    def test_davis_overwrite_keeps_unrelated_files(self, tmp_path, small_weights):
        root = tmp_path / "davis"
        frames, mask = synthetic_video(num_frames=3)
        write_frames(root / "JPEGImages/480p/a", [f for f in frames])
        for t in range(3):
            Image.open(root / f"JPEGImages/480p/a/{t:05d}.png").save(root / f"JPEGImages/480p/a/{t:05d}.jpg")
            (root / f"JPEGImages/480p/a/{t:05d}.png").unlink()
        write_mask(root / "Annotations/480p/a/00000.png", mask)
        (root / "ImageSets/2017").mkdir(parents=True)
        (root / "ImageSets/2017/val.txt").write_text("a\n")
        out = tmp_path / "out"
        unrelated_files(out)
        unrelated_files(out / "a")
        args = ["--weights", small_weights, "--davis-root", root, "--output", out, "--working-size", WORKING]
        assert run_tool("segment", *args)[0] == 0
        assert run_tool("segment", *args, "--overwrite")[0] == 0
        assert masks_in(out / "a") == ["00000.png", "00001.png", "00002.png"]
        assert_untouched(out)
        assert_untouched(out / "a")

    @pytest.mark.parametrize("where", ["cwd", "root", "parent of the inputs"])
    def test_dangerous_output_folders_are_refused(self, tmp_path, small_weights, monkeypatch, where):
        frames, first = video(tmp_path)
        unrelated_files(tmp_path)
        (tmp_path.parent / f"{tmp_path.name}-elsewhere").mkdir(exist_ok=True)
        monkeypatch.chdir(tmp_path if where == "cwd" else tmp_path.parent / f"{tmp_path.name}-elsewhere")
        output = {"cwd": ".", "root": "/", "parent of the inputs": str(tmp_path)}[where]
        expected = {"cwd": "--output .: refusing to write results into the current directory",
                    "root": "--output /: refusing to write results into the root folder",
                    "parent of the inputs": f"--output {tmp_path}: holds the input {frames}"}[where]
        code, message = segment(small_weights, frames, first, output, "--overwrite")
        assert code != 0 and message.startswith("error: " + expected), message
        assert_untouched(tmp_path)
        assert masks_in(frames) == [f"{t:05d}.png" for t in range(4)]
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    def test_an_empty_output_folder_is_not_complete(self, tmp_path, small_weights, capsys):
        frames, first = video(tmp_path)
        (tmp_path / "out").mkdir()
        assert segment(small_weights, frames, first, tmp_path / "out")[0] == 0
        assert "complete already" not in capsys.readouterr().out
        assert masks_in(tmp_path / "out") == [f"{t:05d}.png" for t in range(4)]
        assert segment(small_weights, frames, first, tmp_path / "out")[0] == 0
        assert "is complete already; skipping it" in capsys.readouterr().out

    def test_a_folder_with_some_masks_and_no_marker_is_redone(self, tmp_path, small_weights, capsys):
        frames, first = video(tmp_path)
        out = tmp_path / "out"
        unrelated_files(out)
        write_mask(out / "00000.png", np.zeros((60, 80), np.uint8))
        assert segment(small_weights, frames, first, out)[0] == 0
        assert "complete already" not in capsys.readouterr().out
        assert masks_in(out) == [f"{t:05d}.png" for t in range(4)]
        assert outputs.is_complete(out, masks_in(out))
        assert_untouched(out)

    def test_an_output_that_is_a_file_is_refused_before_any_work(self, tmp_path):
        frames, first = video(tmp_path)
        (tmp_path / "out").write_text("a file")
        # The weights do not exist: refusing the output first proves no model was loaded.
        code, message = segment(tmp_path / "missing.keras", frames, first, tmp_path / "out")
        assert code != 0 and message == f"error: --output {tmp_path / 'out'}: exists and is not a folder"
        assert (tmp_path / "out").read_text() == "a file"

    def test_an_overlay_that_is_a_folder_is_refused_before_any_work(self, tmp_path):
        frames, first = video(tmp_path)
        (tmp_path / "o.mp4").mkdir()
        code, message = segment(tmp_path / "missing.keras", frames, first, tmp_path / "out", "--overlay",
                                tmp_path / "o.mp4", "--overwrite")
        assert code != 0 and message == f"error: --overlay {tmp_path / 'o.mp4'}: is a folder, not a file"
        assert not (tmp_path / "out").exists()

    def test_stale_leftovers_of_a_killed_run_are_removed(self, tmp_path, small_weights):
        frames, first = video(tmp_path)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        stale_folder = tmp_path / f".out.partial-{dead.pid}-0000abcd"
        stale_folder.mkdir()
        (stale_folder / "00000.png").write_bytes(b"half")
        stale_video = tmp_path / f".overlay.tmp-{dead.pid}-0000abcd.mp4"
        stale_video.write_bytes(b"half")
        live = tmp_path / f".out.partial-{os.getpid()}-live"  # a run still going: not ours to remove
        live.mkdir()
        code, message = segment(small_weights, frames, first, tmp_path / "out", "--overlay", tmp_path / "overlay.mp4")
        assert code == 0, message
        assert not stale_folder.exists() and not stale_video.exists()
        assert live.is_dir()


class TestFirstMask:
    """Item 3 and the first-mask items of 7."""

    def test_void_255_is_background_in_the_first_mask_and_in_davis_annotations(self, tmp_path):
        labels = np.zeros((60, 80), np.uint8)
        labels[5:20, 5:20], labels[30:40, 30:40], labels[50:55, :] = 1, 2, 255
        write_mask(tmp_path / "first.png", labels)
        mask, _ = read_first_mask(tmp_path / "first.png")
        assert set(np.unique(mask)) == {0, 1, 2}
        dataset_root = tmp_path / "davis"
        write_mask(dataset_root / "Annotations/480p/a/00000.png", labels)
        (dataset_root / "ImageSets/2017").mkdir(parents=True)
        (dataset_root / "ImageSets/2017/val.txt").write_text("a\n")
        annotation = DavisDataset(dataset_root).read_annotation(dataset_root / "Annotations/480p/a/00000.png")
        np.testing.assert_array_equal(annotation, mask)

    def test_255_stays_an_object_where_the_mask_says_so(self):
        binary = np.zeros((4, 4), np.uint8)
        binary[1:3, 1:3] = 255
        np.testing.assert_array_equal(void_as_background(binary), binary)  # a grey-level 0/255 mask
        own = DAVIS_PALETTE.copy()
        own[255] = (1, 2, 3)
        mixed = binary.copy()
        mixed[0, 0] = 1
        np.testing.assert_array_equal(void_as_background(mixed, own), mixed)
        assert set(np.unique(void_as_background(mixed, DAVIS_PALETTE))) == {0, 1}
        assert set(np.unique(void_as_background(mixed))) == {0, 1}

    def test_the_tool_does_not_make_void_an_object(self, tmp_path, small_weights):
        frames, first = synthetic_video(num_frames=3)
        first[55:60, :] = 255
        frames_dir, mask = video(tmp_path, num_frames=3, first=first)
        assert segment(small_weights, frames_dir, mask, tmp_path / "out")[0] == 0
        ids = set()
        for t in range(3):
            ids |= set(np.unique(read_mask(tmp_path / f"out/{t:05d}.png")).tolist())
        assert 255 not in ids and ids <= {0, 1, 2, 5}

    def test_an_only_void_mask_says_so(self, tmp_path):
        labels = np.zeros((6, 8), np.uint8)
        labels[2:4, 2:4] = 255
        write_mask(tmp_path / "m.png", labels)  # palette PNG in the DAVIS palette: 255 is void
        with pytest.raises(ValueError, match=r"m.png: the first mask has no object \(every pixel is 0 or 255, "
                                             r"which is void\)"):
            read_first_mask(tmp_path / "m.png")

    def test_an_h_w_1_first_mask_is_read_as_h_w(self, small_model):
        frames, first = synthetic_video(num_frames=2)
        segmenter = VideoSegmenter(small_model, working_size=(64, 48))
        labels = list(segmenter.segment(frames, first[..., np.newaxis]))
        np.testing.assert_array_equal(labels[0], first)
        assert labels[1].shape == first.shape

    def test_a_float_first_mask_is_refused(self, small_model):
        frames, first = synthetic_video(num_frames=2)
        segmenter = VideoSegmenter(small_model, working_size=(64, 48))
        with pytest.raises(ValueError, match=r"first_mask must hold integer object ids \(0..255\), got dtype float32"):
            list(segmenter.segment(frames, first.astype(np.float32)))


class TestFrames:
    """Smaller items of 7: mixed frame sizes with an overlay, leaving a blocked frame source."""

    def test_mixed_frame_sizes_keep_the_masks_and_fit_the_overlay(self, tmp_path, small_weights):
        from osmn_tf.video import open_frames

        frames, first = synthetic_video(num_frames=3)
        write_frames(tmp_path / "frames", frames)
        Image.fromarray(frames[2]).resize((100, 70)).save(tmp_path / "frames/00002.png")
        write_mask(tmp_path / "first.png", first)
        code, message = segment(small_weights, tmp_path / "frames", tmp_path / "first.png", tmp_path / "out",
                                "--overlay", tmp_path / "overlay.mp4")
        assert code == 0, message
        assert masks_in(tmp_path / "out") == ["00000.png", "00001.png", "00002.png"]
        assert read_mask(tmp_path / "out/00002.png").shape == (70, 100)
        decoded = list(open_frames(tmp_path / "overlay.mp4"))
        assert [f.shape for f in decoded] == [(60, 80, 3)] * 3

    def test_leaving_segment_early_does_not_wait_for_a_blocked_source(self, small_model):
        frames, first = synthetic_video(num_frames=2)
        release = threading.Event()
        closed = threading.Event()

        def camera():
            try:
                yield frames[0]
                release.wait(20)  # a read that blocks: a camera with no next frame yet
                yield frames[1]
            finally:
                closed.set()

        segmenter = VideoSegmenter(small_model, working_size=(64, 48))
        tick = time.perf_counter()
        for labels in segmenter.segment(camera(), first):
            break
        assert time.perf_counter() - tick < 10
        assert not closed.is_set()
        release.set()  # the read returns: the reader stops and closes the source
        assert closed.wait(5)
