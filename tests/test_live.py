"""Live input: frames from a pipe or a stream that ffmpeg generates locally (its testsrc), no camera needed."""
import os
import re
import subprocess
import sys
import time

import imageio_ffmpeg
import numpy as np
import pytest

from osmn_tf.data.davis import read_mask, write_mask
from osmn_tf.data.live import LiveSource, is_live

from conftest import REPO

# Each test trains, runs a tool end to end or builds full-size networks.
pytestmark = pytest.mark.slow

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_testsrc(frames, size="80x60", *output):
    return [FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25", "-frames:v",
            str(frames), *output]


def run_segment_from(producer, tmp_path, small_weights, *flags):
    """Runs tools/segment.py reading `producer`'s standard output; returns the finished tool process."""
    mask = np.zeros((60, 80), np.uint8)
    mask[10:30, 10:40] = 1
    write_mask(tmp_path / "first.png", mask)
    feed = subprocess.Popen(producer, stdout=subprocess.PIPE)
    try:
        tool = subprocess.run(
            [sys.executable, str(REPO / "tools" / "segment.py"), "--weights", str(small_weights), "--frames", "-",
             "--first-mask", str(tmp_path / "first.png"), "--output", str(tmp_path / "out"), "--working-size",
             "64x48", *flags], stdin=feed.stdout, capture_output=True, text=True, timeout=600, cwd=REPO,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    finally:
        feed.stdout.close()
        feed.wait()
    return tool


def test_raw_frames_piped_on_standard_input_are_segmented(tmp_path, small_weights):
    tool = run_segment_from(ffmpeg_testsrc(12, "80x60", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"), tmp_path,
                            small_weights, "--frame-size", "80x60")
    assert tool.returncode == 0, tool.stderr
    written = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert written == [f"{t:05d}.png" for t in range(12)]
    assert read_mask(tmp_path / "out" / "00011.png").shape == (60, 80)
    assert "wrote 12 masks" in tool.stdout and "0 frames dropped" in tool.stdout


def test_an_image_stream_on_standard_input_is_probed_by_ffmpeg(tmp_path, small_weights):
    tool = run_segment_from(ffmpeg_testsrc(5, "80x60", "-f", "image2pipe", "-c:v", "png", "-"), tmp_path, small_weights)
    assert tool.returncode == 0, tool.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 5


def test_a_named_pipe_is_read_as_a_live_stream(tmp_path):
    fifo = tmp_path / "stream.nut"
    os.mkfifo(fifo)
    assert is_live(str(fifo)) and is_live("-") and is_live("rtsp://camera/1") and is_live("/dev/video0")
    assert not is_live(str(tmp_path))
    feed = subprocess.Popen(ffmpeg_testsrc(7, "32x24", "-y", "-f", "nut", "-c:v", "rawvideo", str(fifo)))
    try:
        source = LiveSource(str(fifo))
        frames = list(source)
    finally:
        feed.wait(timeout=60)
    assert source.size == (32, 24) and len(frames) == 7 and frames[0].shape == (24, 32, 3)
    assert source.dropped == 0


def _slow_read(source, seconds):
    names, count = [], 0
    for _ in source:
        count += 1
        names.append(next(source.frame_names()))  # a frame is named once it is handed out
        time.sleep(seconds)
    return count, names


def test_max_lag_drops_the_oldest_frames_and_counts_them():
    source = LiveSource("testsrc=size=32x24:rate=100:duration=1", input_format="lavfi", max_lag=2)
    count, names = _slow_read(source, 0.03)
    assert source.dropped > 0 and count + source.dropped == 100
    numbers = [int(n) for n in names]
    assert len(numbers) == count and numbers == sorted(set(numbers)) and numbers[-1] == 99
    assert max(np.diff(numbers)) > 1  # gaps where frames were dropped


def test_without_max_lag_nothing_is_dropped():
    source = LiveSource("testsrc=size=32x24:rate=100:duration=0.4", input_format="lavfi")
    count, names = _slow_read(source, 0.01)
    assert count == 40 and source.dropped == 0 and names == [f"{t:05d}" for t in range(40)]


def test_a_source_ffmpeg_cannot_open_is_named():
    with pytest.raises(ValueError, match="rtsp://127.0.0.1:9/none: cannot open as a live stream"):
        LiveSource("rtsp://127.0.0.1:9/none")


def test_live_options_with_a_folder_are_refused(tmp_path, small_weights):
    from conftest import run_tool

    (tmp_path / "frames").mkdir()
    code, text = run_tool("segment", "--weights", small_weights, "--frames", tmp_path / "frames", "--first-mask",
                          tmp_path / "m.png", "--output", tmp_path / "out", "--max-lag", "3")
    assert code == 1 and "--max-lag are for live input" in text and str(tmp_path / "frames") in text, text
    assert not (tmp_path / "out").exists()


# Issue 25: live runs never destroy earlier results, never drop frame 0 or an annotated frame, and say what the
# stream did. Raw frames of 64x48 (9216 bytes each) go through standard input as a user's pipe would send them.

LIVE_SIZE = (64, 48)


def raw_frames(count, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (count, LIVE_SIZE[1], LIVE_SIZE[0], 3), dtype=np.uint8)


def live_first_mask(tmp_path):
    mask = np.zeros(LIVE_SIZE[::-1], np.uint8)
    mask[10:30, 10:40] = 1
    path = tmp_path / "first.png"
    if not path.exists():
        write_mask(path, mask)
    return path, mask


def run_live(tmp_path, weights, data, *flags):
    """tools/segment.py --frames - --frame-size 64x48, `data` (bytes) on standard input; the finished process."""
    first, _ = live_first_mask(tmp_path)
    tool = subprocess.run(
        [sys.executable, str(REPO / "tools" / "segment.py"), "--weights", str(weights), "--frames", "-",
         "--frame-size", "64x48", "--first-mask", str(first), "--output", str(tmp_path / "out"), "--working-size",
         "64x48", *map(str, flags)], input=data, capture_output=True, timeout=600, cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    tool.stdout, tool.stderr = tool.stdout.decode(), tool.stderr.decode()
    return tool


def folder_bytes(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_live_run_does_not_replace_earlier_results_without_overwrite(tmp_path, small_weights):
    out = tmp_path / "out"
    assert run_live(tmp_path, small_weights, raw_frames(4).tobytes()).returncode == 0
    before = folder_bytes(out)
    assert sorted(before) == [".osmn-complete.json"] + [f"{t:05d}.png" for t in range(4)]
    for data in (b"", raw_frames(2, seed=1).tobytes()):  # an empty stream, a shorter one
        tool = run_live(tmp_path, small_weights, data)
        assert tool.returncode == 1, tool.stdout + tool.stderr
        assert tool.stderr.strip() == (
            f"error: --output {out}: holds the masks of another run (frames: an earlier live stream there, the live "
            "stream - now); use --overwrite to replace them, or give another folder"), tool.stderr
        assert folder_bytes(out) == before
    tool = run_live(tmp_path, small_weights, raw_frames(2, seed=1).tobytes(), "--overwrite")
    assert tool.returncode == 0, tool.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png"]


def test_an_empty_stream_is_an_error_and_writes_nothing(tmp_path, small_weights):
    tool = run_live(tmp_path, small_weights, b"")
    assert tool.returncode == 1, tool.stdout
    assert tool.stderr.strip() == ("error: -: the stream ended before its first frame (raw rgb24 frames of 64x48: "
                                   "9216 bytes each)")
    assert not (tmp_path / "out").exists()


def test_a_stream_cut_inside_a_frame_says_so(tmp_path, small_weights):
    tool = run_live(tmp_path, small_weights, raw_frames(3).tobytes() + bytes(100))
    assert tool.returncode == 0, tool.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [f"{t:05d}.png" for t in range(3)]
    assert ("warning: -: the stream ended 100 bytes into frame 3 (64x48 rgb24 frames are 9216 bytes); that partial "
            "frame is left out") in tool.stdout


def test_frame_0_is_never_dropped(tmp_path, small_weights):
    _, first = live_first_mask(tmp_path)
    tool = run_live(tmp_path, small_weights, raw_frames(12).tobytes(), "--max-lag", "1")
    assert tool.returncode == 0, tool.stderr
    np.testing.assert_array_equal(read_mask(tmp_path / "out" / "00000.png"), first)
    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names[0] == "00000.png" and len(names) < 12, names  # frames were dropped, never frame 0


def test_annotations_apply_to_their_stream_frame_when_frames_are_dropped(tmp_path, small_weights):
    annotation = np.zeros(LIVE_SIZE[::-1], np.uint8)
    annotation[30:45, 40:60] = 2  # an object that joins at stream frame 15
    write_mask(tmp_path / "annotations" / "00015.png", annotation)
    tool = run_live(tmp_path, small_weights, raw_frames(30).tobytes(), "--max-lag", "1", "--annotations",
                    tmp_path / "annotations")
    assert tool.returncode == 0, tool.stderr
    dropped = int(re.search(r"(\d+) frames dropped", tool.stdout).group(1))
    assert dropped > 0, tool.stdout  # the case of the issue: without drops there is nothing to test
    out = tmp_path / "out"
    np.testing.assert_array_equal(read_mask(out / "00015.png") == 2, annotation == 2)
    assert not any((read_mask(p) == 2).any() for p in out.glob("*.png") if int(p.stem) < 15)


def test_a_silent_source_is_named_with_the_reason(tmp_path):
    fifo = tmp_path / "silent"
    os.mkfifo(fifo)
    holder = subprocess.Popen(["sh", "-c", f"exec sleep 30 > '{fifo}'"])  # opens the pipe, sends nothing
    try:
        with pytest.raises(ValueError) as error:
            LiveSource(str(fifo))
    finally:
        holder.kill()
        holder.wait()
    assert str(error.value) == (f"{fifo}: cannot open as a live stream: nothing arrived within 10 s (ffmpeg found "
                                "no stream header)")
