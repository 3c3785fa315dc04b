"""The annotated objects the analyses encode: from MS-COCO, a DAVIS split or the synthetic set."""
import contextlib
import dataclasses
import functools
import io
import json
import pathlib
from typing import Callable

import numpy as np

from osmn_tf.data.davis import DavisDataset
from osmn_tf.data.frames import load_rgb

PAPER_COCO_CATEGORIES = ("bicycle", "motorcycle", "car", "bus", "truck", "dog", "cat", "horse", "cow", "person")
"""The ten MS-COCO classes of the paper's Fig. 5 (10 objects each)."""

DAVIS_SEMANTICS_FILE = "davis_semantics.json"
"""DAVIS 2017's optional per-object categories (`{sequence: {"1": "person", ...}}`), read from the root."""

SYNTHETIC_CLASSES = ("texture", "shape")
"""What labels a synthetic object in Fig. 5: its `Appearance.texture` or `Appearance.shape` kind."""


@dataclasses.dataclass(frozen=True)
class AnalysisObject:
    """One annotated object whose visual guide goes through the visual modulator.

    Attributes:
        name: where it comes from, for messages (`bike-packing/2`, `COCO annotation 1234`).
        label: its class: the colour it gets in Fig. 5.
        load: `load() -> (frame_rgb uint8 [H, W, 3], mask [h, w])`, nonzero is the object;
            called once, when the object is encoded.
    """

    name: str
    label: str
    load: Callable



def balanced_selection(objects, max_objects=None):
    """At most `max_objects` objects, taken from the classes in turn.

    The paper's Fig. 5 shows 100 objects of 10 classes; taking one object of
    each class in turn (classes in order of first appearance, objects in their
    order) gives every class an even share whatever the cap. `None` keeps
    every object.
    """
    objects = list(objects)
    if max_objects is None or max_objects >= len(objects):
        return objects
    if max_objects < 1:
        raise ValueError(f"max_objects must be >= 1, got {max_objects!r}")
    queues = {}
    for obj in objects:
        queues.setdefault(obj.label, []).append(obj)
    queues = [list(reversed(queue)) for queue in queues.values()]
    chosen = []
    while len(chosen) < max_objects:
        for queue in queues:
            if queue and len(chosen) < max_objects:
                chosen.append(queue.pop())
    # Back in source order, so that neighbours in a file stay neighbours.
    order = {id(obj): i for i, obj in enumerate(objects)}
    return sorted(chosen, key=lambda obj: order[id(obj)])


def coco_objects(annotation_file, image_dir, max_objects=100, categories=PAPER_COCO_CATEGORIES, cache_dir=None):
    """MS-COCO objects, labelled with their category name (the paper's Fig. 5).

    The objects are those stage 1 trains on (`training.samples.CocoSource`:
    not crowd, covering more than 3% of the image), restricted to
    `categories`, then `balanced_selection` picks `max_objects`.

    Args:
        annotation_file: COCO `instances_*.json` (the paper used the validation set).
        image_dir: folder of the images it names.
        max_objects: cap on the number of objects, spread evenly over the classes.
        categories: category names to keep, or None for all. Names missing
            from the file are ignored as long as one is present.
        cache_dir: where `CocoSource` keeps its object cache (default beside
            the annotation file).
    """
    # Imported here: pycocotools is only needed for COCO.
    from pycocotools.coco import COCO

    from osmn_tf.training.samples import CocoSource

    source = CocoSource(annotation_file, image_dir, cache_dir=cache_dir)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # COCO prints progress
            coco = COCO(str(annotation_file))
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"cannot read {annotation_file} as COCO annotations: {error}") from error
    names = {cid: cat["name"] for cid, cat in coco.cats.items()}
    if categories is not None:
        if not set(categories) & set(names.values()):
            raise ValueError(f"{annotation_file} has none of the categories {', '.join(categories)}; "
                             f"it has {', '.join(sorted(names.values())) or 'no categories'}")
        wanted = set(categories)
    objects = []
    for item, ann_id in enumerate(source.object_ids):
        label = names.get(coco.anns[ann_id]["category_id"], str(coco.anns[ann_id]["category_id"]))
        if categories is not None and label not in wanted:
            continue

        def load(item=item):
            frame = load_rgb(source.image_path(item))
            return frame, source.object_mask(item)

        objects.append(AnalysisObject(f"COCO annotation {ann_id}", label, load))
    if not objects:
        raise ValueError(f"{annotation_file} has no usable object (not crowd, over "
                         f"{source.min_area_fraction:.0%} of its image) in the chosen categories")
    return balanced_selection(objects, max_objects)


def _davis_semantics(root):
    """`{sequence: {object id: category}}` from the root's `davis_semantics.json`, or {} without one."""
    path = pathlib.Path(root) / DAVIS_SEMANTICS_FILE
    if not path.is_file():
        return {}
    try:
        table = json.loads(path.read_text())
        return {str(seq): {int(k): str(v) for k, v in objects.items()} for seq, objects in table.items()}
    except (OSError, ValueError, AttributeError, TypeError) as error:
        raise ValueError(f"cannot read {path} as {{sequence: {{object id: category}}}}: {error}") from error


def davis_objects(root, year=2017, split="val", max_objects=None):
    """The objects of each sequence's first annotated frame in a DAVIS split.

    An object's class is its category from `ROOT/davis_semantics.json` when
    that file exists (DAVIS 2017's semantics release) and names it, else the
    sequence's name: the objects of one sequence then share a colour, and
    Fig. 5 shows whether objects from one video get similar parameters.
    """
    dataset = DavisDataset(root, year, split)
    semantics = _davis_semantics(root)

    # Objects are encoded in source order, so one cached frame means one read
    # per sequence, however many of its objects are encoded.
    @functools.lru_cache(maxsize=1)
    def first_frame(sequence):
        return (load_rgb(dataset.frame_paths(sequence)[0]),
                dataset.read_annotation(dataset.annotation_paths(sequence)[0]))

    objects = []
    for sequence in dataset.sequences:
        dataset.frame_paths(sequence)  # a sequence without frames fails here, before any encoding
        labels = dataset.read_annotation(dataset.annotation_paths(sequence)[0])
        for object_id in (int(i) for i in np.unique(labels) if i != 0):
            def load(sequence=sequence, object_id=object_id):
                frame, labels = first_frame(sequence)
                return frame, labels == object_id

            label = semantics.get(sequence, {}).get(object_id, sequence)
            objects.append(AnalysisObject(f"{sequence}/{object_id}", label, load))
    if not objects:
        raise ValueError(f"no object in the first annotations of the sequences in {dataset.split_file}")
    return balanced_selection(objects, max_objects)


def synthetic_objects(num_sequences, image_size=(160, 96), class_by="texture", max_objects=None, seed=0,
                      split="val"):
    """The objects of frame 0 of `num_sequences` synthetic sequences (`osmn_tf.data.synthetic`).

    Texture is the default class: it fills the whole visual guide, which is
    all the visual modulator sees (the background is zeroed, and the crop is
    stretched to a square, which distorts outlines), and CNN features are
    known to depend more on texture than on outline. Colours are random per object and belong to
    neither class. Twins (identical objects in one sequence) appear twice.

    Args:
        num_sequences: sequences `0 .. num_sequences - 1` of `split` (the
            same as `write_davis` writes for that split and seed).
        image_size: `(W, H)` of the frames.
        class_by: "texture" or "shape" (`SYNTHETIC_CLASSES`).
    """
    from osmn_tf.data import synthetic

    if class_by not in SYNTHETIC_CLASSES:
        raise ValueError(f"class_by must be one of {', '.join(SYNTHETIC_CLASSES)}, got {class_by!r}")
    if int(num_sequences) < 1:
        raise ValueError(f"num_sequences must be >= 1, got {num_sequences!r}")
    config = synthetic.SyntheticConfig(image_size=tuple(image_size), seed=seed)
    first_index = synthetic.split_first_index(split)
    scenes = [synthetic.sample_scene(config, first_index + number) for number in range(int(num_sequences))]

    @functools.lru_cache(maxsize=1)  # one render per sequence, as in `davis_objects`
    def first_frame(number):
        return synthetic.render_frame(scenes[number], 0)

    objects = []
    for number, scene in enumerate(scenes):
        name = synthetic.sequence_name(split, number)
        for obj in scene.objects:
            def load(number=number, object_id=obj.object_id):
                frame, labels = first_frame(number)
                return frame, labels == object_id

            label = getattr(obj.appearance, class_by)
            objects.append(AnalysisObject(f"{name}/{obj.object_id}", label, load))
    return balanced_selection(objects, max_objects)

