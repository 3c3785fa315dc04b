"""Reading frames from an image folder or a video file, and writing animations."""
import contextlib
import dataclasses
import pathlib

import numpy as np

from osmn_tf.data.frames import load_rgb
from osmn_tf.utils.atomic import replacing

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclasses.dataclass
class FrameSource:
    """A video as a stream of frames.

    Attributes:
        path: the folder or video file.
        names: one name per frame (file stems for a folder, `00000`, ... for a
            video), or None when a video does not tell its length up front.
        fps: frames per second of a video file; None for a folder.
        size: `(W, H)` of a video file's frames as ffmpeg reports them; None for a folder.
    """

    path: pathlib.Path
    names: list | None
    fps: float | None
    size: tuple | None = None

    def __iter__(self):
        """Yields `uint8` `[H, W, 3]` RGB frames; an unreadable one raises naming the file."""
        if self.path.is_dir():
            for name in self.names:
                yield load_rgb(self._files[name])
            return
        yield from _decode_video(self.path)

    def frame_names(self):
        """Names for every frame, generated lazily when the length is unknown."""
        if self.names is not None:
            yield from self.names
            return
        index = 0
        while True:
            yield f"{index:05d}"
            index += 1


def open_frames(path):
    """Opens an image folder (frames in name order) or a video file (any format ffmpeg reads)."""
    path = pathlib.Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise FileNotFoundError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        source = FrameSource(path, [p.stem for p in files], None)
        source._files = {p.stem: p for p in files}
        if len(source._files) != len(files):
            raise ValueError(f"{path}: several image files share a name with different extensions")
        return source
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such frame folder or video file")
    meta = _video_meta(path)
    return FrameSource(path, None, meta.get("fps"), meta.get("size"))


def _video_meta(path):
    import imageio.v3 as iio  # video I/O through imageio's ffmpeg plugin

    try:
        return iio.immeta(path, plugin="FFMPEG")
    except Exception as e:  # imageio raises OSError, RuntimeError, ... for undecodable input
        raise ValueError(f"{path}: cannot decode as a video: {_first_line(e)}") from e


def _decode_video(path):
    import imageio.v3 as iio

    try:
        for frame in iio.imiter(path, plugin="FFMPEG"):
            yield np.ascontiguousarray(frame[..., :3])
    except Exception as e:
        raise ValueError(f"{path}: cannot decode as a video: {_first_line(e)}") from e


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def animation_writer(path, fps=10.0):
    """Streams frames into a video (`.mp4`, `.avi`, ...) or an animated `.gif`, written atomically.

    Yields a function `append(frame)` taking `uint8` `[H, W, 3]` RGB frames;
    frames are encoded as they come, so memory does not grow with the video.
    """
    import imageio.v2 as imageio  # the v2 writer streams; v3 wants every frame at once for GIF

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        if path.suffix.lower() == ".gif":
            writer = imageio.get_writer(tmp, format="GIF", mode="I", duration=1000.0 / fps, loop=0)
        else:
            # macro_block_size=1 keeps odd frame sizes instead of rescaling them.
            writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, macro_block_size=1)
        with writer:
            yield writer.append_data
