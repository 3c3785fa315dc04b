"""Encoded images in the graph: the JPEG/PNG frame and PNG masks of the `_image` signatures.

A frame sent as JPEG or PNG bytes is 10-50x smaller than the same frame as a
JSON list of numbers and parses in a fraction of the time (`docs/serving.md`
has the measurements). The checks here run before any decoding so that a
wrong file gives a message naming the input rather than a decoder's error.
"""
import tensorflow as tf

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
# A PNG file starts with its signature and the IHDR chunk: width and height are
# the big-endian 32-bit integers at bytes 16-23.
_PNG_HEADER_LENGTH = 24


def _starts_with(data, prefix):
    return tf.equal(tf.strings.substr(data, 0, len(prefix)), prefix)


def decode_frame(frame_bytes):
    """One RGB frame uint8 `[H, W, 3]` from the JPEG or PNG file `frame_bytes` (a scalar string)."""
    rank = tf.debugging.assert_rank(frame_bytes, 0, message="frame_bytes must be one encoded image (a scalar string)")
    with tf.control_dependencies([rank]):
        known = tf.debugging.Assert(
            tf.logical_or(_starts_with(frame_bytes, PNG_SIGNATURE), _starts_with(frame_bytes, JPEG_SIGNATURE)),
            ["frame_bytes must be a JPEG or PNG file; its first bytes are neither signature:",
             tf.strings.substr(frame_bytes, 0, 8)])
    with tf.control_dependencies([known]):
        frame = tf.io.decode_image(frame_bytes, channels=3, dtype=tf.uint8, expand_animations=False)
    frame.set_shape([None, None, 3])
    return frame


def png_sizes(masks_bytes):
    """`[N, 2]` (height, width) int64 of the PNG files `masks_bytes` `[N]`, read from their headers."""
    header = tf.cast(tf.io.decode_raw(tf.strings.substr(masks_bytes, 16, 8), tf.uint8), tf.int64)
    weights = tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64)
    width = tf.reduce_sum(header[:, :4] * weights, axis=1)
    height = tf.reduce_sum(header[:, 4:] * weights, axis=1)
    return tf.stack([height, width], axis=1)


def decode_masks(masks_bytes, allowed_sizes, rule):
    """Masks uint8 `[N, h, w]` (nonzero = object) from the PNG files `masks_bytes` `[N]`.

    Every mask must have the same size `(h, w)`, one of `allowed_sizes` (a list of
    `(height, width)` int tensors); `rule` says which in the error message.
    Palette or colour PNGs are read as grey levels: only zero/nonzero matters.
    """
    rank = tf.debugging.assert_rank(masks_bytes, 1, message="masks_bytes must be [N] PNG files, one per object")
    with tf.control_dependencies([rank]):
        is_png = tf.logical_and(_starts_with(masks_bytes, PNG_SIGNATURE),
                                tf.strings.length(masks_bytes) >= _PNG_HEADER_LENGTH)
        checks = [
            tf.debugging.assert_positive(tf.shape(masks_bytes), message="masks_bytes must hold at least one mask"),
            tf.debugging.Assert(tf.reduce_all(is_png), ["every masks_bytes entry must be a PNG file; PNG or not:",
                                                        is_png]),
        ]
    with tf.control_dependencies(checks):
        sizes = png_sizes(masks_bytes)
    first = sizes[0]
    allowed = tf.reduce_any(tf.stack([tf.reduce_all(tf.equal(first, tf.cast(s, tf.int64))) for s in allowed_sizes]))
    size_check = tf.debugging.Assert(
        tf.logical_and(tf.reduce_all(tf.equal(sizes, first)), allowed),
        [f"masks_bytes: every mask must {rule}; masks (height, width):", sizes, "allowed:",
         tf.stack([tf.cast(s, tf.int64) for s in allowed_sizes])], summarize=16)
    with tf.control_dependencies([size_check]):
        masks = tf.map_fn(lambda data: tf.io.decode_png(data, channels=1)[..., 0], masks_bytes,
                          fn_output_signature=tf.TensorSpec([None, None], tf.uint8))
    return masks


def encode_png(labels):
    """PNG bytes (a scalar string) of a grey-level uint8 label map `[H, W]`."""
    return tf.io.encode_png(labels[..., tf.newaxis])
