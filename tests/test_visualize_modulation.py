"""The paper's modulation analyses (Figs. 5-7): MDS, object sources, tools/visualize_modulation.py."""
import json

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.distance import pdist

from osmn_tf import modulation_analysis as analysis
from osmn_tf.data.davis import write_mask
from osmn_tf.data.synthetic import SyntheticConfig, write_davis

from conftest import load_tool, run_tool, run_tool_process, small_osmn

# Each test trains, runs a tool end to end or builds full-size networks.
pytestmark = pytest.mark.slow

FIGURES = ("fig5_visual_mds.png", "fig6_visual_gamma.png", "fig7_spatial_scale.png")


def check_figures(folder, expected=FIGURES):
    for name in FIGURES:
        path = folder / name
        if name not in expected:
            assert not path.exists(), f"{name} should have been skipped"
            continue
        with Image.open(path) as image:
            assert image.format == "PNG"
            width, height = image.size
            grey = np.asarray(image.convert("L"))
        # Something is drawn: axes, bars and labels give many grey levels and dark pixels on white.
        assert len(np.unique(grey)) > 20 and np.mean(grey < 128) > 0.005, name
        assert 600 <= width <= 3000 and 400 <= height <= 3000, (name, image.size)
    assert not [p.name for p in folder.iterdir() if ".tmp-" in p.name], "a temporary file was left behind"


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory):
    """Two tiny synthetic sequences in the DAVIS 2017 layout."""
    root = tmp_path_factory.mktemp("davis")
    write_davis(root, SyntheticConfig(image_size=(64, 48), num_frames=2, max_objects=3), 2, split="val")
    return root


# ----------------------------------------------------------------------------
# Multi-dimensional scaling
# ----------------------------------------------------------------------------
def test_mds_recovers_points_that_lie_in_a_plane():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(25, 2)) * [3.0, 1.0]
    basis = np.linalg.qr(rng.normal(size=(40, 40)))[0][:, :2]  # orthonormal: distances kept
    vectors = plane @ basis.T + rng.normal(size=40)
    embedding = analysis.mds_embedding(vectors)
    assert embedding.shape == (25, 2)
    # Only rotation, reflection and translation are free: pairwise distances are exact.
    np.testing.assert_allclose(pdist(embedding), pdist(plane), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embedding.mean(axis=0), 0, atol=1e-9)


def test_mds_of_identical_vectors_and_bad_input():
    np.testing.assert_array_equal(analysis.mds_embedding(np.ones((4, 7))), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        analysis.mds_embedding(np.ones((1, 7)))
    with pytest.raises(ValueError, match="NaN"):
        analysis.mds_embedding([[0.0, 1.0], [np.nan, 2.0]])


# ----------------------------------------------------------------------------
# Objects and figures without a model file
# ----------------------------------------------------------------------------
def test_balanced_selection_spreads_the_cap_over_classes():
    objects = [analysis.AnalysisObject(f"o{i}", label, None) for i, label in enumerate("aaaaabbc")]
    chosen = analysis.balanced_selection(objects, 5)
    assert [o.name for o in chosen] == ["o0", "o1", "o5", "o6", "o7"]  # a, a, b, b, c in source order
    assert analysis.balanced_selection(objects, None) == objects


def test_layer_histograms_for_every_layout(tmp_path):
    rng = np.random.default_rng(1)
    layers = [f"conv{b}_{i}" for b in (1, 2) for i in (1, 2)] + [f"conv{b}_{i}" for b in (3, 4, 5) for i in (1, 2, 3)]
    gammas = {layer: rng.normal(1, 0.1, (6, 8)) for layer in layers}  # mod_early_conv: 13 layers
    analysis.save_figure(analysis.plot_visual_gamma_std(gammas), tmp_path / "f6.png")
    scales = {layer: np.abs(rng.normal(size=8)) for layer in layers[4:]}
    analysis.save_figure(analysis.plot_spatial_scale(scales), tmp_path / "f7.png")
    for name in ("f6.png", "f7.png"):
        with Image.open(tmp_path / name) as image:
            assert image.size[0] > 600
    stds = analysis.gamma_std_per_layer({"conv3_1": np.array([[1.0, 2.0], [3.0, 2.0]])})
    np.testing.assert_allclose(stds["conv3_1"], [1.0, 0.0])


def test_figures_are_drawn_from_the_modulators_own_numbers():
    """Figs. 5/6 read the visual modulator's output and Fig. 7 the spatial modulator's kernel, layer by layer."""
    model = small_osmn()
    objects = analysis.synthetic_objects(1, image_size=(64, 48))
    encoded = analysis.encode_objects(model, objects, batch_size=2)
    guides = np.stack([analysis.encoding.visual_guide(*o.load(), size=model.config.guide_size) for o in objects])
    params = np.asarray(model.visual_modulator(guides, training=False))
    # Width 0.125: conv3_x have 32 channels, conv4_x and conv5_x 64, in network order.
    assert params.shape == (len(objects), 3 * 32 + 6 * 64)
    np.testing.assert_allclose(encoded.gammas["conv3_1"], params[:, 0:32], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(encoded.gammas["conv4_2"], params[:, 96 + 64:96 + 128], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(encoded.gammas["conv5_3"], params[:, 96 + 320:96 + 384], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(encoded.vectors, params, rtol=1e-5, atol=1e-6)
    stds = analysis.gamma_std_per_layer(encoded.gammas)
    np.testing.assert_allclose(stds["conv4_2"], params[:, 160:224].astype(np.float64).std(axis=0), rtol=1e-5, atol=1e-6)
    assert stds["conv4_2"].max() > 0  # the objects' scales differ
    # Fig. 7: the spatial modulator's conv4 kernel weighs the guide into conv4_1..conv4_3's 3 x 64 channels.
    from osmn_tf.training.summaries import spatial_scales

    scales = spatial_scales(model)
    kernel = np.abs(np.asarray(model.spatial_modulator.get_layer("conv4").kernel)).reshape(-1)
    assert kernel.shape == (192,)
    np.testing.assert_array_equal(scales["conv4_2"], kernel[64:128])
    assert sorted(scales) == sorted(f"conv{b}_{i}" for b in (3, 4, 5) for i in (1, 2, 3))
    # The Fig. 6 histogram of conv4_2 counts each of its 64 channels once.
    figure = analysis.plot_visual_gamma_std(encoded.gammas)
    heights = [sum(bar.get_height() for bar in axis.patches) for axis in figure.axes if axis.patches]
    assert heights and all(h == 32 or h == 64 for h in heights) and sorted(heights).count(64) == 6


def test_davis_objects_take_classes_from_davis_semantics(davis_root):
    objects = analysis.davis_objects(davis_root)
    sequences = ["synth-val-0000", "synth-val-0001"]
    assert {o.label for o in objects} == set(sequences)  # no semantics file: the sequence name
    frame, mask = objects[0].load()
    assert frame.shape == (48, 64, 3) and mask.shape == (48, 64) and mask.any()

    semantics = davis_root / analysis.DAVIS_SEMANTICS_FILE
    semantics.write_text(json.dumps({sequences[0]: {"1": "person", "2": "dog"}}))
    try:
        labels = {o.name: o.label for o in analysis.davis_objects(davis_root)}
    finally:
        semantics.unlink()
    assert labels[f"{sequences[0]}/1"] == "person" and labels[f"{sequences[0]}/2"] == "dog"
    assert labels[f"{sequences[1]}/1"] == sequences[1]


def test_coco_objects_are_labelled_with_their_category(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    annotations = []
    for image_id, category in enumerate([1, 2, 1, 3], start=1):
        Image.fromarray(np.full((40, 50, 3), 60 * image_id, np.uint8)).save(images / f"{image_id}.png")
        box = [5, 5, 20, 15]  # x, y, w, h: 15% of the image
        annotations.append({"id": 10 + image_id, "image_id": image_id, "category_id": category, "iscrowd": 0,
                            "area": 300.0, "bbox": box,
                            "segmentation": [[5, 5, 25, 5, 25, 20, 5, 20]]})
    coco = {"images": [{"id": i, "file_name": f"{i}.png", "height": 40, "width": 50} for i in range(1, 5)],
            "annotations": annotations,
            "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}, {"id": 3, "name": "kite"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco))

    objects = analysis.coco_objects(path, images, max_objects=None, cache_dir=tmp_path)
    assert [(o.name, o.label) for o in objects] == [
        ("COCO annotation 11", "dog"), ("COCO annotation 12", "cat"), ("COCO annotation 13", "dog")]
    frame, mask = objects[1].load()
    assert frame.shape == (40, 50, 3) and mask.sum() > 200
    everything = analysis.coco_objects(path, images, max_objects=2, categories=None, cache_dir=tmp_path)
    assert [o.label for o in everything] == ["dog", "cat"]
    with pytest.raises(ValueError, match="none of the categories"):
        analysis.coco_objects(path, images, categories=("zebra",), cache_dir=tmp_path)


def test_write_figures_skips_what_the_model_lacks(tmp_path):
    objects = analysis.synthetic_objects(1, image_size=(64, 48))
    messages = []
    written = analysis.write_figures(small_osmn(use_spatial_modulator=False), objects, tmp_path, log=messages.append)
    assert sorted(written) == ["fig5", "fig6"]
    assert any("Fig. 7" in m and "no spatial modulator" in m for m in messages)
    check_figures(tmp_path, FIGURES[:2])

    messages.clear()
    never = []
    written = analysis.write_figures(small_osmn(use_visual_modulator=False), lambda: never.append(1) or [],
                                     tmp_path / "no_visual", log=messages.append)
    assert sorted(written) == ["fig7"] and not never  # objects are not even listed
    assert any("Fig. 5 and Fig. 6" in m and "no visual modulator" in m for m in messages)


# ----------------------------------------------------------------------------
# The tool, as users run it
# ----------------------------------------------------------------------------
def test_tool_on_synthetic_sequences(small_weights, tmp_path):
    result = run_tool_process("visualize_modulation", "--weights", small_weights, "--synthetic", 3,
                              "--synthetic-size", "64x48", "--output", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "objects in" in result.stdout and "classes" in result.stdout
    check_figures(tmp_path)


def test_tool_on_a_davis_folder(small_weights, davis_root, tmp_path):
    result = run_tool_process("visualize_modulation", "--weights", small_weights, "--davis-root", davis_root,
                              "--year", 2017, "--split", "val", "--max-objects", 3, "--output", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 objects in 2 classes" in result.stdout
    check_figures(tmp_path)


def test_tool_on_coco(small_weights, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(2)
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    for i in range(1, 5):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(images / f"{i}.jpg")
        coco["images"].append({"id": i, "file_name": f"{i}.jpg", "height": 40, "width": 50})
        coco["annotations"].append({"id": i, "image_id": i, "category_id": 1 + i % 2, "iscrowd": 0,
                                    "segmentation": [[4, 4, 30, 4, 30, 30, 4, 30]]})
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    code, message = run_tool("visualize_modulation", "--weights", small_weights,
                             "--coco-annotations", tmp_path / "instances.json", "--coco-images", images,
                             "--coco-categories", "all", "--quiet", "--output", tmp_path / "figs")
    assert code == 0, message
    check_figures(tmp_path / "figs")


def test_tool_bad_input(small_weights, davis_root, tmp_path):
    code, message = run_tool("visualize_modulation", "--weights", small_weights, "--davis-root", tmp_path / "nowhere",
                             "--output", tmp_path)
    assert code != 0 and "--davis-root" in message and "nowhere" in message
    code, message = run_tool("visualize_modulation", "--weights", tmp_path / "missing.keras", "--synthetic", 2,
                             "--output", tmp_path)
    assert code != 0 and "--weights" in message and "missing.keras" in message

    # A DAVIS split whose first annotations hold no object.
    empty = tmp_path / "empty"
    write_davis(empty, SyntheticConfig(image_size=(64, 48), num_frames=2, max_objects=2), 1, split="val")
    write_mask(empty / "Annotations" / "480p" / "synth-val-0000" / "00000.png", np.zeros((48, 64), np.uint8))
    code, message = run_tool("visualize_modulation", "--weights", small_weights, "--davis-root", empty,
                             "--output", tmp_path / "out")
    assert code != 0 and "no object" in message and "val.txt" in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

    with pytest.raises(SystemExit) as raised:  # two sources: argparse refuses, exit code 2
        load_tool("visualize_modulation").parse_args(["--weights", str(small_weights), "--synthetic", "2",
                                                      "--davis-root", str(davis_root), "--output", str(tmp_path)])
    assert raised.value.code == 2
