"""Running a loop's input side in a background thread, so it overlaps the network.

TensorFlow releases the GIL while it computes, so a thread that decodes and
preprocesses the next frames (or writes the last masks) runs beside it.
"""
import queue
import threading

_DONE = object()


class _Failure:
    def __init__(self, error):
        self.error = error


def prefetch(iterable, function=None, depth=2):
    """Yields `function(item)` (or `item`) for each item of `iterable`, made ahead in a thread.

    At most `depth` results wait in memory. Order is kept; an exception raised
    while making an item is raised here, at that item. Leaving the loop early
    stops the thread without waiting for it: a read blocked in `iterable`
    (a camera, a pipe) is abandoned, and when it returns the thread closes
    `iterable`'s iterator (a generator's `finally` runs) and ends.
    """
    results = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value):
        while not stop.is_set():
            try:
                results.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        iterator = iter(iterable)
        try:
            for item in iterator:
                if stop.is_set() or not put(function(item) if function is not None else item):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failure(error))
            return
        finally:
            if stop.is_set() and callable(getattr(iterator, "close", None)):
                iterator.close()
        put(_DONE)

    thread = threading.Thread(target=produce, name="osmn-prefetch", daemon=True)
    thread.start()
    finished = False
    try:
        while True:
            value = results.get()
            if value is _DONE:
                finished = True
                return
            if isinstance(value, _Failure):
                finished = True
                raise value.error
            yield value
    finally:
        stop.set()
        if finished:
            thread.join()


class BackgroundWriter:
    """Runs write tasks in order in one thread, at most `depth` queued; `close()` waits and re-raises."""

    def __init__(self, depth=4):
        self._tasks = queue.Queue(maxsize=depth)
        self._error = None
        self._thread = threading.Thread(target=self._run, name="osmn-writer", daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            task = self._tasks.get()
            if task is _DONE:
                return
            if self._error is None:
                try:
                    task()
                except BaseException as error:  # re-raised in the caller's thread
                    self._error = error

    def submit(self, task):
        if self._error is not None:
            raise self._error
        self._tasks.put(task)

    def close(self):
        self._tasks.put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
