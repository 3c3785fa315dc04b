"""Custom Keras layers of OSMN, one concept per module."""
from osmn_tf.layers.bilinear_upsampling import BilinearUpsampling, bilinear_kernel
from osmn_tf.layers.modulation import Modulation
from osmn_tf.layers.object_broadcast import ObjectBroadcast

__all__ = ["BilinearUpsampling", "Modulation", "ObjectBroadcast", "bilinear_kernel"]
