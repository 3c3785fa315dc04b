"""Reading masks given for frames after the first: a folder of PNG label maps named like the frames.

Each file `<frame name>.png` holds object ids (palette or grey-level, 255 void
as for a first mask, `osmn_tf.data.davis.void_as_background`). Every problem is
found before any segmentation and named with its file: a name that is no
frame's, another size than the frame, an id without a colour in the file's
palette, a file without an object.
"""
import pathlib

import numpy as np
from PIL import Image

from osmn_tf.data.davis import read_first_mask


def read_annotation(path, size=None):
    """`(object ids uint8 [H, W], palette or None)` of one annotation file, checked.

    Args:
        size: the frame's `(W, H)`, when known: another size is an error.
    """
    try:
        labels, palette = read_first_mask(path)
    except ValueError as e:
        raise ValueError(str(e).replace("the first mask", "the annotation")) from None
    if size is not None and (labels.shape[1], labels.shape[0]) != tuple(size):
        raise ValueError(f"{path}: the annotation is {labels.shape[1]}x{labels.shape[0]} (WxH) but its frame is "
                         f"{size[0]}x{size[1]}: they must be the same size")
    return labels, palette


def annotation_files(folder, frame_names=None):
    """`{frame index: path}` of the PNGs in `folder`, in frame order.

    Args:
        frame_names: the video's frame names in order; None for a video whose
            frames are named `00000`, `00001`, ... as they come (the name is
            then the index).
    """
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such annotation folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    if not paths:
        raise FileNotFoundError(f"{folder}: no .png annotation in this folder")
    index_of = None if frame_names is None else {name: i for i, name in enumerate(frame_names)}
    files = {}
    for path in paths:
        if index_of is not None:
            if path.stem not in index_of:
                raise ValueError(f"{path}: no frame is named {path.stem!r} (annotations are named like the frames)")
            files[index_of[path.stem]] = path
        elif path.stem.isdigit():
            files[int(path.stem)] = path
        else:
            raise ValueError(f"{path}: a video's frames are named by number (00000, 00001, ...), "
                             f"not {path.stem!r}")
    return dict(sorted(files.items()))


def read_annotations(files, frame_size=None):
    """`({frame index: object ids}, the first file's palette)` for `annotation_files`'s result.

    Args:
        frame_size: a function `index -> (W, H)` of that frame (None: not checked here).
    """
    annotations, palette = {}, None
    for index, path in files.items():
        labels, file_palette = read_annotation(path, None if frame_size is None else frame_size(index))
        annotations[index] = labels
        if palette is None:
            palette = file_palette
    return annotations, palette


def image_size(path):
    """`(W, H)` of an image file, from its header."""
    with Image.open(path) as image:
        return image.size


def check_within(files, num_frames):
    """Refuses annotations of frames past the video's end (known only once it is read)."""
    beyond = [path for index, path in files.items() if index >= num_frames]
    if beyond:
        raise ValueError(f"{beyond[0]}: no such frame, the video has {num_frames} frames")


def first_appearances(annotations):
    """Only each object's first annotation: later masks of an object already annotated are dropped.

    YouTube-VOS gives each object's mask at the frame where it first appears;
    where a file repeats earlier objects, they are not corrections.
    """
    seen, result = set(), {}
    for index, labels in sorted(annotations.items()):
        new = [int(i) for i in np.unique(labels) if i != 0 and int(i) not in seen]
        if new:
            result[index] = np.where(np.isin(labels, new), labels, 0).astype(np.uint8)
            seen.update(new)
    return result
