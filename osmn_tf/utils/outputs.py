"""Result folders: written without touching others' files, recorded, resumable.

Files are written atomically (`osmn_tf.utils.atomic`). A result folder may hold files that are not ours (notes, other results); we
only ever replace the files we write. Each result folder has a record
(`MARKER` inside it, or a file in a `RECORDS` folder beside it) listing the
files we wrote there: a file it does not list is not ours and is never
replaced without `overwrite`. The record also says what made the results
(`made_from`: inputs, weights, options) and is marked complete last: that is
what "complete" means, and results of other inputs are not complete.
Temporary names carry the writer's process id, so leftovers of a killed run
are recognised and removed by the next one, while another live run's are
left alone; `folder_lock` keeps a second process from writing the same folder.
"""
import contextlib
import errno
import hashlib
import json
import os
import pathlib
import secrets
import shutil

from osmn_tf.utils.atomic import atomic_output, naming_failed_writes, remove_stale, temporary_name

MARKER = ".osmn-complete.json"
"""The record of a result folder, inside it: `{"files": [...], "scores": bool, "complete": bool,
"made_from": {...}, "overlay": path, "overlays": [paths]}`; a record without "complete" is complete."""
RECORDS = ".osmn-complete"
"""A folder of records, `<result folder name>.json`, for result folders that must hold only results
(a YouTube-VOS submission's `Annotations/<video>/`)."""


class OutputError(ValueError):
    """An output path that must not be written: the message names it and why."""


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


def record_file(folder, records=None):
    """Where the record of result folder `folder` is: `folder/MARKER`, or `records/<folder name>.json`."""
    folder = pathlib.Path(folder)
    return folder / MARKER if records is None else pathlib.Path(records) / f"{folder.name}.json"


def read_marker(folder, record=None):
    """The record of `folder` (in `record`, default `folder/MARKER`) as a dict, or None when absent or unreadable."""
    path = pathlib.Path(record) if record is not None else pathlib.Path(folder) / MARKER
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list):
        return None
    return marker


def _write_record(path, entry):
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, "w") as handle:
        handle.write(json.dumps(entry) + "\n")


def is_complete(folder, expected_masks=None, scores=False, record=None):
    """Whether `folder` holds a finished result: its complete record, every file it lists and every expected mask.

    Args:
        expected_masks: file names (`00000.png`, ...) that must be among the
            record's, when the number of frames is known up front.
        scores: the scores must have been written too.
        record: the record's path, when not `folder/MARKER`.
    """
    folder = pathlib.Path(folder)
    marker = read_marker(folder, record)
    if marker is None or not marker.get("complete", True) or (scores and not marker.get("scores")):
        return False
    files = set(marker["files"])
    if expected_masks is not None and not set(expected_masks) <= files:
        return False
    return all((folder / name).is_file() for name in files)


def input_stamp(path, content=False):
    """What a record keeps of an input, to tell later whether it is the same: `{"path": ..., "stamp": ...}`.

    The stamp is the size and modification time of a file, the sha256 of
    its bytes with `content` (small files: masks), or a digest of the
    names, sizes and times (or contents) of a folder's files. A path that
    does not exist stands for the files named `path.*` (a TF1 checkpoint
    prefix).
    """
    path = pathlib.Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    elif path.exists():
        files = [path]
    else:
        files = sorted(path.parent.glob(f"{path.name}.*")) if path.parent.is_dir() else []
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0")
        if content:
            digest.update(hashlib.sha256(file.read_bytes()).digest())
        else:
            stat = file.stat()
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    return {"path": os.path.abspath(path), "stamp": digest.hexdigest()}


def live_stamp(spec):
    """`made_from`'s value for a live stream: never the same as another's (a stream cannot be replayed)."""
    return {"live": str(spec), "stamp": secrets.token_hex(8)}


def _describe(value):
    if isinstance(value, dict) and "live" in value:
        return f"the live stream {value['live']}"
    if isinstance(value, dict) and "path" in value:
        return value["path"]
    return "none" if value is None else str(value)


def made_from_difference(old, new):
    """Why the inputs `old` (a record's `made_from`) are not `new`: `"frames: A there, B now"`; None if the same.

    Both are dicts `{what: value}`; values of `input_stamp` name their path,
    and say "changed since" when only the file changed.
    """
    if old is None:
        return "what made them is not recorded"
    new = json.loads(json.dumps(new))  # as a record holds it: tuples are lists
    for key in [*new, *(k for k in old if k not in new)]:
        before, now = old.get(key), new.get(key)
        if before == now:
            continue
        if isinstance(now, dict) and "live" in now and isinstance(before, dict) and "live" in before:
            return f"{key}: an earlier live stream there, {_describe(now)} now"
        if (isinstance(before, dict) and isinstance(now, dict) and "path" in before
                and before.get("path") == now.get("path")):
            return f"{key}: {now['path']} changed since"
        return f"{key}: {_describe(before)} there, {_describe(now)} now"
    return None


def check_made_from(folder, made_from, record=None, name=None):
    """Refuses a `folder` whose complete record says other inputs made it (OutputError naming `name` and why).

    Results of other inputs are not "complete" for these, and redoing them
    would replace what another run made: only `overwrite` may (the caller
    skips this check then). A folder without a complete record passes.
    """
    check_record_made_from(read_marker(folder, record), made_from, name or folder)


def check_record_made_from(marker, made_from, name):
    """`check_made_from` on a record already read (`marker`, None when absent), naming `name`."""
    if made_from is None or marker is None or not marker.get("complete", True):
        return
    difference = made_from_difference(marker.get("made_from"), made_from)
    if difference:
        raise OutputError(f"{name}: holds the masks of another run ({difference}); use --overwrite to "
                          "replace them, or give another folder")


def ours(folder, record=None):
    """The files of `folder` its record lists (complete or not): those a run may replace."""
    marker = read_marker(folder, record)
    return set(marker["files"]) if marker else set()


def refuse_foreign(folder, names, record=None):
    """Refuses to write `names` into `folder` where one exists that its record does not list (OutputError)."""
    folder = pathlib.Path(folder)
    listed = ours(folder, record)
    for name in names:
        if name not in listed and (folder / name).exists():
            raise OutputError(f"{folder / name}: exists and was not written by this tool (no record of it in "
                              f"{folder}); move it away, or use --overwrite to replace it")


def _files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def commit_folder(staging, final, scores=False, record=None, made_from=None, overwrite=False, overlay=None):
    """Moves the files of `staging` into `final`, replacing only files a record lists, unless `overwrite`.

    Files of `final` that the record lists but this run did not write (a
    video that got shorter) are removed; files not listed are never
    touched, and one of this run's names that exists unlisted is refused
    (OutputError) unless `overwrite`. A record that is not complete, listing
    every file that may be ours, is written before any file moves (a run
    killed while moving leaves files known to be ours and a folder that is
    not complete); the complete record, with `made_from` and the `overlay`
    written beside, comes last.

    Args:
        record: the record's path (default `final/MARKER`).
        made_from: what made the results (`{what: value}`, e.g. `input_stamp`s).
        overlay: the path of an overlay animation this run writes for these results.
    """
    staging, final = pathlib.Path(staging), pathlib.Path(final)
    record = record_file(final) if record is None else pathlib.Path(record)
    final.mkdir(parents=True, exist_ok=True)
    new_files = _files_under(staging)
    old = read_marker(final, record) or {}
    listed = set(old.get("files", []))
    if not overwrite:
        refuse_foreign(final, new_files, record)
    overlays = sorted(set(old.get("overlays", [])) | ({overlay} if overlay else set()))
    entry = {"files": sorted(listed | set(new_files)), "scores": False, "complete": False, "made_from": made_from,
             "overlay": overlay, "overlays": overlays}
    _write_record(record, entry)
    for name in sorted(listed - set(new_files)):
        if ".." in pathlib.PurePath(name).parts or pathlib.PurePath(name).is_absolute():
            continue  # a record is data: never let it reach outside the folder
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            (final / name).unlink()
    for name in new_files:
        target = final / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise OutputError(f"{target}: is a folder where a result file goes")
        os.replace(staging / name, target)
    _write_record(record, {**entry, "files": new_files, "scores": bool(scores), "complete": True})


@contextlib.contextmanager
def staged_results(final, scores=False, **commit):
    """Yields a hidden staging folder beside `final`; on success its files join `final` (`commit_folder`).

    On failure the staging folder is removed and `final` is untouched; a
    write that fails in the staging folder names the file's place in
    `final`. Stale staging folders of killed runs are removed first.
    `commit` are `commit_folder`'s keyword arguments.
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
        try:
            yield staging
        except OSError as error:
            named = None if error.filename is None else pathlib.Path(os.fspath(error.filename))
            if named is None or staging not in named.parents:
                raise
            with naming_failed_writes(final / named.relative_to(staging), named):
                raise
        commit_folder(staging, final, scores, **commit)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def folder_lock(folder, option="--output"):
    """Holds a lock on writing `folder` while the block runs: `.<name>.lock` beside it, removed at the end.

    A second process that asks for it is refused (OutputError naming
    `option`, the folder and the process that holds it). The lock is the
    operating system's (flock), so a killed run's lock file is no lock:
    the next run takes it over.
    """
    import fcntl

    folder = pathlib.Path(folder)
    resolved = folder.resolve()
    lock = resolved.parent / f".{resolved.name}.lock"
    resolved.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            process = f" (process {holder})" if holder.isdigit() else ""
            raise OutputError(f"{option} {folder}: another run{process} is writing into it; wait for it to end, "
                              "or give another folder") from None
        # The run that held it may have removed the file between our open and our lock: lock the file there now.
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)
