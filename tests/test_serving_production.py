"""TF Serving as run in production: the warm-up file, the `_image` signatures, gRPC, retries, server config.

No TF Serving binary can be installed here: requests go through TF Serving's
own protocol messages (`tensorflow-serving-api`) to `tf.saved_model.load`,
over a real gRPC server on 127.0.0.1 for the gRPC tests.
"""
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from osmn_tf.data.frames import preprocess_frame
from osmn_tf.data.guides import spatial_guide
from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.serving import client
from osmn_tf.serving.client import encode_image

from conftest import run_tool, small_osmn, synthetic_video
from fake_serving import GrpcServer, prediction_service

grpc = pytest.importorskip("grpc")
apis = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc",
                           reason="needs tensorflow-serving-api (pip install -e '.[serving]')")
from tensorflow_serving.config import model_server_config_pb2  # noqa: E402

from osmn_tf.serving import grpc_client, warmup  # noqa: E402

# Each test trains, runs a tool end to end or builds full-size networks.
pytestmark = pytest.mark.slow

WORKING = (64, 48)
ALL_SIGNATURES = ["encode_guide", "encode_guide_image", "encode_guide_raw", "segment", "segment_image",
                  "segment_raw", "serving_default"]


@pytest.fixture(scope="module")
def small_model():
    return small_osmn(0.125)


@pytest.fixture(scope="module")
def exported(small_model, tmp_path_factory):
    """tools/export.py with the server config: `models/osmn/1`."""
    root = tmp_path_factory.mktemp("export")
    small_model.save(root / "small.keras")
    output = root / "models" / "osmn" / "1"
    code, message = run_tool("export", "--weights", root / "small.keras", "--output", output, "--working-size",
                             f"{WORKING[0]}x{WORKING[1]}", "--server-config", "--config-base-path", "/models/osmn")
    assert code == 0, message
    return output


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported))


def call(loaded, signature, inputs):
    return {k: v.numpy() for k, v in loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def test_warmup_file_replays_every_signature(exported, loaded):
    path = exported / "assets.extra" / "tf_serving_warmup_requests"
    requests = warmup.read_warmup(path)
    assert sorted(r.model_spec.signature_name for r in requests) == ALL_SIGNATURES
    for request in requests:
        assert request.model_spec.name == "osmn"
        signature = loaded.signatures[request.model_spec.signature_name]
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        assert sorted(inputs) == sorted(signature.structured_input_signature[1])
        outputs = signature(**inputs)
        if "image" in inputs:
            assert inputs["image"].shape == (1, WORKING[1], WORKING[0], 3)  # the working size
        if "probabilities" in outputs:
            assert outputs["probabilities"].shape == (1, WORKING[1], WORKING[0], 1)
            assert np.isfinite(outputs["probabilities"].numpy()).all()


def test_batching_export_warms_up_only_batchable_signatures(small_model, tmp_path):
    small_model.save(tmp_path / "small.keras")
    output = tmp_path / "osmn" / "3"
    code, message = run_tool("export", "--weights", tmp_path / "small.keras", "--output", output, "--working-size",
                             "32x24", "--batching")
    assert code == 0, message
    names = [r.model_spec.signature_name for r in warmup.read_warmup(output / warmup.WARMUP_PATH)]
    assert names == ["encode_guide", "segment", "serving_default"]


def test_server_config_files_parse_as_tf_serving_protos(exported):
    from google.protobuf import text_format

    base = exported.parent
    config = text_format.Parse((base / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == ("osmn", "/models/osmn", "tensorflow")
    assert list(model.model_version_policy.specific.versions) == [1]
    assert dict(model.version_labels) == {"stable": 1}
    batching = (base / "batching_parameters.txt").read_text().splitlines()
    assert batching[0] == "max_batch_size { value: 8 }"
    assert [line for line in batching if line.startswith("allowed")] == [
        f"allowed_batch_sizes: {n}" for n in (1, 2, 4, 8)]
    assert "pad_variable_length_inputs: false" in batching


def test_export_refuses_server_config_without_a_version_folder(tmp_path, capsys):
    code, _ = run_tool("export", "--weights", "unused.keras", "--output", tmp_path / "osmn" / "latest",
                       "--server-config")
    assert code == 2
    assert "must end in a version number (e.g. models/osmn/1)" in capsys.readouterr().err


def image_inputs(frame, masks, image_format="png"):
    return {"frame_bytes": encode_image(frame, image_format),
            "masks_bytes": np.array([encode_image(m, "png") for m in masks], object)}


def test_image_signatures_equal_the_raw_ones_for_png_and_the_float_ones_at_the_working_size(loaded, small_model):
    frames, first = synthetic_video(num_frames=2, size=(90, 70))
    masks = np.stack([first == i for i in (1, 2)]).astype(np.uint8)
    raw = call(loaded, "encode_guide_raw", {"frame": frames[0], "masks": masks})
    png = call(loaded, "encode_guide_image", image_inputs(frames[0], masks))
    np.testing.assert_array_equal(png["modulation_params"], raw["modulation_params"])
    params = raw["modulation_params"]
    raw = call(loaded, "segment_raw", {"frame": frames[1], "masks": masks, "modulation_params": params})
    png = call(loaded, "segment_image", {**image_inputs(frames[1], masks), "modulation_params": params})
    for key in ("probabilities", "masks", "labels"):
        np.testing.assert_array_equal(png[key], raw[key], err_msg=key)
    decoded = np.asarray(Image.open(__import__("io").BytesIO(png["labels_png_bytes"])))
    np.testing.assert_array_equal(decoded, raw["labels"])
    assert len(np.unique(decoded)) > 1

    # A frame at the working size is not resized: masks identical to the float signature's.
    frame = np.asarray(Image.fromarray(frames[1]).resize(WORKING, Image.BILINEAR))
    prev = np.stack([np.asarray(Image.fromarray(m).resize(WORKING, Image.NEAREST)) for m in masks])
    png = call(loaded, "segment_image", {**image_inputs(frame, prev), "modulation_params": params})
    floats = call(loaded, "segment", {"image": np.stack([preprocess_frame(frame, WORKING)] * 2),
                                      "spatial_guide": np.stack([spatial_guide(m) for m in prev]),
                                      "modulation_params": params})
    np.testing.assert_array_equal(png["masks"], (floats["probabilities"][..., 0] > 0.5).astype(np.uint8))
    np.testing.assert_allclose(png["probabilities"], floats["probabilities"], atol=1e-6)
    # JPEG (quality 95) is lossy: on this small synthetic frame and random-weight model, 90 % of the mask pixels.
    jpeg = call(loaded, "segment_image", {**image_inputs(frame, prev, "jpeg"), "modulation_params": params})
    assert 0.85 <= np.mean(jpeg["masks"] == png["masks"]) <= 1
    assert np.abs(jpeg["probabilities"] - png["probabilities"]).max() > 1e-4  # the JPEG was decoded, not the PNG


@pytest.mark.parametrize("signature,change,message", [
    ("segment_image", {"frame_bytes": b"GIF89a not an image"}, "frame_bytes must be a JPEG or PNG file"),
    ("segment_image", {"frame_bytes": b"\x89PNG\r\n\x1a\n broken"}, "PNG"),
    ("segment_image", {"masks_bytes": np.array([b"\xff\xd8\xff jpeg mask"] * 2, object)},
     "every masks_bytes entry must be a PNG file"),
    ("segment_image", {"masks_bytes": "other size"}, "have the size of the frame or the working size 64x48"),
    ("encode_guide_image", {"masks_bytes": "working size"}, "every mask must have the size of the frame"),
    ("segment_raw", {"frame": "float"}, "uint8"),
    ("segment", {"image": "rank 3"}, "image"),
])
def test_bad_image_requests_get_a_clear_error(loaded, signature, change, message):
    frames, first = synthetic_video(num_frames=2, size=(90, 70))
    masks = np.stack([first == i for i in (1, 2)]).astype(np.uint8)
    params = np.ones((2, 480), np.float32)
    inputs = {
        "segment_image": {**image_inputs(frames[1], masks), "modulation_params": params},
        "encode_guide_image": image_inputs(frames[0], masks),
        "segment_raw": {"frame": frames[1], "masks": masks, "modulation_params": params},
        "segment": {"image": np.zeros((2, 48, 64, 3), np.float32), "spatial_guide": np.zeros((2, 48, 64, 1), np.float32),
                    "modulation_params": params},
    }[signature]
    for key, value in change.items():
        if not isinstance(value, str):
            pass
        elif value == "other size":
            value = image_inputs(frames[0], masks[:, :50, :60])["masks_bytes"]
        elif value == "working size":
            value = image_inputs(frames[0], masks[:, :48, :64])["masks_bytes"]
        elif value == "float":
            value = frames[1].astype(np.float32)
        elif value == "rank 3":
            value = np.zeros((48, 64, 3), np.float32)
        inputs[key] = value
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError), match=message):
        call(loaded, signature, inputs)


@pytest.fixture
def grpc_server(loaded, exported):
    """A gRPC server (`fake_serving`) on a free 127.0.0.1 port; yields (target, service); stops it afterwards."""
    service = prediction_service(loaded, exported)
    with GrpcServer(service) as server:
        yield server.target, service


def write_video(tmp_path, frames, first):
    (tmp_path / "frames").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / "frames" / f"{i:05d}.png")
    Image.fromarray(first).save(tmp_path / "first.png")


def test_grpc_tool_reproduces_the_keras_video_loop(grpc_server, small_model, tmp_path):
    target, service = grpc_server
    frames, first = synthetic_video(num_frames=4)
    write_video(tmp_path, frames, first)
    code, message = run_tool("serving_client", "--grpc", target, "--frames", tmp_path / "frames", "--first-mask",
                             tmp_path / "first.png", "--output", tmp_path / "out", "--working-size",
                             f"{WORKING[0]}x{WORKING[1]}")
    assert code == 0, message
    # One encode request per object (as the original encodes them), then one segment request per frame.
    assert service.calls == ["encode_guide"] * 3 + ["segment"] * 3
    expected = list(VideoSegmenter(small_model, working_size=WORKING).segment(frames, first))
    for t, labels in enumerate(expected):
        got = np.asarray(Image.open(tmp_path / "out" / f"{t:05d}.png"))
        np.testing.assert_array_equal(got, labels, err_msg=f"frame {t}")
    assert len(np.unique(expected[-1])) > 1


def test_grpc_png_signatures_agree_with_the_keras_video_loop(grpc_server, small_model):
    target, service = grpc_server
    frames, first = synthetic_video(num_frames=3)
    with grpc_client.GrpcPredictor(target) as server:
        got = list(client.ServingVideoSegmenter(server.predict, signatures="png").segment(frames, first))
    assert service.calls == ["encode_guide_image"] * 3 + ["segment_image"] * 2  # one encode per object
    expected = list(VideoSegmenter(small_model, working_size=WORKING).segment(frames, first))
    for t, (a, b) in enumerate(zip(got, expected)):
        assert np.mean(a == b) >= 0.99, f"frame {t}"


def test_grpc_carries_a_4k_frame_and_retries_unavailable(grpc_server):
    target, service = grpc_server
    service.unavailable = 2
    frame = np.zeros((2160, 3840, 3), np.uint8)  # 25 MB: over gRPC's default 4 MB limit
    masks = np.zeros((1, 48, 64), np.uint8)
    masks[0, 10:30, 20:40] = 1
    with grpc_client.GrpcPredictor(target, retry_delay=0.01) as server:
        out = server.predict("segment_raw", {"frame": frame, "masks": masks, "modulation_params": np.ones((1, 480),
                             np.float32)}, ["labels"], {"labels": np.uint8})
    assert out["labels"].shape == (2160, 3840) and out["labels"].dtype == np.uint8
    assert service.calls == ["segment_raw"] * 3  # two UNAVAILABLE answers, then the result


def test_grpc_gives_up_with_a_clear_message(grpc_server):
    target, service = grpc_server
    service.unavailable = 10
    with grpc_client.GrpcPredictor(target, retries=2, retry_delay=0.01) as server:
        with pytest.raises(client.TransientServingError, match=r"UNAVAILABLE: Servable not found.*gave up after 3 "
                                                               r"attempts"):
            server.predict("segment", {}, ["probabilities"])
    assert len(service.calls) == 3


def test_grpc_bad_input_is_an_error_not_a_retry(grpc_server):
    target, service = grpc_server
    with grpc_client.GrpcPredictor(target, retry_delay=0.01) as server:
        with pytest.raises(client.ServingError, match="(?s)INVALID_ARGUMENT: .*frame_bytes must be a JPEG or PNG file"):
            server.predict("segment_image", {"frame_bytes": b"not an image", "masks_bytes": np.array([b"x"], object),
                                             "modulation_params": np.ones((1, 480), np.float32)}, ["labels"])
        with pytest.raises(client.ServingError, match="(?s)INVALID_ARGUMENT: .*have the size of the frame or the working"):
            frame = np.zeros((70, 90, 3), np.uint8)
            server.predict("segment_image", {**image_inputs(frame, np.ones((1, 10, 10), np.uint8)),
                                             "modulation_params": np.ones((1, 480), np.float32)}, ["labels"])
    assert service.calls == ["segment_image"] * 2


def test_rest_bodies_carry_bytes_as_b64():
    body = client.predict_request("segment_image", {"frame_bytes": b"\x89PNG", "masks_bytes": np.array([b"ab"], object)})
    assert body["inputs"] == {"frame_bytes": {"b64": "iVBORw=="}, "masks_bytes": [{"b64": "YWI="}]}
    out = client.parse_predict_response({"outputs": {"labels_png_bytes": {"b64": "iVBORw=="}}}, ["labels_png_bytes"])
    assert out["labels_png_bytes"] == b"\x89PNG"


def test_rest_retries_503_then_stops_with_a_clear_message():
    import http.server
    import threading

    hits = []

    class Unavailable(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Unavailable)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        rest = client.RestPredictor(f"http://127.0.0.1:{httpd.server_port}", retries=2, retry_delay=0.01)
        with pytest.raises(client.TransientServingError, match="HTTP 503.*gave up after 3 attempts"):
            rest.predict("segment", {"image": np.zeros((1, 2, 2, 3), np.float32)}, ["probabilities"])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
    assert hits == ["/v1/models/osmn:predict"] * 3
