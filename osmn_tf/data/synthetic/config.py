"""What a synthetic dataset draws: `SyntheticConfig`, and the shapes and textures it picks from."""
import dataclasses

import numpy as np

SHAPES = ("ellipse", "rectangle", "polygon", "blob")
TEXTURES = ("stripes", "checker", "rings", "dots", "noise", "gradient")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """How synthetic sequences are drawn; the defaults suit CPU-sized training.

    Attributes:
        image_size: `(W, H)` of every frame.
        num_frames: frames per sequence.
        min_objects, max_objects: the number of objects is uniform in this range.
        seed: the seed of the whole dataset.
        object_radius: range of an object's base radius, as a fraction of
            `min(W, H)` (the silhouette's size at scale 1).
        speed: range of an object's speed, in object diameters (at its base
            radius) per frame.
        max_log_scale_change: an object's scale goes from 1 at frame 0 to
            `exp(U(-x, x))` at the last frame, geometrically.
        max_rotation: an object rotates by U(-x, x) degrees per frame.
        twin_prob: probability that a sequence has a pair of identical objects.
        meet_prob: probability that an object (after the first) is sent through
            an earlier object's position at a middle frame.
        rider_prob: probability that an object (after the first, not a
            twin) rides on an earlier object of another look instead: its
            centre keeps a small offset (up to a quarter of the host's radius)
            from the host's, its radius is 0.4 to 0.65 of the host's, it
            scales with the host and is drawn in front of it.
        late_entry_prob: probability that an object (after the first) enters
            the video later: it is absent (not drawn, not in the masks) before
            a frame drawn uniformly in 1..num_frames // 2; a rider enters
            with its host.
        background_pan: the background moves by up to this many pixels per frame
            along each axis.
        min_visible_fraction: in every frame, every object shows at least this
            fraction of its in-frame silhouette; sequences that break this are
            drawn again.
        min_first_visible_fraction: the same for an object's first frame (its reference frame).
        min_area_fraction: in every frame every object covers at least this
            fraction of the image.
        max_attempts: how many draws of one sequence are tried before giving up.
    """

    image_size: tuple = (160, 96)
    num_frames: int = 24
    min_objects: int = 2
    max_objects: int = 4
    seed: int = 0
    object_radius: tuple = (0.14, 0.24)
    speed: tuple = (0.08, 0.18)
    max_log_scale_change: float = 0.5
    max_rotation: float = 3.0
    twin_prob: float = 0.6
    meet_prob: float = 0.6
    rider_prob: float = 0.0
    late_entry_prob: float = 0.0
    background_pan: float = 0.6
    min_visible_fraction: float = 0.3
    min_first_visible_fraction: float = 0.7
    min_area_fraction: float = 0.003
    max_attempts: int = 200

    def __post_init__(self):
        # Lists (from JSON) become tuples so that configs compare and hash.
        for name in ("image_size", "object_radius", "speed"):
            value = getattr(self, name)
            try:
                pair = tuple(value)
            except TypeError:
                raise ValueError(f"SyntheticConfig.{name} must be a pair, got {value!r}") from None
            if len(pair) != 2:
                raise ValueError(f"SyntheticConfig.{name} must be a pair, got {value!r}")
            object.__setattr__(self, name, pair)
        width, height = self.image_size
        if not all(isinstance(v, (int, np.integer)) and v >= 16 for v in self.image_size):
            raise ValueError(f"SyntheticConfig.image_size must be (W, H) ints >= 16, got {self.image_size!r}")
        object.__setattr__(self, "image_size", (int(width), int(height)))
        if not (isinstance(self.num_frames, (int, np.integer)) and self.num_frames >= 2):
            raise ValueError(f"SyntheticConfig.num_frames must be an int >= 2, got {self.num_frames!r}")
        if not 1 <= self.min_objects <= self.max_objects <= 255:
            raise ValueError("SyntheticConfig needs 1 <= min_objects <= max_objects <= 255, got "
                             f"{self.min_objects!r} and {self.max_objects!r}")
        for name, upper in (("object_radius", 0.5), ("speed", 2.0)):
            low, high = getattr(self, name)
            if not 0 < low <= high <= upper:
                raise ValueError(f"SyntheticConfig.{name} must be (low, high) with 0 < low <= high <= {upper}, "
                                 f"got {getattr(self, name)!r}")
        for name in ("twin_prob", "meet_prob", "rider_prob", "late_entry_prob", "min_visible_fraction",
                     "min_first_visible_fraction", "min_area_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"SyntheticConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("max_log_scale_change", "max_rotation", "background_pan"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"SyntheticConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.max_attempts >= 1:
            raise ValueError(f"SyntheticConfig.max_attempts must be >= 1, got {self.max_attempts!r}")

    def to_dict(self):
        """A JSON-ready dict (tuples as lists) that `from_dict` reads back."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values):
        return cls(**values)

