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
* *Late entries*: with probability `late_entry_prob` an object (after the
  first) enters the video at a later frame, as objects do in YouTube-VOS;
  `write_youtube_vos` writes such sequences in that layout.
* Objects travel several object sizes over a sequence (by default about 2 to 4
  diameters in 24 frames) and change scale, so copying the first frame's mask
  scores poorly.

Everything is numpy and Pillow and deterministic: sequence `index` of a
`SyntheticConfig` with seed `seed` is the same on every machine and does not
depend on which other sequences were generated (its random stream is seeded
with `(seed, index)`). Sizes are `(W, H)`; arrays `[H, W, ...]`.

Use it on the fly (`generate_sequence`) or write it in the DAVIS 2017 layout
(`write_davis`, or `tools/make_synthetic_davis.py`) and read it with
`osmn_tf.data.davis.DavisDataset`.

The package by concern: `config` (what is drawn), `scene` (a sampled
sequence's description), `textures` (silhouettes and procedural textures),
`sampler` (drawing scenes), `render` (drawing frames), `davis_layout`
(writing the DAVIS layout), `youtube_vos_layout` (the YouTube-VOS layout) and
`youtube_objects_layout` (the release's YouTube-Objects layout).
"""
from osmn_tf.data.synthetic.config import SHAPES, TEXTURES, SyntheticConfig
from osmn_tf.data.synthetic.davis_layout import (
    CONFIG_FILE, JPEG_QUALITY, SPLIT_FIRST_INDEX, sequence_name, split_first_index, write_davis)
from osmn_tf.data.synthetic.render import render_background, render_frame, render_object
from osmn_tf.data.synthetic.sampler import generate_sequence, sample_scene
from osmn_tf.data.synthetic.scene import Appearance, SyntheticObject, SyntheticScene
from osmn_tf.data.synthetic.youtube_objects_layout import write_youtube_objects
from osmn_tf.data.synthetic.youtube_vos_layout import write_youtube_vos

__all__ = [
    "CONFIG_FILE", "JPEG_QUALITY", "SHAPES", "SPLIT_FIRST_INDEX", "TEXTURES", "Appearance", "SyntheticConfig",
    "SyntheticObject", "SyntheticScene", "generate_sequence", "render_background", "render_frame",
    "render_object", "sample_scene", "sequence_name", "split_first_index", "write_davis", "write_youtube_objects",
    "write_youtube_vos",
]
