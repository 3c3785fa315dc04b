"""Writing synthetic sequences in the release's YouTube-Objects layout (one object per sequence), resumably."""
import pathlib

import numpy as np
from PIL import Image

from osmn_tf.data.synthetic.davis_layout import check_root_config, split_first_index, write_jpeg
from osmn_tf.data.synthetic.render import render_frame
from osmn_tf.data.synthetic.sampler import sample_scene
from osmn_tf.utils.atomic import atomic_output


def write_youtube_objects(root, config, num_sequences, first_index=None, overwrite=False, on_sequence=None):
    """Writes `num_sequences` sequences in the layout `osmn_tf.data.youtube_objects.YouTubeObjects` reads; returns names.

    Layout::

        root/Images/<shape>_0000/00000.jpg    every frame
        root/Labels/<shape>_0000/00000.png    0/255: the sequence's first object only
        root/all.txt                          the sequence names
        root/synthetic_config.json            the config, for resuming

    A sequence is named after its first object's shape, which plays the
    object class (`class_of`). Sequence i is scene `first_index + i` of the
    `val` split by default, as the other layouts' validation sequences.
    Complete sequences are skipped unless `overwrite`.
    """
    root = pathlib.Path(root)
    if int(num_sequences) < 0:
        raise ValueError(f"num_sequences must be >= 0, got {num_sequences!r}")
    first_index = split_first_index("val") if first_index is None else int(first_index)
    check_root_config(root, config, overwrite)
    names = []
    for number in range(int(num_sequences)):
        scene = sample_scene(config, first_index + number)
        target = scene.objects[0]
        name = f"{target.appearance.shape}_{number:04d}"
        names.append(name)
        images, labels = root / "Images" / name, root / "Labels" / name
        expected = [f"{t:05d}" for t in range(config.num_frames)]
        if not overwrite and all((images / f"{s}.jpg").is_file() and (labels / f"{s}.png").is_file()
                                 for s in expected):
            if on_sequence is not None:
                on_sequence(name, False)
            continue
        labels.mkdir(parents=True, exist_ok=True)
        for t, stem in enumerate(expected):
            rgb, ids = render_frame(scene, t)
            write_jpeg(images / f"{stem}.jpg", rgb)
            with atomic_output(labels / f"{stem}.png") as handle:
                Image.fromarray(np.where(ids == target.object_id, 255, 0).astype(np.uint8)).save(handle, format="PNG")
        if on_sequence is not None:
            on_sequence(name, True)
    with atomic_output(root / "all.txt", "w") as handle:
        handle.write("".join(f"{name}\n" for name in names))
    return names
