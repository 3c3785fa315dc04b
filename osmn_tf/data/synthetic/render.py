"""Drawing a synthetic scene's frames: exact labels, textured objects over a panning background."""
import math

import numpy as np

from osmn_tf.data.synthetic.textures import MAX_EXTENT, inside_silhouette, texture_value, value_noise


def _object_window(obj, t, image_size):
    """The object's pixels at frame t: `(window slices, inside bool, u, v)`, or None when off-frame.

    `u, v` are object coordinates (radius about 1) of the pixel centres in the window.
    """
    if t < obj.first_frame:
        return None  # not entered yet
    width, height = image_size
    look = obj.appearance
    scale = look.radius * look.scales[t]
    cx, cy = obj.centres[t]
    reach = MAX_EXTENT * scale
    x0, x1 = max(int(math.floor(cx - reach)), 0), min(int(math.ceil(cx + reach)) + 1, width)
    y0, y1 = max(int(math.floor(cy - reach)), 0), min(int(math.ceil(cy + reach)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    dx = (np.arange(x0, x1, dtype=np.float64) + 0.5 - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float64) + 0.5 - cy)[:, None]
    ca, sa = math.cos(look.angles[t]), math.sin(look.angles[t])
    u = (ca * dx + sa * dy) / scale
    v = (-sa * dx + ca * dy) / scale
    inside = inside_silhouette(look.shape, look.shape_params, u, v)
    return (slice(y0, y1), slice(x0, x1)), inside, u, v


def _object_rgb(obj, u, v):
    """The object's colour at object coordinates, `uint8` `[..., 3]`."""
    look = obj.appearance
    value = texture_value(look.texture, look.texture_params, u, v)[..., None]
    rgb = look.colours[0] * (1 - value) + look.colours[1] * value
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def compose_labels(scene, t):
    """Labels `[H, W]` of frame t and each object's `(window, inside)` (inside all False when off-frame)."""
    width, height = scene.config.image_size
    labels = np.zeros((height, width), dtype=np.uint8)
    silhouettes = []
    for obj in scene.objects:
        found = _object_window(obj, t, scene.config.image_size)
        if found is None:
            silhouettes.append(((slice(0, 0), slice(0, 0)), np.zeros((0, 0), bool), None, None))
        else:
            silhouettes.append(found)
    for k in sorted(range(len(scene.objects)), key=lambda k: scene.objects[k].depth):
        window, inside = silhouettes[k][:2]
        labels[window][inside] = scene.objects[k].object_id
    return labels, silhouettes


def render_background(scene, t):
    """Frame t's background, `uint8` `[H, W, 3]`."""
    width, height = scene.config.image_size
    bg = scene.background
    # Background coordinates of the pixel centres, shifted by the pan.
    x = np.arange(width, dtype=np.float64)[None, :] + 0.5 - bg["pan"][0] * t
    y = np.arange(height, dtype=np.float64)[:, None] + 0.5 - bg["pan"][1] * t
    x, y = np.broadcast_arrays(x, y)
    colour = value_noise(bg["grid"], (x - bg["origin"][0]) / bg["cell"], (y - bg["origin"][1]) / bg["cell"])
    pattern = texture_value(bg["pattern"], bg["pattern_params"], x / bg["pattern_scale"], y / bg["pattern_scale"])
    colour = colour * (1 + bg["pattern_contrast"] * (pattern[..., None] - 0.5))
    return np.clip(np.round(colour), 0, 255).astype(np.uint8)


def render_frame(scene, t):
    """Frame t of a scene: `(rgb uint8 [H, W, 3], labels uint8 [H, W])`.

    A pixel shows, and is labelled with, the front-most object whose
    silhouette covers it; elsewhere it shows the background and is 0.
    """
    if not 0 <= t < scene.config.num_frames:
        raise ValueError(f"frame {t} is outside 0..{scene.config.num_frames - 1}")
    labels, silhouettes = compose_labels(scene, t)
    rgb = render_background(scene, t)
    for obj, (window, inside, u, v) in zip(scene.objects, silhouettes):
        if u is None:
            continue
        shown = labels[window] == obj.object_id
        if shown.any():
            rgb[window][shown] = _object_rgb(obj, u, v)[shown]
    return rgb, labels


def render_object(scene, object_id, t):
    """One object of frame t drawn alone: `(silhouette bool [H, W], rgb uint8 [H, W, 3])`.

    `rgb` is the object's colour inside its full silhouette (occluded parts
    included) and 0 outside; `render_frame` shows exactly these colours at the
    pixels it labels `object_id`.
    """
    width, height = scene.config.image_size
    silhouette = np.zeros((height, width), dtype=bool)
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    obj = next((o for o in scene.objects if o.object_id == object_id), None)
    if obj is None:
        raise ValueError(f"scene {scene.index} has no object {object_id}")
    found = _object_window(obj, t, scene.config.image_size)
    if found is not None:
        window, inside, u, v = found
        silhouette[window] = inside
        rgb[window][inside] = _object_rgb(obj, u, v)[inside]
    return silhouette, rgb

