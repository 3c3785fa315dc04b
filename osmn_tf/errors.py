"""The package's own exceptions, importable without TensorFlow: a tool catches them before (or without) loading it."""


class CheckpointError(ValueError):
    """A checkpoint does not fit the model; the message lists every problem."""


class MissingExtraError(ImportError):
    """The `int8` extra (OpenVINO, NNCF) is not installed; the message says which pip command installs it."""
