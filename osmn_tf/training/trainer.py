"""The training loop: one custom loop with `strategy.run` for every `tf.distribute` strategy.

Keras 3's `fit` fails under `MultiWorkerMirroredStrategy` (it cannot
convert the per-replica values), so a single custom loop serves one device,
several GPUs and several machines alike. Per optimizer step, for each of `accumulation`
micro-batches, every replica computes the gradients of its share of the
class-balanced loss (`P` and `Q` summed over replicas first, so the replicas'
losses add up to the whole batch's loss exactly); the optimizer then sums
the gradients over replicas and applies them.
"""
import dataclasses
import json
import math
import pathlib
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from osmn_tf.config import input_scale_of
from osmn_tf.evaluation import mean_iou
from osmn_tf.models.osmn import build_osmn
from osmn_tf.training.distribute import is_chief, worker_name
from osmn_tf.training.freezing import freeze
from osmn_tf.training.losses import training_loss
from osmn_tf.training.optimizer import MultipliedAdam
from osmn_tf.training.pipeline import distributed_dataset, model_inputs
from osmn_tf.training.pretrain import object_guides, pretrain_visual_modulator
from osmn_tf.training.summaries import TrainingSummaries
from osmn_tf.utils.atomic import atomic_output, replacing
from osmn_tf.utils.precision import copy_model, dtype_policy
from osmn_tf.weights.checkpoints import CheckpointError, load_weights
from osmn_tf.weights.networks import load_network_weights

CHECKPOINT_NAME = "ckpt"
FINAL_MODEL = "model.keras"


def _normalised(value):
    return list(value) if isinstance(value, (list, tuple)) else value


GUIDE_PIXEL_SCALE = 60.0
"""About the standard deviation of a visual guide's values (BGR minus the ImageNet mean, background 0)."""


def he_initialise_visual_modulator(model, seed=0):
    """Draws the visual modulator's VGG16 and fc6/fc7 kernels He-normal; fc8 and biases are kept.

    He initialisation keeps the scale of ReLU activations from layer to
    layer; dividing conv1_1 by `GUIDE_PIXEL_SCALE` makes that scale about 1,
    as in an ImageNet-trained VGG16. Keras' default (Glorot uniform) shrinks
    them instead (fc7 about 0.02 at width 0.125), and fc8, starting at 0,
    then needs far larger weights before the scales differ between objects.
    """
    visual_modulator = model.visual_modulator
    if visual_modulator is None or model.config.base_model == "lite":
        return  # lite's MobileNet has BatchNorm after every convolution: nothing to fix (TrainConfig refuses it)
    # One generator for all layers: a fixed int seed would give same-shaped layers the same kernel.
    initializer = keras.initializers.HeNormal(seed=keras.random.SeedGenerator(seed))
    for layer in visual_modulator.layers:
        if isinstance(layer, keras.layers.Conv2D) and layer.name != "fc8":
            kernel = initializer(layer.kernel.shape)
            if layer.name == "conv1_1":
                kernel = kernel / GUIDE_PIXEL_SCALE
            layer.kernel.assign(kernel)


def learning_rate_multiplier(model, visual_modulator_multiplier):
    """`multiplier(variable)` for `MultipliedAdam`: the visual modulator's body (VGG16 and fc6/fc7, or lite's
    MobileNet) gets the given one, its head (`HEAD_LAYERS`: fc8, or lite's Logits convolution and four heads) 1."""
    if model.visual_modulator is None or visual_modulator_multiplier == 1.0:
        return None
    modulator = model.visual_modulator
    head = {id(v) for name in modulator.HEAD_LAYERS for v in modulator.get_layer(name).trainable_variables}
    scaled = {id(v) for v in modulator.trainable_variables} - head
    return lambda variable: visual_modulator_multiplier if id(variable) in scaled else 1.0


class Trainer:
    """Trains an OSMN model on a sample source under a strategy, resumably.

    Args:
        config: a `TrainConfig`.
        source: the training samples (`osmn_tf.training.samples`).
        strategy: a `tf.distribute.Strategy` (`osmn_tf.training.distribute.make_strategy`).
        model_dir: checkpoints (`ckpt-STEP`), TensorBoard events (`train/`)
            and the final `model.keras`.
        validation_source: optional source of the fixed validation batches
            (default: `source` with another seed).
        log: where progress lines go (default stderr); None for silence.
        model: optional OSMN model to train, built under `strategy.scope()`
            (default: `build_osmn(config.model)`); `config`'s initialisation,
            `init` and freezing still apply to it.
    """

    def __init__(self, config, source, strategy, model_dir, validation_source=None, log=sys.stderr, model=None):
        self.config = config
        # The sources normalise at pixel scale 1; `model_inputs` scales to the model's (lite: 0.00787).
        self.input_scale = input_scale_of(config.model)
        self.source = source
        self.strategy = strategy
        self.model_dir = pathlib.Path(model_dir)
        self.validation_source = validation_source or source
        self.log = log
        self.chief = is_chief(strategy)
        self.num_replicas = strategy.num_replicas_in_sync

        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            if model is None:
                with dtype_policy(config.precision):
                    model = build_osmn(config.model, synchronized_batch_norm=self.num_replicas > 1)
            self.model = model
            if config.visual_modulator_init == "he":
                he_initialise_visual_modulator(self.model, seed=config.seed)
            if config.init:
                load_weights(self.model, config.init)
            # The release's --seg_model_path / --vis_mod_model_path: one network each, after the whole model.
            for network, path in (("segmentation_network", config.seg_model_path),
                                  ("visual_modulator", config.vis_mod_model_path)):
                if path:
                    load_network_weights(self.model, path, network)
            freeze(self.model, config.fix_bn, config.fix_seg)
            self.variables = self.model.trainable_variables
            schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
                list(config.lr_boundaries), list(config.learning_rates)) if config.lr_boundaries else \
                config.learning_rates[0]
            # TF1's Adam epsilon (1e-8), as the original used.
            self.optimizer = MultipliedAdam(
                learning_rate_multiplier(self.model, config.visual_modulator_lr_multiplier),
                learning_rate=schedule, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
            if config.precision == "mixed_float16":
                # float16 gradients underflow without a dynamic loss scale.
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self.optimizer.build(self.variables)
            self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer)
        # Only the chief keeps checkpoints in model_dir; other workers must still
        # write theirs (collective ops) but to a scratch folder they delete.
        directory = self.model_dir if self.chief else self.model_dir / "scratch" / worker_name(strategy)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory), max_to_keep=2,
                                                  checkpoint_name=CHECKPOINT_NAME)
        self.summaries = TrainingSummaries(self.model_dir / "train", enabled=self.chief)
        self._train_step = None

    # ------------------------------------------------------------------
    # One optimizer step
    # ------------------------------------------------------------------
    def _replica_gradients(self, batch, previous=None):
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            main, decay = training_loss(
                self.model, batch, self.config.weight_decay, self.num_replicas,
                lambda values: context.all_reduce(tf.distribute.ReduceOp.SUM, values))
            loss = main + decay
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, self.variables)
        if previous is not None:
            gradients = [g + p for g, p in zip(gradients, previous)]
        return gradients, main, decay

    def _apply(self, gradients):
        self.optimizer.apply_gradients(zip(gradients, self.variables))

    def _build_train_step(self):
        accumulation = self.config.accumulation
        strategy = self.strategy
        replica_gradients = self._replica_gradients
        if self.config.jit_compile:
            replica_gradients = tf.function(replica_gradients, jit_compile=True)

        @tf.function
        def train_step(iterator):
            gradients, main_sum, decay_sum = None, 0.0, 0.0
            for _ in range(accumulation):
                args = (next(iterator),) if gradients is None else (next(iterator), gradients)
                gradients, main, decay = strategy.run(replica_gradients, args=args)
                main_sum += strategy.reduce(tf.distribute.ReduceOp.SUM, main, axis=None)
                decay_sum += strategy.reduce(tf.distribute.ReduceOp.SUM, decay, axis=None)
            strategy.run(self._apply, args=(gradients,))
            return main_sum / accumulation, (main_sum + decay_sum) / accumulation

        return train_step

    @property
    def train_step(self):
        """The compiled optimizer step, `train_step(iterator) -> (main loss, total loss)` (built on first use)."""
        if self._train_step is None:
            self._train_step = self._build_train_step()
        return self._train_step

    # ------------------------------------------------------------------
    # The loop
    # ------------------------------------------------------------------
    @property
    def step(self):
        return int(self.optimizer.iterations.numpy())

    def check_model_dir(self):
        """Refuses a `model_dir` that holds a run of another model (its `train_config.json`)."""
        path = self.model_dir / "train_config.json"
        if not path.is_file():
            return
        try:
            theirs = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{path}: cannot read the run's configuration: {e}") from e
        theirs, ours = theirs.get("model", {}), dataclasses.asdict(self.config.model)
        different = [f"{key} {theirs[key]!r} there, {value!r} asked" for key, value in ours.items()
                     if key in theirs and _normalised(theirs[key]) != _normalised(value)]
        if different:
            raise CheckpointError(f"{self.model_dir} holds a run of another configuration ({'; '.join(different)}): "
                                  "give another model_dir, or the same configuration to resume it")

    def restore(self):
        """Restores the newest checkpoint of `model_dir` that reads, if any; returns the step reached.

        A checkpoint that does not read (a data file cut short by a crash) is
        skipped with a line saying why, and the next older one is tried; if
        none reads, `CheckpointError` lists them all.
        """
        self.check_model_dir()
        state = tf.train.get_checkpoint_state(str(self.model_dir))
        candidates = list(reversed(state.all_model_checkpoint_paths)) if state else []
        if state and state.model_checkpoint_path and state.model_checkpoint_path not in candidates:
            candidates.insert(0, state.model_checkpoint_path)
        failures = []
        for prefix in candidates:
            try:
                self.checkpoint.restore(prefix).assert_existing_objects_matched()
            except Exception as e:  # TF raises IndexError, OpError, AssertionError, ... for a bad checkpoint
                reason = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
                failures.append(f"{prefix} ({reason})")
                self._print(f"skipped checkpoint {prefix}: it does not read ({reason})")
                continue
            self._print(f"resumed from step {self.step} ({prefix})")
            return self.step
        if failures:
            raise CheckpointError(f"{self.model_dir}: no checkpoint reads: " + "; ".join(failures))
        return self.step

    def _print(self, text):
        if self.log is not None and self.chief:
            print(text, file=self.log, flush=True)

    def probe_batch(self):
        """A fixed batch for image summaries and histograms (the validation stream's batch 0)."""
        size = min(self.config.batch_size, 4)
        return self.validation_source.batch(0, size, self.config.seed + 1)

    def validate(self):
        """Validation J: mean IoU over the fixed validation batches (chief only, one device)."""
        ious = []
        for index in range(self.config.validation_batches):
            batch = self.validation_source.batch(index, self.config.batch_size, self.config.seed + 1)
            probabilities = self.predict(batch)
            ious.append(mean_iou(probabilities, batch["label"]))
        return float(np.mean(ious))

    def predict(self, batch):
        logits = self.model(model_inputs(self.model, batch), training=False)
        return tf.sigmoid(logits).numpy()

    def _write_probe(self):
        if not self.chief:
            return
        batch = self.probe_batch()
        self.summaries.probe(self.step, self.model, batch, self.predict(batch))

    def train(self, progress=True):
        """Trains up to `config.steps` optimizer steps, resuming from `model_dir`; returns the last losses."""
        config = self.config
        start = self.restore()
        if self.chief:
            self.model_dir.mkdir(parents=True, exist_ok=True)
            with atomic_output(self.model_dir / "train_config.json", "w") as handle:
                handle.write(config.to_json() + "\n")
        if start >= config.steps:
            self._print(f"already trained to step {start} of {config.steps}")
            return {}
        if start == 0:
            self.pretrain_visual_modulator(progress)
        dataset = distributed_dataset(self.strategy, self.source, config.batch_size, config.seed,
                                      start_batch=start * config.accumulation)
        iterator = iter(dataset)
        train_step = self.train_step
        bar = self._progress_bar(start, progress)
        losses, window_start, window_steps = {}, time.perf_counter(), 0
        if start == 0:
            self._write_probe()
        while self.step < config.steps:
            main, total = train_step(iterator)
            step = self.step
            window_steps += 1
            losses = {"loss/main": float(main), "loss/total": float(total)}
            if not math.isfinite(losses["loss/total"]):
                raise FloatingPointError(f"the loss became {losses['loss/total']} at step {step}; lower the "
                                         "learning rate (TrainConfig.learning_rates)")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses['loss/main']:.4g}", refresh=False)
            if self._due(step, config.log_every):
                elapsed = time.perf_counter() - window_start
                rate = window_steps / elapsed if elapsed > 0 else 0.0
                lr = self.optimizer.learning_rate
                self.summaries.scalars(step, {**losses, "learning_rate": float(np.asarray(lr)),
                                              "steps_per_second": rate,
                                              "samples_per_second": rate * config.batch_size * config.accumulation})
                if bar is None:
                    eta = (config.steps - step) / rate if rate else float("nan")
                    self._print(f"step {step}/{config.steps}  loss {losses['loss/main']:.4g}  "
                                f"{rate:.2f} steps/s  ETA {eta / 60:.1f} min")
                window_start, window_steps = time.perf_counter(), 0
            if self._due(step, config.image_every):
                self._write_probe()
            if self._due(step, config.validate_every):
                if self.chief:
                    self.summaries.scalars(step, {"validation/J": self.validate()})
            if self._due(step, config.checkpoint_every):
                self.manager.save(checkpoint_number=step)
                self.summaries.flush()
        if bar is not None:
            bar.close()
        self.summaries.flush()
        self.save_model()
        return losses

    def _due(self, step, every):
        """Whether a periodic task (logging, probe images, validation, checkpoints) runs after `step`."""
        return step % every == 0 or step == self.config.steps

    def pretrain_visual_modulator(self, progress=True):
        """Runs `osmn_tf.training.pretrain` for `config.visual_modulator_pretrain_steps` on the training objects.

        Only when the visual modulator's weights come from nowhere else
        (no `init`; `train` calls it before the first step, not on resuming).
        It trains a copy built outside the strategy, so the same code serves
        every strategy; each worker computes the same copy from the same seed.
        """
        config = self.config
        steps = config.visual_modulator_pretrain_steps
        modulator = self.model.visual_modulator
        if not steps or modulator is None or config.init or config.vis_mod_model_path:
            return None
        copy = copy_model(modulator)
        start = time.perf_counter()
        guides, labels, held_out = object_guides(self.source, seed=config.seed)
        if self.input_scale != 1:
            guides = (guides * np.float32(self.input_scale)).astype(guides.dtype)
        accuracy = pretrain_visual_modulator(copy, guides, labels, held_out, steps, seed=config.seed,
                                             progress=progress and self.chief, log=self._print)
        modulator.set_weights(copy.get_weights())
        self._print(f"pretrained the visual modulator for {steps} steps to tell {labels.max() + 1} objects apart "
                    f"({len(labels)} guides): held-out accuracy {accuracy:.2f}, "
                    f"{(time.perf_counter() - start) / 60:.1f} min")
        return accuracy

    def _progress_bar(self, start, progress):
        if not (progress and self.chief):
            return None
        from tqdm import tqdm

        return tqdm(total=self.config.steps, initial=start, unit="step", desc="train", dynamic_ncols=True,
                    file=self.log or sys.stderr)

    def save_model(self):
        """Writes `model_dir/model.keras` atomically (chief only); other workers drop their scratch."""
        if not self.chief:
            import shutil

            shutil.rmtree(self.model_dir / "scratch" / worker_name(self.strategy), ignore_errors=True)
            return None
        path = self.model_dir / FINAL_MODEL
        with replacing(path) as tmp:
            self.model.save(tmp)
        return path
