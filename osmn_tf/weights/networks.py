"""One network's weights from another file: the release's `--seg_model_path` and `--vis_mod_model_path`."""
import os

from osmn_tf.models import build_osmn
from osmn_tf.weights.checkpoints import is_imagenet_file, load_model

NETWORKS = ("visual_modulator", "spatial_modulator", "segmentation_network")


def load_network_weights(model, path, network):
    """Loads the weights of one of `model`'s networks (`NETWORKS`) from `path`, leaving the others as they are.

    `path`: a `.keras` OSMN, a TF1 OSMN checkpoint prefix, or ImageNet
    weights (VGG16, or MobileNet v1 for lite; `osmn_tf.weights.imagenet`),
    which fill what they hold of that network. An OSMN file must have the
    same base model and width; its other options may differ (an OSVOS or
    MaskTrack network is an OSMN model without modulators). Layers are matched
    by name, and every shape is checked before anything is assigned.

    Raises:
        ValueError: `network` is not one of `NETWORKS`, `model` or the file lacks
            it, or the file's base model, width or a layer's shape differ.
        CheckpointError, FileNotFoundError: the file does not read.
    """
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}, got {network!r}")
    target = getattr(model, network)
    if target is None:
        raise ValueError(f"{path}: the model to load into has no {network}")
    text = os.fspath(path)
    if is_imagenet_file(text):
        from osmn_tf.weights.imagenet import load_imagenet

        source = build_osmn(model.config)  # a scratch model: the file fills its networks, ours takes one
        load_imagenet(source, text)
    else:
        source = load_model(text)
        theirs, ours = source.config, model.config
        different = [f"{k} {getattr(theirs, k)!r} in the file, {getattr(ours, k)!r} asked"
                     for k in ("base_model", "width") if getattr(theirs, k) != getattr(ours, k)]
        if different:
            raise ValueError(f"{text}: its {network} does not fit the model: " + "; ".join(different))
    origin = getattr(source, network)
    if origin is None:
        raise ValueError(f"{text}: holds no {network} (its model is {source.config})")
    pairs, problems = [], []
    for layer in target.layers:
        if not layer.weights:
            continue
        try:
            theirs = origin.get_layer(layer.name)
        except ValueError:
            problems.append(f"{layer.name}: not in the file")
            continue
        shapes, their_shapes = [tuple(w.shape) for w in layer.weights], [tuple(w.shape) for w in theirs.weights]
        if shapes != their_shapes:
            problems.append(f"{layer.name}: shapes {their_shapes} in the file, {shapes} in the model")
        pairs.append((layer, theirs))
    if problems:
        raise ValueError(f"{text}: its {network} does not fit the model's: " + "; ".join(problems))
    for layer, theirs in pairs:
        layer.set_weights(theirs.get_weights())
    return [layer.name for layer, _ in pairs]
