"""Live frames: a camera, a stream URL or standard input, read as they arrive.

A reading thread takes frames as fast as the source sends them into a
bounded queue. Without a lag limit a full queue makes the reader wait (a
pipe then waits for the segmenter, nothing is lost). With `max_lag`, at most
that many frames wait: when the segmenter falls behind, the oldest waiting
frame is dropped, so the masks keep up with the source; the frames kept are
named by their number in the stream, so the gaps show, and `dropped` counts
them. Frame 0 (read before the model loads) and the frames listed in `keep`
(annotated ones) are never dropped.

Raw RGB frames of a given size on standard input are read here, byte for
byte, so that a stream cut inside a frame is noticed; anything else (an
image or video stream on standard input, through `/proc/<pid>/fd/0` on
Linux, a URL, a camera, a named pipe) is read by ffmpeg.
"""
import collections
import os
import stat
import threading

import numpy as np

URL_MARK = "://"
DEFAULT_QUEUE = 8
PROBE_SECONDS = 10
"""How long imageio-ffmpeg waits for ffmpeg to find a stream's header (its own constant)."""
# ffmpeg's banner (`-hide_banner` drops it; a build may still print it): never the reason of a failure.
_BANNER = ("ffmpeg version", "built with", "configuration:", "lib")


def is_live(spec):
    """Whether `--frames` names a live source: `-` (standard input), a URL, a camera device or a named pipe."""
    spec = str(spec)
    if spec == "-" or URL_MARK in spec or spec.startswith("/dev/video"):
        return True
    try:
        return stat.S_ISFIFO(os.stat(spec).st_mode)
    except OSError:
        return False


def _reason(error):
    """The line of imageio-ffmpeg's error that says why ffmpeg failed (its log's last line, banner left out)."""
    text = str(error).replace("Could not load meta information", "")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith("===") and not line.strip().startswith(_BANNER)]
    if not lines:  # ffmpeg was still waiting when imageio-ffmpeg gave up
        return f"nothing arrived within {PROBE_SECONDS} s (ffmpeg found no stream header)"
    return lines[-1]


class LiveSource:
    """Frames of a live source, as `osmn_tf.data.video.FrameSource` gives them (`names` None: the length is unknown).

    The first frame is read here (a stream that ends before it is a
    ValueError naming `spec`), the others as they are iterated.

    Args:
        spec: `-` (standard input), a URL (`rtsp://...`), a camera (`/dev/video0`) or a named pipe.
        frame_size: `(W, H)` of raw `rgb24` frames on standard input; None lets ffmpeg probe the stream.
        input_format: ffmpeg's input format (`-f`), e.g. `mjpeg`, `image2pipe`, `v4l2`; None to probe
            (`v4l2` for `/dev/video*`).
        max_lag: at most this many frames wait; older ones are dropped (None: never drop, wait).
        keep: stream numbers of frames never dropped (frames with annotations); frame 0 never is.
    """

    def __init__(self, spec, frame_size=None, input_format=None, max_lag=None, keep=()):
        if max_lag is not None and int(max_lag) < 1:
            raise ValueError(f"max_lag must be >= 1 frame, got {max_lag!r}")
        self.path = spec
        self.names = None
        self.max_lag = None if max_lag is None else int(max_lag)
        self.keep = frozenset(int(k) for k in keep) | {0}
        self.dropped = 0
        self.partial_bytes = 0
        self.frames_read = 0
        self._raw = spec == "-" and frame_size is not None
        if self._raw:
            self.size, self.fps = tuple(frame_size), None
            self._frames = self._raw_frames(os.fdopen(0, "rb", closefd=False))  # fd 0 even where sys.stdin is replaced
        else:
            self._frames = self._ffmpeg_frames(spec, frame_size, input_format)
        first = next(self._frames, None)
        if first is None:
            if self.partial_bytes:
                raise ValueError(f"{spec}: the stream ended {self.partial_bytes} bytes into its first frame"
                                 f"{self._raw_detail()}")
            raise ValueError(f"{spec}: the stream ended before its first frame{self._raw_detail()}")
        self._first = first
        self._stop = threading.Event()
        self._indices = collections.deque()
        self._started = False

    def _frame_bytes(self):
        return self.size[0] * self.size[1] * 3

    def _raw_detail(self):
        if not self._raw:
            return ""
        return f" (raw rgb24 frames of {self.size[0]}x{self.size[1]}: {self._frame_bytes()} bytes each)"

    def _raw_frames(self, stream):
        """Raw frames of standard input; a last, incomplete frame is left out and its bytes counted."""
        size = self._frame_bytes()
        try:
            while True:
                data = stream.read(size)  # a buffered read returns fewer bytes only at the end
                if len(data) < size:
                    self.partial_bytes = len(data)
                    return
                self.frames_read += 1
                yield data
        finally:
            stream.close()

    def _ffmpeg_frames(self, spec, frame_size, input_format):
        import imageio_ffmpeg

        params = ["-hide_banner"]
        if frame_size is not None:
            params += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{frame_size[0]}x{frame_size[1]}"]
        elif input_format:
            params += ["-f", input_format]
        elif str(spec).startswith("/dev/video"):
            params += ["-f", "v4l2"]
        source = f"/proc/{os.getpid()}/fd/0" if spec == "-" else str(spec)
        frames = imageio_ffmpeg.read_frames(source, input_params=params)
        try:
            meta = next(frames)
        except Exception as e:  # imageio-ffmpeg raises OSError or RuntimeError with ffmpeg's log
            raise ValueError(f"{spec}: cannot open as a live stream: {_reason(e)}") from e
        self.size = tuple(meta["size"])
        self.fps = meta.get("fps") or None
        try:
            for data in frames:
                self.frames_read += 1
                yield data
        finally:
            frames.close()

    def partial_frame(self):
        """A sentence on a last frame the stream cut short (raw standard input), or None."""
        if not self.partial_bytes:
            return None
        return (f"{self.path}: the stream ended {self.partial_bytes} bytes into frame {self.frames_read} "
                f"({self.size[0]}x{self.size[1]} rgb24 frames are {self._frame_bytes()} bytes); that partial "
                "frame is left out")

    def stop(self):
        """Ends the stream after the frames already read (e.g. on Ctrl-C): the run finishes and writes its masks."""
        self._stop.set()

    def __iter__(self):
        """Yields `uint8` `[H, W, 3]` RGB frames as they arrive (once: a live stream cannot be replayed)."""
        for _, frame in self.numbered():
            yield frame

    def numbered(self):
        """Yields `(stream number, frame)` as frames arrive: the numbers skip the frames dropped."""
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
                for index, data in enumerate(self._frames, start=1):
                    if self._stop.is_set():
                        break
                    frame = np.frombuffer(data, np.uint8).reshape(height, width, 3)
                    with ready:
                        while len(waiting) >= capacity and self.max_lag is None and not self._stop.is_set():
                            ready.wait(0.1)
                        if self.max_lag is not None:
                            droppable = [k for k, (number, _) in enumerate(waiting) if number not in self.keep]
                            if len(droppable) >= capacity:
                                # The oldest waiting frame: the masks keep up with the source.
                                del waiting[droppable[0]]
                                self.dropped += 1
                        waiting.append((index, frame))
                        ready.notify_all()
            except Exception as e:  # handed to the consumer
                message = str(e) if isinstance(e, ValueError) else _reason(e)
                state["error"] = ValueError(f"{self.path}: reading the stream failed: {message}")
            finally:
                self._frames.close()
                with ready:
                    state["done"] = True
                    ready.notify_all()

        thread = threading.Thread(target=read, name="osmn-live", daemon=True)
        thread.start()
        try:
            self._indices.append(0)
            yield 0, np.frombuffer(self._first, np.uint8).reshape(height, width, 3)
            while True:
                with ready:
                    # Stopped: the frames waiting still come, a read that blocks is not waited for.
                    while not waiting and not state["done"] and not self._stop.is_set():
                        ready.wait(0.1)
                    if not waiting:
                        break
                    index, frame = waiting.popleft()
                    ready.notify_all()
                self._indices.append(index)
                yield index, frame
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
