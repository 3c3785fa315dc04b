"""Live frames: a camera, a stream URL or standard input, read by ffmpeg as they arrive.

A reading thread takes frames from ffmpeg as fast as the source sends them
into a bounded queue. Without a lag limit a full queue makes the reader wait
(a pipe then waits for the segmenter, nothing is lost). With `max_lag`, at
most that many frames wait: when the segmenter falls behind, the oldest
waiting frame is dropped, so the masks keep up with the source; the frames
kept are named by their number in the stream, so the gaps show, and
`dropped` counts them. Standard input is opened through `/proc/<pid>/fd/0`
(Linux): raw RGB frames of a given size, or anything ffmpeg can probe (an
image or video stream).
"""
import collections
import os
import stat
import threading

import numpy as np

URL_MARK = "://"
DEFAULT_QUEUE = 8


def is_live(spec):
    """Whether `--frames` names a live source: `-` (standard input), a URL, a camera device or a named pipe."""
    spec = str(spec)
    if spec == "-" or URL_MARK in spec or spec.startswith("/dev/video"):
        return True
    try:
        return stat.S_ISFIFO(os.stat(spec).st_mode)
    except OSError:
        return False


def _first_line(error):
    text = str(error).strip()
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("===")]
    return lines[-1] if lines else type(error).__name__


class LiveSource:
    """Frames of a live source, as `osmn_tf.video.FrameSource` gives them (`names` None: the length is unknown).

    Args:
        spec: `-` (standard input), a URL (`rtsp://...`), a camera (`/dev/video0`) or a named pipe.
        frame_size: `(W, H)` of raw `rgb24` frames on standard input; None lets ffmpeg probe the stream.
        input_format: ffmpeg's input format (`-f`), e.g. `mjpeg`, `image2pipe`, `v4l2`; None to probe
            (`v4l2` for `/dev/video*`).
        max_lag: at most this many frames wait; older ones are dropped (None: never drop, wait).
    """

    def __init__(self, spec, frame_size=None, input_format=None, max_lag=None):
        import imageio_ffmpeg

        if max_lag is not None and int(max_lag) < 1:
            raise ValueError(f"max_lag must be >= 1 frame, got {max_lag!r}")
        self.path = spec
        self.names = None
        self.max_lag = None if max_lag is None else int(max_lag)
        self.dropped = 0
        params = []
        if frame_size is not None:
            params += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{frame_size[0]}x{frame_size[1]}"]
        elif input_format:
            params += ["-f", input_format]
        elif str(spec).startswith("/dev/video"):
            params += ["-f", "v4l2"]
        source = f"/proc/{os.getpid()}/fd/0" if spec == "-" else str(spec)
        self._frames = imageio_ffmpeg.read_frames(source, input_params=params)
        try:
            meta = next(self._frames)
        except Exception as e:  # imageio-ffmpeg raises OSError or RuntimeError with ffmpeg's log
            raise ValueError(f"{spec}: cannot open as a live stream: {_first_line(e)}") from e
        self.size = tuple(meta["size"])
        self.fps = meta.get("fps") or None
        self._stop = threading.Event()
        self._indices = collections.deque()
        self._started = False

    def stop(self):
        """Ends the stream after the frames already read (e.g. on Ctrl-C): the run finishes and writes its masks."""
        self._stop.set()

    def __iter__(self):
        """Yields `uint8` `[H, W, 3]` RGB frames as they arrive (once: a live stream cannot be replayed)."""
        if self._started:
            raise RuntimeError(f"{self.path}: a live stream is read once")
        self._started = True
        width, height = self.size
        capacity = self.max_lag or DEFAULT_QUEUE
        waiting = collections.deque()
        ready = threading.Condition()
        state = {"done": False, "error": None}

        def read():
            try:
                for index, data in enumerate(self._frames):
                    if self._stop.is_set():
                        break
                    frame = np.frombuffer(data, np.uint8).reshape(height, width, 3)
                    with ready:
                        while len(waiting) >= capacity and self.max_lag is None and not self._stop.is_set():
                            ready.wait(0.1)
                        if len(waiting) >= capacity:
                            waiting.popleft()  # the oldest waiting frame: the masks keep up with the source
                            self.dropped += 1
                        waiting.append((index, frame))
                        ready.notify_all()
            except Exception as e:  # handed to the consumer
                state["error"] = ValueError(f"{self.path}: reading the stream failed: {_first_line(e)}")
            finally:
                self._frames.close()
                with ready:
                    state["done"] = True
                    ready.notify_all()

        thread = threading.Thread(target=read, name="osmn-live", daemon=True)
        thread.start()
        try:
            while True:
                with ready:
                    while not waiting and not state["done"]:
                        ready.wait(0.1)
                    if not waiting:
                        break
                    index, frame = waiting.popleft()
                    ready.notify_all()
                self._indices.append(index)
                yield frame
            if state["error"] is not None:
                raise state["error"]
        finally:
            self._stop.set()

    def frame_names(self):
        """The stream number of each frame handed out, `00000`, ..., in order (gaps where frames were dropped).

        Ends when every frame handed out so far is named: take a name after its frame.
        """
        while True:
            if not self._indices:
                return
            yield f"{self._indices.popleft():05d}"
