"""INT8 post-training quantization of the per-frame network (the `int8` extra: OpenVINO and NNCF).

    from osmn_tf.quantization import calibration_samples, quantize
    samples = calibration_samples(model, [(frames, first_mask)], working_size)
    network = quantize(model, samples, working_size)      # an Int8FrameNetwork
    network.save("model.int8")                             # Int8FrameNetwork.load("model.int8")
    VideoSegmenter(model, working_size, frame_network=network)

`routes` holds every route that was compared (`tools/benchmark_int8.py`);
`network` the one kept.
"""
from osmn_tf.quantization.calibration import calibration_samples, dataset_videos, random_samples
from osmn_tf.quantization.network import INSTALL_HINT, Int8FrameNetwork, check_extra, quantize
from osmn_tf.utils.errors import MissingExtraError

__all__ = ["INSTALL_HINT", "Int8FrameNetwork", "MissingExtraError", "calibration_samples", "check_extra", "dataset_videos",
           "quantize", "random_samples"]
