"""Writing synthetic sequences in the YouTube-VOS layout (objects entering later), resumably."""
import json
import pathlib

from osmn_tf.data.davis import write_mask
from osmn_tf.utils.atomic import atomic_output
from osmn_tf.data.synthetic.davis_layout import (check_root_config, frames_complete, sequence_name, split_first_index,
                                             write_jpeg)
from osmn_tf.data.synthetic.render import render_frame
from osmn_tf.data.synthetic.sampler import sample_scene


def write_youtube_vos(root, config, num_sequences, split="valid", first_index=None, overwrite=False,
                      on_sequence=None):
    """Writes `num_sequences` sequences in the YouTube-VOS layout (`osmn_tf.data.youtube_vos`); returns their names.

    Layout::

        root/<split>/JPEGImages/synth-<split>-0000/00000.jpg   every frame
        root/<split>/Annotations/synth-<split>-0000/00000.png  every frame's ids (full ground truth)
        root/<split>/meta.json                                  each object's category (its shape) and frames
        root/synthetic_config.json                              the config, for resuming

    Sequence i is `generate_sequence(config, first_index + i)`, so `valid`
    (an alias of `val`) holds the DAVIS layout's `val` sequences. Segmenting
    reads each object's first annotation only (`first_appearances`); the full
    ground truth is what `youtube_vos_eval` scores. Complete sequences are
    skipped, as `write_davis` does.
    """
    root = pathlib.Path(root)
    if int(num_sequences) < 0:
        raise ValueError(f"num_sequences must be >= 0, got {num_sequences!r}")
    if not split or any(c in split for c in "/\\") or split.startswith("."):
        raise ValueError(f"split must be a plain name such as 'train' or 'valid', got {split!r}")
    first_index = split_first_index("val" if split == "valid" else split) if first_index is None else int(first_index)
    check_root_config(root, config, overwrite)
    split_dir = root / split
    names, videos = [], {}
    for number in range(int(num_sequences)):
        name = sequence_name(split, number)
        names.append(name)
        scene = sample_scene(config, first_index + number)
        videos[name] = {"objects": {
            str(o.object_id): {"category": o.appearance.shape,
                               "frames": [f"{t:05d}" for t in range(o.first_frame, config.num_frames)]}
            for o in scene.objects}}
        if not overwrite and frames_complete(split_dir / "JPEGImages" / name, split_dir / "Annotations" / name,
                                           config.num_frames):
            if on_sequence is not None:
                on_sequence(name, False)
            continue
        for t in range(config.num_frames):
            rgb, labels = render_frame(scene, t)
            write_jpeg(split_dir / "JPEGImages" / name / f"{t:05d}.jpg", rgb)
            write_mask(split_dir / "Annotations" / name / f"{t:05d}.png", labels)
        if on_sequence is not None:
            on_sequence(name, True)
    split_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(split_dir / "meta.json", "w") as handle:
        handle.write(json.dumps({"videos": videos}, indent=1, sort_keys=True) + "\n")
    return names
