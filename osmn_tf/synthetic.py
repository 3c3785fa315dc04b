"""A procedurally generated video object segmentation dataset: no download needed.

Each sequence shows a few textured objects (ellipses, rectangles, star-shaped
polygons and blobs filled with stripes, checkers, rings, dots, value noise or
gradients in two colours) moving over a slowly panning textured background.
Objects move with constant velocity and bounce off the frame's edges, grow or
shrink, rotate, and occlude one another in a fixed depth order. Masks are exact:
rendering has no anti-aliasing, and a pixel's label is the front-most object
whose silhouette covers it.

The sequences are made so that both of OSMN's modulators matter:

* *Twins*: with probability `twin_prob` two objects of a sequence are identical
  in shape, size, texture, colour, scale and rotation over time; only their
  positions tell them apart, which is what the spatial modulator knows.
* *Meetings*: with probability `meet_prob` each further object is sent through
  the place where an earlier (non-twin) object is at some middle frame, so the
  two overlap and one occludes the other; the previous frame's location alone
  then cannot say which object is meant, the visual modulator's appearance can.
* *Riders*: with probability `rider_prob` an object rides on an earlier
  object of another look, like a person on a horse: smaller, in front of it,
  moving and scaling with it. Both spatial guides then sit at the same place
  and only appearance says which of the two is meant.
* Objects travel several object sizes over a sequence (by default about 2 to 4
  diameters in 24 frames) and change scale, so copying the first frame's mask
  scores poorly.

Everything is numpy and Pillow and deterministic: sequence `index` of a
`SyntheticConfig` with seed `seed` is the same on every machine and does not
depend on which other sequences were generated (its random stream is seeded
with `(seed, index)`). Sizes are `(W, H)`; arrays `[H, W, ...]`.

Use it on the fly (`generate_sequence`) or write it in the DAVIS 2017 layout
(`write_davis`, or `tools/make_synthetic_davis.py`) and read it with
`osmn_tf.davis.DavisDataset`.
"""
import colorsys
import dataclasses
import json
import math
import pathlib

import numpy as np
from PIL import Image

from osmn_tf.davis import DAVIS_PALETTE, atomic_output, write_mask

GENERATOR_VERSION = 1
"""Bumped whenever the same config would render different pixels."""

SHAPES = ("ellipse", "rectangle", "polygon", "blob")
TEXTURES = ("stripes", "checker", "rings", "dots", "noise", "gradient")

SPLIT_FIRST_INDEX = {"train": 0, "val": 1_000_000, "test": 2_000_000, "test-dev": 3_000_000}
"""The first sequence index of each split: splits of one seed never share a sequence."""

CONFIG_FILE = "synthetic_config.json"
"""What `write_davis` records in the dataset root, to refuse mixing configs."""

JPEG_QUALITY = 95

# A silhouette fits in a disc of this radius, in units of the object's radius.
_MAX_EXTENT = 1.5


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """How synthetic sequences are drawn; the defaults suit CPU-sized training.

    Attributes:
        image_size: `(W, H)` of every frame.
        num_frames: frames per sequence.
        min_objects, max_objects: the number of objects is uniform in this range.
        seed: the seed of the whole dataset.
        object_radius: range of an object's base radius, as a fraction of
            `min(W, H)` (the silhouette's size at scale 1).
        speed: range of an object's speed, in object diameters (at its base
            radius) per frame.
        max_log_scale_change: an object's scale goes from 1 at frame 0 to
            `exp(U(-x, x))` at the last frame, geometrically.
        max_rotation: an object rotates by U(-x, x) degrees per frame.
        twin_prob: probability that a sequence has a pair of identical objects.
        meet_prob: probability that an object (after the first) is sent through
            an earlier object's position at a middle frame.
        rider_prob: probability that an object (after the first, not a
            twin) rides on an earlier object of another look instead: its
            centre keeps a small offset (up to a quarter of the host's radius)
            from the host's, its radius is 0.4 to 0.65 of the host's, it
            scales with the host and is drawn in front of it.
        background_pan: the background moves by up to this many pixels per frame
            along each axis.
        min_visible_fraction: in every frame, every object shows at least this
            fraction of its in-frame silhouette; sequences that break this are
            drawn again.
        min_first_visible_fraction: the same for frame 0 (the reference frame).
        min_area_fraction: in every frame every object covers at least this
            fraction of the image.
        max_attempts: how many draws of one sequence are tried before giving up.
    """

    image_size: tuple = (160, 96)
    num_frames: int = 24
    min_objects: int = 2
    max_objects: int = 4
    seed: int = 0
    object_radius: tuple = (0.14, 0.24)
    speed: tuple = (0.08, 0.18)
    max_log_scale_change: float = 0.5
    max_rotation: float = 3.0
    twin_prob: float = 0.6
    meet_prob: float = 0.6
    rider_prob: float = 0.0
    background_pan: float = 0.6
    min_visible_fraction: float = 0.3
    min_first_visible_fraction: float = 0.7
    min_area_fraction: float = 0.003
    max_attempts: int = 200

    def __post_init__(self):
        # Lists (from JSON) become tuples so that configs compare and hash.
        for name in ("image_size", "object_radius", "speed"):
            value = getattr(self, name)
            try:
                pair = tuple(value)
            except TypeError:
                raise ValueError(f"SyntheticConfig.{name} must be a pair, got {value!r}") from None
            if len(pair) != 2:
                raise ValueError(f"SyntheticConfig.{name} must be a pair, got {value!r}")
            object.__setattr__(self, name, pair)
        width, height = self.image_size
        if not all(isinstance(v, (int, np.integer)) and v >= 16 for v in self.image_size):
            raise ValueError(f"SyntheticConfig.image_size must be (W, H) ints >= 16, got {self.image_size!r}")
        object.__setattr__(self, "image_size", (int(width), int(height)))
        if not (isinstance(self.num_frames, (int, np.integer)) and self.num_frames >= 2):
            raise ValueError(f"SyntheticConfig.num_frames must be an int >= 2, got {self.num_frames!r}")
        if not 1 <= self.min_objects <= self.max_objects <= 255:
            raise ValueError("SyntheticConfig needs 1 <= min_objects <= max_objects <= 255, got "
                             f"{self.min_objects!r} and {self.max_objects!r}")
        for name, upper in (("object_radius", 0.5), ("speed", 2.0)):
            low, high = getattr(self, name)
            if not 0 < low <= high <= upper:
                raise ValueError(f"SyntheticConfig.{name} must be (low, high) with 0 < low <= high <= {upper}, "
                                 f"got {getattr(self, name)!r}")
        for name in ("twin_prob", "meet_prob", "rider_prob", "min_visible_fraction", "min_first_visible_fraction",
                     "min_area_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"SyntheticConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("max_log_scale_change", "max_rotation", "background_pan"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"SyntheticConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.max_attempts >= 1:
            raise ValueError(f"SyntheticConfig.max_attempts must be >= 1, got {self.max_attempts!r}")

    def to_dict(self):
        """A JSON-ready dict (tuples as lists) that `from_dict` reads back."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values):
        return cls(**values)


# ----------------------------------------------------------------------------
# Scene description
# ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Appearance:
    """Everything about an object except where it is; twins share one.

    `shape_params` and `texture_params` are dicts of floats and arrays in the
    object's own frame, where the silhouette has radius about 1. `colours` is
    `(2, 3)` float RGB in 0..255, mixed by the texture's value in [0, 1].
    `scales` and `angles` (radians) are per frame.
    """

    shape: str
    shape_params: dict
    texture: str
    texture_params: dict
    colours: np.ndarray
    radius: float
    scales: np.ndarray
    angles: np.ndarray


@dataclasses.dataclass(frozen=True)
class SyntheticObject:
    """One object of a scene.

    Attributes:
        object_id: its label in the masks (1..K).
        depth: its place in the depth order, 0 at the back; larger occludes smaller.
        appearance_id: objects with the same id are twins (same `appearance`).
        appearance: an `Appearance`.
        centres: `(T, 2)` float centre `(x, y)` in pixels, per frame.
        host_id: the object it rides on (`SyntheticConfig.rider_prob`), 0 for none.
    """

    object_id: int
    depth: int
    appearance_id: int
    appearance: Appearance
    centres: np.ndarray
    host_id: int = 0


@dataclasses.dataclass(frozen=True)
class SyntheticScene:
    """A sampled sequence, before rendering: `render_frame(scene, t)` draws frame t."""

    config: SyntheticConfig
    index: int
    objects: tuple
    background: dict

    @property
    def twins(self):
        """Pairs `(id_a, id_b)` of objects with identical appearance."""
        pairs = []
        for i, a in enumerate(self.objects):
            for b in self.objects[i + 1:]:
                if a.appearance_id == b.appearance_id:
                    pairs.append((a.object_id, b.object_id))
        return pairs


# ----------------------------------------------------------------------------
# Procedural textures
# ----------------------------------------------------------------------------
def _soft_square(x, sharpness=1.5):
    """A square wave with soft edges from a sine, in [0, 1]."""
    return np.clip(0.5 + sharpness * x, 0.0, 1.0)


def _value_noise(grid, gx, gy):
    """Smooth value noise: `grid` `[h, w, C]` sampled at fractional grid coordinates, smoothstepped."""
    h, w = grid.shape[:2]
    gx = np.clip(gx, 0, w - 1.000001)
    gy = np.clip(gy, 0, h - 1.000001)
    x0 = np.floor(gx).astype(np.intp)
    y0 = np.floor(gy).astype(np.intp)
    fx = gx - x0
    fy = gy - y0
    fx = (fx * fx * (3 - 2 * fx))[..., None]
    fy = (fy * fy * (3 - 2 * fy))[..., None]
    top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
    bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _texture_value(kind, params, u, v):
    """The texture's value in [0, 1] at object coordinates `(u, v)`."""
    if kind == "stripes":
        w = u * math.cos(params["angle"]) + v * math.sin(params["angle"])
        return _soft_square(np.sin(2 * math.pi * params["frequency"] * w + params["phase"]))
    if kind == "checker":
        ca, sa = math.cos(params["angle"]), math.sin(params["angle"])
        a = u * ca + v * sa
        b = -u * sa + v * ca
        f = 2 * math.pi * params["frequency"]
        return _soft_square(2 * np.sin(f * a + params["phase"]) * np.sin(f * b))
    if kind == "rings":
        rho = np.sqrt(u * u + v * v)
        return _soft_square(np.sin(2 * math.pi * params["frequency"] * rho + params["phase"]))
    if kind == "dots":
        f = params["frequency"]
        a = (u + params["offset"][0]) * f
        b = (v + params["offset"][1]) * f
        d = np.hypot(a - np.round(a), b - np.round(b))
        return np.clip((params["dot_radius"] - d) * 8.0 + 0.5, 0.0, 1.0)
    if kind == "noise":
        grid = params["grid"]
        n = grid.shape[0]
        scale = (n - 1) / (2 * _MAX_EXTENT)
        value = _value_noise(grid, (u + _MAX_EXTENT) * scale, (v + _MAX_EXTENT) * scale)[..., 0]
        return np.clip((value - 0.5) * 2.2 + 0.5, 0.0, 1.0)
    if kind == "gradient":
        w = u * math.cos(params["angle"]) + v * math.sin(params["angle"])
        return np.clip(0.5 + 0.55 * w, 0.0, 1.0)
    raise ValueError(f"unknown texture {kind!r}")


def _inside(shape, params, u, v):
    """Whether object coordinates `(u, v)` lie inside the silhouette."""
    if shape == "ellipse":
        return (u / params["ax"]) ** 2 + (v / params["ay"]) ** 2 <= 1.0
    if shape == "rectangle":
        return (np.abs(u) <= params["ax"]) & (np.abs(v) <= params["ay"])
    theta = np.arctan2(v, u) % (2 * math.pi)
    rho = np.sqrt(u * u + v * v)
    if shape == "blob":
        amps, phases = params["amplitudes"], params["phases"]
        radius = np.ones_like(theta)
        for k, (amp, phase) in enumerate(zip(amps, phases), start=2):
            radius = radius + amp * np.cos(k * theta + phase)
        return rho <= radius * params["size"]
    if shape == "polygon":
        # Star-shaped polygon around the origin: the edge crossed by the ray at
        # angle theta is at distance cross(P_i, P_j) / cross(d, P_j - P_i).
        angles, points = params["angles"], params["points"]
        n = len(angles)
        i = (np.searchsorted(angles, theta, side="right") - 1) % n
        p, q = points[i], points[(i + 1) % n]
        dx, dy = np.cos(theta), np.sin(theta)
        ex, ey = q[..., 0] - p[..., 0], q[..., 1] - p[..., 1]
        edge = (p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]) / (dx * ey - dy * ex)
        return rho <= edge
    raise ValueError(f"unknown shape {shape!r}")


# ----------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------
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
        # Drawn only when riders are on, so that rider_prob 0 renders what generator version 1 always did.
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
    objects = tuple(
        SyntheticObject(object_id=k + 1, depth=int(depths[k]), appearance_id=look_of[k],
                        appearance=looks[look_of[k]], centres=centres[k], host_id=hosts[k] + 1 if k in hosts else 0)
        for k in range(num_objects))
    return SyntheticScene(config=config, index=index, objects=objects, background=_sample_background(rng, config))


def _visibility_ok(scene):
    config = scene.config
    width, height = config.image_size
    min_area = config.min_area_fraction * width * height
    for t in range(config.num_frames):
        labels, silhouettes = _compose_labels(scene, t)
        for obj, (window, inside, _, _) in zip(scene.objects, silhouettes):
            total = np.count_nonzero(inside)
            visible = np.count_nonzero(labels[window][inside] == obj.object_id)
            needed = config.min_first_visible_fraction if t == 0 else config.min_visible_fraction
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
    rng = np.random.default_rng([int(config.seed), index, GENERATOR_VERSION])
    # Drawn once, so that rejections do not favour sequences with fewer objects.
    num_objects = int(rng.integers(config.min_objects, config.max_objects + 1))
    for _ in range(config.max_attempts):
        scene = _draw_scene(rng, config, index, num_objects)
        if _visibility_ok(scene):
            return scene
    raise RuntimeError(
        f"no valid draw for synthetic sequence {index} in {config.max_attempts} attempts: "
        "objects overlap too much; lower max_objects or object_radius, or min_visible_fraction")


# ----------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------
def _object_window(obj, t, image_size):
    """The object's pixels at frame t: `(window slices, inside bool, u, v)`, or None when off-frame.

    `u, v` are object coordinates (radius about 1) of the pixel centres in the window.
    """
    width, height = image_size
    look = obj.appearance
    scale = look.radius * look.scales[t]
    cx, cy = obj.centres[t]
    reach = _MAX_EXTENT * scale
    x0, x1 = max(int(math.floor(cx - reach)), 0), min(int(math.ceil(cx + reach)) + 1, width)
    y0, y1 = max(int(math.floor(cy - reach)), 0), min(int(math.ceil(cy + reach)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    dx = (np.arange(x0, x1, dtype=np.float64) + 0.5 - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float64) + 0.5 - cy)[:, None]
    ca, sa = math.cos(look.angles[t]), math.sin(look.angles[t])
    u = (ca * dx + sa * dy) / scale
    v = (-sa * dx + ca * dy) / scale
    inside = _inside(look.shape, look.shape_params, u, v)
    return (slice(y0, y1), slice(x0, x1)), inside, u, v


def _object_rgb(obj, u, v):
    """The object's colour at object coordinates, `uint8` `[..., 3]`."""
    look = obj.appearance
    value = _texture_value(look.texture, look.texture_params, u, v)[..., None]
    rgb = look.colours[0] * (1 - value) + look.colours[1] * value
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _compose_labels(scene, t):
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
    colour = _value_noise(bg["grid"], (x - bg["origin"][0]) / bg["cell"], (y - bg["origin"][1]) / bg["cell"])
    pattern = _texture_value(bg["pattern"], bg["pattern_params"], x / bg["pattern_scale"], y / bg["pattern_scale"])
    colour = colour * (1 + bg["pattern_contrast"] * (pattern[..., None] - 0.5))
    return np.clip(np.round(colour), 0, 255).astype(np.uint8)


def render_frame(scene, t):
    """Frame t of a scene: `(rgb uint8 [H, W, 3], labels uint8 [H, W])`.

    A pixel shows, and is labelled with, the front-most object whose
    silhouette covers it; elsewhere it shows the background and is 0.
    """
    if not 0 <= t < scene.config.num_frames:
        raise ValueError(f"frame {t} is outside 0..{scene.config.num_frames - 1}")
    labels, silhouettes = _compose_labels(scene, t)
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


def generate_sequence(config, index):
    """Sequence `index` of the dataset `config`: `(frames, masks)`.

    `frames` is a list of `num_frames` `uint8` `[H, W, 3]` RGB images, `masks`
    the matching `uint8` `[H, W]` object ids (0 background, 1..K objects; every
    object is visible in frame 0). Deterministic in `(config.seed, index)`.
    """
    scene = sample_scene(config, index)
    frames, masks = [], []
    for t in range(config.num_frames):
        rgb, labels = render_frame(scene, t)
        frames.append(rgb)
        masks.append(labels)
    return frames, masks


# ----------------------------------------------------------------------------
# Looking at it, and the copy-first-mask baseline
# ----------------------------------------------------------------------------
def overlay_labels(rgb, labels, alpha=0.5):
    """`rgb` with each object tinted in its DAVIS palette colour and outlined; `uint8` `[H, W, 3]`."""
    rgb = np.asarray(rgb, dtype=np.float64)
    labels = np.asarray(labels)
    colours = DAVIS_PALETTE[labels].astype(np.float64)
    fg = (labels > 0)[..., None]
    out = np.where(fg, (1 - alpha) * rgb + alpha * colours, rgb)
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[1:] |= labels[:-1] != labels[1:]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:, 1:] |= labels[:, :-1] != labels[:, 1:]
    edge &= labels > 0
    out[edge] = colours[edge]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def copy_first_mask_ious(masks):
    """The "copy the first mask" baseline of one sequence: `{object_id: mean IoU}`.

    For each object of `masks[0]`, the mean IoU between its first-frame mask
    and its mask in frames 1..T-2 (the frames the DAVIS evaluation scores).
    """
    first = masks[0]
    frames = masks[1:-1] if len(masks) > 2 else masks[1:]
    result = {}
    for object_id in (int(i) for i in np.unique(first) if i != 0):
        reference = first == object_id
        ious = []
        for mask in frames:
            current = mask == object_id
            union = np.count_nonzero(reference | current)
            ious.append(1.0 if union == 0 else np.count_nonzero(reference & current) / union)
        result[object_id] = float(np.mean(ious)) if ious else 1.0
    return result


# ----------------------------------------------------------------------------
# DAVIS layout
# ----------------------------------------------------------------------------
def sequence_name(split, number):
    """The folder name of the `number`-th sequence of a split: `synth-<split>-0007`."""
    return f"synth-{split}-{int(number):04d}"


def split_first_index(split):
    """The sequence index of a split's first sequence (`SPLIT_FIRST_INDEX`)."""
    if split not in SPLIT_FIRST_INDEX:
        raise ValueError(f"no default first index for split {split!r}: pass first_index "
                         f"(known splits: {', '.join(SPLIT_FIRST_INDEX)})")
    return SPLIT_FIRST_INDEX[split]


def _sequence_complete(root, name, num_frames, resolution):
    for folder, suffix in (("JPEGImages", ".jpg"), ("Annotations", ".png")):
        path = root / folder / resolution / name
        if not path.is_dir():
            return False
        present = {p.name for p in path.iterdir() if p.suffix == suffix}
        if not all(f"{t:05d}{suffix}" in present for t in range(num_frames)):
            return False
    return True


def _write_jpeg(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as handle:
        Image.fromarray(rgb).save(handle, format="JPEG", quality=JPEG_QUALITY, subsampling=0)


def _config_or_none(values):
    try:
        return SyntheticConfig.from_dict(values)
    except (TypeError, ValueError):
        return None


def _check_root_config(root, config, overwrite):
    """Records `config` in `root`, or refuses a root written with another config."""
    record = {"generator_version": GENERATOR_VERSION, "config": config.to_dict()}
    path = root / CONFIG_FILE
    if path.is_file() and not overwrite:
        try:
            existing = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise OSError(f"cannot read {path}: {error}") from error
        # Fields added since (at their defaults) do not make an older record differ.
        same = (isinstance(existing, dict) and existing.get("generator_version") == GENERATOR_VERSION
                and _config_or_none(existing.get("config")) == config)
        if not same:
            raise ValueError(
                f"{root} holds synthetic data made with another config or generator version "
                f"({path}); use another root or overwrite=True")
        return
    root.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, "w") as handle:
        handle.write(json.dumps(record, indent=2, sort_keys=True) + "\n")


def write_davis(root, config, num_sequences, year=2017, split="train", first_index=None,
                resolution="480p", overwrite=False, on_sequence=None):
    """Writes `num_sequences` sequences in the DAVIS layout; returns their names.

    Layout (what `osmn_tf.davis.DavisDataset(root, year, split)` reads)::

        root/JPEGImages/480p/synth-<split>-0000/00000.jpg    JPEG, quality 95, 4:4:4
        root/Annotations/480p/synth-<split>-0000/00000.png   palette PNG, object ids
        root/ImageSets/<year>/<split>.txt                    the sequence names
        root/synthetic_config.json                           the config, for resuming

    The "480p" folder name is DAVIS's; frames have `config.image_size`. Masks
    always hold object ids (DAVIS 2017 style; `DavisDataset` with year 2016
    reads them as one object). Sequence number i of the split is
    `generate_sequence(config, first_index + i)`, with `first_index` from
    `SPLIT_FIRST_INDEX` by default, so train and val never overlap.

    Every file is written atomically, and a sequence whose frames and masks
    all exist is skipped, so an interrupted run resumes where it stopped. A
    root written with a different config is refused unless `overwrite`, which
    writes every sequence again.

    Args:
        on_sequence: optional callback `(name, written)` after each sequence;
            `written` is False for a skipped, already complete one.
    """
    root = pathlib.Path(root)
    if int(num_sequences) < 0:
        raise ValueError(f"num_sequences must be >= 0, got {num_sequences!r}")
    if int(year) not in (2016, 2017):
        raise ValueError(f"year must be 2016 or 2017, got {year!r}")
    if not split or any(c in split for c in "/\\") or split.startswith("."):
        raise ValueError(f"split must be a plain name such as 'train' or 'val', got {split!r}")
    first_index = split_first_index(split) if first_index is None else int(first_index)
    _check_root_config(root, config, overwrite)
    names = []
    for number in range(int(num_sequences)):
        name = sequence_name(split, number)
        names.append(name)
        if not overwrite and _sequence_complete(root, name, config.num_frames, resolution):
            if on_sequence is not None:
                on_sequence(name, False)
            continue
        frames, masks = generate_sequence(config, first_index + number)
        for t, (rgb, labels) in enumerate(zip(frames, masks)):
            _write_jpeg(root / "JPEGImages" / resolution / name / f"{t:05d}.jpg", rgb)
            write_mask(root / "Annotations" / resolution / name / f"{t:05d}.png", labels)
        if on_sequence is not None:
            on_sequence(name, True)
    split_file = root / "ImageSets" / str(int(year)) / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(split_file, "w") as handle:
        handle.write("".join(f"{name}\n" for name in names))
    return names
