"""The package's own exceptions, importable without TensorFlow: a tool catches them before (or without) loading it."""


class CheckpointError(ValueError):
    """A checkpoint does not fit the model; the message lists every problem."""


class MissingExtraError(ImportError):
    """An optional dependency (a pip extra: int8, crf, ...) is not installed; the message says how to install it."""
