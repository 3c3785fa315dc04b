"""Optional dependencies (pip extras): one way to import them, one error when they are missing."""
import importlib

from osmn_tf.utils.errors import MissingExtraError

INSTALL = 'pip install -e ".[{extra}]"'


def require(module, extra, purpose):
    """Imports `module`, or raises `MissingExtraError` naming `purpose` and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(f"{purpose} needs {module} (the {extra} extra), which is not installed: "
                                f"{INSTALL.format(extra=extra)}") from e
