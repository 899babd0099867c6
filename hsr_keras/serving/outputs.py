"""Where `evaluate`, `export` and `predict` write: checked before the work, temporaries named after their process.

An output folder is checked before any work starts (`check_folder`): it is a folder (or can
be created) and writable. `export` and `predict` write to a hidden temporary beside the
output and rename it when it is complete, so an output appears whole or not at all. The
temporary's name carries the host and the process id (`process_tag`); a run that is killed
leaves it behind, and the next run into the same folder removes those of its own naming
pattern made on this host by a process that is gone (`remove_stale`). Temporaries of
processes still running, or made on another host (a shared file system), are kept.

Nothing here imports TensorFlow or Keras.
"""

import os
import re
import shutil
import socket
from pathlib import Path

from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.writer import writable

HOST_CHARS = re.compile(r"[^A-Za-z0-9-]")


class OutputError(InputError):
    """An output that cannot be written (a file where a folder is needed, a read-only folder)."""


def host_tag():
    """This host's name as it appears in temporary names: letters, digits and '-' only."""
    return HOST_CHARS.sub("-", socket.gethostname().split(".")[0]) or "host"


def process_tag(pid=None):
    """`<host>.<pid>` of this process (or of `pid` on this host), embedded in temporary names."""
    return f"{host_tag()}.{os.getpid() if pid is None else int(pid)}"


def is_running(pid):
    """Whether process `pid` of this host exists (any user's; a zombie counts as running)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return True  # not a process of its own: never treat it as gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or a number that is no pid: keep its files
    return True


def remove_stale(folder, pattern):
    """Remove the entries of `folder` named by `pattern` whose process is gone; return their paths.

    `pattern` is a compiled regular expression with the groups `host` and `pid`; an entry is
    removed only when `host` is this host and no process `pid` runs. Entries that another run
    removes meanwhile, or that cannot be removed, are skipped.
    """
    removed = []
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError:
        return removed
    here = host_tag()
    for path in entries:
        match = pattern.match(path.name)
        if match is None or match["host"] != here or is_running(int(match["pid"])):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue  # a read-only folder: the output check reports it
        removed.append(path)
    return removed


def _nearest_existing(path):
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_folder(folder, option="--out"):
    """`folder` is a folder, or can be created, and is writable; else `OutputError` in one line."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{option} {folder} is a file, not a folder")
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise OutputError(f"cannot create {option} {folder}: {existing} is a file, not a folder")
    if not writable(existing):
        what = "" if existing == Path(os.path.abspath(folder)) else f" (to create {folder} in)"
        raise OutputError(f"cannot write to {existing}{what}: the folder is read-only")
    return folder


def check_file(path, overwrite=False, option="--out"):
    """`path` can be written as a new file: not a folder, in a writable folder, absent unless `overwrite`."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder: give the name of the file to write")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists: pass --overwrite to replace it")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"the folder of {option} {path} does not exist")
    if not writable(parent):
        raise OutputError(f"cannot write {path}: its folder {parent} is read-only")
    return path
