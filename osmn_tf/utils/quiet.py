"""Keeping TensorFlow's start-up lines off the terminal: the tools' default, and the Beam workers'."""
import contextlib
import logging
import os
import sys


def quiet_tensorflow(verbose=False):
    """Keeps TensorFlow's log off the terminal (unless `verbose`); call before anything imports TensorFlow.

    `TF_CPP_MIN_LOG_LEVEL=3` silences what TensorFlow logs once running
    (e.g. `failed call to cuInit`), but not the lines it writes while it
    loads (oneDNN, CUDA probing, "All log messages before
    absl::InitializeLog() ..."): absl writes those straight to stderr
    before any level is read, whatever the environment says. So the
    import of `tensorflow` itself, whenever it happens, runs with stderr
    closed; an error in it is still raised, as an exception.
    """
    if verbose or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


class _QuietTensorFlowImport:
    """A meta path finder that runs the first import of `tensorflow` with stderr closed, then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            with _stderr_closed():
                load(module)
            # Python-side loggers: TensorFlow's and absl's warnings (deprecations, retracing).
            logging.getLogger("tensorflow").setLevel(logging.ERROR)
            logging.getLogger("absl").setLevel(logging.ERROR)

        spec.loader.exec_module = exec_module
        return spec


@contextlib.contextmanager
def _stderr_closed():
    """File descriptor 2 points to /dev/null inside the block (C++ code writes there, not to `sys.stderr`)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
