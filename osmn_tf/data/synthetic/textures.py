"""Silhouettes and procedural textures, in an object's own frame (radius about 1)."""
import math

import numpy as np

MAX_EXTENT = 1.5
"""A silhouette fits in a disc of this radius, in units of the object's radius."""


def _soft_square(x, sharpness=1.5):
    """A square wave with soft edges from a sine, in [0, 1]."""
    return np.clip(0.5 + sharpness * x, 0.0, 1.0)


def value_noise(grid, gx, gy):
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


def texture_value(kind, params, u, v):
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
        scale = (n - 1) / (2 * MAX_EXTENT)
        value = value_noise(grid, (u + MAX_EXTENT) * scale, (v + MAX_EXTENT) * scale)[..., 0]
        return np.clip((value - 0.5) * 2.2 + 0.5, 0.0, 1.0)
    if kind == "gradient":
        w = u * math.cos(params["angle"]) + v * math.sin(params["angle"])
        return np.clip(0.5 + 0.55 * w, 0.0, 1.0)
    raise ValueError(f"unknown texture {kind!r}")


def inside_silhouette(shape, params, u, v):
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

