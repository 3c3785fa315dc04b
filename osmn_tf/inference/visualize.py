"""Pictures for people: masks drawn over frames."""
import numpy as np

from osmn_tf.data.davis import DAVIS_PALETTE


def overlay_labels(frame, labels, palette=None, alpha=0.5):
    """Blends each object's palette colour over its pixels and outlines it.

    Args:
        frame: `uint8` `[H, W, 3]` RGB.
        labels: `uint8` `[H, W]` object ids (0 = background, left as is).
        palette: `[256, 3]` colours; default the DAVIS palette.
        alpha: weight of the colour inside objects.
    Returns:
        `uint8` `[H, W, 3]`.
    """
    palette = np.asarray(DAVIS_PALETTE if palette is None else palette, dtype=np.float32).reshape(-1, 3)
    colours = palette[labels]
    inside = (labels > 0)[..., None]
    out = np.where(inside, (1 - alpha) * frame + alpha * colours, frame)
    # An object's border: an object pixel with a 4-neighbour of another id.
    edge = np.zeros(labels.shape, bool)
    horizontal = labels[:, :-1] != labels[:, 1:]
    vertical = labels[:-1, :] != labels[1:, :]
    edge[:, :-1] |= horizontal
    edge[:, 1:] |= horizontal
    edge[:-1, :] |= vertical
    edge[1:, :] |= vertical
    edge &= labels > 0
    out[edge] = colours[edge]
    return out.round().clip(0, 255).astype(np.uint8)
