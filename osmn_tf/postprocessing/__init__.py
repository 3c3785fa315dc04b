"""What the release can do to the network's masks after the fact: the dense CRF."""
from osmn_tf.postprocessing.dense_crf import DenseCRFConfig, dense_crf

__all__ = ["DenseCRFConfig", "dense_crf"]
