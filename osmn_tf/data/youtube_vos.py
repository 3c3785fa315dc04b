"""The YouTube-VOS folder layout: frames, sparse first-appearance annotations, object categories.

Layout read by `YouTubeVOS(root, split)` (the standard release)::

    ROOT/<split>/JPEGImages/<video>/00000.jpg ...
    ROOT/<split>/Annotations/<video>/00000.png ...   object ids; in `valid`
                                                     only where an object first appears
    ROOT/<split>/meta.json                           {"videos": {<video>: {"objects":
                                                     {"<id>": {"category": ..., ...}}}}}

Objects first appear at different frames; a video's result has a mask for
every frame of `JPEGImages`, background before an object's first annotation.
A submission is `Annotations/<video>/<frame>.png` in the annotations' palette.
"""
import json
import pathlib

import numpy as np

from osmn_tf.data.annotations import annotation_files, first_appearances, image_size, read_annotations


class YouTubeVOS:
    """One split of a YouTube-VOS root; `videos` lists its videos (the `JPEGImages` sub-folders, sorted)."""

    def __init__(self, root, split="valid"):
        self.root = pathlib.Path(root)
        self.split = split
        self.split_dir = self.root / split
        if not self.root.is_dir():
            raise FileNotFoundError(f"YouTube-VOS root folder not found: {self.root}")
        self.image_dir = self.split_dir / "JPEGImages"
        self.annotation_dir = self.split_dir / "Annotations"
        self.meta_file = self.split_dir / "meta.json"
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"{self.image_dir}: no such folder (YouTube-VOS layout: "
                                    f"ROOT/<split>/JPEGImages/<video>/*.jpg)")
        self.videos = sorted(p.name for p in self.image_dir.iterdir() if p.is_dir())
        if not self.videos:
            raise FileNotFoundError(f"{self.image_dir}: no video folder")

    def __repr__(self):
        return f"YouTubeVOS(root={str(self.root)!r}, split={self.split!r}, {len(self.videos)} videos)"

    def frame_paths(self, video):
        """The sorted `.jpg` frames of `video`."""
        folder = self.image_dir / video
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg") and p.is_file())
        if not paths:
            raise FileNotFoundError(f"{folder}: no .jpg frame")
        return paths

    def annotations(self, video, first_only=True):
        """`({frame index: object ids}, palette or None)` of `video`, every file checked against its frame.

        `first_only` keeps each object's first annotation only (the challenge's protocol).
        """
        frames = self.frame_paths(video)
        files = annotation_files(self.annotation_dir / video, [p.stem for p in frames])
        annotations, palette = read_annotations(files, lambda index: image_size(frames[index]))
        return (first_appearances(annotations) if first_only else annotations), palette

    def categories(self):
        """`{video: {object id: category}}` from `meta.json`."""
        return self._meta_objects("category", "it gives the objects' categories",
                                  lambda value: value)

    def object_frames(self):
        """`{video: {object id: [frame stems]}}` from `meta.json`: the frames where each object is annotated."""
        return self._meta_objects("frames", "it lists the frames each object is annotated in",
                                  lambda value: [str(stem) for stem in value])

    def _meta_objects(self, field, why, convert):
        try:
            meta = json.loads(self.meta_file.read_text())
            return {video: {int(i): convert(obj[field]) for i, obj in info["objects"].items()}
                    for video, info in meta["videos"].items()}
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.meta_file}: not found ({why})") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{self.meta_file}: not a YouTube-VOS meta.json "
                             f"({{'videos': {{video: {{'objects': {{id: {{'{field}': ...}}}}}}}}}}): {e!r}") from None


def starting_mask(annotations, frame_size):
    """`(frame 0's object ids, the later annotations)`: frame 0's mask is empty when nothing is annotated there."""
    annotations = dict(annotations)
    first = annotations.pop(0, None)
    if first is None:
        first = np.zeros(frame_size[::-1], np.uint8)
    return first, annotations
