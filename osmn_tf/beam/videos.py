"""The videos of a corpus as plain data (`VideoRef`), and each one's segmentation job, rebuilt where it runs.

A `VideoRef` names a video and where it comes from; it pickles, so a runner
can ship it to any worker. There `job(output_dir, made_from)` gives the
`osmn_tf.inference.jobs.VideoJob` that `tools/segment.py` would run for it:
the same frames, masks, target folder and record, hence the same files.
"""
import csv
import dataclasses
import functools
import pathlib

from osmn_tf.inference import jobs as segment_jobs

KINDS = ("davis", "youtube-vos", "video")


@dataclasses.dataclass(frozen=True)
class VideoRef:
    """One video: of a DAVIS split (`root`, `year`, `split`), of a YouTube-VOS split (`root`, `split`),
    or a `"video"`: `frames` (a frame folder or a video file) with `first_mask` (a PNG of frame 0's ids),
    written as `<output>/<name>/`.

    `use_full_res`: DAVIS frames from `JPEGImages/Full-Resolution` (the release's
    `--use_full_res`); `first_frame_only`: YouTube-VOS objects annotated later are left out.
    """

    name: str
    kind: str
    root: str = None
    split: str = None
    year: int = 2017
    frames: str = None
    first_mask: str = None
    use_full_res: bool = False
    first_frame_only: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"VideoRef.kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "video" and not (self.frames and self.first_mask):
            raise ValueError(f"VideoRef {self.name!r}: a video needs frames and first_mask")

    def job(self, output_dir, made_from=None):
        """The `VideoJob` of this video with its results under `output_dir`, as `tools/segment.py` makes it."""
        if self.kind == "video":
            return _video_job(self, output_dir, made_from)
        if self.kind == "davis":
            dataset = _only(_davis(self.root, self.year, self.split, self.use_full_res), "sequences", self.name)
            return segment_jobs.davis_jobs(dataset, output_dir, made_from)[0]
        dataset = _only(_youtube_vos(self.root, self.split), "videos", self.name)
        return segment_jobs.youtube_vos_jobs(dataset, output_dir, not self.first_frame_only, made_from)[0]


def dataset_refs(davis_root=None, youtube_vos_root=None, split="val", year=2017, sequences=None, use_full_res=False,
                 first_frame_only=False):
    """A `VideoRef` per video of a DAVIS split (optionally only `sequences`) or of a YouTube-VOS split."""
    if davis_root:
        dataset = _davis(davis_root, year, split, use_full_res)
        names = dataset.sequences if sequences is None else [s for s in dataset.sequences if s in set(sequences)]
        return [VideoRef(name, "davis", str(davis_root), split, year, use_full_res=use_full_res) for name in names]
    dataset = _youtube_vos(youtube_vos_root, split)
    return [VideoRef(name, "youtube-vos", str(youtube_vos_root), split, first_frame_only=first_frame_only)
            for name in dataset.videos]


def read_video_list(path):
    """The `VideoRef`s of a list file: a line `FRAMES,FIRST_MASK[,NAME]` per video (CSV; `#` starts a comment).

    FRAMES is a frame folder or a video file; NAME (default: FRAMES' name
    without its suffix) is the video's folder in the output. Relative paths
    are taken from the list's folder. Raises ValueError naming the line.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video list")
    refs, names = [], {}
    with open(path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), 1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            fields = [field.strip() for field in row]
            if len(fields) not in (2, 3) or not all(fields):
                raise ValueError(f"{path}:{number}: expected FRAMES,FIRST_MASK[,NAME], got {','.join(row)!r}")
            frames, first_mask = (str(path.parent / field) for field in fields[:2])
            name = fields[2] if len(fields) == 3 else pathlib.Path(frames).stem
            if name in ("", ".", "..") or "/" in name:
                raise ValueError(f"{path}:{number}: {name!r} is not a folder name")
            if name in names:
                raise ValueError(f"{path}:{number}: the name {name!r} is line {names[name]}'s too (give NAME)")
            names[name] = number
            refs.append(VideoRef(name, "video", frames=frames, first_mask=first_mask))
    if not refs:
        raise ValueError(f"{path}: no video listed")
    return refs


def _only(dataset, attribute, name):
    """`dataset` restricted to one video (a shallow copy: the cached dataset keeps its list)."""
    import copy

    one = copy.copy(dataset)
    if name not in getattr(dataset, attribute):
        raise ValueError(f"{name}: not a video of {dataset!r}")
    setattr(one, attribute, [name])
    return one


# A worker builds a dataset once, not once per video: reading a split (and YouTube-VOS' meta.json) takes time.
@functools.lru_cache(maxsize=8)
def _davis(root, year, split, use_full_res):
    from osmn_tf.data.davis import DavisDataset

    return DavisDataset(root, year, split, frame_resolution="Full-Resolution" if use_full_res else None)


@functools.lru_cache(maxsize=8)
def _youtube_vos(root, split):
    from osmn_tf.data.youtube_vos import YouTubeVOS

    return YouTubeVOS(root, split)


def _video_job(ref, output_dir, made_from):
    from osmn_tf.data.davis import read_first_mask
    from osmn_tf.data.video import open_frames
    from osmn_tf.utils import outputs

    source = open_frames(ref.frames)

    def read_masks():
        first_mask, palette = read_first_mask(ref.first_mask)
        return first_mask, None, palette

    own = None if made_from is None else {
        "frames": outputs.input_stamp(ref.frames), "first mask": outputs.input_stamp(ref.first_mask, content=True),
        "annotations": None, **made_from}
    return segment_jobs.VideoJob(ref.name, pathlib.Path(output_dir) / ref.name, None, read_masks, own, source=source)
