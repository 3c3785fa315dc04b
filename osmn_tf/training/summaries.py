"""TensorBoard summaries of a training run: scalars, side-by-side images, the paper's modulation analyses.

Tags written (under `<model_dir>/train`):

* `loss/main` (the class-balanced loss, SPEC 7), `loss/total` (with weight
  decay), `learning_rate`, `steps_per_second`, `validation/J` (mean IoU of
  the thresholded prediction on fixed validation batches);
* `samples`: visual guide | spatial guide | image | label | prediction, one
  row per sample of a fixed probe batch (the original's image summaries);
* `modulation/visual_gamma/<layer>`: histogram of the visual modulator's
  scales for each modulated layer on the probe batch (paper Fig. 6);
* `modulation/spatial_scale/<layer>`: histogram of the magnitudes of the
  spatial modulator's 1x1 kernel for each modulated layer (paper Fig. 7).

`<layer>` is a modulated convolution of the model's base model
(`osmn_tf.config.modulation_layout`): `conv3_1` .. `conv5_3` (and
`conv1_1` .. `conv2_2` with `mod_early_conv`) for osvos, deeplab and
masktrack (which has no spatial modulator, so no `spatial_scale`);
`Conv2d_3_pointwise`, `Conv2d_5_pointwise`, `Conv2d_11_pointwise`,
`Conv2d_13_pointwise` for lite.
"""
import numpy as np
import tensorflow as tf

from osmn_tf.config import modulation_layout
from osmn_tf.data.frames import denormalize_frame


def _layout(model):
    config = model.config
    return modulation_layout(config.mod_early_conv, config.width, config.base_model)


def visual_gammas(model, guide_images):
    """The visual modulator's scales per modulated layer: `{layer: [N, C]}`."""
    params = np.asarray(model.visual_modulator(guide_images, training=False))
    layout = _layout(model)
    return {conv.name: params[:, conv.scale_offset:conv.scale_offset + conv.channels] for conv in layout}


def spatial_scales(model):
    """Magnitudes of the spatial modulator's 1x1 kernel per modulated layer: `{layer: [C]}`."""
    out = {}
    for conv in _layout(model):
        kernel = np.abs(np.asarray(model.spatial_modulator.get_layer(f"conv{conv.block}").kernel)).reshape(-1)
        out[conv.name] = kernel[conv.bias_offset:conv.bias_offset + conv.channels]
    return out


def _grey(values):
    return np.repeat(np.clip(values * 255, 0, 255).astype(np.uint8), 3, axis=-1)


def sample_grid(batch, probabilities, scale=1.0):
    """One row per sample: visual guide (resized to the frame's height), spatial guide, image, label, prediction.

    `scale`: the pixel scale the images were made at (`osmn_tf.config.input_scale_of`).
    """
    rows = []
    height = batch["image"].shape[1]
    for i in range(batch["image"].shape[0]):
        guide = denormalize_frame(batch["guide_image"][i], scale)
        guide = tf.image.resize(guide, (height, height), method="nearest").numpy().astype(np.uint8)
        row = [guide, _grey(batch["spatial_guide"][i]), denormalize_frame(batch["image"][i], scale), _grey(batch["label"][i]),
               _grey(probabilities[i])]
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


class TrainingSummaries:
    """Writes a run's TensorBoard events; a no-op on workers other than the chief."""

    def __init__(self, logdir, enabled=True):
        self.enabled = enabled
        self.writer = tf.summary.create_file_writer(str(logdir)) if enabled else None

    def scalars(self, step, values):
        if not self.enabled:
            return
        with self.writer.as_default(step=int(step)):
            for name, value in values.items():
                tf.summary.scalar(name, float(value))

    def probe(self, step, model, batch, probabilities, scale=1.0):
        """Images and modulation histograms of the probe batch (its images at pixel `scale`)."""
        if not self.enabled:
            return
        with self.writer.as_default(step=int(step)):
            tf.summary.image("samples", sample_grid(batch, probabilities, scale)[None], max_outputs=1)
            if model.visual_modulator is not None:
                for layer, values in visual_gammas(model, batch["guide_image"]).items():
                    tf.summary.histogram(f"modulation/visual_gamma/{layer}", values)
            if model.spatial_modulator is not None:
                for layer, values in spatial_scales(model).items():
                    tf.summary.histogram(f"modulation/spatial_scale/{layer}", values)

    def flush(self):
        if self.enabled:
            self.writer.flush()
