"""The release's command-line options built in osmn_tf (docs/release_options.md): each reaches what it changes."""
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from conftest import load_tool
from osmn_tf.data.frames import MEAN_BGR
from osmn_tf.data.guides import VisualGuideAugmentation, visual_guide
from osmn_tf.data.synthetic import SyntheticConfig, write_davis
from osmn_tf.training.config import TrainConfig
from osmn_tf.training.experiment import make_sources

SIZE = 64


def scene(box=(10, 20, 50, 30), size=(80, 60), seed=0):
    """A noisy frame and a mask of the box `(x0, y0, x1, y1)` (exclusive ends)."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    mask = np.zeros(size[::-1], np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 1
    return frame, mask


def as_rgb(guide):
    """A guide (BGR minus the mean, scale 1) back to uint8 RGB."""
    return np.rint(guide + np.asarray(MEAN_BGR, np.float32))[:, :, ::-1].astype(np.uint8)


def test_vg_color_aug_scales_brightness_then_contrast_by_factors_in_the_releases_range():
    frame, mask = scene()
    still = dict(crop_ratio=0.0, max_rotation=0.0, flip_prob=0.0)
    # bbox_sup keeps the whole crop, so the unaugmented guide gives the image the enhancement works on.
    plain = visual_guide(frame, mask, augment=VisualGuideAugmentation(**still), rng=np.random.default_rng(5),
                         bbox_sup=True, size=SIZE)
    coloured = visual_guide(frame, mask, augment=VisualGuideAugmentation(**still, color_aug=True),
                            rng=np.random.default_rng(5), bbox_sup=True, size=SIZE)
    rng = np.random.default_rng(5)
    rng.uniform(size=4), rng.uniform(), rng.random()  # the crop's four sides, the angle, the flip
    brightness, contrast = rng.uniform(0.8, 1.3, 2)
    image = Image.fromarray(as_rgb(plain))
    expected = ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(brightness)).enhance(contrast)
    np.testing.assert_array_equal(as_rgb(coloured), np.asarray(expected))
    assert not np.array_equal(coloured, plain)


def test_vg_keep_aspect_ratio_fits_the_box_undistorted_and_centred():
    frame, mask = scene(box=(10, 20, 51, 31))  # 40 x 10 after the release's one-pixel crop quirk
    stretched = visual_guide(frame, mask, pad_ratio=0.0, size=SIZE)
    kept = visual_guide(frame, mask, pad_ratio=0.0, size=SIZE, keep_aspect_ratio=True)
    rows = np.flatnonzero(np.abs(kept).sum(axis=(1, 2)) > 0)
    height = int(SIZE * 10 / 40)
    assert rows[0] == (SIZE - height) // 2 and len(rows) == height
    assert (np.abs(stretched).sum(axis=(1, 2)) > 0).all()
    # The training augmentation carries it too.
    augment = VisualGuideAugmentation(crop_ratio=0.0, max_rotation=0.0, flip_prob=0.0, keep_aspect_ratio=True)
    trained = visual_guide(frame, mask, pad_ratio=0.0, augment=augment, rng=np.random.default_rng(0), size=SIZE)
    np.testing.assert_array_equal(trained, kept)


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis")
    write_davis(root, SyntheticConfig(image_size=(64, 48), num_frames=4), 2, split="train")
    return root


def test_vg_training_options_reach_every_source(davis_root, tmp_path):
    tool = load_tool("train")
    args = tool.parse_args(["--stage", "davis", "--data-root", str(davis_root), "--vg-random-crop-ratio", "0.2",
                            "--vg-random-rotate-angle", "25", "--vg-color-aug", "--vg-keep-aspect-ratio"])
    config = tool.make_config(args)
    expected = VisualGuideAugmentation(crop_ratio=0.2, max_rotation=25.0, color_aug=True, keep_aspect_ratio=True)
    assert config.visual_augmentation() == expected
    source, _ = make_sources(config, tmp_path)
    assert source.visual_augment == expected
    defaults = tool.make_config(tool.parse_args(["--stage", "davis", "--data-root", str(davis_root)]))
    assert defaults.visual_augmentation() == VisualGuideAugmentation()  # the release's 0.1, 10, off, off
    assert make_sources(defaults, tmp_path)[0].visual_augment == VisualGuideAugmentation()
    with pytest.raises(ValueError, match="vg_random_crop_ratio must be in"):
        TrainConfig(vg_random_crop_ratio=0.7)
    with pytest.raises(ValueError, match="vg_random_rotate_angle must be in"):
        TrainConfig(vg_random_rotate_angle=-1)


def test_label_and_bbox_valid_ratios_reach_the_davis_source(davis_root, tmp_path):
    tool = load_tool("train")
    config = tool.make_config(tool.parse_args(["--stage", "davis", "--data-root", str(davis_root),
                                               "--label-valid-ratio", "0.5", "--bbox-valid-ratio", "0.9"]))
    source, _ = make_sources(config, tmp_path)
    assert (source.label_valid_ratio, source.bbox_valid_ratio) == (0.5, 0.9)
    # No synthetic object covers half the frame: every guide falls back to frame 0.
    name, object_id, _, _ = source.item(0)
    assert source.valid_frames(name, object_id) == [0]
    with pytest.raises(ValueError, match="bbox_valid_ratio must be in"):
        TrainConfig(bbox_valid_ratio=1.0)


@pytest.mark.slow
def test_vg_pad_ratio_and_keep_aspect_ratio_reach_the_segmenters_guides(small_model):
    from osmn_tf.inference.segmenter import VideoSegmenter

    frame, mask = scene(box=(10, 20, 51, 31))
    size = small_model.config.guide_size

    def params(**guide):
        segmenter = VideoSegmenter(small_model, (64, 48), **{f"guide_{k}": v for k, v in guide.items()})
        return segmenter.encode_objects(frame, mask, (1,))

    def direct(**guide):
        return VideoSegmenter(small_model, (64, 48)).encode_guides(visual_guide(frame, mask, size=size, **guide)[None])

    np.testing.assert_array_equal(params(), direct(pad_ratio=0.03))
    np.testing.assert_array_equal(params(pad_ratio=0.2), direct(pad_ratio=0.2))
    np.testing.assert_array_equal(params(keep_aspect_ratio=True), direct(keep_aspect_ratio=True))
    assert not np.allclose(params(pad_ratio=0.2), params())
    with pytest.raises(ValueError, match="guide_pad_ratio must be"):
        VideoSegmenter(small_model, (64, 48), guide_pad_ratio=-0.6)


def test_segment_tool_passes_the_guide_options(tmp_path, monkeypatch):
    tool = load_tool("segment")
    made = {}
    import segment_run

    monkeypatch.setattr(segment_run, "segment", lambda request: made.setdefault("request", request))
    tool.main(["--weights", "w", "--davis-root", str(tmp_path), "--output", str(tmp_path / "o"),
               "--vg-pad-ratio", "0.1", "--vg-keep-aspect-ratio"])
    request = made["request"]
    assert (request.vg_pad_ratio, request.vg_keep_aspect_ratio) == (0.1, True)
    assert segment_run._made_from(request)["visual guide pad ratio"] == 0.1
    default = tool.parse_args(["--weights", "w", "--davis-root", "r", "--output", "o"])
    assert (default.vg_pad_ratio, default.vg_keep_aspect_ratio) == (0.03, False)
    with pytest.raises(SystemExit):
        tool.parse_args(["--weights", "w", "--davis-root", "r", "--output", "o", "--vg-pad-ratio", "-0.7"])


def test_input_scale_multiplies_the_frame_and_visual_guide_the_model_sees():
    import osmn_tf
    from osmn_tf.training.pipeline import model_inputs

    rng = np.random.default_rng(0)
    batch = {"guide_image": rng.normal(size=(1, 64, 64, 3)).astype(np.float32),
             "spatial_guide": rng.random((1, 48, 64, 1)).astype(np.float32),
             "image": rng.normal(size=(1, 48, 64, 3)).astype(np.float32)}
    for scale in (None, 1.0, 0.25):
        model = osmn_tf.build_osmn(width=0.125, guide_size=64, input_scale=scale)
        factor = 1.0 if scale is None else scale
        inputs = dict(zip([t.name.split(":")[0] for t in model.inputs], model_inputs(model, batch)))
        np.testing.assert_array_equal(np.asarray(inputs["image"]), batch["image"] * factor)
        np.testing.assert_array_equal(np.asarray(inputs["guide_image"]), batch["guide_image"] * factor)
        np.testing.assert_array_equal(np.asarray(inputs["spatial_guide"]), batch["spatial_guide"])


def test_train_tool_model_flags_set_the_model_config():
    tool = load_tool("train")
    # The demo preset modulates conv1/conv2, which lite has not: the release's stages.
    lite = tool.make_config(tool.parse_args(["--stage", "coco", "--data-root", "x", "--base-model", "lite",
                                             "--input-scale", "0.01"]))
    assert (lite.model.base_model, lite.model.input_scale) == ("lite", 0.01)
    masktrack = tool.make_config(tool.parse_args(["--stage", "davis", "--data-root", "x", "--base-model", "masktrack",
                                                  "--aligned-size", "865x481"]))
    assert (masktrack.model.base_model, masktrack.model.aligned_size) == ("masktrack", (865, 481))
    default = tool.make_config(tool.parse_args([]))
    assert (default.model.base_model, default.model.aligned_size, default.model.input_scale) == ("osvos", None, None)
    with pytest.raises(ValueError, match="aligned_size is a masktrack option"):
        tool.make_config(tool.parse_args(["--aligned-size", "865x481"]))


def test_bbox_sup_reaches_the_segmenters_guides(small_model, tmp_path, monkeypatch):
    from osmn_tf.inference.segmenter import VideoSegmenter
    import segment_run

    frame, mask = scene()
    size = small_model.config.guide_size
    unmasked = VideoSegmenter(small_model, (64, 48), guide_bbox_sup=True)
    np.testing.assert_array_equal(unmasked.encode_objects(frame, mask, (1,)),
                                  unmasked.encode_guides(visual_guide(frame, mask, size=size, bbox_sup=True)[None]))
    assert not np.allclose(unmasked.encode_objects(frame, mask, (1,)),
                           VideoSegmenter(small_model, (64, 48)).encode_objects(frame, mask, (1,)))
    made = {}
    tool = load_tool("segment")
    monkeypatch.setattr(segment_run, "segment", lambda request: made.setdefault("request", request))
    tool.main(["--weights", "w", "--davis-root", str(tmp_path), "--output", str(tmp_path / "o"), "--bbox-sup"])
    assert made["request"].bbox_sup is True


@pytest.mark.slow
def test_use_original_mask_reaches_the_segmenter_of_a_masktrack_model(tmp_path, small_weights):
    from conftest import small_osmn
    import segment_run

    path = tmp_path / "masktrack.keras"
    small_osmn(base_model="masktrack").save(path)
    tool = load_tool("segment")
    args = tool.parse_args(["--weights", str(path), "--davis-root", "r", "--output", "o", "--use-original-mask"])
    assert args.use_original_mask and not tool.parse_args(["--weights", "w", "--davis-root", "r",
                                                           "--output", "o"]).use_original_mask
    request = segment_run.SegmentRequest(weights=str(path), output=str(tmp_path / "o"), use_original_mask=True,
                                         working_size=(64, 48))
    assert segment_run._segmenter(request, log=lambda *a: None).use_original_mask
    plain = segment_run.SegmentRequest(weights=str(path), output=str(tmp_path / "o"), working_size=(64, 48))
    assert not segment_run._segmenter(plain, log=lambda *a: None).use_original_mask
    wrong = segment_run.SegmentRequest(weights=str(small_weights), output=str(tmp_path / "o"), use_original_mask=True,
                                       working_size=(64, 48))
    with pytest.raises(ValueError, match="--use-original-mask is masktrack's spatial guide"):
        segment_run._segmenter(wrong, log=lambda *a: None)


@pytest.mark.slow
def test_vis_mod_and_seg_model_paths_load_imagenet_weights_into_one_part_each(tmp_path):
    import tensorflow as tf

    from osmn_tf.config import OSMNConfig
    from osmn_tf.training.trainer import Trainer
    from test_imagenet import vgg16_layers, write_keras_h5

    modulator_file = write_keras_h5(tmp_path / "a.h5", vgg16_layers(seed=1))
    segmentation_file = write_keras_h5(tmp_path / "b.h5", vgg16_layers(seed=2))
    tool = load_tool("train")
    config = tool.make_config(tool.parse_args([
        "--stage", "coco", "--data-root", str(tmp_path), "--width", "0.125",
        "--vis-mod-model-path", modulator_file, "--seg-model-path", segmentation_file]))
    assert (config.vis_mod_model_path, config.seg_model_path) == (modulator_file, segmentation_file)
    model = Trainer(config, None, tf.distribute.get_strategy(), tmp_path / "run", log=None).model
    for network, seed in ((model.visual_modulator, 1), (model.segmentation_network, 2)):
        kernel, bias = vgg16_layers(seed=seed)[(1, 1)]
        np.testing.assert_array_equal(network.get_layer("conv1_1").kernel, kernel)
        np.testing.assert_array_equal(network.get_layer("conv1_1").bias, bias)
    np.testing.assert_array_equal(model.visual_modulator.get_layer("fc6").bias, vgg16_layers(seed=1)["fc6"][1])
    # One part only: the other keeps its initialiser.
    only = Trainer(TrainConfig(model=OSMNConfig(width=0.125), vis_mod_model_path=modulator_file), None,
                   tf.distribute.get_strategy(), tmp_path / "run2", log=None).model
    assert not np.array_equal(only.segmentation_network.get_layer("conv1_1").kernel, vgg16_layers(seed=1)[(1, 1)][0])
    np.testing.assert_array_equal(only.visual_modulator.get_layer("conv1_1").kernel, vgg16_layers(seed=1)[(1, 1)][0])


@pytest.mark.slow
def test_input_mean_is_what_the_segmenter_and_the_sources_subtract(small_model, davis_root, tmp_path):
    import dataclasses

    import osmn_tf
    from osmn_tf.config import OSMNConfig
    from osmn_tf.data.frames import preprocess_frame
    from osmn_tf.inference.segmenter import VideoSegmenter

    mean = (90.0, 100.0, 110.0)
    model = osmn_tf.build_osmn(config=dataclasses.replace(small_model.config, input_mean=mean))
    model.set_weights(small_model.get_weights())
    frame, mask = scene()
    segmenter = VideoSegmenter(model, (64, 48))
    expected = preprocess_frame(frame, (64, 48), mean=(0.0, 0.0, 0.0)) - np.asarray(mean, np.float32)
    np.testing.assert_array_equal(segmenter.prepare_frame(frame), expected)
    guide = visual_guide(frame, mask, size=model.config.guide_size, mean=mean)
    np.testing.assert_array_equal(segmenter.encode_objects(frame, mask, (1,)), segmenter.encode_guides(guide[None]))
    # Saved with the model.
    model.save(tmp_path / "m.keras")
    assert osmn_tf.load_model(str(tmp_path / "m.keras")).config.input_mean == mean
    # Training: every source subtracts the model's mean (pixels off the object stay 0 in the guide).
    tool = load_tool("train")
    config = tool.make_config(tool.parse_args(["--stage", "davis", "--data-root", str(davis_root), "--width", "0.125",
                                               "--input-mean", *map(str, mean)]))
    assert config.model.input_mean == mean
    plain = make_sources(config.replace(model=OSMNConfig(width=0.125)), tmp_path)[0].batch(0, 2, seed=0)
    shifted = make_sources(config, tmp_path)[0].batch(0, 2, seed=0)
    difference = np.asarray((104.0, 117.0, 123.0), np.float32) - np.asarray(mean, np.float32)
    np.testing.assert_array_equal(shifted["image"] - plain["image"], np.broadcast_to(difference, plain["image"].shape))
    on_object = np.abs(plain["guide_image"]).sum(axis=-1) > 0
    np.testing.assert_array_equal((shifted["guide_image"] - plain["guide_image"])[on_object],
                                  np.broadcast_to(difference, (on_object.sum(), 3)))
    np.testing.assert_array_equal(shifted["guide_image"][~on_object], 0)
    # INT8: its calibration samples (and later its inputs) are the segmenter's frames, with the model's mean.
    from osmn_tf.quantization.calibration import calibration_samples

    first = np.where(mask > 0, 1, 0).astype(np.uint8)
    samples = calibration_samples(model, [([frame, frame], first)], (64, 48), frames_per_video=2)
    np.testing.assert_array_equal(samples[0]["image"][0], expected)
    with pytest.raises(ValueError, match="input_mean must be three"):
        OSMNConfig(input_mean=(1.0, 2.0))


@pytest.mark.slow
def test_use_full_res_cuts_guides_from_the_full_resolution_frames_and_writes_480p_masks(tmp_path, small_weights):
    from conftest import run_tool
    from osmn_tf.data.davis import read_mask
    from osmn_tf.data.frames import load_rgb, resize_mask
    from osmn_tf.inference.segmenter import VideoSegmenter
    from osmn_tf.weights.checkpoints import load_model

    root = tmp_path / "davis"
    (sequence,) = write_davis(root, SyntheticConfig(image_size=(64, 48), num_frames=3), 1, split="val")
    # Full-Resolution frames twice the size, and different (colours inverted): the results must be theirs.
    full_dir = root / "JPEGImages" / "Full-Resolution" / sequence
    full_dir.mkdir(parents=True)
    for path in sorted((root / "JPEGImages" / "480p" / sequence).glob("*.jpg")):
        Image.fromarray(255 - load_rgb(path)).resize((128, 96), Image.BILINEAR).save(full_dir / path.name, quality=95)
    common = ["--weights", small_weights, "--davis-root", root, "--working-size", "64x48"]
    code, text = run_tool("segment", *common, "--output", tmp_path / "full", "--use-full-res")
    assert code == 0, text
    code, text = run_tool("segment", *common, "--output", tmp_path / "plain")
    assert code == 0, text
    first = read_mask(root / "Annotations" / "480p" / sequence / "00000.png")
    frames = [load_rgb(p) for p in sorted(full_dir.glob("*.jpg"))]
    expected = [resize_mask(labels, (64, 48)) for labels in
                VideoSegmenter(load_model(str(small_weights)), (64, 48)).segment(frames, resize_mask(first, (128, 96)))]
    written = [read_mask(p) for p in sorted((tmp_path / "full" / sequence).glob("*.png"))]
    plain = [read_mask(p) for p in sorted((tmp_path / "plain" / sequence).glob("*.png"))]
    assert [w.shape for w in written] == [(48, 64)] * 3
    for a, b in zip(written[1:], expected[1:]):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(written[1:], plain[1:]))
    with pytest.raises(SystemExit):
        load_tool("segment").parse_args(["--weights", "w", "--youtube-vos-root", "r", "--output", "o", "--use-full-res"])


def test_perturbed_mask_moves_and_resizes_the_objects_box_by_the_drawn_amounts():
    from osmn_tf.data.mask_guides import perturbed_mask

    mask = np.zeros((60, 80), np.uint8)
    mask[20:40, 20:60] = 1  # box 40 x 20, inclusive extremes 20..59, 20..39: it stays inside the frame
    for seed in range(5):
        out = perturbed_mask(mask, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        factor = rng.uniform(0.8, 1.2)
        shift = rng.uniform(-0.2, 0.2, 2) * np.array([39, 19])
        ys, xs = np.nonzero(out)
        assert set(np.unique(out)) == {0.0, 1.0}
        # A full rectangle of the resized size (rounded), centred on the shifted centre (within a pixel).
        assert (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) == (round(40 * factor), round(20 * factor))
        assert out[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()
        centre = np.array([(xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2])
        assert np.all(np.abs(centre - (np.array([39, 29]) + shift)) <= 1.5)
    assert not perturbed_mask(np.zeros((8, 8)), np.random.default_rng(0)).any()


def test_use_original_mask_gives_masktrack_training_its_dilated_mask_guides(davis_root, tmp_path):
    tool = load_tool("train")
    flags = ["--stage", "davis", "--data-root", str(davis_root), "--width", "0.125", "--base-model", "masktrack"]
    config = tool.make_config(tool.parse_args(flags + ["--use-original-mask"]))
    assert config.use_original_mask
    source = make_sources(config, tmp_path)[0]
    assert source.use_original_mask
    guides = source.batch(0, 4, seed=0)["spatial_guide"]
    assert set(np.unique(guides)) == {0.0, 255.0}
    gaussian = make_sources(tool.make_config(tool.parse_args(flags)), tmp_path)[0].batch(0, 4, seed=0)["spatial_guide"]
    assert gaussian.max() <= 1.0
    with pytest.raises(ValueError, match="use_original_mask is masktrack's spatial guide"):
        tool.make_config(tool.parse_args(["--stage", "davis", "--data-root", "x", "--use-original-mask"]))
