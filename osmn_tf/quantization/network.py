"""The INT8 per-frame network: OpenVINO, quantized by NNCF on calibration frames (the fastest route that held parity).

`quantize(model, calibration, working_size)` returns an `Int8FrameNetwork`,
which `VideoSegmenter(model, working_size, frame_network=...)` runs in place
of the float32 per-frame network (the visual modulator stays float32 in
Keras). `save` writes it as a folder (OpenVINO's `model.xml`/`model.bin` and
`osmn_int8.json`), `Int8FrameNetwork.load` reads it back: quantize once,
segment many times.

The modulation (per-channel scales, per-pixel biases: elementwise multiply
and add) stays float32; the convolutions and pools run in INT8. Quantizing
the modulation too costs about twice the masks' disagreement with float32.
"""
import hashlib
import json
import os
import pathlib

import numpy as np

from osmn_tf import outputs
from osmn_tf.errors import MissingExtraError

INSTALL_HINT = 'pip install -e ".[int8]"'
METADATA = "osmn_int8.json"
MODEL_FILE = "model.xml"
FORMAT_VERSION = 1


def _require(module):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(f"INT8 quantization needs {module} (the int8 extra), which is not installed: "
                                f"{INSTALL_HINT}") from e


def check_extra():
    """Raises `MissingExtraError` unless OpenVINO and NNCF import: before any long work that needs them."""
    _require("openvino")
    _require("nncf")


def weights_fingerprint(model):
    """A hash of `model`'s weights: a saved network refuses a model it was not quantized from."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


class Int8FrameNetwork:
    """An OpenVINO INT8 per-frame network at a fixed working size and one object per call.

    Called with `{input name: float32 [1, ...] array}` (the inputs of
    `OSMN.frame_model()`), returns the logits `[1, H, W, 1]`. `threads`:
    OpenVINO's inference threads (None: its default, every core).
    """

    def __init__(self, ov_model, working_size, fingerprint, threads=None):
        ov = _require("openvino")
        self.ov_model = ov_model
        self.working_size = tuple(int(v) for v in working_size)
        self.fingerprint = fingerprint
        config = {ov.properties.hint.inference_precision: ov.Type.f32}
        if threads:
            config[ov.properties.inference_num_threads] = int(threads)
        # float32 for what is not INT8: on CPUs with bf16 units OpenVINO would otherwise pick bf16.
        self.compiled = ov.Core().compile_model(ov_model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.input_names = [p.get_any_name() for p in self.compiled.inputs]

    def __call__(self, inputs):
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise ValueError(f"the INT8 network needs inputs {self.input_names}; missing {missing}")
        width, height = self.working_size
        if inputs["image"].shape[1:3] != (height, width):
            raise ValueError(f"the INT8 network runs at {width}x{height}; got an image of "
                             f"{inputs['image'].shape[2]}x{inputs['image'].shape[1]}")
        result = self.request.infer({n: np.asarray(inputs[n], np.float32) for n in self.input_names})
        return np.asarray(result[self.compiled.outputs[0]])

    def check_model(self, model, name="the model"):
        """Refuses a `model` other than the one this network was quantized from (its visual modulator
        would feed this network parameters it was not calibrated for, or of another length)."""
        if weights_fingerprint(model) != self.fingerprint:
            raise ValueError(f"{name} is not the model this INT8 network was quantized from (weights differ); "
                             f"quantize it again from these weights")

    def save(self, path, name="path"):
        """Writes the network into the folder `path` (replaced as a whole, atomically; see `check_network_folder`)."""
        ov = _require("openvino")
        check_network_folder(path, name)
        with outputs.replaced_folder(path) as staging:
            # compress_to_fp16=False: the float parts stay float32, as they were calibrated.
            ov.save_model(self.ov_model, os.fspath(staging / MODEL_FILE), compress_to_fp16=False)
            metadata = {"format": FORMAT_VERSION, "working_size": list(self.working_size),
                        "fingerprint": self.fingerprint, "inputs": self.input_names,
                        "openvino": ov.get_version()}
            (staging / METADATA).write_text(json.dumps(metadata, indent=2))
        return path

    @classmethod
    def load(cls, path, threads=None, name="--int8-model"):
        """Reads a folder `save` wrote; errors name `name` (the option it came from) and the path."""
        ov = _require("openvino")
        path = pathlib.Path(path)
        metadata_path = path / METADATA
        if not metadata_path.is_file() or not (path / MODEL_FILE).is_file():
            raise FileNotFoundError(f"{name} {path}: not an INT8 network folder (needs {METADATA} and {MODEL_FILE}; "
                                    f"write one with tools/quantize.py)")
        try:
            metadata = json.loads(metadata_path.read_text())
            working_size, fingerprint = metadata["working_size"], metadata["fingerprint"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{name} {metadata_path}: unreadable ({e})") from e
        if metadata.get("format") != FORMAT_VERSION:
            raise ValueError(f"{name} {metadata_path}: format {metadata.get('format')!r}, expected {FORMAT_VERSION}")
        try:
            ov_model = ov.Core().read_model(os.fspath(path / MODEL_FILE))
        except RuntimeError as e:
            raise ValueError(f"{name} {path / MODEL_FILE}: OpenVINO cannot read it: {str(e).splitlines()[0]}") from e
        return cls(ov_model, working_size, fingerprint, threads)


def check_network_folder(path, name="path"):
    """Refuses to replace `path` unless it is absent, empty, or an INT8 network folder: saving replaces it whole."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise outputs.OutputError(f"{name} {path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / METADATA).is_file():
        raise outputs.OutputError(f"{name} {path}: a folder that is not an INT8 network ({METADATA} missing); "
                                  f"refusing to replace it")
    return path


def quantize(model, calibration, working_size, threads=None):
    """The INT8 per-frame network of `model` at `working_size` `(W, H)`, calibrated on `calibration`.

    Args:
        model: an `osmn_tf.OSMN` (float32).
        calibration: samples `{input name: float32 [1, ...] array}`, e.g.
            `osmn_tf.quantization.calibration_samples(model, videos, working_size)`.
    Raises `MissingExtraError` without OpenVINO and NNCF (`pip install -e ".[int8]"`).
    """
    import tempfile

    from osmn_tf.frames import check_size

    ov = _require("openvino")
    _require("nncf")
    from osmn_tf.quantization.routes import export_frame_saved_model

    working_size = check_size(working_size, "working_size")
    calibration = list(calibration)
    if not calibration:
        raise ValueError("calibration holds no sample")
    frame_model = model.frame_model(fold_batch_norm=True)
    names = [t.name for t in frame_model.inputs]
    width, height = working_size
    for i, sample in enumerate(calibration):
        missing = [n for n in names if n not in sample]
        if missing:
            raise ValueError(f"calibration sample {i}: missing inputs {missing}")
        if sample["image"].shape != (1, height, width, 3):
            raise ValueError(f"calibration sample {i}: image of shape {sample['image'].shape}, expected "
                             f"(1, {height}, {width}, 3) (one object at the working size)")
    with tempfile.TemporaryDirectory() as scratch:
        # From a SavedModel: OpenVINO reads its weights as constants.
        ov_model = ov.convert_model(export_frame_saved_model(frame_model, working_size, os.path.join(scratch, "f")))
    return Int8FrameNetwork(nncf_quantize(ov_model, calibration), working_size, weights_fingerprint(model), threads)


def nncf_quantize(ov_model, calibration, float_modulation=True):
    """`nncf.quantize` of an OpenVINO per-frame model on all of `calibration`.

    `float_modulation`: leave the elementwise multiplies and adds (the
    modulation) in float32. MIXED preset: asymmetric activations, since
    modulated features are signed before their ReLU.
    """
    nncf = _require("nncf")
    names = [p.get_any_name() for p in ov_model.inputs]

    def transform(sample):
        return {n: np.asarray(sample[n], np.float32) for n in names}

    ignored = nncf.IgnoredScope(types=["Multiply", "Add"], validate=False) if float_modulation else None
    return nncf.quantize(ov_model, nncf.Dataset(calibration, transform), subset_size=len(calibration),
                         preset=nncf.QuantizationPreset.MIXED, ignored_scope=ignored)
