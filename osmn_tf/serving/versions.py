"""TF Serving's version folders, written whole or not at all.

TF Serving loads any numbered folder that appears under a model's base path,
as soon as its `saved_model.pb` is there. A version is therefore written as
`temp-<version>` beside its final name (TF Serving ignores names that are not
numbers), everything inside, the warm-up file included, and renamed when
complete, as TF Serving's own export tools do. The writer's process id is in
`temp-<version>/.osmn-export.pid` while it writes: a leftover of a killed
export is removed by the next export of that version, a live one's is left alone.
"""
import contextlib
import errno
import os
import pathlib
import shutil

from osmn_tf.utils import atomic, outputs

PID_FILE = ".osmn-export.pid"


def temporary_folder(output):
    """`temp-<version>` beside the version folder `output`."""
    output = pathlib.Path(output)
    return output.with_name(f"temp-{output.name}")


def _writer(temp):
    """The process id a `temp-<version>` folder names, or None without a readable one."""
    try:
        return int((temp / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def remove_leftover(output, name="--output", log=None):
    """Removes `temp-<version>` of `output` when it is the leftover of an export that no longer runs.

    Raises `outputs.OutputError` when another live process is writing it, or
    when the folder is not an export's (no process id in it): never ours to remove.
    """
    temp = temporary_folder(output)
    if not temp.exists() and not temp.is_symlink():
        return
    pid = _writer(temp)
    if pid is None or temp.is_symlink() or not temp.is_dir():
        raise outputs.OutputError(f"{name} {output}: {temp} exists and is not an unfinished export of "
                                  f"tools/export.py ({PID_FILE} missing); move it away or export another version")
    # _pid_alive: the test `outputs` uses for its own leftovers (a live process of another user counts as alive).
    if pid != os.getpid() and atomic.pid_alive(pid):
        raise outputs.OutputError(f"{name} {output}: another export (process {pid}) is writing it in {temp}; "
                                  f"wait for it to end")
    shutil.rmtree(temp)
    if log is not None:
        log(f"removed {temp}, the leftover of an export that did not finish")


@contextlib.contextmanager
def staged_version(output, name="--output", log=None):
    """Yields `temp-<version>` (created, with this process's id in it) to write the version into; when the
    block succeeds it becomes `output` (absent or an empty folder), and vanishes if the block fails.

    A leftover `temp-<version>` of a killed export is removed first (`remove_leftover`).
    """
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    remove_leftover(output, name, log)
    temp = temporary_folder(output)
    try:
        temp.mkdir()
    except FileExistsError:
        raise outputs.OutputError(f"{name} {output}: another export has just started writing it in {temp}") from None
    try:
        (temp / PID_FILE).write_text(f"{os.getpid()}\n")
        yield temp
        (temp / PID_FILE).unlink()
        try:
            # One rename: TF Serving sees no version, then the whole one.
            os.rename(temp, output)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise outputs.OutputError(f"{name} {output}: appeared meanwhile and is not empty; TF Serving "
                                          f"versions are never overwritten") from None
            raise
    finally:
        if temp.is_dir() and _writer(temp) in (os.getpid(), None):
            shutil.rmtree(temp, ignore_errors=True)
