"""tools/serving_client.py: its output folder, its options, and a served model with a small guide size.

The server is `fake_serving`'s TF Serving stand-in (REST over HTTP, or gRPC) serving the
embedded demo's kind of model: width 0.125, 64-px visual guides.
"""
import hashlib
import time

import numpy as np
import pytest
from PIL import Image

from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.utils.outputs import MARKER

from conftest import run_tool, small_osmn, synthetic_video, write_frames
from fake_serving import GrpcServer, RestServer, prediction_service

WORKING = (64, 48)
FRAMES = 4


@pytest.fixture(scope="module")
def demo_model():
    """A model of the embedded demo's configuration (`TrainConfig` preset "demo"): 64-px guides."""
    return small_osmn(0.125, guide_size=64, mod_early_conv=True)


@pytest.fixture(scope="module")
def served(demo_model, tmp_path_factory):
    from osmn_tf.serving.signatures import export_saved_model

    return export_saved_model(demo_model, tmp_path_factory.mktemp("served") / "1", WORKING)


@pytest.fixture
def server(served):
    import pathlib

    with RestServer(pathlib.Path(served)) as server:
        yield server


@pytest.fixture
def video(tmp_path):
    """A folder of PNG frames and a first mask; returns (frames folder, first mask, frames, first)."""
    frames, first = synthetic_video(num_frames=FRAMES)
    write_frames(tmp_path / "frames", frames)
    Image.fromarray(first).save(tmp_path / "first.png")
    return tmp_path / "frames", tmp_path / "first.png", frames, first


def client(server_option, video, output, *options):
    folder, first_mask = video[:2]
    return run_tool("serving_client", *server_option, "--frames", folder, "--first-mask", first_mask, "--output",
                    output, "--working-size", f"{WORKING[0]}x{WORKING[1]}", "--retries", "0", *options)


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("transport", ["rest", "grpc"])
@pytest.mark.slow
def test_the_float_signatures_take_the_guide_size_from_the_served_model(transport, served, demo_model, video,
                                                                         tmp_path):
    import pathlib

    if transport == "rest":
        context = RestServer(pathlib.Path(served))
    else:
        pytest.importorskip("tensorflow_serving.apis", reason="needs tensorflow-serving-api")
        import tensorflow as tf

        context = GrpcServer(prediction_service(tf.saved_model.load(served), pathlib.Path(served)))
    with context as server:
        option = ["--url", server.url] if transport == "rest" else ["--grpc", server.target]
        code, message = client(option, video, tmp_path / "out")
        calls = server.calls if transport == "rest" else server.service.calls
    assert code == 0, message
    assert calls == ["encode_guide"] * 3 + ["segment"] * (FRAMES - 1)
    expected = list(VideoSegmenter(demo_model, working_size=WORKING).segment(*video[2:]))
    for t, labels in enumerate(expected):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / f"{t:05d}.png")), labels)
    assert len(np.unique(expected[-1])) > 1


@pytest.mark.slow
def test_a_guide_size_given_skips_the_metadata(server, video, tmp_path):
    code, message = client(["--url", server.url], video, tmp_path / "out", "--guide-size", "64")
    assert code == 0, message
    assert server.metadata_calls == 0


def test_served_guide_size_reads_encode_guide_or_names_what_is_missing():
    from osmn_tf.serving.client import ServingError, served_guide_size

    assert served_guide_size({"encode_guide": {"guide_image": [-1, 96, 96, 3]}}) == 96
    with pytest.raises(ServingError, match="has no encode_guide signature.*--no-visual"):
        served_guide_size({"segment": {"image": [-1, -1, -1, 3]}})
    with pytest.raises(ServingError, match=r"guide_image of shape \[-1, -1, -1, 3\]"):
        served_guide_size({"encode_guide": {"guide_image": [-1, -1, -1, 3]}})


@pytest.mark.parametrize("case", ["frames folder", "cwd", "root", "file"])
@pytest.mark.slow
def test_an_output_that_puts_files_at_risk_is_refused_before_any_request(case, server, video, tmp_path,
                                                                          monkeypatch):
    folder = video[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("mine")
    output, expected = {
        "frames folder": (folder, f"error: --output {folder}: holds the input {folder}; give a folder of its own "
                                  "for results"),
        "cwd": (".", "error: --output .: refusing to write results into the current directory; give a folder of "
                     "their own"),
        "root": ("/", "error: --output /: refusing to write results into the root folder"),
        "file": ("a_file", "error: --output a_file: exists and is not a folder"),
    }[case]
    before = digests(folder), digests(tmp_path)
    # --signatures raw: no guide size involved (before the output checks, it overwrote the frames with masks).
    code, message = client(["--url", server.url], video, output, "--signatures", "raw")
    assert (code, message) == (1, expected)
    assert (digests(folder), digests(tmp_path)) == before  # nothing written, nothing replaced
    assert server.calls == [] and server.metadata_calls == 0


@pytest.mark.slow
def test_a_complete_output_is_skipped_and_overwrite_replaces_only_its_masks(server, video, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    rest = ["--url", server.url]
    assert client(rest, video, out, "--signatures", "raw") == (0, "")
    assert sorted(p.name for p in out.iterdir()) == [MARKER] + [f"{t:05d}.png" for t in range(FRAMES)] + ["notes.txt"]
    masks = digests(out)
    calls = len(server.calls)
    capsys.readouterr()
    assert client(rest, video, out, "--signatures", "raw") == (0, "")
    assert f"{out} is complete already; skipping it (--overwrite to redo)" in capsys.readouterr().out
    assert len(server.calls) == calls and digests(out) == masks
    assert client(rest, video, out, "--signatures", "raw", "--overwrite") == (0, "")
    assert len(server.calls) == 2 * calls and digests(out) == masks and (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("target,problem", [
    ("127.0.0.1:99999", "port 99999 is not in 1..65535"),
    ("127.0.0.1:0", "port 0 is not in 1..65535"),
    ("localhost", "must be HOST:PORT"),
])
def test_a_grpc_target_needs_a_valid_port(target, problem, video, tmp_path, capsys):
    code, _ = client(["--grpc", target], video, tmp_path / "out")
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error: --grpc" in error and problem in error, error  # argparse's line: "<prog>: error: ..."
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options,problem", [
    (["--input-scale", "0"], "--input-scale: a pixel scale must be a positive finite number, got 0"),
    (["--input-mean", "1", "nan", "3"], "--input-mean: expected a finite number, got nan"),
    (["--base-model", "lite", "--raw"], "--base-model: for --signatures float only"),
    (["--input-scale", "0.5", "--signatures", "png"], "--input-scale: for --signatures float only"),
])
def test_the_pixel_encoding_is_checked_and_only_for_the_float_signatures(options, problem, video, tmp_path, capsys):
    code, _ = client(["--url", "http://127.0.0.1:1"], video, tmp_path / "out", *options)
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert problem in error, error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1:8501", "http://"])
def test_a_url_no_server_could_answer_is_refused_at_once(url, video, tmp_path, capsys):
    tick = time.perf_counter()
    code, _ = client(["--url", url], video, tmp_path / "out")
    assert code == 2 and time.perf_counter() - tick < 5  # no retries
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"error: --url {url}: not an http:// or https:// address" in error, error
    assert not (tmp_path / "out").exists()


def test_a_server_without_metadata_asks_for_the_guide_size(video, tmp_path):
    import http.server
    import json
    import threading

    class NoMetadata(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"error": f"Malformed request: GET {self.path}"}).encode()
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), NoMetadata)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}"
    try:
        code, message = client(["--url", url], video, tmp_path / "out")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (code, message) == (1, f"error: {url}/v1/models/osmn/metadata: Malformed request: GET /v1/models/osmn/"
                                  "metadata (the float signatures need the model's guide size: give --guide-size "
                                  "where the server does not answer metadata requests)")
