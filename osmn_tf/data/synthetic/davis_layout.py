"""Writing synthetic sequences in the DAVIS 2017 layout, resumably."""
import json
import pathlib

from PIL import Image

from osmn_tf.data.davis import write_mask
from osmn_tf.data.synthetic.sampler import generate_sequence
from osmn_tf.utils.atomic import atomic_output

SPLIT_FIRST_INDEX = {"train": 0, "val": 1_000_000, "test": 2_000_000, "test-dev": 3_000_000}
"""The first sequence index of each split: splits of one seed never share a sequence."""

CONFIG_FILE = "synthetic_config.json"
"""What `write_davis` records in the dataset root, to refuse mixing configs."""

JPEG_QUALITY = 95


def sequence_name(split, number):
    """The folder name of the `number`-th sequence of a split: `synth-<split>-0007`."""
    return f"synth-{split}-{int(number):04d}"


def split_first_index(split):
    """The sequence index of a split's first sequence (`SPLIT_FIRST_INDEX`)."""
    if split not in SPLIT_FIRST_INDEX:
        raise ValueError(f"no default first index for split {split!r}: pass first_index "
                         f"(known splits: {', '.join(SPLIT_FIRST_INDEX)})")
    return SPLIT_FIRST_INDEX[split]


def frames_complete(frame_folder, mask_folder, num_frames):
    """Whether a written sequence has all its frames (`00000.jpg` ...) and masks (`00000.png` ...)."""
    for path, suffix in ((frame_folder, ".jpg"), (mask_folder, ".png")):
        if not path.is_dir():
            return False
        present = {p.name for p in path.iterdir() if p.suffix == suffix}
        if not all(f"{t:05d}{suffix}" in present for t in range(num_frames)):
            return False
    return True


def write_jpeg(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as handle:
        Image.fromarray(rgb).save(handle, format="JPEG", quality=JPEG_QUALITY, subsampling=0)


# Fields added after datasets were recorded, with the value that drew those datasets.
_LATER_FIELDS = {"late_entry_prob": 0.0}


def _same_config(recorded, config):
    """Whether a recorded config is `config`; a record from before a field of `_LATER_FIELDS` existed lacks it."""
    if not isinstance(recorded, dict):
        return False
    return {**_LATER_FIELDS, **recorded} == config.to_dict()


def check_root_config(root, config, overwrite):
    """Records `config` in `root`, or refuses a root written with another config."""
    record = {"config": config.to_dict()}
    path = root / CONFIG_FILE
    if path.is_file() and not overwrite:
        try:
            existing = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise OSError(f"cannot read {path}: {error}") from error
        if not (isinstance(existing, dict) and _same_config(existing.get("config"), config)):
            raise ValueError(f"{root} holds synthetic data made with another config ({path}); "
                             "use another root or overwrite=True")
        return
    root.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, "w") as handle:
        handle.write(json.dumps(record, indent=2, sort_keys=True) + "\n")


def write_davis(root, config, num_sequences, year=2017, split="train", first_index=None,
                resolution="480p", overwrite=False, on_sequence=None):
    """Writes `num_sequences` sequences in the DAVIS layout; returns their names.

    Layout (what `osmn_tf.data.davis.DavisDataset(root, year, split)` reads)::

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
    check_root_config(root, config, overwrite)
    names = []
    for number in range(int(num_sequences)):
        name = sequence_name(split, number)
        names.append(name)
        if not overwrite and frames_complete(root / "JPEGImages" / resolution / name,
                                           root / "Annotations" / resolution / name, config.num_frames):
            if on_sequence is not None:
                on_sequence(name, False)
            continue
        frames, masks = generate_sequence(config, first_index + number)
        for t, (rgb, labels) in enumerate(zip(frames, masks)):
            write_jpeg(root / "JPEGImages" / resolution / name / f"{t:05d}.jpg", rgb)
            write_mask(root / "Annotations" / resolution / name / f"{t:05d}.png", labels)
        if on_sequence is not None:
            on_sequence(name, True)
    split_file = root / "ImageSets" / str(int(year)) / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(split_file, "w") as handle:
        handle.write("".join(f"{name}\n" for name in names))
    return names
