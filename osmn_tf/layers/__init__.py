"""Custom Keras layers of OSMN, one concept per module."""
from osmn_tf.layers.aligned_padding import AlignedPadding
from osmn_tf.layers.bilinear_upsampling import BilinearUpsampling
from osmn_tf.layers.legacy_bilinear_resize import LegacyBilinearResize
from osmn_tf.layers.modulation import Modulation
from osmn_tf.layers.object_broadcast import ObjectBroadcast
from osmn_tf.layers.side_output_fusion import SideOutputFusion

__all__ = ["AlignedPadding", "BilinearUpsampling", "LegacyBilinearResize", "Modulation", "ObjectBroadcast",
           "SideOutputFusion"]
