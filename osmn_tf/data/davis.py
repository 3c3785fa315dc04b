"""The DAVIS dataset layout and its palette PNG mask files.

Layout read by `DavisDataset` (the standard DAVIS 2016/2017 release)::

    ROOT/JPEGImages/480p/<sequence>/00000.jpg ...
    ROOT/Annotations/480p/<sequence>/00000.png ...
    ROOT/ImageSets/<year>/<split>.txt      one sequence name per line

Masks are single-channel PNGs whose pixel values are object ids: 0 is
background, k is object k, 255 marks "void" pixels in DAVIS 2017
annotations (`void_as_background` is the one rule for what 255 means, for
annotations and for a video's first mask alike). They are stored as palette ("P" mode) PNGs in the DAVIS palette
(`DAVIS_PALETTE`, the PASCAL VOC colour map), so object 1 is drawn dark red,
object 2 green, and so on. DAVIS 2016 annotations are grey-level images with
255 for the single object.
"""
import pathlib

import numpy as np
from PIL import Image

from osmn_tf.utils.atomic import atomic_output

VOID_LABEL = 255
_MASK_MODES = ("P", "L", "1")


def _pascal_colour_map(n=256):
    """The PASCAL VOC colour map: id bits interleaved into the colour's high bits."""
    ids = np.arange(n)
    cmap = np.zeros((n, 3), dtype=np.int64)
    for bit in range(8):
        for channel in range(3):
            cmap[:, channel] |= ((ids >> (3 * bit + channel)) & 1) << (7 - bit)
    return cmap.astype(np.uint8)


DAVIS_PALETTE = _pascal_colour_map()
"""The standard DAVIS palette: a read-only (256, 3) uint8 array of RGB colours."""
DAVIS_PALETTE.setflags(write=False)


def void_as_background(labels, palette=None):
    """Object ids with DAVIS's void label (255) made background; the rule for every mask read as ids.

    255 is void (not an object) unless the mask says otherwise:
    * its palette gives 255 a colour of its own (neither DAVIS's void colour,
      nor black, which is what an unset palette entry reads as): then 255 is
      an ordinary object id;
    * it is a binary grey-level mask (no palette, only 0 and 255, the usual
      way a single object is drawn): then 255 is that object's id.

    Args:
        labels: `uint8` `[H, W]` object ids.
        palette: the file's palette as a `(256, 3)` array, or None for a
            grey-level file.

    Returns:
        `labels`, or a copy with void pixels set to 0.
    """
    labels = np.asarray(labels)
    void = labels == VOID_LABEL
    if not void.any():
        return labels
    if palette is not None:
        colour = tuple(int(v) for v in np.asarray(palette)[VOID_LABEL])
        if colour not in (tuple(int(v) for v in DAVIS_PALETTE[VOID_LABEL]), (0, 0, 0)):
            return labels
    elif not (labels[~void] != 0).any():
        return labels
    labels = labels.copy()
    labels[void] = 0
    return labels


def _read_mask_file(path):
    """`(labels uint8 [H, W], the file's palette as a flat list or None)`; errors name the file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode not in _MASK_MODES:
                raise ValueError(
                    f"{path}: mask images must be palette (P), grey-level (L) or 1-bit PNGs, "
                    f"not mode {mode!r}")
            labels = np.array(image.convert("L") if mode == "1" else image, dtype=np.uint8)
            if mode == "1":
                labels = (labels > 0).astype(np.uint8)
            raw_palette = image.getpalette() if mode == "P" else None
    except (OSError, SyntaxError) as error:  # PIL raises these for corrupt files
        raise OSError(f"cannot read mask file {path}: {error}") from error
    return labels, raw_palette


def _padded_palette(raw_palette):
    # Ids past the file's own colours get DAVIS's rather than black: an object that joins later
    # (an annotation's new id) is drawn in a colour of its own.
    palette = DAVIS_PALETTE.copy()
    values = np.asarray(raw_palette[: 256 * 3], dtype=np.uint8).reshape(-1, 3)
    palette[: len(values)] = values
    return palette


def read_mask(path, return_palette=False):
    """Reads a mask PNG as an HxW uint8 array of object ids.

    Palette ("P") images give their indices, grey-level ("L") images their
    values and 1-bit images 0/1; colour images are refused because their ids
    would be ambiguous. With `return_palette=True`, returns `(labels, palette)`
    where `palette` is the file's palette as a (256, 3) uint8 array (the
    DAVIS palette's colours past the file's own), or None for images
    without one.
    """
    labels, raw_palette = _read_mask_file(path)
    if not return_palette:
        return labels
    return labels, None if raw_palette is None else _padded_palette(raw_palette)


def read_first_mask(path):
    """Reads a video's first-frame mask: `(object ids [H, W] uint8, palette [256, 3] or None)`.

    255 is void and becomes background, as in DAVIS annotations, unless the
    file says otherwise (`void_as_background`). The one object of a binary
    grey-level mask (0 and 255) becomes id 1: written as 255 it would be
    drawn in the void colour and read back as void. Raises ValueError naming the
    file when it holds no object or when an object id has no colour in the
    file's own palette.
    """
    labels, raw_palette = _read_mask_file(path)
    palette = None if raw_palette is None else _padded_palette(raw_palette)
    void = bool((labels == VOID_LABEL).any())
    labels = void_as_background(labels, palette)
    ids = [int(i) for i in np.unique(labels) if i != 0]
    if raw_palette is None and ids == [VOID_LABEL]:
        labels, ids = (labels == VOID_LABEL).astype(np.uint8), [1]
    if not ids:
        detail = "every pixel is 0 or 255, which is void" if void else "every pixel is 0"
        raise ValueError(f"{path}: the first mask has no object ({detail})")
    if raw_palette is not None:
        colours = len(raw_palette) // 3
        missing = [i for i in ids if i >= colours]
        if missing:
            raise ValueError(
                f"{path}: object id(s) {missing} have no colour in the mask's palette ({colours} colours)"
            )
    return np.array(labels, dtype=np.uint8), palette


def write_mask(path, labels, palette=None):
    """Writes HxW object ids (0..255) as a palette PNG, atomically.

    `palette` is an (N, 3) array-like of RGB colours (N <= 256) or a flat
    sequence of 3N values; the default is `DAVIS_PALETTE`. The parent folder
    is created when missing.
    """
    path = pathlib.Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path}: a mask must be a 2-D array of object ids, got shape {labels.shape}")
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: object ids must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"{path}: object ids must lie in 0..255, got {labels.min()}..{labels.max()}")
    palette = DAVIS_PALETTE if palette is None else palette
    flat = np.asarray(palette, dtype=np.int64).reshape(-1)
    if flat.size % 3 or flat.size > 768 or flat.min(initial=0) < 0 or flat.max(initial=0) > 255:
        raise ValueError(f"{path}: a palette is up to 256 RGB triples of 0..255, got {flat.size} values")
    image = Image.fromarray(labels.astype(np.uint8))  # mode "L"; putpalette makes it "P"
    image.putpalette(flat.astype(np.uint8).tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as handle:
        image.save(handle, format="PNG")


class DavisDataset:
    """Reads the standard DAVIS folder layout for one year and split.

    Args:
        root: the DAVIS folder holding `JPEGImages`, `Annotations` and
            `ImageSets`.
        year: 2016 (one object: every non-zero pixel) or 2017 (object ids).
        split: the name of the list `ImageSets/<year>/<split>.txt`
            (`train`, `val`, ...).
        resolution: the sub-folder of `JPEGImages` and `Annotations`.
        frame_resolution: another sub-folder of `JPEGImages` to read frames
            from (e.g. `Full-Resolution`, the release's `--use_full_res`),
            the annotations still from `resolution`; None: `resolution`.

    `sequences` lists the split's sequence names in file order.
    """

    def __init__(self, root, year=2017, split="val", resolution="480p", frame_resolution=None):
        self.root = pathlib.Path(root)
        self.year = int(year)
        if self.year not in (2016, 2017):
            raise ValueError(f"year must be 2016 or 2017, got {year!r}")
        self.split = split
        self.resolution = resolution
        if not self.root.is_dir():
            raise FileNotFoundError(f"DAVIS root folder not found: {self.root}")
        self.frame_resolution = frame_resolution or resolution
        self.image_dir = self.root / "JPEGImages" / self.frame_resolution
        self.annotation_dir = self.root / "Annotations" / resolution
        self.split_file = self.root / "ImageSets" / str(self.year) / f"{split}.txt"
        if not self.split_file.is_file():
            raise FileNotFoundError(f"DAVIS split list not found: {self.split_file}")
        try:
            lines = self.split_file.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise OSError(f"cannot read DAVIS split list {self.split_file}: {error}") from error
        self.sequences = [line.strip() for line in lines if line.strip()]
        if not self.sequences:
            raise ValueError(f"DAVIS split list {self.split_file} names no sequence")

    def __repr__(self):
        return (f"DavisDataset(root={str(self.root)!r}, year={self.year}, split={self.split!r}, "
                f"{len(self.sequences)} sequences)")

    @staticmethod
    def _list(folder, suffix, what):
        if not folder.is_dir():
            raise FileNotFoundError(f"DAVIS {what} folder not found: {folder}")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == suffix and p.is_file())
        if not paths:
            raise FileNotFoundError(f"no {suffix} {what} files in {folder}")
        return paths

    def frame_paths(self, sequence):
        """The sorted `.jpg` frames of `sequence`."""
        return self._list(self.image_dir / sequence, ".jpg", "frame")

    def annotation_paths(self, sequence):
        """The sorted `.png` annotations of `sequence`."""
        return self._list(self.annotation_dir / sequence, ".png", "annotation")

    def read_annotation(self, path):
        """Reads one annotation as object ids.

        2016: every non-zero pixel is object 1. 2017: ids as stored, with void
        pixels (255) set to background, as the official evaluation does
        (`void_as_background`).
        """
        labels, palette = read_mask(path, return_palette=True)
        if self.year == 2016:
            return (labels > 0).astype(np.uint8)
        return np.array(void_as_background(labels, palette), dtype=np.uint8)

    def num_objects(self, sequence):
        """The number of objects: the largest id in the first annotation (1 for 2016)."""
        if self.year == 2016:
            return 1
        return int(self.read_annotation(self.annotation_paths(sequence)[0]).max())
