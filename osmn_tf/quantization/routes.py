"""The INT8 post-training quantization routes a TensorFlow user has for the per-frame network, side by side.

Every route starts from the same per-frame Keras model (BatchNorm folded,
`OSMN.frame_model(fold_batch_norm=True)`) at one fixed input shape (one
object, the working size), calibrates on the same samples
(`osmn_tf.quantization.calibration`). `build_route` writes a route's float32
and INT8 models into a folder, `load_runner` reads one back as a runner: a
callable from `{input name: float32 [1, ...] array}` to the logits `[1, H, W, 1]`.

* `litert`: TFLiteConverter full-integer (int8 weights and activations, float
  input/output) from a SavedModel of the frame model, run by `ai_edge_litert`'s
  interpreter with XNNPACK.
* `openvino`: `openvino.convert_model` of the same SavedModel, `nncf.quantize`,
  compiled for the CPU; `openvino_float_modulation` leaves the modulation
  (elementwise multiply and add) in float32 (`osmn_tf.quantization.network`).
* `inc`: Intel Neural Compressor's TensorFlow package (`quantize_model`,
  `StaticQuantConfig`): a graph with oneDNN INT8 kernels run by TensorFlow.
* `onnxruntime`: tf2onnx's ONNX of the frame model, `quantize_static` (QDQ), ONNX Runtime's CPU provider;
  `onnxruntime_float_modulation` quantizes only convolutions and pools.

Each route's float32 runner is its runtime on the unquantized model, so
that its speedup is measured against itself as well as against Keras.
Every file and folder a route writes is written under a temporary name and
renamed when complete (`osmn_tf.utils.outputs`): a failed or killed build leaves
the previous one's files whole.
"""
import os

import numpy as np
import tensorflow as tf

from osmn_tf.quantization.frame_graph import export_frame_saved_model, frame_input_specs, nncf_quantize
from osmn_tf.utils import atomic

ROUTES = ("litert", "openvino", "openvino_float_modulation", "inc", "onnxruntime", "onnxruntime_float_modulation")


def _batches(samples):
    for sample in samples:
        yield {name: np.asarray(value, np.float32) for name, value in sample.items()}


# LiteRT ---------------------------------------------------------------------------------------------------------
def litert_model_bytes(saved_model_dir, samples=None):
    """The `.tflite` flatbuffer of the SavedModel: float32, or full-integer when calibration `samples` are given."""
    converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(saved_model_dir))
    if samples is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        serve = tf.saved_model.load(os.fspath(saved_model_dir)).signatures["serve"]
        order = list(serve.structured_input_signature[1])

        # The converter wants the signature's inputs as a dict keyed by its names.
        def representative():
            for sample in _batches(samples):
                yield {name: sample[_input_name(name, sample)] for name in order}

        converter.representative_dataset = representative
        # Every op in int8 (no float fallback); input and output stay float32.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def _input_name(signature_name, sample):
    # Exporters may suffix an input's name (`image:0`, `image_1`).
    if signature_name in sample:
        return signature_name
    for name in sample:
        if signature_name.startswith(name):
            return name
    raise KeyError(f"no input for the model's {signature_name!r}; have {sorted(sample)}")


class LiteRTRunner:
    def __init__(self, path, threads=2):
        from ai_edge_litert.interpreter import Interpreter

        # XNNPACK is the interpreter's default CPU delegate, for float32 and int8 alike.
        self.interpreter = Interpreter(model_path=os.fspath(path), num_threads=threads)
        self.runner = self.interpreter.get_signature_runner()
        self.names = list(self.runner.get_input_details())

    def __call__(self, inputs):
        outputs = self.runner(**{name: inputs[_input_name(name, inputs)] for name in self.names})
        return next(iter(outputs.values()))


def build_litert(saved_model_dir, samples, out_dir):
    paths = []
    for name, calibration in (("litert.f32.tflite", None), ("litert.int8.tflite", samples)):
        path = os.path.join(out_dir, name)
        content = litert_model_bytes(saved_model_dir, calibration)
        with atomic.atomic_output(path) as f:
            f.write(content)
        paths.append(path)
    return tuple(paths)


# OpenVINO -------------------------------------------------------------------------------------------------------
def openvino_config(threads=2):
    import openvino as ov

    # float32 where not int8: on CPUs with bf16 units OpenVINO may otherwise pick bf16.
    return {ov.properties.hint.inference_precision: ov.Type.f32, ov.properties.inference_num_threads: threads}


class OpenVINORunner:
    def __init__(self, path_or_model, threads=2):
        import openvino as ov

        core = ov.Core()
        model = core.read_model(os.fspath(path_or_model)) if isinstance(path_or_model, (str, os.PathLike)) \
            else path_or_model
        self.compiled = core.compile_model(model, "CPU", openvino_config(threads))
        self.request = self.compiled.create_infer_request()
        self.names = [p.get_any_name() for p in self.compiled.inputs]

    def __call__(self, inputs):
        result = self.request.infer({name: inputs[_input_name(name, inputs)] for name in self.names})
        return np.asarray(result[self.compiled.outputs[0]])


def save_openvino(model, path):
    """`openvino.save_model` of `model` as `path` (`.xml`) and its `.bin`, each renamed into place when both
    are written (the `.bin` first: `read_model` takes the `.bin` of the `.xml`'s name)."""
    import openvino as ov

    path = os.fspath(path)
    weights = os.path.splitext(path)[0] + ".bin"
    with atomic.replacing(path) as xml, atomic.replacing(weights) as bin_path:
        written = os.path.splitext(os.fspath(xml))[0] + ".bin"  # OpenVINO names it after the .xml
        try:
            # compress_to_fp16=False: the float32 parts stay float32 on disk.
            ov.save_model(model, os.fspath(xml), compress_to_fp16=False)
            os.replace(written, bin_path)
        finally:
            if os.path.exists(written):
                os.unlink(written)
    return path


def build_openvino(saved_model_dir, samples, out_dir, float_modulation=False):
    import openvino as ov

    float_path, int8_path = os.path.join(out_dir, "openvino.f32.xml"), os.path.join(out_dir, "openvino.int8.xml")
    model = ov.convert_model(os.fspath(saved_model_dir))
    save_openvino(model, float_path)
    save_openvino(nncf_quantize(model, list(_batches(samples)), float_modulation), int8_path)
    return float_path, int8_path


# Intel Neural Compressor (TensorFlow) ----------------------------------------------------------------------------
class _CalibrationLoader:
    """The dataloader INC's calibration iterates: `(inputs, label)` pairs, `batch_size` 1."""

    def __init__(self, samples, names):
        self.samples = list(_batches(samples))
        self.names = names
        self.batch_size = 1

    def __iter__(self):
        for sample in self.samples:
            yield [sample[_input_name(n, sample)] for n in self.names], 0

    def __len__(self):
        return len(self.samples)


class TFGraphRunner:
    """Runs a SavedModel's first signature in TensorFlow (oneDNN kernels, INT8 ones for INC's graphs)."""

    def __init__(self, path):
        self.loaded = tf.saved_model.load(os.fspath(path))
        self.function = self.loaded.signatures[sorted(self.loaded.signatures)[0]]
        self.names = list(self.function.structured_input_signature[1])

    def __call__(self, inputs):
        outputs = self.function(**{n: tf.constant(inputs[_input_name(n, inputs)]) for n in self.names})
        return next(iter(outputs.values())).numpy()


def build_inc(saved_model_dir, samples, out_dir):
    from neural_compressor.tensorflow import StaticQuantConfig, quantize_model

    names = list(tf.saved_model.load(os.fspath(saved_model_dir)).signatures["serve"].structured_input_signature[1])
    # INC writes its workspace (./nc_workspace) into the current directory: make that `out_dir`.
    previous = os.getcwd()
    os.chdir(out_dir)
    try:
        quantized = quantize_model(os.path.abspath(saved_model_dir), StaticQuantConfig(),
                                   _CalibrationLoader(samples, names))
    finally:
        os.chdir(previous)
    int8_path = os.path.join(out_dir, "inc.int8")
    with atomic.replaced_folder(int8_path) as staging:
        quantized.save(os.fspath(staging))
    return os.fspath(saved_model_dir), int8_path


# ONNX Runtime ---------------------------------------------------------------------------------------------------
class ONNXRunner:
    def __init__(self, path, threads=2):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, inputs):
        return self.session.run(None, {n: inputs[_input_name(n, inputs)] for n in self.names})[0]


def build_onnxruntime(frame_model, working_size, samples, out_dir, float_modulation=False):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    float_path = os.path.join(out_dir, "frame.onnx")
    with atomic.replacing(float_path) as tmp:
        frame_model.export(os.fspath(tmp), format="onnx",
                           input_signature=[frame_input_specs(frame_model, working_size)], verbose=False)
    prepared = os.path.join(out_dir, "frame.prep.onnx")
    with atomic.replacing(prepared) as tmp:
        quant_pre_process(float_path, os.fspath(tmp))
    names = [i.name for i in ONNXRunner(float_path).session.get_inputs()]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{n: s[_input_name(n, s)] for n in names} for s in _batches(samples)])

        def get_next(self):
            return next(self.items, None)

    int8_path = os.path.join(out_dir, "frame.int8.onnx")
    # float_modulation: only convolutions and pools in INT8, the modulation's Mul and Add stay float32.
    op_types = ["Conv", "MaxPool", "AveragePool"] if float_modulation else None
    with atomic.replacing(int8_path) as tmp:
        quantize_static(prepared, os.fspath(tmp), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                        op_types_to_quantize=op_types)
    return float_path, int8_path


# Any route ------------------------------------------------------------------------------------------------------
def build_route(route, frame_model, working_size, samples, out_dir):
    """Writes `route`'s float32 and INT8 per-frame models into `out_dir`; returns their paths `(float32, int8)`."""
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    os.makedirs(out_dir, exist_ok=True)
    if route.startswith("onnxruntime"):
        return build_onnxruntime(frame_model, working_size, samples, out_dir, route.endswith("float_modulation"))
    saved_model = os.path.join(out_dir, "frame_saved_model")
    if not os.path.exists(saved_model):
        export_frame_saved_model(frame_model, working_size, saved_model)
    if route.startswith("openvino"):
        return build_openvino(saved_model, samples, out_dir, route.endswith("float_modulation"))
    return {"litert": build_litert, "inc": build_inc}[route](saved_model, samples, out_dir)


def load_runner(route, path, threads=2):
    """A runner of a model `build_route` wrote (TensorFlow runs INC's with its own thread pool)."""
    if route == "litert":
        return LiteRTRunner(path, threads)
    if route.startswith("openvino"):
        return OpenVINORunner(path, threads)
    if route == "inc":
        return TFGraphRunner(path)
    if route.startswith("onnxruntime"):
        return ONNXRunner(path, threads)
    raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
