"""Other formats than the SavedModel: ONNX (through Keras' export and tf2onnx) and LiteRT (`.tflite`).

Each file is written under a temporary name and renamed when complete (`osmn_tf.utils.outputs`).
"""
import os

import tensorflow as tf

from osmn_tf.models.folding import fold_batch_norm
from osmn_tf.serving.signatures import frame_specs, input_specs
from osmn_tf.utils import atomic


def export_onnx(model, output_dir, parts=("encode_guide", "segment")):
    """Writes `segment.onnx` (inputs as `frame_model()`, output the logits) and, with a
    visual modulator, `encode_guide.onnx` into `output_dir`, through Keras' export
    (which needs the `tf2onnx` package). Returns the written paths.

    `parts` picks which: at full size, tf2onnx 1.17 crashes (SIGSEGV, ~14 GB of
    memory) on the visual modulator's 400 MB `fc6`; `parts=("segment",)` works.
    """
    unknown = sorted(set(parts) - {"encode_guide", "segment"})
    if unknown:
        raise ValueError(f"unknown ONNX parts {unknown}; expected encode_guide and/or segment")
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    model = fold_batch_norm(model)
    frame_inputs = frame_specs(model)
    candidates = [("segment", model.frame_model(), frame_inputs if len(frame_inputs) > 1 else frame_inputs[0])]
    if model.visual_modulator is not None:
        candidates.insert(0, ("encode_guide", model.visual_modulator, input_specs(model)["guide_image"]))
    for name, part, spec in candidates:
        if name not in parts:
            continue
        path = os.path.join(output_dir, f"{name}.onnx")
        with atomic.replacing(path) as tmp:
            part.export(os.fspath(tmp), format="onnx", input_signature=[spec], verbose=False)
        paths.append(path)
    return paths


def export_tflite(saved_model_dir, path, signature_keys=("encode_guide", "segment")):
    """Converts signatures of an exported SavedModel into one LiteRT (`.tflite`) file.

    The file keeps the signatures' names and inputs (dynamic N, H, W); run them
    with `ai_edge_litert.interpreter.Interpreter(...).get_signature_runner("segment")`. Only the float
    signatures by default. (Converting a `tf.function` over the Keras model
    instead leaves the weights as uninitialised resource variables: the
    interpreter then returns garbage.) Returns `path`.
    """
    available = set(tf.saved_model.load(os.fspath(saved_model_dir)).signatures)
    keys = [k for k in signature_keys if k in available]
    converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(saved_model_dir), signature_keys=keys)
    content = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic.atomic_output(path) as f:
        f.write(content)
    return path
