"""What the figures are drawn from: the visual modulator's output per object, its spread, the MDS embedding."""
import dataclasses
import inspect

import numpy as np
from PIL import Image

from osmn_tf.data.frames import denormalize_frame
from osmn_tf.data.guides import visual_guide
from osmn_tf.training.summaries import visual_gammas

THUMBNAIL_SIZE = 48
"""Side, in pixels, of the visual guide thumbnails drawn in Fig. 5."""


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

