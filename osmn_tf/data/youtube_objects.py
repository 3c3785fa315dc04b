"""The YouTube-Objects layout, as the release's `preprocess_youtube.py` writes it (paper Table 1).

    ROOT/all.txt                         one sequence a line: `<class>_<number>`, e.g. `aeroplane_0001`
    ROOT/Images/<sequence>/<frame>       the annotated frames of the sequence, in name order
    ROOT/Labels/<sequence>/<stem>.png    the one object's mask of each frame (0 background, else object)

The dataset (Jain and Grauman's masks for YouTube-Objects) annotates one object
per video on a sparse subset of frames; the preprocessing keeps those frames
only, so a sequence is its annotated frames. The release segments each
sequence from its first frame's label at 640 x 360 and scores every later
label (`osmn_tf.evaluation.youtube_objects`). Sequences of fewer than two frames are
left out, as the release leaves them out.
`prepare_youtube_objects` converts the dataset's own layout into this one.
"""
import pathlib
import shutil

import numpy as np
from PIL import Image

from osmn_tf.utils.atomic import atomic_output

WORKING_SIZE = (640, 360)
"""The working size the release segments YouTube-Objects at (`osmn_eval_youtube.py --im_size`)."""


class YouTubeObjects:
    """A YouTube-Objects root in the release's layout; `sequences` lists those of `all.txt` with 2+ frames."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"YouTube-Objects root folder not found: {self.root}")
        self.list_file = self.root / "all.txt"
        self.image_dir = self.root / "Images"
        self.label_dir = self.root / "Labels"
        for path, what in ((self.list_file, "sequence list"), (self.image_dir, "Images folder"),
                           (self.label_dir, "Labels folder")):
            if not path.exists():
                raise FileNotFoundError(f"{path}: no such {what} (YouTube-Objects layout: ROOT/all.txt, "
                                        f"ROOT/Images/<sequence>/, ROOT/Labels/<sequence>/)")
        listed = [line.strip() for line in self.list_file.read_text().splitlines() if line.strip()]
        if not listed:
            raise ValueError(f"{self.list_file}: lists no sequence")
        self.sequences = [s for s in listed if len(self.frame_paths(s)) >= 2]

    def __repr__(self):
        return f"YouTubeObjects(root={str(self.root)!r}, {len(self.sequences)} sequences)"

    def frame_paths(self, sequence):
        """The frames of `sequence`, sorted by name."""
        from osmn_tf.data.video import IMAGE_SUFFIXES

        folder = self.image_dir / sequence
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such sequence folder (listed in {self.list_file})")
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())

    def label_paths(self, sequence):
        """The labels of `sequence`, sorted by name (the evaluation's ground truth)."""
        folder = self.label_dir / sequence
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such label folder")
        return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())

    def first_label_path(self, sequence):
        """The label of the sequence's first frame, which starts the segmentation."""
        path = self.label_dir / sequence / f"{self.frame_paths(sequence)[0].stem}.png"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the first frame's label is missing")
        return path

    def read_label(self, path):
        """A label as object ids: every nonzero pixel is object 1."""
        with Image.open(path) as image:
            return (np.asarray(image.convert("L")) > 0).astype(np.uint8)


def class_of(sequence):
    """The object class of a sequence name, `aeroplane_0001` -> `aeroplane`."""
    return sequence.rsplit("_", 1)[0]


def prepare_youtube_objects(source, root, on_sequence=None):
    """Writes the release's layout at `root` from the dataset's own, as `preprocess_youtube.py` does.

    Reads `source/<class>/data/<number>/shots/001/images/<frame>` and its
    `.../labels/<frame stem>.jpg` (JPEG masks, thresholded at 127), for every
    class folder and numbered video, and writes `Images/<class>_<number>/`,
    `Labels/<class>_<number>/<stem>.png` (0/255) and `all.txt`. Sequences
    whose folders exist already are kept (a rerun resumes). Returns the names.
    """
    source, root = pathlib.Path(source), pathlib.Path(root)
    classes = sorted(p for p in source.iterdir() if (p / "data").is_dir()) if source.is_dir() else []
    if not classes:
        raise FileNotFoundError(f"{source}: no <class>/data/ folder (the YouTube-Objects masks' layout: "
                                "<class>/data/<number>/shots/001/{images,labels})")
    names = []
    for class_dir in classes:
        for video in sorted(p for p in (class_dir / "data").iterdir() if p.is_dir()):
            name = f"{class_dir.name}_{video.name}"
            names.append(name)
            shot = video / "shots" / "001"
            images, labels = root / "Images" / name, root / "Labels" / name
            if images.is_dir() and labels.is_dir():
                continue
            staging_images, staging_labels = (root / "Images" / f".{name}.partial", root / "Labels" / f".{name}.partial")
            for folder in (staging_images, staging_labels):
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
            for frame in sorted((shot / "images").iterdir()):
                shutil.copyfile(frame, staging_images / frame.name)
                label_file = shot / "labels" / f"{frame.stem}.jpg"
                if not label_file.is_file():
                    raise FileNotFoundError(f"{label_file}: the label of {frame} is missing")
                with Image.open(label_file) as label:
                    mask = ((np.asarray(label.convert("L")) > 127) * 255).astype(np.uint8)
                Image.fromarray(mask).save(staging_labels / f"{frame.stem}.png")
            staging_images.replace(images)
            staging_labels.replace(labels)
            if on_sequence is not None:
                on_sequence(name)
    with atomic_output(root / "all.txt", "w") as handle:
        handle.write("\n".join(names) + "\n")
    return names
