"""Export for serving: SavedModel signatures in a fresh process, saved_model_cli, the REST client, ONNX, LiteRT."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from osmn_tf.data.frames import preprocess_frame, resize_mask
from osmn_tf.data.guides import spatial_guide, visual_guide
from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.inference.tracking import merge_probabilities
from osmn_tf.models import fold_batch_norm
from osmn_tf.serving import client, conversion, preprocessing

from conftest import route_to_saved_model, run_tool, small_osmn, synthetic_video, write_frames

SMALL = 0.125
WORKING = (64, 48)  # (W, H) of the small export's segment_raw
SIGNATURES = ["encode_guide", "encode_guide_image", "encode_guide_raw", "segment", "segment_image", "segment_raw",
              "serving_default"]


@pytest.fixture(scope="module")
def small_model():
    return small_osmn(SMALL)


@pytest.fixture(scope="module")
def exported(small_model, tmp_path_factory):
    """tools/export.py run on the small model's .keras file: the SavedModel folder `models/osmn/1`."""
    root = tmp_path_factory.mktemp("export")
    weights = root / "small.keras"
    small_model.save(weights)
    output = root / "models" / "osmn" / "1"
    code, message = run_tool("export", "--weights", weights, "--output", output, "--working-size",
                             f"{WORKING[0]}x{WORKING[1]}")
    assert code == 0, message
    return output


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported))


def random_inputs(seed=0, batch=2, height=37, width=51, num_params=480):
    rng = np.random.default_rng(seed)
    return {
        "guide_image": rng.normal(0, 50, (batch, 224, 224, 3)).astype("float32"),
        "spatial_guide": rng.uniform(0, 1, (batch, height, width, 1)).astype("float32"),
        "image": rng.normal(0, 50, (batch, height, width, 3)).astype("float32"),
        "modulation_params": rng.uniform(0.5, 1.5, (batch, num_params)).astype("float32"),
    }


def raw_inputs():
    frames, first = synthetic_video(num_frames=4, size=(90, 70))
    masks = np.stack([first == i for i in (1, 2, 5)]).astype(np.uint8)
    return frames[1], masks


# A fresh interpreter that never imports osmn_tf: runs each case's signature on
# its inputs, stores the outputs (or the error's type and message).
FRESH_PROCESS = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np, tensorflow as tf
    saved_model, cases_file, out_file = sys.argv[1:]
    loaded = tf.saved_model.load(saved_model)
    cases = json.load(open(cases_file))
    inputs = np.load(cases_file + ".npz")
    results, errors = {}, {}
    for name, (signature, feeds) in cases.items():
        try:
            out = loaded.signatures[signature](**{k: tf.constant(inputs[v]) for k, v in feeds.items()})
            for key, value in out.items():
                results[name + "/" + key] = value.numpy()
        except Exception as e:
            errors[name] = [type(e).__name__, str(e)]
    np.savez(out_file, **results)
    json.dump({"errors": errors, "signatures": sorted(loaded.signatures),
               "osmn_tf_imported": "osmn_tf" in sys.modules}, open(out_file + ".json", "w"))
    """
)


def run_fresh(saved_model, tmp_path, cases, arrays):
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(cases))
    np.savez(str(cases_file) + ".npz", **arrays)
    out = tmp_path / "out.npz"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(saved_model), str(cases_file), str(out)],
                   check=True, cwd=tmp_path, env=env, timeout=300)
    with np.load(out) as data:
        results = dict(data)
    return results, json.loads((tmp_path / "out.npz.json").read_text())


@pytest.fixture(scope="module")
def fresh(exported, tmp_path_factory):
    """Every signature, good and bad inputs, run once in a fresh process."""
    arrays = random_inputs()
    frame, masks = raw_inputs()
    arrays.update(frame=frame, masks=masks, params3=arrays["modulation_params"][[0, 1, 0]])
    good = {"image": "image", "spatial_guide": "spatial_guide", "modulation_params": "modulation_params"}
    cases = {
        "encode_guide": ["encode_guide", {"guide_image": "guide_image"}],
        "segment": ["segment", good],
        "serving_default": ["serving_default",
                            {"guide_image": "guide_image", "spatial_guide": "spatial_guide", "image": "image"}],
        "encode_guide_raw": ["encode_guide_raw", {"frame": "frame", "masks": "masks"}],
        "segment_raw": ["segment_raw", {"frame": "frame", "masks": "masks", "modulation_params": "params3"}],
    }
    # Bad input: each must fail, not broadcast.
    bad = {
        "image_rank": ("segment", "image", arrays["image"][0]),
        "image_channels": ("segment", "image", np.concatenate([arrays["image"]] * 2, axis=-1)[..., :4]),
        "guide_channels": ("segment", "spatial_guide", np.repeat(arrays["spatial_guide"], 3, axis=-1)),
        "params_length": ("segment", "modulation_params", arrays["modulation_params"][:, :479]),
        "params_length_1": ("segment", "modulation_params", arrays["modulation_params"][:, :1]),
        "params_batch": ("segment", "modulation_params", arrays["modulation_params"][:1]),
        "guide_size": ("segment", "spatial_guide", arrays["spatial_guide"][:, :-1]),
        "frame_gray": ("segment_raw", "frame", frame[..., 0]),
        "frame_float": ("segment_raw", "frame", frame.astype("float32")),
        "raw_params_batch": ("segment_raw", "modulation_params", arrays["modulation_params"]),
    }
    for name, (signature, key, value) in bad.items():
        arrays[name] = value
        feeds = dict(cases[signature][1])
        feeds[key] = name
        cases["bad_" + name] = [signature, feeds]
    return run_fresh(exported, tmp_path_factory.mktemp("fresh"), cases, arrays), arrays


@pytest.mark.slow
def test_saved_model_has_the_documented_signatures_and_loads_without_osmn_tf(fresh, exported):
    (results, meta), _ = fresh
    assert meta["signatures"] == SIGNATURES
    assert meta["osmn_tf_imported"] is False
    assert sorted(os.listdir(exported)) == ["assets", "assets.extra", "fingerprint.pb", "saved_model.pb", "variables"]
    assert results["segment/logits"].shape == (2, 37, 51, 1)
    assert results["encode_guide/modulation_params"].shape == (2, 480)


@pytest.mark.slow
def test_float_signatures_equal_the_keras_model(fresh, small_model):
    (results, meta), arrays = fresh
    for name in ("encode_guide", "segment", "serving_default"):
        assert name not in meta["errors"], meta["errors"][name]
    params = small_model.visual_modulator(arrays["guide_image"], training=False).numpy()
    np.testing.assert_allclose(results["encode_guide/modulation_params"], params, rtol=1e-5, atol=1e-6)
    # The export serves the model with its BatchNorm folded: the same logits up to round-off.
    frame_model = fold_batch_norm(small_model).frame_model()
    logits = frame_model([arrays[t.name] for t in frame_model.inputs], training=False).numpy()
    np.testing.assert_allclose(results["segment/logits"], logits, rtol=1e-5, atol=1e-5 * np.abs(logits).max())
    np.testing.assert_allclose(results["segment/probabilities"], 1 / (1 + np.exp(-logits)), atol=1e-6)
    unfolded = small_model.frame_model()([arrays[t.name] for t in frame_model.inputs], training=False).numpy()
    np.testing.assert_allclose(results["segment/logits"], unfolded, rtol=1e-5, atol=1e-5 * np.abs(logits).max())
    whole = small_model([arrays[t.name] for t in small_model.inputs], training=False).numpy()
    np.testing.assert_allclose(results["serving_default/logits"], whole, rtol=1e-5, atol=1e-5 * np.abs(whole).max())
    # The test inputs make the outputs depend on every input.
    assert np.std(logits) > 1e-3 * np.abs(logits).max()


@pytest.mark.slow
def test_raw_signatures_follow_the_numpy_preprocessing(fresh, small_model):
    (results, meta), arrays = fresh
    assert "encode_guide_raw" not in meta["errors"], meta["errors"].get("encode_guide_raw")
    assert "segment_raw" not in meta["errors"], meta["errors"].get("segment_raw")
    frame, masks = arrays["frame"], arrays["masks"]
    guides = np.stack([visual_guide(frame, m) for m in masks])
    params = small_model.visual_modulator(guides, training=False).numpy()
    raw_params = results["encode_guide_raw/modulation_params"]
    # Guides differ by at most one grey level in a few pixels (PIL vs TF rounding).
    np.testing.assert_allclose(raw_params, params, atol=2e-3 * np.abs(params - 1).max() + 1e-6)

    image = preprocess_frame(frame, WORKING)
    working_masks = [resize_mask(m, WORKING) for m in masks]
    inputs = {"image": np.stack([image] * 3), "spatial_guide": np.stack([spatial_guide(m) for m in working_masks]),
              "modulation_params": arrays["params3"]}
    frame_model = small_model.frame_model()
    logits = frame_model([inputs[t.name] for t in frame_model.inputs], training=False).numpy()
    assert results["segment_raw/logits"].shape == (3, WORKING[1], WORKING[0], 1)
    np.testing.assert_allclose(results["segment_raw/logits"], logits, atol=1e-2 * np.abs(logits).max())
    probabilities = results["segment_raw/probabilities"][..., 0]
    np.testing.assert_array_equal(results["segment_raw/masks"], (probabilities > 0.5).astype(np.uint8))
    merged = merge_probabilities(probabilities, (1, 2, 3))
    np.testing.assert_array_equal(results["segment_raw/labels"], resize_mask(merged, (frame.shape[1], frame.shape[0])))


@pytest.mark.parametrize("name,message", [
    ("image_rank", "image"), ("image_channels", "image"), ("guide_channels", "spatial_guide"),
    ("params_length", "modulation_params"), ("params_length_1", "modulation_params"),
    ("params_batch", "same batch size"), ("guide_size", "spatial_guide must have the image"),
    ("frame_gray", "frame"), ("frame_float", "uint8"), ("raw_params_batch", "same batch size"),
])
def test_bad_input_fails_with_a_clear_error(fresh, name, message):
    (_, meta), _ = fresh
    assert "bad_" + name in meta["errors"], f"{name} gave a result instead of an error"
    kind, text = meta["errors"]["bad_" + name]
    assert message in text, f"{kind}: {text[:500]}"


def test_in_graph_preprocessing_matches_pil_within_one_grey_level():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    frame = np.asarray(Image.fromarray(small).resize((173, 97), Image.BILINEAR))
    mask = np.zeros((97, 173), np.uint8)
    mask[20:60, 30:120] = 1
    mask[60:70, 40:50] = 1
    for size in [(854, 480), (64, 48), (173, 97)]:
        tf_image = preprocessing.normalize_rgb(preprocessing.pil_bilinear_resize(frame, size[1], size[0])).numpy()
        assert np.abs(tf_image - preprocess_frame(frame, size)).max() <= 1.0
    guides = preprocessing.visual_guides(frame, mask[None]).numpy()[0]
    assert np.abs(guides - visual_guide(frame, mask)).max() <= 1.0
    # Nearest neighbour picks exactly PIL's pixels, also where float32 would not (1920 -> 854).
    for (h, w), (oh, ow) in [((1080, 1920), (480, 854)), ((97, 173), (480, 854)), ((480, 854), (224, 224))]:
        labels = rng.integers(0, 2, (h, w), dtype=np.uint8)
        np.testing.assert_array_equal(preprocessing.nearest_resize_masks(labels[None], oh, ow).numpy()[0],
                                      resize_mask(labels, (ow, oh)))
    # Spatial guides: exact (TF flushes float32 denormals, below 1.2e-38, to 0),
    # empty and one-pixel masks included.
    one = np.zeros((48, 64), np.uint8)
    one[3, 60] = 1
    for m in (resize_mask(mask, (64, 48)), np.zeros((48, 64), np.uint8), one):
        np.testing.assert_allclose(preprocessing.spatial_guides(m[None]).numpy()[0], spatial_guide(m), rtol=0, atol=1.2e-38)


@pytest.mark.slow
def test_saved_model_cli_show_and_run(exported, tmp_path, small_model):
    cli = shutil.which("saved_model_cli")
    command = [cli] if cli else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    show = subprocess.run(command + ["show", "--dir", str(exported), "--all"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert show.returncode == 0, show.stderr[-2000:]
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in show.stdout
    assert "inputs['modulation_params'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 480)" in show.stdout
    assert "outputs['probabilities'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, -1, -1, 1)" in show.stdout

    arrays = random_inputs(seed=5, batch=1, height=20, width=33)
    feeds = []
    for name in ("image", "spatial_guide", "modulation_params"):
        np.save(tmp_path / f"{name}.npy", arrays[name])
        feeds.append(f"{name}={tmp_path / name}.npy")
    run = subprocess.run(command + ["run", "--dir", str(exported), "--tag_set", "serve", "--signature_def", "segment",
                                    "--inputs", ";".join(feeds), "--outdir", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    frame_model = small_model.frame_model()
    logits = frame_model([arrays[t.name] for t in frame_model.inputs], training=False).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "out" / "logits.npy"), logits, rtol=1e-5,
                               atol=1e-5 * np.abs(logits).max())


@pytest.mark.slow
def test_rest_client_float_signatures_reproduce_the_keras_video_loop(small_model, loaded):
    frames, first = synthetic_video(num_frames=4)
    send = route_to_saved_model(loaded)
    segmenter = client.ServingVideoSegmenter(client.json_predictor(send), working_size=WORKING)
    expected = list(VideoSegmenter(small_model, working_size=WORKING).track(frames, first))
    got = list(segmenter.track(frames, first))
    assert send.calls == ["encode_guide"] * 3 + ["segment"] * (len(frames) - 1)  # one encode per object
    for t, (result, served) in enumerate(zip(expected, got)):
        np.testing.assert_array_equal(served.labels, result.labels, err_msg=f"frame {t}")
        if t:
            np.testing.assert_allclose(served.probabilities, result.probabilities, atol=1e-5)
    assert len(np.unique(got[-1].labels)) > 1  # something was segmented


@pytest.mark.slow
def test_rest_client_raw_signatures_agree_with_the_keras_video_loop(small_model, loaded):
    frames, first = synthetic_video(num_frames=4)
    send = route_to_saved_model(loaded)
    segmenter = client.ServingVideoSegmenter(client.json_predictor(send), signatures="raw")
    expected = list(VideoSegmenter(small_model, working_size=WORKING).track(frames, first))
    got = list(segmenter.track(frames, first))
    assert send.calls == ["encode_guide_raw"] * 3 + ["segment_raw"] * (len(frames) - 1)  # one encode per object
    for t, (result, served) in enumerate(zip(expected, got)):
        assert served.labels.shape == result.labels.shape
        assert np.mean(served.labels == result.labels) >= 0.99, f"frame {t}"
        if t:
            # One grey level here and there moves a few probabilities by about 1e-2.
            difference = np.abs(served.probabilities - result.probabilities)
            assert difference.max() < 5e-2 and difference.mean() < 2e-3, f"frame {t}"


def test_request_and_response_bodies_follow_the_rest_api():
    body = client.predict_request("segment", {"image": np.zeros((1, 2, 2, 3), np.float32),
                                              "masks": np.ones((1, 2, 2), np.uint8)})
    assert body["signature_name"] == "segment"
    assert body["inputs"]["masks"] == [[[1, 1], [1, 1]]] and isinstance(body["inputs"]["masks"][0][0][0], int)
    out = client.parse_predict_response({"outputs": [[0.5, 2.0]]}, ["modulation_params"])
    np.testing.assert_array_equal(out["modulation_params"], np.array([[0.5, 2.0]], np.float32))
    out = client.parse_predict_response({"outputs": {"logits": [0.0], "labels": [3]}}, ["logits", "labels"],
                                        {"labels": np.uint8})
    assert out["labels"].dtype == np.uint8
    with pytest.raises(client.ServingError, match="bad shape"):
        client.parse_predict_response({"error": "bad shape"}, ["logits"])
    with pytest.raises(client.ServingError, match="lacks outputs"):
        client.parse_predict_response({"outputs": {"logits": [0.0]}}, ["probabilities"])


def test_client_reports_an_unreachable_server(tmp_path):
    frames, first = synthetic_video(num_frames=2)
    write_frames(tmp_path / "frames", frames)
    Image.fromarray(first).save(tmp_path / "first.png")
    code, message = run_tool("serving_client", "--url", "http://127.0.0.1:9", "--frames", tmp_path / "frames",
                             "--first-mask", tmp_path / "first.png", "--output", tmp_path / "out", "--retries", "1")
    assert code == 1 and "cannot reach TF Serving" in message and "gave up after 2 attempts" in message


def test_export_tool_refuses_an_existing_version(exported, capsys):
    code, message = run_tool("export", "--weights", "unused.keras", "--output", exported)
    assert code == 2  # argparse's usage error, before any weights are read
    text = message + capsys.readouterr().err  # argparse prints its message on stderr
    assert f"error: --output {exported} exists and is not empty; TF Serving versions are never overwritten" in text


@pytest.mark.slow
def test_onnx_export_equals_the_keras_model(small_model, tmp_path):
    pytest.importorskip("tf2onnx", reason="ONNX export needs tf2onnx (pip install -r requirements-export.txt)")
    ort = pytest.importorskip("onnxruntime", reason="the ONNX parity test needs onnxruntime")
    paths = conversion.export_onnx(small_model, tmp_path)
    assert [os.path.basename(p) for p in paths] == ["encode_guide.onnx", "segment.onnx"]
    arrays = random_inputs(seed=2, height=29, width=43)
    session = ort.InferenceSession(paths[1])
    assert [i.name for i in session.get_inputs()] == ["image", "spatial_guide", "modulation_params"]
    logits = session.run(None, {i.name: arrays[i.name] for i in session.get_inputs()})[0]
    frame_model = small_model.frame_model()
    expected = frame_model([arrays[t.name] for t in frame_model.inputs], training=False).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    session = ort.InferenceSession(paths[0])
    params = session.run(None, {"guide_image": arrays["guide_image"]})[0]
    expected = small_model.visual_modulator(arrays["guide_image"], training=False).numpy()
    np.testing.assert_allclose(params, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_tflite_export_equals_the_keras_model(small_model, exported, tmp_path):
    from ai_edge_litert.interpreter import Interpreter  # LiteRT's maintained runtime, not tf.lite's

    path = conversion.export_tflite(exported, tmp_path / "osmn.tflite")
    interpreter = Interpreter(model_path=str(path))
    assert sorted(interpreter.get_signature_list()) == ["encode_guide", "segment"]
    arrays = random_inputs(seed=4, batch=1, height=29, width=43)
    segment = interpreter.get_signature_runner("segment")
    out = segment(**{k: arrays[k] for k in ("image", "spatial_guide", "modulation_params")})
    frame_model = small_model.frame_model()
    expected = frame_model([arrays[t.name] for t in frame_model.inputs], training=False).numpy()
    np.testing.assert_allclose(out["logits"], expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    params = interpreter.get_signature_runner("encode_guide")(guide_image=arrays["guide_image"])
    expected = small_model.visual_modulator(arrays["guide_image"], training=False).numpy()
    np.testing.assert_allclose(params["modulation_params"], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.large
def test_serving_default_of_the_original_checkpoint_reproduces_the_original(tf1_checkpoint, fidelity_frame, tmp_path):
    output = tmp_path / "models" / "osmn" / "1"
    code, message = run_tool("export", "--weights", tf1_checkpoint("full"), "--output", output)
    assert code == 0, message
    arrays = {k: fidelity_frame[k].astype("float32") for k in ("guide_image", "spatial_guide", "image")}
    feeds = {k: k for k in arrays}
    cases = {"default": ["serving_default", feeds], "encode": ["encode_guide", {"guide_image": "guide_image"}]}
    (results, meta) = run_fresh(output, tmp_path, cases, arrays)
    assert not meta["errors"] and meta["osmn_tf_imported"] is False
    expected = fidelity_frame["logits"]
    error = np.abs(results["default/logits"] - expected).max() / np.abs(expected).max()
    assert error <= 1e-4, f"relative max error {error:.2e}"
    params = fidelity_frame["visual_params"]
    assert np.abs(results["encode/modulation_params"] - params).max() / np.abs(params).max() <= 1e-4


def test_in_graph_preprocessing_takes_the_models_mean_and_scale():
    # The release's --mean_value and --scale_value, saved with the model (OSMNConfig.input_mean, input_scale).
    from osmn_tf.config import OSMNConfig
    from osmn_tf.models import build_osmn
    from osmn_tf.serving.signatures import ServingSignatures

    mean, scale = (50.0, 60.0, 70.0), 0.5
    model = build_osmn(OSMNConfig(width=0.125, guide_size=64, input_mean=mean, input_scale=scale))
    signatures = ServingSignatures(model, (64, 48))
    assert (signatures.mean, signatures.scale) == (mean, scale)
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:50] = 1
    tf_image = preprocessing.normalize_rgb(frame, scale, mean).numpy()
    np.testing.assert_allclose(tf_image, preprocess_frame(frame, (64, 48), scale, mean), rtol=0, atol=1e-5)
    guides = preprocessing.visual_guides(frame, mask[None], 64, scale, mean).numpy()[0]
    assert np.abs(guides - visual_guide(frame, mask, size=64, scale=scale, mean=mean)).max() <= scale
