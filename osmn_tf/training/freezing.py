"""What training leaves fixed: the release's `--fix_bn` and `--fix_seg`, for the trainer and online fine-tuning."""
import keras


def batch_norm_layers(model):
    """Every `BatchNormalization` layer of `model` and of the networks inside it."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += batch_norm_layers(layer)
    return found


def freeze(model, fix_bn=False, fix_seg=False):
    """Makes the parts of `model` that the release's `--fix_bn` / `--fix_seg` keep non-trainable.

    `fix_bn`: every BatchNorm (the spatial modulator's, and lite's MobileNets'); Keras runs a frozen
    BatchNorm on its moving statistics, and this also freezes gamma and beta (the release's fix_bn still
    trained them). `fix_seg`: the segmentation network, so that only the modulators train.
    """
    if fix_bn:
        for layer in batch_norm_layers(model):
            layer.trainable = False
    if fix_seg:
        model.segmentation_network.trainable = False
