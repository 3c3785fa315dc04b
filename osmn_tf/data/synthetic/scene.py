"""A sampled synthetic sequence, before rendering: objects, their looks and trajectories, the background."""
import dataclasses

import numpy as np

from osmn_tf.data.synthetic.config import SyntheticConfig

@dataclasses.dataclass(frozen=True)
class Appearance:
    """Everything about an object except where it is; twins share one.

    `shape_params` and `texture_params` are dicts of floats and arrays in the
    object's own frame, where the silhouette has radius about 1. `colours` is
    `(2, 3)` float RGB in 0..255, mixed by the texture's value in [0, 1].
    `scales` and `angles` (radians) are per frame.
    """

    shape: str
    shape_params: dict
    texture: str
    texture_params: dict
    colours: np.ndarray
    radius: float
    scales: np.ndarray
    angles: np.ndarray


@dataclasses.dataclass(frozen=True)
class SyntheticObject:
    """One object of a scene.

    Attributes:
        object_id: its label in the masks (1..K).
        depth: its place in the depth order, 0 at the back; larger occludes smaller.
        appearance_id: objects with the same id are twins (same `appearance`).
        appearance: an `Appearance`.
        centres: `(T, 2)` float centre `(x, y)` in pixels, per frame.
        host_id: the object it rides on (`SyntheticConfig.rider_prob`), 0 for none.
        first_frame: the frame where it enters (`SyntheticConfig.late_entry_prob`);
            before it, it is neither drawn nor in the masks.
    """

    object_id: int
    depth: int
    appearance_id: int
    appearance: Appearance
    centres: np.ndarray
    host_id: int = 0
    first_frame: int = 0


@dataclasses.dataclass(frozen=True)
class SyntheticScene:
    """A sampled sequence, before rendering: `render_frame(scene, t)` draws frame t."""

    config: SyntheticConfig
    index: int
    objects: tuple
    background: dict

    @property
    def late_objects(self):
        """`{object id: first frame}` of the objects that enter after frame 0."""
        return {o.object_id: o.first_frame for o in self.objects if o.first_frame > 0}

    @property
    def twins(self):
        """Pairs `(id_a, id_b)` of objects with identical appearance."""
        pairs = []
        for i, a in enumerate(self.objects):
            for b in self.objects[i + 1:]:
                if a.appearance_id == b.appearance_id:
                    pairs.append((a.object_id, b.object_id))
        return pairs

