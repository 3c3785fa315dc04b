"""Drawing a synthetic scene: looks, trajectories, twins, meetings, riders and the background."""
import colorsys
import dataclasses
import math

import numpy as np

from osmn_tf.data.synthetic.config import SHAPES, TEXTURES
from osmn_tf.data.synthetic.render import compose_labels, render_frame
from osmn_tf.data.synthetic.scene import Appearance, SyntheticObject, SyntheticScene

_STREAM_TAG = 1
"""The last entry of every sequence's seed `(seed, index, tag)`; another value draws other datasets."""


def _hsv(h, s, v):
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float64) * 255.0


def _sample_shape(rng):
    shape = SHAPES[rng.integers(len(SHAPES))]
    if shape in ("ellipse", "rectangle"):
        aspect = rng.uniform(0.55, 1.0)
        ax, ay = (1.0, aspect) if rng.random() < 0.5 else (aspect, 1.0)
        if shape == "rectangle":  # same area as the ellipse of that box, roughly
            ax, ay = ax * 0.88, ay * 0.88
        return shape, {"ax": ax, "ay": ay}
    if shape == "blob":
        amplitudes = rng.uniform(0.0, 0.16, size=3)
        return shape, {"amplitudes": amplitudes, "phases": rng.uniform(0, 2 * math.pi, size=3),
                       "size": 1.0 / (1.0 + amplitudes.sum())}
    n = int(rng.integers(3, 8))
    step = 2 * math.pi / n
    angles = (np.arange(n) * step + rng.uniform(-0.2, 0.2, size=n) * step + rng.uniform(0, step)) % (2 * math.pi)
    angles = np.sort(angles)
    radii = rng.uniform(0.8, 1.15, size=n)
    points = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=-1)
    return shape, {"angles": angles, "points": points}


def _sample_texture(rng, kind):
    angle = rng.uniform(0, math.pi)
    if kind == "stripes":
        return {"angle": angle, "frequency": rng.uniform(1.0, 2.0), "phase": rng.uniform(0, 2 * math.pi)}
    if kind == "checker":
        return {"angle": angle, "frequency": rng.uniform(0.6, 1.1), "phase": rng.uniform(0, 2 * math.pi)}
    if kind == "rings":
        return {"frequency": rng.uniform(1.0, 1.8), "phase": rng.uniform(0, 2 * math.pi)}
    if kind == "dots":
        return {"frequency": rng.uniform(1.4, 2.2), "offset": rng.uniform(0, 1, size=2),
                "dot_radius": rng.uniform(0.22, 0.32)}
    if kind == "noise":
        return {"grid": rng.random((6, 6, 1))}
    if kind == "gradient":
        return {"angle": rng.uniform(0, 2 * math.pi)}
    raise ValueError(f"unknown texture {kind!r}")


def _sample_appearance(rng, config, hue):
    width, height = config.image_size
    t = np.arange(config.num_frames)
    last = max(config.num_frames - 1, 1)
    shape, shape_params = _sample_shape(rng)
    kind = TEXTURES[rng.integers(len(TEXTURES))]
    saturation = rng.uniform(0.65, 1.0)
    light = _hsv(hue, saturation, rng.uniform(0.8, 1.0))
    # The second colour: a dark shade of the same hue or of a neighbouring one.
    dark = _hsv(hue + rng.uniform(-0.12, 0.12), rng.uniform(0.5, 1.0), rng.uniform(0.12, 0.4))
    colours = np.stack([light, dark]) if rng.random() < 0.5 else np.stack([dark, light])
    radius = rng.uniform(*config.object_radius) * min(width, height)
    log_change = rng.uniform(-config.max_log_scale_change, config.max_log_scale_change)
    scales = np.exp(log_change * t / last)
    spin = math.radians(rng.uniform(-config.max_rotation, config.max_rotation))
    angles = rng.uniform(0, 2 * math.pi) + spin * t
    return Appearance(shape=shape, shape_params=shape_params, texture=kind,
                      texture_params=_sample_texture(rng, kind), colours=colours, radius=radius,
                      scales=scales, angles=angles)


def _bounds(config, radius):
    """The range a centre bounces in: the object may leave the frame by up to about 60% of its radius."""
    width, height = config.image_size
    margin = 0.4 * radius
    return np.array([margin, margin]), np.array([width - margin, height - margin])


def _reflect(x, low, high):
    """Folds unbounded coordinates into [low, high] (bouncing off both ends)."""
    span = high - low
    y = np.mod(x - low, 2 * span)
    return low + np.where(y > span, 2 * span - y, y)


def _trajectory(rng, config, radius, meet_point=None, meet_time=0.0):
    """Centres `(T, 2)`: constant velocity, bouncing; through `meet_point` at `meet_time` if given."""
    low, high = _bounds(config, radius)
    speed = rng.uniform(*config.speed) * 2 * radius
    direction = rng.uniform(0, 2 * math.pi)
    velocity = speed * np.array([math.cos(direction), math.sin(direction)])
    if meet_point is None:
        anchor = rng.uniform(low, high)
    else:
        anchor = np.clip(meet_point, low, high)
    t = np.arange(config.num_frames, dtype=np.float64)[:, None]
    return _reflect(anchor + velocity * (t - meet_time), low, high)


def _sample_background(rng, config):
    width, height = config.image_size
    t_last = config.num_frames - 1
    pan = rng.uniform(-config.background_pan, config.background_pan, size=2)
    cell = rng.uniform(0.25, 0.5) * min(width, height)
    reach = np.abs(pan) * t_last  # how far the pan moves the view
    origin = -reach - cell
    cells = np.ceil((np.array([width, height]) + 2 * reach + 2 * cell) / cell).astype(int) + 2
    # A few colours of moderate saturation, mixed by value noise.
    hue = rng.uniform()
    palette = np.stack([_hsv(hue + rng.uniform(-0.15, 0.15), rng.uniform(0.15, 0.55), rng.uniform(0.3, 0.8))
                        for _ in range(3)])
    weights = rng.dirichlet(np.ones(3), size=(cells[1], cells[0]))
    grid = weights @ palette
    kind = ("stripes", "checker", "dots", "noise")[rng.integers(4)]
    pattern_scale = rng.uniform(0.08, 0.14) * min(width, height)  # pixels per texture unit
    return {"pan": pan, "origin": origin, "cell": cell, "grid": grid, "pattern": kind,
            "pattern_params": _sample_texture(rng, kind), "pattern_scale": pattern_scale,
            "pattern_contrast": rng.uniform(0.15, 0.3)}


def _draw_scene(rng, config, index, num_objects):
    has_twins = num_objects >= 2 and rng.random() < config.twin_prob
    num_looks = num_objects - 1 if has_twins else num_objects
    # Hues spread around the circle so that different objects differ in colour.
    hue0 = rng.uniform()
    hues = hue0 + (np.arange(num_looks) + rng.uniform(-0.15, 0.15, size=num_looks)) / num_looks
    looks = [_sample_appearance(rng, config, hue) for hue in rng.permutation(hues)]
    look_of = list(range(num_looks))
    if has_twins:
        # The twin copies the look of a random object before it.
        twin_at = int(rng.integers(1, num_objects))
        look_of.insert(twin_at, look_of[int(rng.integers(twin_at))])
    centres, hosts = [], {}  # hosts: rider index -> host index
    for k in range(num_objects):
        look = looks[look_of[k]]
        partners = [j for j in range(k) if look_of[j] != look_of[k]]
        # A host carries one rider and rides on nothing; twins keep their shared look.
        free = [j for j in partners if j not in hosts and j not in hosts.values()]
        # Drawn only when riders are on, so that with rider_prob 0 the stream has no rider draws at all.
        if config.rider_prob > 0 and free and look_of.count(look_of[k]) == 1 and rng.random() < config.rider_prob:
            j = free[int(rng.integers(len(free)))]
            host = looks[look_of[j]]
            looks[look_of[k]] = dataclasses.replace(look, radius=host.radius * rng.uniform(0.4, 0.65),
                                                    scales=host.scales)
            direction = rng.uniform(0, 2 * math.pi)
            offset = rng.uniform(0, 0.25) * host.radius * np.array([math.cos(direction), math.sin(direction)])
            centres.append(centres[j] + offset)
            hosts[k] = j
        elif partners and rng.random() < config.meet_prob:
            j = partners[int(rng.integers(len(partners)))]
            meet_time = rng.uniform(0.25, 0.75) * (config.num_frames - 1)
            frame = int(round(meet_time))
            radius_j = looks[look_of[j]].radius * looks[look_of[j]].scales[frame]
            radius_k = look.radius * look.scales[frame]
            offset = rng.uniform(0.3, 0.8) * (radius_j + radius_k)
            direction = rng.uniform(0, 2 * math.pi)
            # Where j is at meet_time (between frames: interpolate linearly).
            lo = int(math.floor(meet_time))
            hi = min(lo + 1, config.num_frames - 1)
            where = centres[j][lo] + (centres[j][hi] - centres[j][lo]) * (meet_time - lo)
            point = where + offset * np.array([math.cos(direction), math.sin(direction)])
            centres.append(_trajectory(rng, config, look.radius, point, meet_time))
        else:
            centres.append(_trajectory(rng, config, look.radius))
    depths = rng.permutation(num_objects)
    for k, j in hosts.items():  # riders in front of their hosts (pairs are disjoint)
        if depths[k] < depths[j]:
            depths[k], depths[j] = depths[j], depths[k]
    first_frames = [0] * num_objects
    # Drawn only when late entries are on, so that without them the stream is unchanged.
    if config.late_entry_prob > 0:
        for k in range(1, num_objects):
            if k in hosts:
                first_frames[k] = first_frames[hosts[k]]
            elif rng.random() < config.late_entry_prob:
                first_frames[k] = int(rng.integers(1, max(config.num_frames // 2, 1) + 1))
    objects = tuple(
        SyntheticObject(object_id=k + 1, depth=int(depths[k]), appearance_id=look_of[k],
                        appearance=looks[look_of[k]], centres=centres[k], host_id=hosts[k] + 1 if k in hosts else 0,
                        first_frame=first_frames[k])
        for k in range(num_objects))
    return SyntheticScene(config=config, index=index, objects=objects, background=_sample_background(rng, config))


def _visibility_ok(scene):
    config = scene.config
    width, height = config.image_size
    min_area = config.min_area_fraction * width * height
    for t in range(config.num_frames):
        labels, silhouettes = compose_labels(scene, t)
        for obj, (window, inside, _, _) in zip(scene.objects, silhouettes):
            if t < obj.first_frame:
                continue
            total = np.count_nonzero(inside)
            visible = np.count_nonzero(labels[window][inside] == obj.object_id)
            # An object's first frame is its reference frame.
            needed = config.min_first_visible_fraction if t == obj.first_frame else config.min_visible_fraction
            if total == 0 or visible < needed * total or visible < min_area:
                return False
    return True


def sample_scene(config, index):
    """The scene of sequence `index`: objects, trajectories and background, not yet rendered.

    Deterministic in `(config.seed, index)`. The number of objects is drawn
    first; draws whose objects are too hidden (see
    `SyntheticConfig.min_visible_fraction`) are rejected and the rest is drawn
    again from the same random stream.
    """
    index = int(index)
    if index < 0:
        raise ValueError(f"sequence index must be >= 0, got {index}")
    rng = np.random.default_rng([int(config.seed), index, _STREAM_TAG])
    # Drawn once, so that rejections do not favour sequences with fewer objects.
    num_objects = int(rng.integers(config.min_objects, config.max_objects + 1))
    for _ in range(config.max_attempts):
        scene = _draw_scene(rng, config, index, num_objects)
        if _visibility_ok(scene):
            return scene
    raise RuntimeError(
        f"no valid draw for synthetic sequence {index} in {config.max_attempts} attempts: "
        "objects overlap too much; lower max_objects or object_radius, or min_visible_fraction")



def generate_sequence(config, index):
    """Sequence `index` of the dataset `config`: `(frames, masks)`.

    `frames` is a list of `num_frames` `uint8` `[H, W, 3]` RGB images, `masks`
    the matching `uint8` `[H, W]` object ids (0 background, 1..K objects; every
    object is visible in frame 0, or from the frame where it enters with
    `SyntheticConfig.late_entry_prob`). Deterministic in `(config.seed, index)`.
    """
    scene = sample_scene(config, index)
    frames, masks = [], []
    for t in range(config.num_frames):
        rgb, labels = render_frame(scene, t)
        frames.append(rgb)
        masks.append(labels)
    return frames, masks

