"""Atomic files and folders: written under a temporary name beside the final one, renamed over it on success.

No reader sees half a file; a failure leaves the old file and no temporary;
the file gets the user's umask (the temporary is opened as usual, not with
mkstemp). A write that fails names the file it was writing. Temporary names
carry the writer's process id, so leftovers of a killed run are recognised
and removed by the next one, while another live run's are left alone.
"""
import contextlib
import os
import pathlib
import secrets
import shutil


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def temporary_name(path, kind="tmp", keep_suffix=True):
    """A hidden name beside `path` for writing it: `.<stem>.<kind>-<pid>-<random><suffix>`.

    `keep_suffix=False` leaves the suffix off, so that a folder listing by
    suffix (`*.jpg`) never takes a file being written for one of its files.
    """
    path = pathlib.Path(path)
    suffix = path.suffix if keep_suffix else ""
    return path.with_name(f".{path.stem}.{kind}-{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def remove_stale(path, kind="tmp"):
    """Removes the `temporary_name(path, kind)` leftovers of processes that no longer run; returns them."""
    path = pathlib.Path(path)
    parent = path.parent
    if not parent.is_dir():
        return []
    prefix = f".{path.stem}.{kind}-"
    removed = []
    for entry in parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


@contextlib.contextmanager
def replacing(path, kind="tmp", keep_suffix=True):
    """Yields a temporary path beside `path` (`temporary_name`); when the block succeeds it replaces `path`.

    Leftovers of killed runs (`remove_stale`) are removed first; the
    temporary is removed if the block fails. Writers that pick a format by
    the file name (Keras, imageio) need `keep_suffix`.
    """
    path = pathlib.Path(path)
    remove_stale(path, kind)
    tmp = temporary_name(path, kind, keep_suffix)
    try:
        with naming_failed_writes(path, tmp):
            yield tmp
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def naming_failed_writes(path, *aliases):
    """Re-raises an OSError of the block that names no file (or one of `aliases`) as one naming `path`.

    A full disk raises `[Errno 28] No space left on device` from a write,
    without a file name: the user needs to know where. `aliases` are the
    names `path` is written under for now (a temporary, a staging copy).
    """
    try:
        yield
    except OSError as error:
        named = None if error.filename is None else os.fspath(error.filename)
        if named is not None and named not in {os.fspath(a) for a in aliases}:
            raise
        if error.errno is None:  # e.g. numpy's "3072 requested and 1984 written"
            raise OSError(f"{path}: cannot write: {error}") from error
        raise OSError(error.errno, error.strerror or str(error), os.fspath(path)) from error


@contextlib.contextmanager
def atomic_output(path, mode="wb", **open_kwargs):
    """Opens a file to write in place of `path` (`replacing`): `path` is replaced when the block succeeds."""
    with replacing(path, keep_suffix=False) as tmp:
        # "x": the temporary name is new; a file of that name would be a bug.
        with open(tmp, mode.replace("w", "x"), **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


@contextlib.contextmanager
def replaced_folder(final):
    """Yields a temporary folder that replaces the folder `final` when the block succeeds, and vanishes if it fails.

    Unlike `staged_results`, the whole of `final` is replaced: for folders
    that only the package writes (e.g. an evaluation's own result copies).
    """
    final = pathlib.Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final, "partial")
    staging = temporary_name(final, "partial")
    staging.mkdir()
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
