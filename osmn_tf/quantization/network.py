"""The INT8 per-frame network: OpenVINO, quantized by NNCF on calibration frames (the fastest route that held parity).

`quantize(model, calibration, working_size)` returns an `Int8FrameNetwork`,
which `VideoSegmenter(model, working_size, frame_network=...)` runs in place
of the float32 per-frame network (the visual modulator stays float32 in
Keras). `save` writes it as a folder (OpenVINO's `model.xml`/`model.bin` and
`osmn_int8.json`, which records their SHA-256), `Int8FrameNetwork.load` reads
it back and names a file that is damaged: quantize once, segment many times.
Saving replaces only those three files (and its completion marker,
`osmn_tf.utils.outputs`): the folder may hold the weights or notes of its own.

The modulation (per-channel scales, per-pixel biases: elementwise multiply
and add) stays float32; the convolutions and pools run in INT8. Quantizing
the modulation too costs about twice the masks' disagreement with float32.
"""
import hashlib
import json
import os
import pathlib

import numpy as np

from osmn_tf.utils import outputs
from osmn_tf.utils.extras import INSTALL, require

INSTALL_HINT = INSTALL.format(extra="int8")
METADATA = "osmn_int8.json"
MODEL_FILE = "model.xml"
WEIGHTS_FILE = "model.bin"  # OpenVINO's weights beside MODEL_FILE
FORMAT_VERSION = 1


def _require(module):
    return require(module, "int8", "INT8 quantization")


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
        """Writes the network into the folder `path` (see `check_network_folder`).

        The files are written into a staging folder beside `path`, then moved
        in (`outputs.staged_results`): only `model.xml`, `model.bin` and
        `osmn_int8.json` are replaced, the metadata last; other files stay.
        """
        ov = _require("openvino")
        check_network_folder(path, name)
        with outputs.staged_results(path) as staging:
            # compress_to_fp16=False: the float parts stay float32, as they were calibrated.
            ov.save_model(self.ov_model, os.fspath(staging / MODEL_FILE), compress_to_fp16=False)
            metadata = {"format": FORMAT_VERSION, "working_size": list(self.working_size),
                        "fingerprint": self.fingerprint, "inputs": self.input_names,
                        "openvino": ov.get_version(),
                        # A damaged file, or a save killed while moving the files in, is then named at load.
                        "sha256": {f: _sha256(staging / f) for f in (MODEL_FILE, WEIGHTS_FILE)}}
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
        # Folders saved before the checksums were recorded have none to check.
        for file, digest in (metadata.get("sha256") or {}).items():
            if file not in (MODEL_FILE, WEIGHTS_FILE):
                continue  # the metadata is data: it names no other file to read
            if not (path / file).is_file():
                raise FileNotFoundError(f"{name} {path / file}: missing from the INT8 network folder; "
                                        f"quantize again (tools/quantize.py)")
            if _sha256(path / file) != digest:
                raise ValueError(f"{name} {path / file}: damaged: its SHA-256 is not the one {METADATA} records "
                                 f"(cut short, changed, or a save that did not finish); quantize again "
                                 f"(tools/quantize.py)")
        try:
            ov_model = ov.Core().read_model(os.fspath(path / MODEL_FILE))
            return cls(ov_model, working_size, fingerprint, threads)
        except RuntimeError as e:
            # OpenVINO's first line names its own source file; the reason is on the last.
            reason = [line.strip() for line in str(e).splitlines() if line.strip()][-1:] or [type(e).__name__]
            file = WEIGHTS_FILE if "bin file" in str(e) or not (path / WEIGHTS_FILE).is_file() else MODEL_FILE
            raise ValueError(f"{name} {path / file}: damaged: OpenVINO cannot read it ({reason[0]}); "
                             f"quantize again (tools/quantize.py)") from e


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_network_folder(path, name="path"):
    """Refuses to write into `path` unless it is absent, empty, or an INT8 network folder (it may hold
    other files too, which saving leaves alone; but another folder may hold a `model.xml` of its own)."""
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

    from osmn_tf.data.frames import check_size

    ov = _require("openvino")
    _require("nncf")
    from osmn_tf.quantization.frame_graph import export_frame_saved_model, nncf_quantize

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
