"""INT8 (the `int8` extra) for the other base models: tools/quantize.py then tools/segment.py --int8-model,
masks agreeing with float32; lite runs padded to multiples of 32 in both."""
import numpy as np
import pytest
from conftest import run_tool, small_osmn, synthetic_video
from PIL import Image

SIZE = (80, 60)  # not multiples of 32: lite pads to 96x64
FRAMES = 6
# Correlation of the INT8 network's logits with float32's on the calibration samples. Measured with
# small_osmn's random weights: lite 0.86 (0.92 on 6 samples), deeplab 0.98, masktrack 0.98 (osvos' masks
# agree with float32 on 0.985..0.992 of pixels, test_int8.py; these random models' logits are mostly near 0, so a mask agreement says little here).
# A network with lost weights or mixed-up inputs is far below.
MIN_CORRELATION = 0.8

pytestmark = pytest.mark.slow  # a quantization per base model, about 30 s each here


@pytest.mark.parametrize("base_model", ["lite", "deeplab", "masktrack"])
def test_quantize_then_segment_agrees_with_float32(base_model, tmp_path):
    from osmn_tf.data.davis import read_mask
    from osmn_tf.inference.segmenter import VideoSegmenter

    model = small_osmn(0.125, base_model=base_model)
    weights = tmp_path / "model.keras"
    model.save(weights)
    frames, first = synthetic_video(FRAMES, SIZE)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:05d}.png")
    Image.fromarray(first).save(tmp_path / "first.png")
    size = f"{SIZE[0]}x{SIZE[1]}"
    code, message = run_tool("quantize", "--weights", weights, "--base-model", base_model, "--frames", folder,
                             "--first-mask", tmp_path / "first.png", "--working-size", size,
                             "--output", tmp_path / "model.int8")
    assert code == 0, message
    code, message = run_tool("segment", "--weights", weights, "--base-model", base_model, "--frames", folder,
                             "--first-mask", tmp_path / "first.png", "--working-size", size,
                             "--output", tmp_path / "int8", "--int8-model", tmp_path / "model.int8")
    assert code == 0, message
    # The tool's masks are the library's with the saved INT8 network (lite padded in both).
    from osmn_tf.quantization import Int8FrameNetwork, calibration_samples

    pad = base_model == "lite"
    network = Int8FrameNetwork.load(tmp_path / "model.int8")
    expected = [r.labels for r in VideoSegmenter(model, SIZE, pad=pad, frame_network=network).track(frames, first)]
    for t in range(1, FRAMES):
        assert np.mean(read_mask(tmp_path / "int8" / f"{t:05d}.png") == expected[t]) >= 0.999, f"frame {t}"
    # The INT8 network computes the float32 network's logits, up to rounding.
    frame_model = model.frame_model(fold_batch_norm=True)
    samples = calibration_samples(model, [(iter(frames), first)], SIZE, FRAMES, pad=pad)
    floats = np.concatenate([np.ravel(frame_model([s[t.name] for t in frame_model.inputs], training=False))
                             for s in samples])
    int8 = np.concatenate([np.ravel(network(s)) for s in samples])
    correlation = np.corrcoef(floats, int8)[0, 1]
    print(f"{base_model}: INT8 logits correlate {correlation:.3f} with float32's")
    assert correlation >= MIN_CORRELATION, correlation


def test_quantize_and_segment_refuse_a_contradicting_base_model(small_weights, tmp_path):
    frames, first = synthetic_video(2, SIZE)
    Image.fromarray(first).save(tmp_path / "first.png")
    for tool, extra in (("quantize", []), ("segment", [])):
        code, message = run_tool(tool, "--weights", small_weights, "--base-model", "lite", "--frames", tmp_path,
                                 "--first-mask", tmp_path / "first.png", "--output", tmp_path / f"out_{tool}", *extra)
        assert code != 0 and "\n" not in message, message
        assert "--base-model lite contradicts --weights" in message and "holds a osvos model" in message
