"""A corpus on Apache Beam (issue 29): DirectRunner with 2 worker processes against the single-process tools.

Each pipeline run starts two worker processes that import TensorFlow and load the model (about 20 s here):
the runs are in the slow tier, the publishing protocol and the option checks in the fast one.
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_tool, small_osmn
from osmn_tf.data.synthetic import SyntheticConfig, write_davis
from osmn_tf.utils.outputs import MARKER

TWO_WORKERS = ("--runner", "DirectRunner", "--direct_num_workers", "2", "--direct_running_mode", "multi_processing")
WORKING = ("--working-size", "64x48")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(weights, DAVIS root of 4 sequences, the single-process tool's masks of them)."""
    root = tmp_path_factory.mktemp("beam")
    weights = root / "w.keras"
    small_osmn(0.125, guide_size=64).save(weights)
    write_davis(root / "davis", SyntheticConfig(image_size=(64, 48), num_frames=5), 4, split="val")
    code, message = run_tool("segment", "--weights", weights, "--davis-root", root / "davis", "--split", "val",
                             "--output", root / "single", *WORKING)
    assert code == 0, message
    return weights, root / "davis", root / "single"


def masks_of(folder):
    """`{relative path: bytes}` of the PNG masks under `folder`."""
    folder = pathlib.Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


@pytest.mark.slow
def test_davis_on_two_workers_equals_the_single_process_tools(corpus, tmp_path, capsys):
    weights, davis, single = corpus
    out = tmp_path / "beam"
    code, message = run_tool("segment", "--weights", weights, "--davis-root", davis, "--split", "val",
                             "--output", out, *WORKING, *TWO_WORKERS)
    assert code == 0, message
    assert "4 videos segmented, 0 skipped, 0 failed; 20 frames" in capsys.readouterr().out
    assert masks_of(out) == masks_of(single) and len(masks_of(out)) == 20
    # The records are the single-process tool's: it finds the Beam run complete.
    code, message = run_tool("segment", "--weights", weights, "--davis-root", davis, "--split", "val",
                             "--output", out, *WORKING)
    assert code == 0, message
    assert "0 sequences segmented, 4 skipped" in capsys.readouterr().out
    # J and F per sequence in parallel: the same two CSVs, byte for byte.
    code, message = run_tool("evaluate", "--davis-root", davis, "--results", single, "--split", "val")
    assert code == 0, message
    code, message = run_tool("evaluate", "--davis-root", davis, "--results", out, "--split", "val", *TWO_WORKERS)
    assert code == 0, message
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
        assert (out / name).read_bytes() == (single / name).read_bytes(), name


@pytest.mark.slow
def test_a_damaged_video_goes_to_the_dead_letters_and_the_others_finish(corpus, tmp_path, capsys):
    from test_youtube_vos import write_split

    weights = corpus[0]
    root = tmp_path / "ytvos"
    write_split(root, "valid", sparse=True)
    (root / "valid" / "JPEGImages" / "vid_b" / "00010.jpg").write_bytes(b"\xff\xd8\xff not a JPEG")
    single = tmp_path / "single"
    code, message = run_tool("segment", "--weights", weights, "--youtube-vos-root", root, "--split", "valid",
                             "--output", single, *WORKING)
    assert code == 1 and "00010.jpg" in message  # the single-process tool stops at vid_b, after vid_a
    out = tmp_path / "beam"
    code, message = run_tool("segment", "--weights", weights, "--youtube-vos-root", root, "--split", "valid",
                             "--output", out, *WORKING, *TWO_WORKERS)
    printed = capsys.readouterr().out
    assert code == 1 and message == "error: 1 video failed (listed above); the others are complete"
    assert "1 videos segmented, 0 skipped, 1 failed" in printed
    failures = [json.loads(line) for line in (out / ".osmn-beam" / "failed.jsonl").read_text().splitlines()]
    assert [f["video"] for f in failures] == ["vid_b"] and "00010.jpg" in failures[0]["error"]
    assert f"vid_b: failed: {failures[0]['error']}" in printed
    assert masks_of(out / "Annotations" / "vid_a") == masks_of(single / "Annotations" / "vid_a") != {}
    assert not (out / "Annotations" / "vid_b").exists()  # nothing of the failed video
    assert (out / ".osmn-complete" / "vid_a.json").is_file()


@pytest.mark.slow
def test_a_killed_run_leaves_nothing_that_looks_complete_and_a_rerun_does_the_rest(corpus, tmp_path):
    weights, davis, single = corpus
    out = tmp_path / "beam"
    command = [sys.executable, str(REPO / "tools" / "segment.py"), "--weights", str(weights), "--davis-root",
               str(davis), "--split", "val", "--output", str(out), *WORKING, *TWO_WORKERS]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # its own group: the launcher and both workers are killed
    deadline = time.monotonic() + 300
    try:
        while not any(map(says_complete, out.glob(f"*/{MARKER}"))) and process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    complete = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if says_complete(folder / MARKER):
            complete.append(folder.name)
            assert masks_of(folder) == masks_of(single / folder.name), folder.name
    assert 1 <= len(complete) < 4, "the run was not killed between two videos; the test cannot tell"
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{4 - len(complete)} videos segmented, {len(complete)} skipped, 0 failed" in result.stdout
    assert masks_of(out) == masks_of(single)


def says_complete(record):
    """Whether the record file `record` says its folder is complete (a record is written incomplete first)."""
    try:
        return json.loads(record.read_text()).get("complete") is True
    except (OSError, ValueError):
        return False


@pytest.mark.slow
def test_a_list_of_frame_folders_and_video_files(corpus, tmp_path, capsys):
    weights, davis, single = corpus
    import imageio.v3 as iio

    sequence = davis / "JPEGImages" / "480p" / "synth-val-0001"
    frames = np.stack([np.asarray(Image.open(p)) for p in sorted(sequence.glob("*.jpg"))])
    iio.imwrite(tmp_path / "clip.mp4", frames, fps=10, codec="libx264", plugin="FFMPEG")
    first = davis / "Annotations" / "480p" / "synth-val-0001" / "00000.png"
    (tmp_path / "videos.csv").write_text(f"# frames,first mask,name\n{sequence},{first},from_folder\n"
                                         f"clip.mp4,{first}\n")
    out = tmp_path / "out"
    code, message = run_tool("segment", "--weights", weights, "--videos", tmp_path / "videos.csv", "--output", out,
                             *WORKING, "--runner", "DirectRunner")
    assert code == 0, message
    assert "2 videos segmented" in capsys.readouterr().out
    assert masks_of(out / "from_folder") == masks_of(single / "synth-val-0001")
    assert sorted(masks_of(out / "clip")) == [f"{t:05d}.png" for t in range(5)]


def test_publishing_writes_the_record_complete_last(tmp_path, monkeypatch):
    from osmn_tf.beam.segment import Published

    local = tmp_path / "local" / "seq"
    local.mkdir(parents=True)
    for name in ("00000.png", "00001.png"):
        (local / name).write_bytes(name.encode())
    (local / MARKER).write_text(json.dumps({"files": ["00000.png", "00001.png"], "complete": True, "scores": False,
                                            "made_from": {"weights": "w"}}))
    published = Published(str(tmp_path / "out"), "seq", f"seq/{MARKER}")
    writes = []
    real_write = Published._write

    def write_then_die(path, data):
        writes.append(path)
        if len(writes) == 3:  # the record (not complete) and one mask are out
            raise OSError("killed")
        real_write(path, data)

    monkeypatch.setattr(Published, "_write", staticmethod(write_then_die))
    with pytest.raises(OSError):
        published.publish(local, local / MARKER)
    assert writes[0].endswith(MARKER)
    assert json.loads((tmp_path / "out" / "seq" / MARKER).read_text())["complete"] is False
    assert not published.is_complete(["00000.png", "00001.png"])
    assert not list((tmp_path / "out" / "seq").glob("*.partial"))
    monkeypatch.setattr(Published, "_write", staticmethod(real_write))
    published.publish(local, local / MARKER)
    assert published.is_complete(["00000.png", "00001.png"])
    assert (tmp_path / "out" / "seq" / "00001.png").read_bytes() == b"00001.png"


def test_publishing_refuses_files_no_record_lists(tmp_path):
    from osmn_tf.beam.segment import Published
    from osmn_tf.utils.outputs import OutputError

    local = tmp_path / "local"
    local.mkdir()
    (local / "00000.png").write_bytes(b"new")
    (local / MARKER).write_text(json.dumps({"files": ["00000.png"], "complete": True}))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "00000.png").write_bytes(b"the user's")
    published = Published(str(tmp_path), "out", f"out/{MARKER}")
    with pytest.raises(OutputError, match="00000.png: exists and was not written by this tool"):
        published.publish(local, local / MARKER)
    assert (tmp_path / "out" / "00000.png").read_bytes() == b"the user's"
    published.publish(local, local / MARKER, overwrite=True)
    assert (tmp_path / "out" / "00000.png").read_bytes() == b"new"


@pytest.mark.parametrize("line,problem", [
    ("only_frames", "expected FRAMES,FIRST_MASK[,NAME]"),
    ("a,b,c,d", "expected FRAMES,FIRST_MASK[,NAME]"),
    ("a,b,../up", "'../up' is not a folder name"),
])
def test_a_bad_video_list_names_its_line(line, problem, tmp_path):
    from osmn_tf.beam import read_video_list

    (tmp_path / "list.csv").write_text(f"# a comment\n{line}\n")
    with pytest.raises(ValueError) as error:
        read_video_list(tmp_path / "list.csv")
    assert str(error.value).startswith(f"{tmp_path / 'list.csv'}:2: ") and problem in str(error.value)


def test_two_videos_of_one_name_are_refused(tmp_path):
    from osmn_tf.beam import read_video_list

    (tmp_path / "list.csv").write_text("x/clip.mp4,m.png\ny/clip.mp4,m.png\n")
    with pytest.raises(ValueError, match="list.csv:2: the name 'clip' is line 1's too"):
        read_video_list(tmp_path / "list.csv")


@pytest.mark.parametrize("options,problem", [
    (["--davis-root", "D", "--direct_num_workers", "2"], "unrecognized arguments: --direct_num_workers 2"),
    (["--videos", "list.csv"], "--videos is for --runner"),
    (["--frames", "F", "--first-mask", "m.png", "--runner", "DirectRunner"], "--runner segments a corpus"),
])
def test_beam_options_are_checked(options, problem, tmp_path, capsys):
    code, _ = run_tool("segment", "--weights", tmp_path / "w.keras", "--output", tmp_path / "out", *options)
    assert code == 2
    assert problem in capsys.readouterr().err
