"""TF Serving's warm-up file: `assets.extra/tf_serving_warmup_requests` in the SavedModel.

TF Serving replays these requests when it loads a version, before it answers
any client, so the first real request does not pay for graph initialisation
(it fails the load if one fails). One `PredictionLog` per signature, at the
working size, with a one-object mask. Needs `tensorflow-serving-api`.
"""
import os

import numpy as np
import tensorflow as tf

from osmn_tf.data.frames import preprocess_frame
from osmn_tf.data.guides import spatial_guide, visual_guide
from osmn_tf.serving.client import encode_image
from osmn_tf.utils import atomic

WARMUP_PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")


def _textured(size):
    """A textured frame `(W, H)` and a mask of a box in its middle."""
    width, height = size
    rows, cols = np.mgrid[0:height, 0:width]
    frame = np.stack([cols * 255 // max(width - 1, 1), rows * 255 // max(height - 1, 1),
                      (rows + cols) % 256], axis=-1).astype(np.uint8)
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = 1
    return frame, mask


def representative_inputs(working_size, num_params, guide_size, scale=1.0, network_size=None):
    """`{input name: array}` covering every signature's inputs: a textured frame at
    `working_size` `(W, H)` with one object (a box in its middle), N = 1.

    `scale`: the model's pixel scale; `network_size`: the size the float
    signatures take (lite: the working size padded to multiples of 32; default the working size).
    """
    frame, mask = _textured(working_size)
    network_frame, network_mask = _textured(network_size or working_size)
    return {
        "guide_image": visual_guide(frame, mask, size=guide_size, scale=scale)[np.newaxis],
        "image": preprocess_frame(network_frame, None, scale)[np.newaxis],
        "spatial_guide": spatial_guide(network_mask)[np.newaxis],
        "modulation_params": np.ones((1, num_params), np.float32),
        "frame": frame,
        "masks": mask[np.newaxis],
        "frame_bytes": encode_image(frame, "jpeg"),
        "masks_bytes": np.array([encode_image(mask, "png")], object),
    }


def warmup_logs(endpoints, working_size, num_params, guide_size, model_name="osmn", scale=1.0, network_size=None):
    """One `PredictionLog` per signature of `endpoints` (`{name: [input names]}`); `scale`, `network_size`:
    `representative_inputs`'."""
    try:
        from tensorflow_serving.apis import prediction_log_pb2
    except ImportError as e:
        raise ImportError(f"the warm-up file needs tensorflow-serving-api (pip install 'osmn_tf[serving]'; "
                          f"tools/export.py --no-warmup skips it): {e}") from e

    from osmn_tf.serving.grpc_client import predict_request

    values = representative_inputs(working_size, num_params, guide_size, scale, network_size)
    logs = []
    for name, input_names in endpoints.items():
        request = predict_request(model_name, name, {n: values[n] for n in input_names})
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup(saved_model_dir, logs):
    """Writes `logs` into `<saved_model_dir>/assets.extra/tf_serving_warmup_requests`; returns its path."""
    path = os.path.join(os.fspath(saved_model_dir), WARMUP_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic.replacing(path) as tmp, tf.io.TFRecordWriter(os.fspath(tmp)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup(path):
    """The `PredictRequest`s of a warm-up file, in order."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(os.fspath(path)).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        requests.append(log.predict_log.request)
    return requests
