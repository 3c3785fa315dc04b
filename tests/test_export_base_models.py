"""The SavedModel of every base model (issue 27): its signatures equal the Keras model, lite's raw signatures
pad and scale as `VideoSegmenter`, and a TF1 checkpoint, its `.keras` reload and its SavedModel agree."""
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import base_model_fixture, route_to_saved_model, run_tool, small_osmn, synthetic_video, write_frames
from osmn_tf.config import BASE_MODELS, LITE_STRIDE, input_mean_of, input_scale_of
from osmn_tf.data.frames import padded_size, preprocess_frame, resize_mask
from osmn_tf.data.guides import spatial_guide, visual_guide
from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.serving import client

# About 40 s per base model here (export, in-process load): the whole module is in the slow tier.
pytestmark = pytest.mark.slow

WORKING = (80, 60)  # segment_raw's working size: not a multiple of 32, so lite pads
FLOAT_SIZE = (64, 64)  # (H, W) of the float signatures' images: lite takes multiples of 32


@pytest.fixture(scope="module", params=BASE_MODELS)
def exported(request, tmp_path_factory):
    """(model, the loaded SavedModel) that tools/export.py wrote from the model's .keras file."""
    base_model = request.param
    model = small_osmn(0.125, base_model=base_model)
    root = tmp_path_factory.mktemp(f"export_{base_model}")
    weights = root / "model.keras"
    model.save(weights)
    output = root / "models" / "osmn" / "1"
    code, message = run_tool("export", "--weights", weights, "--output", output, "--base-model", base_model,
                             "--working-size", f"{WORKING[0]}x{WORKING[1]}")
    assert code == 0, message
    model.saved_model_dir = output  # for tools/serving_client.py through fake_serving
    return model, tf.saved_model.load(str(output))


def float_inputs(model, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    height, width = FLOAT_SIZE
    scale = input_scale_of(model.config)
    size = model.config.guide_size
    return {
        "guide_image": rng.normal(0, 50 * scale, (batch, size, size, 3)).astype("float32"),
        "spatial_guide": rng.uniform(0, 1, (batch, height, width, 1)).astype("float32"),
        "image": rng.normal(0, 50 * scale, (batch, height, width, 3)).astype("float32"),
        "modulation_params": rng.uniform(0.5, 1.5, (batch, max(model.num_modulation_params, 1))).astype("float32"),
    }


def close(served, expected, what):
    expected = np.asarray(expected)
    error = np.abs(np.asarray(served) - expected).max() / np.abs(expected).max()
    assert error <= 1e-4, f"{what}: relative max error {error:.2e}"


def test_float_signatures_equal_the_keras_model(exported):
    model, loaded = exported
    inputs = float_inputs(model)
    if model.visual_modulator is not None:
        served = loaded.signatures["encode_guide"](guide_image=tf.constant(inputs["guide_image"]))
        close(served["modulation_params"], model.visual_modulator(inputs["guide_image"], training=False),
              "encode_guide")
    frame_model = model.frame_model()
    feeds = {t.name: tf.constant(inputs[t.name]) for t in frame_model.inputs}
    logits = frame_model([feeds[t.name] for t in frame_model.inputs], training=False).numpy()
    assert np.std(logits) > 1e-3 * np.abs(logits).max()  # the outputs depend on the inputs
    close(loaded.signatures["segment"](**feeds)["logits"], logits, "segment")
    whole = {t.name: tf.constant(inputs[t.name]) for t in model.inputs}
    close(loaded.signatures["serving_default"](**whole)["logits"],
          model([whole[t.name] for t in model.inputs], training=False), "serving_default")


def test_raw_signatures_follow_the_numpy_preprocessing_at_the_models_scale(exported):
    model, loaded = exported
    frames, first = synthetic_video(num_frames=2, size=(90, 70))
    frame, masks = frames[1], np.stack([first == i for i in (1, 2)]).astype(np.uint8)
    scale = input_scale_of(model.config)
    params = np.ones((2, model.num_modulation_params), np.float32)
    if model.visual_modulator is not None:
        guides = np.stack([visual_guide(frame, m, size=model.config.guide_size, scale=scale) for m in masks])
        params = model.visual_modulator(guides, training=False).numpy()
        served = loaded.signatures["encode_guide_raw"](frame=tf.constant(frame), masks=tf.constant(masks))
        # Guides differ by at most one grey level in a few pixels (PIL vs TF rounding).
        np.testing.assert_allclose(served["modulation_params"], params,
                                   atol=2e-3 * np.abs(params - 1).max() + 1e-6)
    # As VideoSegmenter(pad=True): the working-size frame and guides padded at the bottom and right.
    stride = LITE_STRIDE if model.config.base_model == "lite" else 1
    width, height = WORKING
    pad = ((0, -(-height // stride) * stride - height), (0, -(-width // stride) * stride - width), (0, 0))
    image = np.pad(preprocess_frame(frame, WORKING, scale), pad)
    guides = [np.pad(spatial_guide(resize_mask(m, WORKING)), pad) for m in masks]
    values = {"image": np.stack([image] * 2), "spatial_guide": np.stack(guides), "modulation_params": params}
    frame_model = model.frame_model()
    logits = frame_model([values[t.name] for t in frame_model.inputs], training=False).numpy()[:, :height, :width]
    feeds = {"frame": tf.constant(frame), "masks": tf.constant(masks)}
    if model.visual_modulator is not None:
        feeds["modulation_params"] = tf.constant(params)
    served = loaded.signatures["segment_raw"](**feeds)
    assert served["logits"].shape == (2, height, width, 1)
    np.testing.assert_allclose(served["logits"], logits, atol=1e-2 * np.abs(logits).max())


def test_rest_client_float_signatures_follow_the_video_loop_at_the_models_encoding(exported, tmp_path):
    # tools/serving_client.py --base-model: the served model's mean and scale, and lite's padding.
    model, loaded = exported
    config = model.config
    frames, first = synthetic_video(num_frames=3, size=(90, 70))
    lite = config.base_model == "lite"

    send = route_to_saved_model(loaded)
    segmenter = client.ServingVideoSegmenter(
        client.json_predictor(send), working_size=WORKING, guide_size=config.guide_size,
        use_visual_modulator=model.visual_modulator is not None, input_mean=input_mean_of(config),
        input_scale=input_scale_of(config), pad=lite)
    got = list(segmenter.track(frames, first))
    expected = list(VideoSegmenter(model, working_size=WORKING, pad=lite).track(frames, first))
    for t, (result, answer) in enumerate(zip(expected, got)):
        np.testing.assert_array_equal(answer.labels, result.labels, err_msg=f"frame {t}")
        if t:
            np.testing.assert_allclose(answer.probabilities, result.probabilities, atol=1e-5, err_msg=f"frame {t}")
    # What was sent: the frame at the model's encoding, padded as VideoSegmenter pads it.
    image = np.asarray(next(b for b in send.bodies if b["signature_name"] == "segment")["inputs"]["image"])
    width, height = padded_size(WORKING) if lite else WORKING
    assert image.shape[1:] == (height, width, 3)
    np.testing.assert_allclose(image[0], VideoSegmenter(model, working_size=WORKING, pad=lite).prepare_frame(
        frames[1]), atol=1e-4 * input_scale_of(config))
    if lite:  # the tool: --base-model lite is the encoding and the padding
        from fake_serving import RestServer

        write_frames(tmp_path / "frames", frames)
        Image.fromarray(first).save(tmp_path / "first.png")
        with RestServer(model.saved_model_dir) as server:
            code, message = run_tool("serving_client", "--url", server.url, "--frames", tmp_path / "frames",
                                     "--first-mask", tmp_path / "first.png", "--output", tmp_path / "out",
                                     "--working-size", f"{WORKING[0]}x{WORKING[1]}", "--base-model", "lite")
        assert code == 0, message
        for t, result in enumerate(expected):
            np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / f"{t:05d}.png")), result.labels,
                                          err_msg=f"frame {t}")


def test_export_refuses_a_contradicting_base_model(tmp_path):
    model = small_osmn(0.125, base_model="masktrack")
    weights = tmp_path / "masktrack.keras"
    model.save(weights)
    code, message = run_tool("export", "--weights", weights, "--output", tmp_path / "out" / "1",
                             "--base-model", "lite")
    assert code != 0 and "\n" not in message
    assert "--base-model lite contradicts --weights" in message and "holds a masktrack model" in message
    assert not (tmp_path / "out" / "1").exists()


@pytest.mark.slow
@pytest.mark.large
@pytest.mark.parametrize("base_model", ["lite", "deeplab", "masktrack"])
def test_checkpoint_keras_reload_and_saved_model_give_the_originals_logits(base_model, tf1_checkpoint, tmp_path):
    """The original's fixture logits from the TF1 checkpoint, its converted .keras file and its SavedModel."""
    from osmn_tf.weights.checkpoints import load_model

    prefix = tf1_checkpoint(base_model)
    weights = tmp_path / f"{base_model}.keras"
    code, message = run_tool("convert_checkpoint", prefix, weights)
    assert code == 0, message
    output = tmp_path / "models" / "osmn" / "1"
    code, message = run_tool("export", "--weights", weights, "--output", output, "--no-warmup")
    assert code == 0, message
    f = base_model_fixture(base_model)
    inputs = {k: tf.constant(f[k].astype("float32")) for k in ("guide_image", "spatial_guide", "image")}
    converted, reloaded = load_model(prefix), load_model(weights)
    for name, model in (("converted", converted), ("reloaded", reloaded)):
        close(model([inputs[t.name] for t in model.inputs], training=False), f["logits"], name)
    served = tf.saved_model.load(str(output)).signatures["serving_default"]
    close(served(**{t.name: inputs[t.name] for t in reloaded.inputs})["logits"], f["logits"], "SavedModel")
