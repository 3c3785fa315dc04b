"""Writing outputs safely: every file through one atomic helper, result folders without touching others' files.

Every file the package writes goes through `replacing` (or `atomic_output`,
which opens it): it is written under a hidden temporary name beside its
final one and renamed over it on success, so no reader sees half a file,
a failure leaves the old file and no temporary, and the file gets the
user's umask (the temporary is opened as usual, not with mkstemp).

A result folder may hold files that are not ours (notes, other results); we
only ever replace the files we write. Each finished folder gets a completion
marker, written last, that lists those files: it is what "complete" means,
and what `--overwrite` may replace. Temporary names carry the writer's
process id, so leftovers of a killed run are recognised and removed by the
next one, while another live run's are left alone.
"""
import contextlib
import errno
import json
import os
import pathlib
import secrets
import shutil

MARKER = ".osmn-complete.json"
"""The completion marker of a result folder: `{"files": [...], "scores": bool}`."""


class OutputError(ValueError):
    """An output path that must not be written: the message names it and why."""


def _pid_alive(pid):
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
        if not pid.isdigit() or _pid_alive(int(pid)):
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
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


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


def check_is_folder(path, option="--output"):
    """Refuses an output folder that exists as a file (before any work is done)."""
    if pathlib.Path(path).exists() and not pathlib.Path(path).is_dir():
        raise OutputError(f"{option} {path}: exists and is not a folder")
    return pathlib.Path(path)


def check_output_folder(output, inputs=()):
    """Refuses a result folder that would put other files at risk, before any work is done.

    `output` may not be `/`, the current directory, an existing file, or a
    folder that holds (or is) one of `inputs`.
    """
    path = pathlib.Path(output)
    resolved = path.resolve()
    if resolved == pathlib.Path(resolved.anchor):
        raise OutputError(f"--output {output}: refusing to write results into the root folder")
    if resolved == pathlib.Path.cwd().resolve():
        raise OutputError(f"--output {output}: refusing to write results into the current directory; "
                          "give a folder of their own")
    check_is_folder(output)
    for item in inputs:
        if item is None:
            continue
        item_path = pathlib.Path(item).resolve()
        if item_path == resolved or resolved in item_path.parents:
            raise OutputError(f"--output {output}: holds the input {item}; give a folder of its own for results")
    return path


def check_output_file(path, option, overwrite=False):
    """Refuses an output file that is a folder, or that exists without `overwrite`."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder, not a file")
    if path.exists() and not overwrite:
        raise OutputError(f"{option} {path}: exists (use --overwrite to replace it)")
    return path


def read_marker(folder):
    """The completion marker of `folder` as a dict, or None when absent or unreadable."""
    try:
        marker = json.loads((pathlib.Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list):
        return None
    return marker


def is_complete(folder, expected_masks=None, scores=False):
    """Whether `folder` holds a finished result: its marker, every file it lists and every expected mask.

    Args:
        expected_masks: file names (`00000.png`, ...) that must be among the
            marker's, when the number of frames is known up front.
        scores: the scores must have been written too.
    """
    folder = pathlib.Path(folder)
    marker = read_marker(folder)
    if marker is None or (scores and not marker.get("scores")):
        return False
    files = set(marker["files"])
    if expected_masks is not None and not set(expected_masks) <= files:
        return False
    return all((folder / name).is_file() for name in files)


def _files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def commit_folder(staging, final, scores=False):
    """Moves the files of `staging` into `final`, replacing only files a previous run listed or these names.

    Files of `final` that an earlier marker lists but this run did not write
    (a video that got shorter) are removed; files not listed are never
    touched. The marker is written last.
    """
    staging, final = pathlib.Path(staging), pathlib.Path(final)
    final.mkdir(parents=True, exist_ok=True)
    new_files = _files_under(staging)
    old = read_marker(final)
    # The old marker goes first: a run killed while moving leaves no folder that looks complete.
    with contextlib.suppress(FileNotFoundError):
        (final / MARKER).unlink()
    for name in sorted(set(old["files"]) - set(new_files)) if old else ():
        if ".." in pathlib.PurePath(name).parts or pathlib.PurePath(name).is_absolute():
            continue  # a marker is data: never let it reach outside the folder
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            (final / name).unlink()
    for name in new_files:
        target = final / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise OutputError(f"{target}: is a folder where a result file goes")
        os.replace(staging / name, target)
    with atomic_output(final / MARKER, "w") as handle:
        handle.write(json.dumps({"files": new_files, "scores": bool(scores)}) + "\n")


@contextlib.contextmanager
def staged_results(final, scores=False):
    """Yields a hidden staging folder beside `final`; on success its files join `final` (`commit_folder`).

    On failure the staging folder is removed and `final` is untouched.
    Stale staging folders of killed runs are removed first.
    """
    final = pathlib.Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final, "partial")
    staging = temporary_name(final, "partial")
    try:
        staging.mkdir()
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EROFS):
            raise OutputError(f"{final.parent}: cannot write here: {e.strerror}") from e
        raise
    try:
        yield staging
        commit_folder(staging, final, scores)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
