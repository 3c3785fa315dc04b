"""What a training run does, as one dataclass, and the presets of the release's training stages."""
import dataclasses
import json
import math

from osmn_tf.config import OSMNConfig
from osmn_tf.data.guides import SpatialGuidePerturbation, VisualGuideAugmentation
from osmn_tf.utils.precision import check_precision

DATASETS = ("synthetic", "coco", "davis", "youtube-vos")
VISUAL_MODULATOR_INITS = ("keras", "he")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run. Defaults are the embedded CPU demo's data, sizes and
    schedule with the release's model and optimiser options; the `demo`
    preset adds its small model and its choices for training from random
    weights (`PRESETS`).

    Attributes:
        dataset: `synthetic` (generated into `data_root`), `coco`, `davis` or
            `youtube-vos`.
        data_root: the dataset's folder (COCO: with `annotations/` and
            `<split>2017/`; DAVIS: the standard layout; YouTube-VOS: the root
            holding `train/` with `JPEGImages/`, `Annotations/`, `meta.json`;
            synthetic: where it is written, default `<model_dir>/data`).
        image_size: `(W, H)` of training frames at scale 1.
        scales: one drawn per batch, multiplying `image_size` (SPEC 7).
        vg_random_crop_ratio, vg_random_rotate_angle, vg_color_aug,
            vg_keep_aspect_ratio: the visual guide's training augmentation
            (`osmn_tf.data.guides.VisualGuideAugmentation`: each side of the
            crop moved by up to this fraction, rotation by up to this many
            degrees, brightness/contrast jitter, fit without distortion);
            the release's 0.1, 10, off, off by default.
        label_valid_ratio, bbox_valid_ratio: DAVIS and YouTube-VOS: a frame is
            a valid visual guide when the object covers more than these
            fractions of the image and of its bounding box (0.003, 0.2).
        sg_center_perturb_ratio, sg_std_perturb_ratio: how far the spatial
            guide's centre and scale are perturbed in training, in units of its
            scale (`osmn_tf.data.guides.SpatialGuidePerturbation`; the release's
            0.2 and 0.4 by default).
        batch_size: the global batch, split over replicas.
        accumulation: micro-batches of `batch_size` whose gradients are added
            before each optimizer step (the loss sums over the batch, so
            `batch_size=4, accumulation=2` stands for a batch of 8).
        steps: optimizer steps in all (a resumed run stops at the same step).
        learning_rates, lr_boundaries: a piecewise-constant schedule over
            optimizer steps (`len(learning_rates) == len(lr_boundaries) + 1`).
        weight_decay: L2 rate on every trainable conv kernel (SPEC 4.4).
        model: the model to train (`OSMNConfig`, or a dict of its fields);
            its BatchNorm is synchronized over replicas whenever there are
            several, whatever `model` says.
        visual_modulator_init: how the visual modulator's VGG16 and fc6/fc7
            start when `init` does not load them: `keras` (Keras' Glorot
            uniform) or `he` (`trainer.he_initialise_visual_modulator`: He
            normal, with conv1_1 scaled to the guide's pixel values, so that
            its features are of order 1 as a trained VGG16's are). Not in the
            original, which always started from ImageNet weights.
        visual_modulator_pretrain_steps: before the first step, train the
            visual modulator's VGG16 and fc6/fc7 for this many steps to tell
            the training objects apart from their visual guides
            (`osmn_tf.training.pretrain`; DAVIS-layout data only): for
            training from random weights, a stand-in for the ImageNet
            weights the release starts from. Skipped with `init`. 0 = the
            original.
        visual_modulator_lr_multiplier: the learning rate of the visual
            modulator's VGG16 and fc6/fc7 is the schedule's times this (fc8
            and everything else: times 1). 1 = the original.
        fix_bn: BatchNorm keeps its moving statistics (SPEC 7, stage 2).
        fix_seg: the segmentation network keeps its weights; only the
            modulators train (the release's `--fix_seg`; MaskTrack-M and
            OSVOS-M train the visual modulator alone on a fixed network:
            masktrack has no spatial modulator, osvos needs
            `use_spatial_modulator=False`). Its weights must come from
            somewhere: `seg_model_path` or `init`.
        seg_model_path, vis_mod_model_path: the segmentation network's and the
            visual modulator's weights only (the release's `--seg_model_path`,
            `--vis_mod_model_path`), read after `init`: a `.keras` OSMN, a TF1
            OSMN checkpoint prefix (of the same base model and width) or
            ImageNet weights (`osmn_tf.weights.networks.load_network_weights`).
            An OSVOS or MaskTrack network is an OSMN model without modulators.
        init: where weights start: None (random, the modulators' own
            initialisation), an ImageNet VGG16 file (`vgg_16.ckpt` or Keras
            `.h5`), a TF1 OSMN checkpoint prefix or a `.keras` model.
        seed: the data stream's and the weights' seed.
        checkpoint_every, log_every, image_every, validate_every: in optimizer steps.
        validation_batches: fixed batches scored for the validation J.
        synthetic_sequences: `(train, val)` sequences of the synthetic set.
        eval_working_size: `(W, H)` the final DAVIS-style evaluation runs at
            (None: no evaluation after training).
        precision: `float32`, `mixed_float16` (with loss scaling) or
            `mixed_bfloat16` (`osmn_tf.utils.precision`).
        jit_compile: compile each replica's step with XLA.
    """

    dataset: str = "synthetic"
    data_root: str = None
    image_size: tuple = (160, 96)
    scales: tuple = (1.0,)
    sg_center_perturb_ratio: float = 0.2
    sg_std_perturb_ratio: float = 0.4
    # The sample sources' options (`osmn_tf.training.samples`): visual guides not masked (`--bbox_sup`);
    # COCO images cut on one side by up to this fraction; DAVIS visual guides from a random valid frame,
    # and training only on the frames where the object is visible. A frame is a valid visual guide when the
    # object covers more than label_valid_ratio of the image and bbox_valid_ratio of its box (DAVIS, YouTube-VOS).
    bbox_sup: bool = False
    random_crop_ratio: float = 0.0
    random_guide: bool = True
    skip_blank_frames: bool = False
    label_valid_ratio: float = 0.003
    bbox_valid_ratio: float = 0.2
    # The visual guide's training augmentation (`VisualGuideAugmentation`), the release's --vg_* options.
    vg_random_crop_ratio: float = 0.1
    vg_random_rotate_angle: float = 10.0
    vg_color_aug: bool = False
    vg_keep_aspect_ratio: bool = False
    # masktrack's spatial guide in training: the reference mask moved and resized at random, dilated (the release's
    # --use_original_mask; segment with tools/segment.py --use-original-mask then).
    use_original_mask: bool = False
    batch_size: int = 8
    accumulation: int = 1
    steps: int = 4000
    learning_rates: tuple = (1e-3, 3e-4)
    lr_boundaries: tuple = (2700,)
    weight_decay: float = 2e-4
    model: OSMNConfig = OSMNConfig()
    visual_modulator_init: str = "keras"
    visual_modulator_pretrain_steps: int = 0
    visual_modulator_lr_multiplier: float = 1.0
    fix_bn: bool = False
    fix_seg: bool = False
    init: str = None
    seg_model_path: str = None
    vis_mod_model_path: str = None
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 50
    image_every: int = 250
    validate_every: int = 100
    validation_batches: int = 4
    synthetic_sequences: tuple = (200, 12)
    eval_working_size: tuple = (160, 96)
    precision: str = "float32"
    jit_compile: bool = False

    def __post_init__(self):
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", OSMNConfig(**self.model))
        if not isinstance(self.model, OSMNConfig):
            raise ValueError(f"model must be an OSMNConfig or a dict of its fields, got {self.model!r}")
        for name in ("image_size", "scales", "learning_rates", "lr_boundaries", "synthetic_sequences"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.eval_working_size is not None:
            object.__setattr__(self, "eval_working_size", tuple(self.eval_working_size))
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.dataset != "synthetic" and not self.data_root:
            raise ValueError(f"the {self.dataset} dataset needs a data root (data_root)")
        for name in ("batch_size", "accumulation", "steps", "checkpoint_every", "log_every", "image_every",
                     "validate_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if len(self.learning_rates) != len(self.lr_boundaries) + 1:
            raise ValueError(f"{len(self.learning_rates)} learning rates need {len(self.learning_rates) - 1} "
                             f"boundaries, got {list(self.lr_boundaries)}")
        for rate in self.learning_rates:
            # A negative rate would climb the loss (gradient ascent), 0 would train nothing.
            if not (rate > 0 and math.isfinite(rate)):
                raise ValueError(f"learning rates must be positive finite numbers, got {list(self.learning_rates)}")
        if list(self.lr_boundaries) != sorted(self.lr_boundaries):
            raise ValueError(f"lr_boundaries must increase, got {list(self.lr_boundaries)}")
        if len(self.image_size) != 2 or min(self.image_size) < 16:
            raise ValueError(f"image_size must be (W, H) of at least 16 pixels, got {self.image_size!r}")
        for name in ("sg_center_perturb_ratio", "sg_std_perturb_ratio"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.vg_random_crop_ratio < 0.5:
            raise ValueError(f"vg_random_crop_ratio must be in [0, 0.5), got {self.vg_random_crop_ratio!r}")
        if not 0 <= self.vg_random_rotate_angle <= 180:
            raise ValueError(f"vg_random_rotate_angle must be in [0, 180] degrees, got {self.vg_random_rotate_angle!r}")
        for name in ("label_valid_ratio", "bbox_valid_ratio"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.visual_modulator_init not in VISUAL_MODULATOR_INITS:
            raise ValueError(f"visual_modulator_init must be one of {VISUAL_MODULATOR_INITS}, "
                             f"got {self.visual_modulator_init!r}")
        if int(self.visual_modulator_pretrain_steps) < 0:
            raise ValueError("visual_modulator_pretrain_steps must be >= 0, got "
                             f"{self.visual_modulator_pretrain_steps!r}")
        if self.visual_modulator_pretrain_steps and self.dataset in ("coco", "youtube-vos"):
            raise ValueError("visual_modulator_pretrain_steps needs sequences in the DAVIS layout (dataset davis or "
                             f"synthetic); set it to 0 for {self.dataset}")
        if not self.visual_modulator_lr_multiplier >= 0:
            raise ValueError("visual_modulator_lr_multiplier must be >= 0, got "
                             f"{self.visual_modulator_lr_multiplier!r}")
        if self.use_original_mask and self.model.base_model != "masktrack":
            raise ValueError(f"use_original_mask is masktrack's spatial guide; the model's base_model is "
                             f"{self.model.base_model}")
        check_precision(self.precision)
        if self.fix_seg and not (self.model.use_visual_modulator or self.model.use_spatial_modulator):
            raise ValueError("fix_seg trains only the modulators, but both are off")
        if self.fix_seg and not (self.seg_model_path or self.init):
            # A frozen segmentation network of random weights would train modulators of nothing.
            raise ValueError("fix_seg keeps the segmentation network's weights: give them (seg_model_path or init)")
        if self.vis_mod_model_path and not self.model.use_visual_modulator:
            raise ValueError("vis_mod_model_path: the model has no visual modulator (use_visual_modulator=False)")
        if self.visual_modulator_init == "he" and self.model.base_model == "lite":
            # MobileNet's BatchNorms set its activations' scale: there is nothing for He to fix.
            raise ValueError("visual_modulator_init 'he' is for the VGG16 visual modulator; lite's MobileNet "
                             "normalises its activations with BatchNorm: use 'keras'")

    def spatial_perturbation(self):
        """The training sources' `SpatialGuidePerturbation`."""
        return SpatialGuidePerturbation(center_ratio=self.sg_center_perturb_ratio,
                                        scale_ratio=self.sg_std_perturb_ratio)

    def visual_augmentation(self):
        """The training sources' `VisualGuideAugmentation`."""
        return VisualGuideAugmentation(crop_ratio=self.vg_random_crop_ratio, max_rotation=self.vg_random_rotate_angle,
                                       color_aug=self.vg_color_aug, keep_aspect_ratio=self.vg_keep_aspect_ratio)

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


# The demo's model for each base model: CPU-sized. VGG16 ones at an eighth of the channels with conv1/conv2
# modulated too (see "demo" below); lite at a quarter of MobileNet's channels (it has no early modulation),
# which keeps its steps cheaper than VGG16's at an eighth.
DEMO_MODELS = {
    "osvos": OSMNConfig(width=0.125, guide_size=64, mod_early_conv=True),
    "lite": OSMNConfig(base_model="lite", width=0.25, guide_size=64),
    "deeplab": OSMNConfig(base_model="deeplab", width=0.125, guide_size=64, mod_early_conv=True),
    "masktrack": OSMNConfig(base_model="masktrack", width=0.125, guide_size=64, mod_early_conv=True),
}
# What the demo changes for a base model besides its model: lite's visual modulator is MobileNet with
# BatchNorm, which needs neither He initialisation nor a smaller learning rate to stay alive.
DEMO_OPTIONS = {"lite": dict(visual_modulator_init="keras", visual_modulator_lr_multiplier=1.0)}

PRESETS = {
    # The embedded demo: CPU-sized, no download, under 15 minutes on 2 cores: an eighth of VGG16's
    # channels and 64x64 visual guides (the paper's 224 costs half of a CPU step). Its visual modulator
    # starts from random weights, not ImageNet's: He initialisation and a tenth of the learning rate
    # keep it alive, and modulating conv1/conv2 too lets it pick colours, which the synthetic objects
    # differ by (docs/results.md, "The embedded demo and its ablations").
    "demo": dict(model=DEMO_MODELS["osvos"], visual_modulator_init="he",
                 visual_modulator_lr_multiplier=0.1),
    # Stage 1 of the release (SPEC 7): MS-COCO 2017, ImageNet VGG16 initialisation.
    "coco": dict(dataset="coco", image_size=(400, 400), scales=(0.8, 1.0, 1.2), batch_size=8, steps=300_000,
                 learning_rates=(1e-5, 1e-6), lr_boundaries=(200_000,), checkpoint_every=2000,
                 log_every=100, image_every=2000, validate_every=5000, eval_working_size=None),
    # Stage 2 of the release: DAVIS 2017 train from the stage 1 model, BatchNorm frozen.
    "davis": dict(dataset="davis", image_size=(854, 480), scales=(0.5, 0.8, 1.0), batch_size=4, steps=50_000,
                  learning_rates=(1e-6,), lr_boundaries=(), fix_bn=True, checkpoint_every=2000,
                  log_every=100, image_every=2000, validate_every=5000, eval_working_size=None),
    # The release's YouTube-VOS training (osmn_train_eval_ytvos.py and its README): 448x256 frames at scale 1,
    # visual guides from random valid frames (--randomize_guide), from ImageNet VGG16 (no --whole_model_path),
    # 200k steps at 1e-5 then 100k at 1e-6; BatchNorm trains.
    "youtube-vos": dict(dataset="youtube-vos", image_size=(448, 256), scales=(1.0,), batch_size=8, steps=300_000,
                        learning_rates=(1e-5, 1e-6), lr_boundaries=(200_000,), checkpoint_every=2000,
                        log_every=100, image_every=2000, validate_every=5000, eval_working_size=None),
}
"""`--stage NAME`: the fields a preset sets on top of `TrainConfig`'s defaults."""


def preset(name, model=None, **overrides):
    """`TrainConfig` of the preset `name` (`demo`, `coco`, `davis`, `youtube-vos`) with `overrides` on top.

    `model`: a dict of `OSMNConfig` fields to change in the preset's model.
    A `base_model` there starts the demo from that base model's demo model
    (`DEMO_MODELS`, `DEMO_OPTIONS`); the release's stages take the paper's
    model with the given base model.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown stage {name!r}; choose from {sorted(PRESETS)}")
    model = dict(model or {})
    base_model = model.get("base_model")
    fields = dict(PRESETS[name])
    if name == "demo" and base_model is not None:
        if base_model not in DEMO_MODELS:
            raise ValueError(f"unknown base model {base_model!r}; choose from {sorted(DEMO_MODELS)}")
        fields.update(model=DEMO_MODELS[base_model], **DEMO_OPTIONS.get(base_model, {}))
    fields.update(overrides)
    if model:
        fields["model"] = dataclasses.replace(fields.get("model", OSMNConfig()), **model)
    return TrainConfig(**fields)
