"""Optional dependencies (pip extras): one error type, one way to import them."""
import importlib

INSTALL = 'pip install -e ".[{extra}]"'


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says which pip command installs it."""


def require(module, extra, purpose):
    """Imports `module`, or raises `MissingExtraError` naming `purpose` and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(f"{purpose} needs {module} (the {extra} extra), which is not installed: "
                                f"{INSTALL.format(extra=extra)}") from e
