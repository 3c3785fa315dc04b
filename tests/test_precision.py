"""`precision="auto"`: what it picks from the CPU's flags, what the tool says, and parity on a trained model."""
import numpy as np
import pytest

from conftest import run_tool, synthetic_video, write_frames
from osmn_tf.data.davis import read_mask, write_mask
from osmn_tf.inference import segmenter as segmenter_module
from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.utils import precision


@pytest.mark.parametrize("flags, gpu, expected", [
    ({"avx512f", "avx512_bf16"}, False, "mixed_bfloat16"),   # AMD Zen 4, Intel Cooper Lake
    ({"avx512f", "amx_bf16", "amx_tile"}, False, "mixed_bfloat16"),  # Intel Sapphire Rapids and later
    ({"avx2", "fma"}, False, "float32"),                     # no bfloat16 arithmetic: oneDNN would emulate it
    ({"avx512_bf16"}, True, "float32"),                      # a GPU's 16-bit speed is not measured here
])
def test_auto_picks_bfloat16_only_where_the_cpu_computes_it(flags, gpu, expected):
    assert precision.auto_precision(frozenset(flags), gpu=gpu) == expected


def test_auto_is_refused_where_a_concrete_precision_is_needed():
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.check_precision("auto")
    assert precision.resolve_precision("mixed_float16") == "mixed_float16"
    with pytest.raises(ValueError, match="'bf16'"):
        precision.resolve_precision("bf16")


def test_segmenter_with_auto_runs_the_precision_this_cpu_gets(small_model, monkeypatch):
    monkeypatch.setattr(precision, "has_gpu", lambda: False)  # the same on a machine with a GPU
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", frozenset({"avx512_bf16"})))
    assert VideoSegmenter(small_model, (64, 48), precision="auto").precision == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", frozenset({"avx2"})))
    assert VideoSegmenter(small_model, (64, 48), precision="auto").precision == "float32"


@pytest.mark.parametrize("flags, says", [
    ({"avx512_bf16"}, "precision float32; this CPU has AVX512_BF16: --precision auto (mixed_bfloat16) runs the "
                      "network faster"),
    ({"avx2"}, "precision float32\n"),
])
@pytest.mark.slow
def test_tool_says_once_which_precision_would_be_faster(tmp_path, small_weights, monkeypatch, capsys, flags, says):
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", frozenset(flags)))
    monkeypatch.setattr(precision, "has_gpu", lambda: False)
    frames, first = synthetic_video()
    write_frames(tmp_path / "frames", frames, ".jpg")
    write_mask(tmp_path / "first.png", first)
    common = ["--weights", small_weights, "--frames", tmp_path / "frames", "--first-mask", tmp_path / "first.png",
              "--working-size", "64x48"]
    assert run_tool("segment", *common, "--output", tmp_path / "f32")[0] == 0
    out = capsys.readouterr().out
    assert out.count(says) == 1, out
    built = []

    class Recording(VideoSegmenter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self.precision)

    monkeypatch.setattr(segmenter_module, "VideoSegmenter", Recording)
    assert run_tool("segment", *common, "--output", tmp_path / "auto", "--precision", "auto")[0] == 0
    expected = "mixed_bfloat16" if "avx512_bf16" in flags else "float32"
    assert built == [expected]
    assert f"precision auto: {expected} on this CPU (Test CPU)" in capsys.readouterr().out
    # Frame 1: both runs start from the same first mask (later frames compound a random model's flips).
    same = np.mean(read_mask(tmp_path / "auto" / "00001.png") == read_mask(tmp_path / "f32" / "00001.png"))
    assert same >= 0.99 and (expected == "mixed_bfloat16" or same == 1.0), same


@pytest.mark.slow
def test_trained_parity_compares_every_precision_with_float32(tmp_path, small_model):
    """The mechanics on a small model: float32 against itself, and bfloat16's own masks and score."""
    from osmn_tf.benchmarks.parity import trained_parity
    from osmn_tf.data.synthetic import SyntheticConfig, write_davis
    from osmn_tf.evaluation import evaluate_davis

    root = tmp_path / "davis"
    write_davis(root, SyntheticConfig(image_size=(64, 48), num_frames=5, seed=3), 2, split="val")
    parity = trained_parity(small_model, root, (64, 48), ["mixed_bfloat16"], tmp_path / "out")
    assert set(parity) == {"float32", "mixed_bfloat16"}
    assert parity["float32"].mask_agreement == 1.0 and parity["float32"].j_and_f_difference == 0.0
    for name, row in parity.items():
        score = evaluate_davis(root, tmp_path / "out" / name, "val").global_metrics["J&F-Mean"]
        assert row.j_and_f == pytest.approx(score)
    bf16 = parity["mixed_bfloat16"]
    assert bf16.j_and_f_difference == pytest.approx(bf16.j_and_f - parity["float32"].j_and_f)
    # Its own masks were written and compared: not float32's copied.
    assert (tmp_path / "out" / "mixed_bfloat16").is_dir() and 0.9 < bf16.mask_agreement <= 1.0
    with pytest.raises(ValueError, match="not in"):
        trained_parity(small_model, root, (64, 48), [], tmp_path / "out2", sequences=["nope"])


def test_cpu_flags_read_here_are_py_cpuinfos():
    import cpuinfo

    precision.cpu_info.cache_clear()
    try:
        brand, flags = precision.cpu_info()
    finally:
        precision.cpu_info.cache_clear()
    theirs = cpuinfo.get_cpu_info()
    assert len(flags) > 10 and brand
    assert precision.cpu_bfloat16_flags(flags) == precision.cpu_bfloat16_flags(frozenset(theirs["flags"]))
    assert {"sse2", "avx", "avx2", "fma"} & flags == {"sse2", "avx", "avx2", "fma"} & set(theirs["flags"])
