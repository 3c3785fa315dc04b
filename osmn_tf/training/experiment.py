"""What `tools/train.py` runs around the training loop: the data sources and the closing evaluation."""
import pathlib
import shutil

from osmn_tf.config import input_mean_of
from osmn_tf.data.davis import DavisDataset
from osmn_tf.evaluation import evaluate_davis, write_davis_csvs, write_first_mask_baseline
from osmn_tf.inference.jobs import segment_davis
from osmn_tf.training.samples import CocoSource, DavisTrainSource, YouTubeVOSTrainSource

EVAL_DIR = "eval"
BASELINE_DIR = "baseline_first_mask"
LATE_DIR = "late_entries"
LATE_SEQUENCES = 12


def synthetic_root(config, model_dir):
    return pathlib.Path(config.data_root) if config.data_root else pathlib.Path(model_dir) / "data"


def prepare_synthetic(config, model_dir, on_sequence=None):
    """Writes (or finds complete) the synthetic train and val splits; returns their root."""
    from osmn_tf.data.synthetic import SyntheticConfig, write_davis

    root = synthetic_root(config, model_dir)
    synthetic = SyntheticConfig(image_size=config.image_size, seed=config.seed)
    for split, count in zip(("train", "val"), config.synthetic_sequences):
        write_davis(root, synthetic, count, split=split, on_sequence=on_sequence)
    return root


def make_sources(config, model_dir, on_sequence=None):
    """`(training source, validation source)` for `config.dataset`.

    COCO reads `annotations/instances_train2017.json` with `train2017/`, and
    `val2017` for validation when present; DAVIS reads the `train` split,
    and `val` for validation when listed; YouTube-VOS reads `train` (its
    other splits annotate first appearances only: no validation source). The validation source samples like
    the training one (same augmentations) from held-out data.
    """
    size, scales = config.image_size, config.scales
    perturb, augment = config.spatial_perturbation(), config.visual_augmentation()
    mean = input_mean_of(config.model)
    if config.dataset == "coco":
        root = pathlib.Path(config.data_root)

        def coco(split):
            return CocoSource(root / "annotations" / f"instances_{split}2017.json", root / f"{split}2017",
                              image_size=size, scales=scales, guide_size=config.model.guide_size,
                              spatial_perturb=perturb, visual_augment=augment, mean=mean,
                              use_original_mask=config.use_original_mask, bbox_sup=config.bbox_sup,
                              random_crop_ratio=config.random_crop_ratio)

        train = coco("train")
        has_val = (root / "annotations" / "instances_val2017.json").is_file()
        return train, (coco("val") if has_val else None)
    if config.dataset == "youtube-vos":
        return YouTubeVOSTrainSource(config.data_root, split="train", image_size=size, scales=scales,
                                     label_valid_ratio=config.label_valid_ratio,
                                     bbox_valid_ratio=config.bbox_valid_ratio, random_guide=config.random_guide,
                                     bbox_sup=config.bbox_sup, spatial_perturb=perturb, visual_augment=augment,
                                     mean=mean, use_original_mask=config.use_original_mask,
                                     guide_size=config.model.guide_size), None
    if config.dataset == "synthetic":
        root = prepare_synthetic(config, model_dir, on_sequence)
    else:
        root = pathlib.Path(config.data_root)

    def davis(split):
        return DavisTrainSource(root, split=split, image_size=size, scales=scales, guide_size=config.model.guide_size,
                                spatial_perturb=perturb, visual_augment=augment, mean=mean,
                                use_original_mask=config.use_original_mask, bbox_sup=config.bbox_sup,
                                random_guide=config.random_guide,
                                skip_blank_frames=config.skip_blank_frames, label_valid_ratio=config.label_valid_ratio,
                                bbox_valid_ratio=config.bbox_valid_ratio)

    train = davis("train")
    has_val = (root / "ImageSets" / "2017" / "val.txt").is_file()
    if not has_val:
        return train, None
    return train, davis("val")


def evaluate_on_split(model, davis_root, output_dir, working_size, split="val", progress=None):
    """Segments a DAVIS-layout split with `model`, scores it and the first-mask baseline.

    Writes `output_dir/<sequence>/*.png` and the official CSVs in `output_dir`,
    the same for the baseline in `output_dir/baseline_first_mask`. Returns
    `(model results, baseline results)` (`osmn_tf.evaluation.DavisResults`).
    """
    from osmn_tf.inference.segmenter import VideoSegmenter

    output_dir = pathlib.Path(output_dir)
    dataset = DavisDataset(davis_root, year=2017, split=split)
    # Results from an earlier model would be scored as this one's.
    for sequence in dataset.sequences:
        shutil.rmtree(output_dir / sequence, ignore_errors=True)
    segment_davis(VideoSegmenter(model, working_size), dataset, output_dir, progress=progress)
    results = evaluate_davis(davis_root, output_dir, split=split)
    write_davis_csvs(results, output_dir, split=split)
    baseline_dir = output_dir / BASELINE_DIR
    write_first_mask_baseline(dataset, baseline_dir)
    baseline = evaluate_davis(davis_root, baseline_dir, split=split)
    write_davis_csvs(baseline, baseline_dir, split=split)
    return results, baseline


def evaluate_late_entries(model, config, model_dir, output_dir, working_size, progress=None, count=LATE_SEQUENCES):
    """The synthetic validation sequences with objects that enter later, scored with and without their annotations.

    `count` sequences of the run's synthetic config with every
    object after the first entering later (`late_entry_prob` 1), in the
    YouTube-VOS layout under the data root's `late_entries/`; segmented into
    `output_dir/with_late_annotations` (each object from its first
    annotation) and `output_dir/first_frame_only`, each scored with
    `youtube_vos_eval` (CSVs beside the masks). Returns `{name: YouTubeVOSResults}`.
    """
    import dataclasses

    from osmn_tf.data.synthetic import SyntheticConfig, write_youtube_vos
    from osmn_tf.data.youtube_vos import YouTubeVOS
    from osmn_tf.evaluation.youtube_vos import evaluate_youtube_vos, write_csvs
    from osmn_tf.inference.jobs import segment_youtube_vos
    from osmn_tf.inference.segmenter import VideoSegmenter

    data = synthetic_root(config, model_dir) / LATE_DIR
    synthetic = dataclasses.replace(SyntheticConfig(image_size=config.image_size, seed=config.seed),
                                    late_entry_prob=1.0)
    write_youtube_vos(data, synthetic, count, split="valid")
    dataset = YouTubeVOS(data, "valid")
    segmenter = VideoSegmenter(model, working_size)
    results = {}
    for name, late in (("with_late_annotations", True), ("first_frame_only", False)):
        target = pathlib.Path(output_dir) / name
        shutil.rmtree(target, ignore_errors=True)  # results of an earlier model would be scored as this one's
        segment_youtube_vos(segmenter, dataset, target, progress=progress, late_annotations=late)
        results[name] = evaluate_youtube_vos(data, target, "valid")
        write_csvs(results[name], target, "valid")
    return results
