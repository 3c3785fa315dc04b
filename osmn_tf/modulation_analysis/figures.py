"""Drawing Figs. 5 to 7 with matplotlib's object-oriented API, and writing them as PNGs."""
import pathlib

import numpy as np
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from osmn_tf.modulation_analysis.encoding import encode_objects, gamma_std_per_layer, mds_embedding
from osmn_tf.training.summaries import spatial_scales
from osmn_tf.utils.atomic import atomic_output

NEAR_ZERO_FRACTION = 0.01
"""Fig. 7 counts a spatial scale as (near) zero below this fraction of the largest one."""


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

