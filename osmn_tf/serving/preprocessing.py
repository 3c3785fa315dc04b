"""In-graph preprocessing for the `_raw` serving signatures: the TF-op versions of `osmn_tf.data.frames` and `osmn_tf.data.guides`.

They follow the NumPy/PIL preprocessing up to PIL's rounding; `docs/serving.md`
gives the measured differences.
"""
import tensorflow as tf

from osmn_tf.config import GUIDE_SIZE
from osmn_tf.data.frames import MEAN_BGR, SCALE
from osmn_tf.data.guides import MAD_TO_STD, MIN_SPATIAL_SCALE, PAD_RATIO
from osmn_tf.inference.tracking import BACKGROUND_SCORE


def _round_to_uint8_range(x):
    # PIL rounds each resampling pass to 8 bits, half up.
    return tf.clip_by_value(tf.floor(x + 0.5), 0.0, 255.0)


def pil_bilinear_resize(image, height, width):
    """PIL-like bilinear resize of `[h, w, C]` 0..255 values to `[height, width, C]`, float32.

    PIL's bilinear filter widens its support when shrinking (a triangle filter
    scaled to the output's pixel size), which is `tf.image.resize(...,
    antialias=True)`; PIL also resizes horizontally first and rounds to 8 bits
    after each pass, which this repeats. Values stay integers in 0..255.
    """
    x = tf.cast(image, tf.float32)[tf.newaxis]
    x = tf.image.resize(x, tf.stack([tf.shape(x)[1], width]), method="bilinear", antialias=True)
    x = _round_to_uint8_range(x)
    x = tf.image.resize(x, tf.stack([height, width]), method="bilinear", antialias=True)
    return _round_to_uint8_range(x)[0]


def nearest_resize_masks(masks, height, width):
    """Nearest-neighbour resize of `[N, h, w]` masks to `[N, height, width]` (PIL's pixel choice)."""

    def source_indices(size_in, size_out):
        # PIL (ImagingScaleAffine): position 0.5 * scale, then += scale per
        # pixel, in double precision, truncated. The running sum's round-off is
        # part of the choice: floor((i + 0.5) * scale), or tf.image.resize
        # (float32), pick other pixels for e.g. 1920 -> 854.
        scale = tf.cast(size_in, tf.float64) / tf.cast(size_out, tf.float64)
        steps = tf.concat([[scale * 0.5], tf.fill([size_out - 1], scale)], axis=0)
        index = tf.cast(tf.math.cumsum(steps), tf.int32)
        return tf.minimum(index, size_in - 1)

    shape = tf.shape(masks)
    rows = source_indices(shape[1], height)
    cols = source_indices(shape[2], width)
    return tf.gather(tf.gather(masks, rows, axis=1), cols, axis=2)


def normalize_rgb(rgb, scale=SCALE, mean=MEAN_BGR):
    """RGB 0..255 values `[..., 3]` -> the network's encoding: BGR minus `mean`, times `scale` (the
    model's `osmn_tf.config.input_mean_of` and `input_scale_of`: scale 1.0, lite's 0.00787)."""
    bgr = tf.reverse(tf.cast(rgb, tf.float32), axis=[-1])
    return (bgr - tf.constant(mean, tf.float32)) * scale


def _visual_guide_one(frame, mask, guide_size, scale=SCALE, mean=MEAN_BGR):
    """One object's visual guide `[S, S, 3]` (S = `guide_size`) from `frame` `[H, W, 3]` float and `mask` `[H, W]` bool.

    Follows `osmn_tf.data.guides.visual_guide` at inference, the crop-box quirk included.
    """
    height, width = tf.shape(mask)[0], tf.shape(mask)[1]
    rows = tf.reduce_any(mask, axis=1)
    cols = tf.reduce_any(mask, axis=0)
    empty = tf.logical_not(tf.reduce_any(rows))
    row_ids, col_ids = tf.range(height), tf.range(width)
    # PIL crop box (x0, y0, x1, y1): the inclusive extremes used as an exclusive box
    # (quirk: drops the object's last row and column); empty mask: the whole frame.
    x0 = tf.where(empty, 0, tf.reduce_min(tf.where(cols, col_ids, width)))
    y0 = tf.where(empty, 0, tf.reduce_min(tf.where(rows, row_ids, height)))
    x1 = tf.where(empty, width, tf.reduce_max(tf.where(cols, col_ids, -1)))
    y1 = tf.where(empty, height, tf.reduce_max(tf.where(rows, row_ids, -1)))
    crop_w, crop_h = x1 - x0, y1 - y0
    # int(0.03 * w) in double precision, as the original.
    pad_x = tf.cast(tf.floor(PAD_RATIO * tf.cast(crop_w, tf.float64)), tf.int32)
    pad_y = tf.cast(tf.floor(PAD_RATIO * tf.cast(crop_h, tf.float64)), tf.int32)

    def guide():
        size = tf.stack([crop_h, crop_w])
        image = tf.slice(frame, tf.stack([y0, x0, 0]), tf.concat([size, [3]], axis=0))
        label = tf.slice(tf.cast(mask, tf.uint8), tf.stack([y0, x0]), size)
        # The margin is cropped from the first crop, so it is zero (PIL's fill)
        # even where the frame goes on.
        paddings = tf.stack([tf.stack([pad_y, pad_y]), tf.stack([pad_x, pad_x])])
        image = tf.pad(image, tf.concat([paddings, [[0, 0]]], axis=0))
        label = tf.pad(label, paddings)
        image = pil_bilinear_resize(image, guide_size, guide_size)
        label = nearest_resize_masks(label[tf.newaxis], guide_size, guide_size)[0]
        return normalize_rgb(image, scale, mean) * tf.cast(label != 0, tf.float32)[..., tf.newaxis]

    # An object one pixel wide or tall gives an empty crop: an all-zero guide.
    return tf.cond(
        tf.logical_and(crop_w > 0, crop_h > 0), guide, lambda: tf.zeros([guide_size, guide_size, 3], tf.float32)
    )


def visual_guides(frame, masks, guide_size=GUIDE_SIZE, scale=SCALE, mean=MEAN_BGR):
    """The visual guides `[N, S, S, 3]` (S = `guide_size`) of `masks` `[N, h, w]` (nonzero = object) on `frame`
    uint8 `[H, W, 3]`, at pixel `scale` with `mean` subtracted."""
    height, width = tf.shape(frame)[0], tf.shape(frame)[1]
    masks = nearest_resize_masks(masks, height, width) != 0
    frame = tf.cast(frame, tf.float32)
    return tf.map_fn(
        lambda m: _visual_guide_one(frame, m, guide_size, scale, mean),
        masks,
        fn_output_signature=tf.TensorSpec([guide_size, guide_size, 3], tf.float32),
    )


def _median(sorted_values):
    n = tf.shape(sorted_values)[0]
    # As numpy: the mean of the two middle values (the same value twice when n is odd).
    return (sorted_values[(n - 1) // 2] + sorted_values[n // 2]) / 2


def _spatial_guide_one(mask):
    """`osmn_tf.data.guides.spatial_guide` of one `[H, W]` bool mask, `[H, W, 1]` float32."""
    height, width = tf.shape(mask)[0], tf.shape(mask)[1]
    points = tf.cast(tf.where(mask), tf.float32)  # [n, 2] as (y, x)

    def gaussian():
        ys, xs = tf.sort(points[:, 0]), tf.sort(points[:, 1])
        cx, cy = _median(xs), _median(ys)
        mad_x = _median(tf.sort(tf.abs(xs - cx)))
        mad_y = _median(tf.sort(tf.abs(ys - cy)))
        # Scales in float32 as the original, the Gaussian in float64.
        sx = tf.cast(tf.maximum(mad_x * MAD_TO_STD, MIN_SPATIAL_SCALE), tf.float64)
        sy = tf.cast(tf.maximum(mad_y * MAD_TO_STD, MIN_SPATIAL_SCALE), tf.float64)
        cx, cy = tf.cast(cx, tf.float64), tf.cast(cy, tf.float64)
        dx2 = (tf.range(width, dtype=tf.float64) - cx) ** 2 * (0.5 / (sx * sx))
        dy2 = (tf.range(height, dtype=tf.float64) - cy) ** 2 * (0.5 / (sy * sy))
        g = tf.clip_by_value(tf.exp(-(dx2[tf.newaxis, :] + dy2[:, tf.newaxis])), 0.0, 1.0)
        return tf.cast(g, tf.float32)[..., tf.newaxis]

    return tf.cond(tf.shape(points)[0] > 0, gaussian, lambda: tf.zeros(tf.stack([height, width, 1]), tf.float32))


def spatial_guides(masks):
    """The spatial guides `[N, H, W, 1]` of binary masks `[N, H, W]` (nonzero = object)."""
    return tf.map_fn(
        _spatial_guide_one, masks != 0, fn_output_signature=tf.TensorSpec([None, None, 1], tf.float32)
    )


def merge_labels(probabilities):
    """`[N, H, W, 1]` probabilities -> uint8 `[H, W]`: argmax over [0.5 background, p_1..p_N] (0 = background)."""
    scores = tf.transpose(probabilities[..., 0], [1, 2, 0])
    background = tf.fill(tf.concat([tf.shape(scores)[:2], [1]], axis=0), BACKGROUND_SCORE)
    return tf.cast(tf.argmax(tf.concat([background, scores], axis=-1), axis=-1), tf.uint8)
