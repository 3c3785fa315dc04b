"""The paper's analyses of the learned modulation parameters (section 4.2, Figs. 5 to 7).

* Fig. 5: the visual modulator's output for many objects, embedded in 2-D by
  multi-dimensional scaling and coloured by the objects' classes: similar
  objects should get similar modulation parameters.
* Fig. 6: for each modulated layer, a histogram over its channels of the
  standard deviation of the visual modulator's scale gamma_c across objects:
  how much each layer's scales change with the visual guide.
* Fig. 7: for each modulated layer, a histogram of the magnitudes of the
  spatial modulator's scales (the 1x1 kernel that weighs the spatial guide
  into each channel's bias): how strongly the spatial prior enters each layer.

Objects come from three sources, each a list of `AnalysisObject` (a class
label and a way to load the frame and mask its visual guide is made from):
`coco_objects` (MS-COCO, the paper's choice, class = COCO category),
`davis_objects` (first-frame objects of a DAVIS split) and
`synthetic_objects` (the embedded synthetic set, `osmn_tf.synthetic`).
`encode_objects` runs the visual modulator on them; `plot_*` draw the figures
with matplotlib's object-oriented API (no pyplot: no GUI backend, no global
state) and `save_figure` writes a PNG atomically.
"""
import contextlib
import dataclasses
import functools
import inspect
import io
import json
import pathlib
from typing import Callable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from matplotlib.ticker import MaxNLocator, StrMethodFormatter
from PIL import Image

from osmn_tf.davis import DavisDataset, atomic_output
from osmn_tf.frames import denormalize_frame, load_rgb
from osmn_tf.guides import visual_guide
from osmn_tf.training.summaries import spatial_scales, visual_gammas

PAPER_COCO_CATEGORIES = ("bicycle", "motorcycle", "car", "bus", "truck", "dog", "cat", "horse", "cow", "person")
"""The ten MS-COCO classes of the paper's Fig. 5 (10 objects each)."""

DAVIS_SEMANTICS_FILE = "davis_semantics.json"
"""DAVIS 2017's optional per-object categories (`{sequence: {"1": "person", ...}}`), read from the root."""

SYNTHETIC_CLASSES = ("texture", "shape")
"""What labels a synthetic object in Fig. 5: its `Appearance.texture` or `Appearance.shape` kind."""

THUMBNAIL_SIZE = 48
"""Side, in pixels, of the visual guide thumbnails drawn in Fig. 5."""

NEAR_ZERO_FRACTION = 0.01
"""Fig. 7 counts a spatial scale as (near) zero below this fraction of the largest one."""


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


@dataclasses.dataclass(frozen=True)
class EncodedObjects:
    """The visual modulator's output for a set of objects.

    Attributes:
        names, labels: per object, as in `AnalysisObject`.
        gammas: `{layer: float32 [N, C]}`, the scales of each modulated layer in
            network order (`summaries.visual_gammas`).
        thumbnails: `uint8 [N, THUMBNAIL_SIZE, THUMBNAIL_SIZE, 4]` RGBA pictures
            of the visual guides, transparent off the object.
    """

    names: tuple
    labels: tuple
    gammas: dict
    thumbnails: np.ndarray

    @property
    def vectors(self):
        """The whole modulation vector of each object, `[N, P]`: the layers concatenated in network order."""
        return np.concatenate(list(self.gammas.values()), axis=1)


# ----------------------------------------------------------------------------
# Object sources
# ----------------------------------------------------------------------------
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
    """The objects of frame 0 of `num_sequences` synthetic sequences (`osmn_tf.synthetic`).

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
    from osmn_tf import synthetic

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


# ----------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------
def guide_thumbnail(guide, size=THUMBNAIL_SIZE):
    """A visual guide (BGR minus the mean, 0 off the object) as an RGBA `uint8` picture.

    Off-object pixels are exactly 0 in all three channels; they become
    transparent (an object pixel equal to the mean colour would too, which
    does not matter in a thumbnail).
    """
    guide = np.asarray(guide, dtype=np.float32)
    rgb = denormalize_frame(guide)
    alpha = np.where(np.any(guide != 0, axis=-1), 255, 0).astype(np.uint8)
    rgba = np.dstack([rgb, alpha])
    return np.asarray(Image.fromarray(rgba, "RGBA").resize((size, size), Image.BILINEAR))


def encode_objects(model, objects, batch_size=16, progress=None):
    """Runs the visual modulator on each object's visual guide (inference style, no augmentation).

    Args:
        model: an `osmn_tf.OSMN` with a visual modulator.
        objects: `AnalysisObject`s.
        batch_size: guides per visual modulator call.
        progress: optional `progress(n)`, called with the number of objects
            just encoded after each batch (e.g. a tqdm bar's `update`).

    Returns:
        `EncodedObjects`.
    """
    if model.visual_modulator is None:
        raise ValueError("the model has no visual modulator: there are no visual modulation parameters to encode")
    objects = list(objects)
    if not objects:
        raise ValueError("no objects to encode")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    parts, thumbnails = [], []
    for start in range(0, len(objects), int(batch_size)):
        batch = objects[start:start + int(batch_size)]
        guides = []
        for obj in batch:
            frame, mask = obj.load()
            if not np.any(mask):
                raise ValueError(f"{obj.name}: the object's mask is empty")
            guides.append(visual_guide(frame, mask, size=model.config.guide_size))
        guides = np.stack(guides)
        parts.append(visual_gammas(model, guides))
        thumbnails.extend(guide_thumbnail(g) for g in guides)
        if progress is not None:
            progress(len(batch))
    gammas = {layer: np.concatenate([part[layer] for part in parts]) for layer in parts[0]}
    return EncodedObjects(names=tuple(o.name for o in objects), labels=tuple(o.label for o in objects),
                          gammas=gammas, thumbnails=np.stack(thumbnails))


def gamma_std_per_layer(gammas):
    """Fig. 6's data: `{layer: [C]}`, the standard deviation of each channel's scale across objects."""
    out = {}
    for layer, values in gammas.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] < 2:
            raise ValueError(f"{layer}: need scales of at least 2 objects as [N, C], got shape {values.shape}")
        out[layer] = values.std(axis=0)
    return out


# ----------------------------------------------------------------------------
# Multi-dimensional scaling
# ----------------------------------------------------------------------------
def _metric_mds():
    """scikit-learn's metric MDS (SMACOF), deterministic, across its parameter renames."""
    from sklearn.manifold import MDS

    if "metric_mds" in inspect.signature(MDS).parameters:
        # scikit-learn >= 1.8: start from classical MDS (deterministic, and
        # already optimal for points that lie in a plane), then minimise stress.
        return MDS(n_components=2, metric_mds=True, metric="euclidean", init="classical_mds")
    # Older releases (Python 3.10 has no 1.8): the best of 8 seeded random starts.
    return MDS(n_components=2, metric=True, dissimilarity="euclidean", n_init=8, random_state=0)


def mds_embedding(vectors):
    """2-D metric multi-dimensional scaling of `vectors` `[N, D]` (Euclidean distances), `[N, 2]`.

    The embedding's pairwise distances approximate those of `vectors` as well
    as two dimensions allow (least stress); it is centred on the origin and,
    like any MDS, defined only up to rotation and reflection. Identical
    vectors (e.g. an untrained visual modulator, whose scales all start at 1)
    all map to the origin.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] < 2:
        raise ValueError(f"MDS needs at least 2 vectors as [N, D], got shape {vectors.shape}")
    if not np.all(np.isfinite(vectors)):
        raise ValueError("MDS input holds NaN or infinite values")
    if np.all(vectors == vectors[0]):
        # SMACOF divides by the total distance, 0 here.
        return np.zeros((vectors.shape[0], 2))
    embedding = _metric_mds().fit_transform(vectors)
    return embedding - embedding.mean(axis=0)


# ----------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------
def class_colours(labels):
    """`{label: RGBA}` with one distinct colour per class (labels in order of first appearance)."""
    from matplotlib import colormaps

    classes = list(dict.fromkeys(labels))
    if len(classes) <= 10:
        colours = colormaps["tab10"].colors
    elif len(classes) <= 20:
        colours = colormaps["tab20"].colors
    else:
        colours = colormaps["turbo"](np.linspace(0.05, 0.95, len(classes)))
    return {label: tuple(colours[i]) for i, label in enumerate(classes)}


def plot_visual_mds(embedding, labels, thumbnails=None, title=None):
    """Fig. 5: the 2-D MDS embedding of the visual modulation parameters, coloured by class.

    Args:
        embedding: `[N, 2]` from `mds_embedding`.
        labels: N class names.
        thumbnails: optional `[N, s, s, 4]` RGBA visual guides, drawn at their
            points with a frame in the class's colour (the paper shows the
            objects themselves).
        title: the figure's title.

    Returns:
        a matplotlib `Figure`.
    """
    embedding = np.asarray(embedding, dtype=np.float64)
    labels = list(labels)
    if embedding.shape != (len(labels), 2):
        raise ValueError(f"embedding must be [N, 2] for N = {len(labels)} labels, got {embedding.shape}")
    colours = class_colours(labels)
    fig = Figure(figsize=(10, 8), layout="constrained")
    ax = fig.add_subplot()
    for label, colour in colours.items():
        points = embedding[[i for i, name in enumerate(labels) if name == label]]
        ax.scatter(points[:, 0], points[:, 1], s=30, color=colour, label=f"{label} ({len(points)})",
                   edgecolors="black", linewidths=0.3, zorder=3)
    if thumbnails is not None:
        # Roughly 32 pixels on screen at 100 dpi; fewer pixels for many objects so that they stay legible.
        zoom = (32 if len(labels) <= 60 else 24) / thumbnails.shape[1]
        for point, thumbnail, label in zip(embedding, thumbnails, labels):
            box = AnnotationBbox(OffsetImage(thumbnail, zoom=zoom), point, frameon=True, pad=0.1,
                                 bboxprops={"edgecolor": colours[label], "linewidth": 1.5, "facecolor": "white"})
            box.set_zorder(2)
            ax.add_artist(box)
    ax.set_xlabel("MDS dimension 1")
    ax.set_ylabel("MDS dimension 2")
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.08)
    ax.grid(True, alpha=0.3)
    ncol = 1 if len(colours) <= 20 else 2
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", ncol=ncol, title="class (objects)")
    ax.set_title(title or f"Visual modulation parameters of {len(labels)} objects, multi-dimensional scaling")
    return fig


def _layer_histograms(values, xlabel, title, annotate):
    """One histogram per modulated layer, shared bins, 3 per row, in network order."""
    layers = list(values)
    ncols = 3
    nrows = -(-len(layers) // ncols)
    fig = Figure(figsize=(4 * ncols, 2.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False)
    everything = np.concatenate([np.ravel(values[layer]) for layer in layers])
    high = float(everything.max()) if everything.size else 1.0
    # Shared bins: comparing layers is the point of both figures.
    bins = np.linspace(0.0, high if high > 0 else 1.0, 41)
    for ax, layer in zip(axes.flat, layers):
        data = np.ravel(values[layer])
        ax.hist(data, bins=bins, color="tab:blue", edgecolor="white", linewidth=0.3)
        ax.set_title(layer)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        # Plain short numbers: an offset text ("1e-2") would collide with the axis label.
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:.3g}"))
        ax.text(0.97, 0.92, annotate(data), transform=ax.transAxes, ha="right", va="top", fontsize="small")
        ax.set_ylabel("channels")
    for ax in axes.flat[len(layers):]:
        ax.set_visible(False)
    # The lowest panel of each column carries the axis (with a short last row,
    # that is a panel of the row above).
    for ax in axes.flat[max(0, len(layers) - ncols):len(layers)]:
        ax.set_xlabel(xlabel)
        ax.tick_params(labelbottom=True)
    fig.suptitle(title)
    return fig


def plot_visual_gamma_std(gammas, title=None):
    """Fig. 6: per modulated layer, a histogram of the standard deviation of gamma_c across objects.

    Args:
        gammas: `{layer: [N, C]}` visual modulator scales (`EncodedObjects.gammas`), N >= 2.
    """
    stds = gamma_std_per_layer(gammas)
    count = next(iter(gammas.values())).shape[0]
    return _layer_histograms(
        stds, "standard deviation of $\\gamma_c$ across objects",
        title or f"Visual modulator: variation of the scales $\\gamma_c$ over {count} visual guides",
        lambda data: f"mean {data.mean():.3g}")


def plot_spatial_scale(scales, title=None):
    """Fig. 7: per modulated layer, a histogram of the magnitudes of the spatial modulator's scales.

    Args:
        scales: `{layer: [C]}` magnitudes (`summaries.spatial_scales`).

    Each panel notes the share of (near) zero scales, below `NEAR_ZERO_FRACTION`
    of the largest one over all layers: the paper finds about 60% zeros
    except in conv5_3.
    """
    everything = np.concatenate([np.ravel(v) for v in scales.values()])
    threshold = NEAR_ZERO_FRACTION * (float(everything.max()) if everything.size else 0.0)

    def annotate(data):
        return f"near 0: {np.mean(data <= threshold):.0%}\nmean {data.mean():.3g}"

    return _layer_histograms(scales, "magnitude of $\\tilde\\gamma_c$",
                             title or "Spatial modulator: magnitudes of the scales $\\tilde\\gamma_c$", annotate)


def save_figure(fig, path, dpi=100):
    """Writes `fig` as a PNG at `path` atomically (a temporary file, then a rename); returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as handle:
        fig.savefig(handle, format="png", dpi=dpi)
    return path


# ----------------------------------------------------------------------------
# All three figures
# ----------------------------------------------------------------------------
FIGURE_FILES = {"fig5": "fig5_visual_mds.png", "fig6": "fig6_visual_gamma.png", "fig7": "fig7_spatial_scale.png"}


def write_figures(model, objects, output_dir, progress=None, log=print, batch_size=16):
    """Writes Figs. 5, 6 and 7 for `model` into `output_dir`; returns `{figure: path}` of those written.

    A figure whose modulator the model lacks is skipped with a line to `log`
    (Figs. 5 and 6 need the visual modulator, Fig. 7 the spatial one).

    Args:
        model: an `osmn_tf.OSMN`.
        objects: `AnalysisObject`s (at least 2) for Figs. 5 and 6; not read
            when the model has no visual modulator. A callable returning them
            is called only when needed.
        output_dir: folder for `FIGURE_FILES`.
        progress: optional `progress(n)` for `encode_objects`.
        log: where the skip messages go.
    """
    output_dir = pathlib.Path(output_dir)
    written = {}
    if model.visual_modulator is None:
        log("skipping Fig. 5 and Fig. 6: the model has no visual modulator (trained with --no_visual_modulator)")
    else:
        objects = list(objects() if callable(objects) else objects)
        if len(objects) < 2:
            raise ValueError(f"Figs. 5 and 6 need at least 2 objects, got {len(objects)}")
        encoded = encode_objects(model, objects, batch_size=batch_size, progress=progress)
        embedding = mds_embedding(encoded.vectors)
        written["fig5"] = save_figure(plot_visual_mds(embedding, encoded.labels, encoded.thumbnails),
                                      output_dir / FIGURE_FILES["fig5"])
        written["fig6"] = save_figure(plot_visual_gamma_std(encoded.gammas), output_dir / FIGURE_FILES["fig6"])
    if model.spatial_modulator is None:
        log("skipping Fig. 7: the model has no spatial modulator (trained with --no_spatial_modulator)")
    else:
        written["fig7"] = save_figure(plot_spatial_scale(spatial_scales(model)), output_dir / FIGURE_FILES["fig7"])
    return written
