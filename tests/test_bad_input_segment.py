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

from osmn_tf.data.davis import DAVIS_PALETTE, DavisDataset, read_mask, void_as_background, write_mask
from osmn_tf.data.davis import read_first_mask
from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.utils import outputs

from conftest import run_tool, synthetic_video, write_frames

WORKING = "64x48"


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

    @pytest.mark.slow
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

    @pytest.mark.slow
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

    @pytest.mark.slow
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

    @pytest.mark.slow
    def test_an_empty_output_folder_is_not_complete(self, tmp_path, small_weights, capsys):
        frames, first = video(tmp_path)
        (tmp_path / "out").mkdir()
        assert segment(small_weights, frames, first, tmp_path / "out")[0] == 0
        assert "complete already" not in capsys.readouterr().out
        assert masks_in(tmp_path / "out") == [f"{t:05d}.png" for t in range(4)]
        assert segment(small_weights, frames, first, tmp_path / "out")[0] == 0
        assert "is complete already; skipping it" in capsys.readouterr().out

    @pytest.mark.slow
    def test_a_folder_left_by_a_killed_commit_is_redone(self, tmp_path, small_weights, capsys):
        frames, first = video(tmp_path)
        out = tmp_path / "out"
        unrelated_files(out)
        # A run killed while moving its masks in leaves them and a record that is not complete.
        write_mask(out / "00000.png", np.zeros((60, 80), np.uint8))
        (out / outputs.MARKER).write_text('{"files": ["00000.png"], "complete": false}')
        assert not outputs.is_complete(out, ["00000.png"])
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

    @pytest.mark.slow
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

    @pytest.mark.slow
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

    @pytest.mark.slow
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

    @pytest.mark.slow
    def test_mixed_frame_sizes_keep_the_masks_and_fit_the_overlay(self, tmp_path, small_weights):
        from osmn_tf.data.video import open_frames

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


# Issue 25: nothing lost, every user error in one line.


def write_video_file(path, frames, fps=5):
    from osmn_tf.data.video import animation_writer

    with animation_writer(path, fps=fps) as append:
        for frame in frames:
            append(frame)
    return path


class TestNotOurs:
    """Item 5: a file the tool did not write is never replaced without --overwrite."""

    @pytest.mark.slow
    def test_an_unrelated_overlay_is_kept(self, tmp_path, small_weights):
        frames, first = video(tmp_path)
        holiday = tmp_path / "holiday.mp4"
        holiday.write_bytes(b"a user's holiday video")
        code, message = segment(small_weights, frames, first, tmp_path / "out", "--overlay", holiday)
        assert code == 1 and message == (f"error: --overlay {holiday}: exists and this tool did not write it; use "
                                         "--overwrite to replace it"), message
        assert holiday.read_bytes() == b"a user's holiday video"
        assert not (tmp_path / "out").exists()
        # An overlay the tool wrote for this folder is its own to replace.
        assert segment(small_weights, frames, first, tmp_path / "out", "--overlay", tmp_path / "o.gif")[0] == 0
        stamp = (tmp_path / "o.gif").stat().st_mtime_ns
        assert segment(small_weights, frames, first, tmp_path / "out", "--overlay", tmp_path / "o2.gif")[0] == 0
        code, message = segment(small_weights, frames, first, tmp_path / "out", "--overlay", tmp_path / "o.gif")
        assert code == 0, message
        assert (tmp_path / "o.gif").stat().st_mtime_ns != stamp and (tmp_path / "o2.gif").exists()

    @pytest.mark.parametrize("source", ["folder", "video file"])
    @pytest.mark.slow
    def test_a_users_own_mask_file_is_kept(self, tmp_path, small_weights, source):
        frames, first = video(tmp_path)
        if source == "video file":
            frames = write_video_file(tmp_path / "clip.mp4", synthetic_video(num_frames=4)[0])
        out = tmp_path / "out"
        out.mkdir()
        (out / "00003.png").write_bytes(b"a user's own png")
        code, message = segment(small_weights, frames, first, out)
        assert code == 1 and message == (
            f"error: {out / '00003.png'}: exists and was not written by this tool (no record of it in {out}); "
            "move it away, or use --overwrite to replace it"), message
        assert sorted(p.name for p in out.iterdir()) == ["00003.png"]
        assert (out / "00003.png").read_bytes() == b"a user's own png"
        assert segment(small_weights, frames, first, out, "--overwrite")[0] == 0  # asked for: replaced
        assert read_mask(out / "00003.png").shape == (60, 80)


class TestBinaryFirstMask:
    """Item 10: the one object of a 0/255 mask is written as id 1, in id 1's colour."""

    @pytest.mark.slow
    def test_a_0_255_mask_gives_id_1(self, tmp_path, small_weights):
        frames, ids = synthetic_video(num_frames=3)
        write_frames(tmp_path / "frames", frames)
        Image.fromarray(np.where(ids == 1, 255, 0).astype(np.uint8), mode="L").save(tmp_path / "binary.png")
        assert segment(small_weights, tmp_path / "frames", tmp_path / "binary.png", tmp_path / "out")[0] == 0
        for t in range(3):
            labels, palette = read_mask(tmp_path / f"out/{t:05d}.png", return_palette=True)
            assert set(np.unique(labels)) <= {0, 1}
            np.testing.assert_array_equal(palette[1], DAVIS_PALETTE[1])
        np.testing.assert_array_equal(read_mask(tmp_path / "out/00000.png"), (ids == 1).astype(np.uint8))
        again, _ = read_first_mask(tmp_path / "out/00000.png")  # an output reads back as a first mask
        np.testing.assert_array_equal(again, (ids == 1).astype(np.uint8))


class TestWhatMadeTheResults:
    """Item 11: complete means complete for these inputs; other inputs are refused, or redone with --overwrite."""

    @pytest.mark.parametrize("change", ["video file", "folder", "first mask", "weights", "working size"])
    @pytest.mark.slow
    def test_results_of_other_inputs_are_not_complete(self, tmp_path, small_weights, change):
        frames, first = video(tmp_path, num_frames=6)
        six = frames
        if change == "video file":
            six = write_video_file(tmp_path / "six.mp4", synthetic_video(num_frames=6)[0])
        out = tmp_path / "out"
        assert segment(small_weights, six, first, out)[0] == 0
        weights, size, what = small_weights, WORKING, None
        now = six
        if change == "video file":
            now = write_video_file(tmp_path / "thirty.mp4", synthetic_video(num_frames=30)[0])
            what = f"frames: {six} there, {now} now"
        elif change == "folder":
            now = write_frames(tmp_path / "other", synthetic_video(num_frames=3, seed=4)[0])
            what = f"frames: {six} there, {now} now"
        elif change == "first mask":
            mask = synthetic_video()[1]
            mask[mask == 5] = 0
            write_mask(first, mask)
            what = f"first mask: {first} changed since"
        elif change == "weights":
            weights = tmp_path / "other.keras"
            weights.write_bytes(small_weights.read_bytes())
            what = f"weights: {small_weights} there, {weights} now"
        else:
            size = "80x60"
            what = "working size: 64x48 there, 80x60 now"
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        code, message = run_tool("segment", "--weights", weights, "--frames", now, "--first-mask", first,
                                 "--output", out, "--working-size", size)
        assert code == 1 and message == (f"error: --output {out}: holds the masks of another run ({what}); use "
                                         "--overwrite to replace them, or give another folder"), message
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        code, message = run_tool("segment", "--weights", weights, "--frames", now, "--first-mask", first,
                                 "--output", out, "--working-size", size, "--overwrite")
        assert code == 0, message
        expected = {"video file": 30, "folder": 3}.get(change, 6)
        assert masks_in(out) == [f"{t:05d}.png" for t in range(expected)]

    @pytest.mark.slow
    def test_a_davis_sequence_of_other_weights_is_refused_before_any_work(self, tmp_path, small_weights):
        root = tmp_path / "davis"
        frames, mask = synthetic_video(num_frames=3, seed=1)
        (root / "JPEGImages/480p/a").mkdir(parents=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(root / f"JPEGImages/480p/a/{t:05d}.jpg")
        write_mask(root / "Annotations/480p/a/00000.png", mask)
        (root / "ImageSets/2017").mkdir(parents=True)
        (root / "ImageSets/2017/val.txt").write_text("a\n")
        args = ["--davis-root", root, "--output", tmp_path / "out", "--working-size", WORKING]
        assert run_tool("segment", "--weights", small_weights, *args)[0] == 0
        other = tmp_path / "other.keras"
        other.write_bytes(small_weights.read_bytes())
        code, message = run_tool("segment", "--weights", other, *args)
        assert code == 1 and message == (
            f"error: {tmp_path / 'out' / 'a'}: holds the masks of another run (weights: {small_weights} there, "
            f"{other} now); use --overwrite to replace them, or give another folder"), message


class TestFrameZeroTwice:
    """Item 12: an annotation of frame 0 beside the first mask wins, and says so once; new ids get colours."""

    @pytest.mark.slow
    def test_which_mask_wins_is_said_once_and_new_ids_have_colours(self, tmp_path, small_weights, capsys):
        frames, ids = synthetic_video(num_frames=4)
        write_frames(tmp_path / "frames", frames)
        first = Image.fromarray(np.where(ids == 1, 1, 0).astype(np.uint8), mode="P")
        first.putpalette([0, 0, 0, 250, 10, 10])  # two colours: background and object 1
        first.save(tmp_path / "first.png")
        annotations = tmp_path / "annotations"
        moved = np.zeros_like(ids)
        moved[30:45, 50:70] = 1  # object 1 elsewhere on frame 0
        write_mask(annotations / "00000.png", moved)
        late = np.zeros_like(ids)
        late[35:50, 20:35] = 3  # a new object at frame 2
        write_mask(annotations / "00002.png", late)
        capsys.readouterr()
        code, message = run_tool("segment", "--weights", small_weights, "--frames", tmp_path / "frames",
                                 "--first-mask", tmp_path / "first.png", "--annotations", annotations,
                                 "--output", tmp_path / "out", "--working-size", WORKING)
        assert code == 0, message
        said = [line for line in capsys.readouterr().out.splitlines() if "frame 0" in line]
        assert said == [f"frame 0 has the first mask {tmp_path / 'first.png'} and the annotation "
                        f"{annotations / '00000.png'}: they differ on {int(((ids == 1) != (moved == 1)).sum())} "
                        "pixels, where the annotation wins"], said
        labels, palette = read_mask(tmp_path / "out/00000.png", return_palette=True)
        np.testing.assert_array_equal(labels, moved)
        np.testing.assert_array_equal(palette[:2], [[0, 0, 0], [250, 10, 10]])  # the first mask's own colours
        np.testing.assert_array_equal(palette[3], DAVIS_PALETTE[3])  # not black
        assert (read_mask(tmp_path / "out/00002.png") == 3).any()


class TestOneWriterAtATime:
    """Item 14: a second run into a folder another run is writing is refused; a dead run's lock is not."""

    @pytest.mark.slow
    def test_a_second_writer_is_refused(self, tmp_path, small_weights):
        from conftest import REPO

        frames, first = video(tmp_path)
        out = tmp_path / "out"
        holder = subprocess.Popen(
            [sys.executable, str(REPO / "tools" / "segment.py"), "--weights", str(small_weights), "--frames", "-",
             "--frame-size", "80x60", "--first-mask", str(first), "--output", str(out), "--working-size", WORKING],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
        lock = tmp_path / ".out.lock"
        try:
            holder.stdin.write(synthetic_video(num_frames=1)[0][0].tobytes())  # one frame; more may come
            holder.stdin.flush()
            deadline = time.monotonic() + 120
            while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
                assert holder.poll() is None, holder.communicate()
                time.sleep(0.2)
            assert lock.read_text().strip() == str(holder.pid)
            code, message = segment(small_weights, frames, first, out)
            assert code == 1 and message == (f"error: --output {out}: another run (process {holder.pid}) is writing "
                                             "into it; wait for it to end, or give another folder"), message
        finally:
            _, stderr = holder.communicate(timeout=300)  # closes its standard input: the stream ends
        assert holder.returncode == 0, stderr
        assert masks_in(out) == ["00000.png"] and not lock.exists()

    @pytest.mark.slow
    def test_the_lock_of_a_dead_run_is_ignored(self, tmp_path, small_weights):
        frames, first = video(tmp_path)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        (tmp_path / ".out.lock").write_text(f"{dead.pid}\n")
        code, message = segment(small_weights, frames, first, tmp_path / "out")
        assert code == 0, message
        assert not (tmp_path / ".out.lock").exists()


class TestOneLine:
    """Items 15 and 16: no traceback, and the line says what went wrong and where."""

    def test_an_overlay_that_is_no_video_is_refused_before_the_model_loads(self, tmp_path):
        frames, first = video(tmp_path)
        code, message = segment(tmp_path / "missing.keras", frames, first, tmp_path / "out", "--overlay",
                                tmp_path / "x.png")
        assert code == 1 and message == (f"error: --overlay {tmp_path / 'x.png'}: not a video file name; give one "
                                         "ending in .mp4, .gif, .avi, .mkv, .mov or .webm"), message

    @pytest.mark.slow
    def test_ctrl_c_on_a_file_run_ends_in_one_line(self, tmp_path, small_weights):
        import signal

        from conftest import REPO

        frames, first = synthetic_video(num_frames=400, size=(64, 48))
        write_frames(tmp_path / "frames", frames)
        write_mask(tmp_path / "first.png", first)
        out = tmp_path / "out"
        tool = subprocess.Popen(
            [sys.executable, str(REPO / "tools" / "segment.py"), "--weights", str(small_weights), "--frames",
             str(tmp_path / "frames"), "--first-mask", str(tmp_path / "first.png"), "--output", str(out),
             "--working-size", WORKING], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            # As from a terminal: pytest-xdist's workers ignore SIGINT, and children inherit that.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".out.partial-*/*.png")) and time.monotonic() < deadline:
            assert tool.poll() is None, tool.communicate()
            time.sleep(0.1)
        tool.send_signal(signal.SIGINT)
        _, stderr = tool.communicate(timeout=120)
        assert tool.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert stderr.splitlines()[-1] == (f"interrupted: {out} is unchanged (a video's masks are written once it is "
                                           "finished); run again to segment it"), stderr
        assert not out.exists() and not list(tmp_path.glob(".out.*"))

    def test_a_failed_write_names_its_file(self, tmp_path):
        import errno

        target = tmp_path / "00003.png"
        with pytest.raises(OSError) as error:
            with outputs.atomic_output(target) as handle:
                handle.write(b"x")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what a full disk raises: no file name
        assert error.value.errno == errno.ENOSPC and error.value.filename == str(target)
        assert str(error.value) == f"[Errno {errno.ENOSPC}] No space left on device: '{target}'"
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.slow
    def test_a_full_disk_is_named_with_the_file(self, tmp_path, small_weights):
        import resource
        import signal

        from conftest import REPO

        frames, first = video(tmp_path, num_frames=2)

        def small_files():  # files of at most 4 KiB, as on a disk that is almost full: the scores do not fit
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

        tool = subprocess.run(
            [sys.executable, str(REPO / "tools" / "segment.py"), "--weights", str(small_weights), "--frames",
             str(frames), "--first-mask", str(first), "--output", str(tmp_path / "out"), "--working-size", WORKING,
             "--save-scores"], capture_output=True, text=True, cwd=REPO, preexec_fn=small_files, timeout=600)
        assert tool.returncode == 1, tool.stderr
        last = tool.stderr.strip().splitlines()[-1]
        assert last.startswith("error: [Errno 27] File too large: ") and str(tmp_path / "out") in last, tool.stderr
        assert ".partial" not in last  # the result's name, not a temporary's
        assert not (tmp_path / "out").exists()
