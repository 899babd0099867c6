"""Publishing files whole, and knowing who writes a folder: the one way both packages write.

Every file or folder the project publishes (shards, manifests, configs, generators, run
records, exports, predictions, downloads) is written under a temporary name beside its final
one, `.<stem>.<host>.<pid>.part<suffix>` (`temporary_path`), flushed to disk, and renamed onto
its final name (`publishing`): a reader sees the old file or the new one, never half of one.
The suffix is kept because some writers need it (Keras saves only to `*.keras`).

A process killed while writing leaves its temporary behind. `remove_stale(folder)` removes
the temporaries of processes of this host that are gone; those of running processes, or made
on another host of a shared file system, are kept. `FolderLock` keeps a second process from
writing the same folder at once, by the same host-and-process test (`is_running`).

Nothing here imports TensorFlow, Keras or xarray.
"""

import contextlib
import datetime
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

from tfrecords_builder.contract.errors import InputError

log = logging.getLogger(__name__)

TEMPORARY_RE = re.compile(r"^\.(?P<stem>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.part(?P<suffix>\.[^.]+)?$")
LOCK_NAME = ".lock"
_HOST_CHARS = re.compile(r"[^A-Za-z0-9-]")


class OutputError(InputError):
    """An output that cannot be written (a file where a folder is needed, a read-only folder)."""


class FolderBusy(InputError):
    """Another running process writes the folder."""


# ----------------------------------------------------------------------------- who writes


def host_tag():
    """This host's name as it appears in temporary names and locks: letters, digits and '-' only."""
    return _HOST_CHARS.sub("-", socket.gethostname().split(".")[0]) or "host"


def is_running(pid):
    """Whether process `pid` of this host exists (any user's; a zombie counts as running).

    This process, and numbers that cannot be a process of its own (<= 0), count as running,
    so their files are never treated as left behind.
    """
    if pid == os.getpid() or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


# ----------------------------------------------------------------------------- writing whole


def temporary_path(path, pid=None, host=None):
    """`.<stem>.<host>.<pid>.part<suffix>` beside `path`: where this process (or `pid` of `host`) writes it.

    The host and process named are the temporary's owner, who publishes or removes it: a
    build's shards, written by Beam workers elsewhere, name the process that launched it.
    """
    path = Path(path)
    pid = os.getpid() if pid is None else int(pid)
    return path.with_name(f".{path.stem}.{host or host_tag()}.{pid}.part{path.suffix}")


def sync(path):
    """Flush a file, or every file of a folder, to disk (a rename alone may reach the disk first)."""
    path = Path(path)
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as f:
            os.fsync(f.fileno())


def _sync_folder(folder):
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove(path):
    """Remove a file or a folder tree, if there."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def publishing(path):
    """Yield the temporary path of `path`; when the block succeeds, sync it and rename it onto `path`.

    The block writes a file, or makes a folder, at the yielded path. On any error, an
    interrupt included, the temporary is removed and `path` is left as it was. A folder
    replaces an existing `path` only if that is an empty folder (`os.replace`'s rule).
    """
    path = Path(path)
    temporary = temporary_path(path)
    try:
        yield temporary
        sync(temporary)
        os.replace(temporary, path)
        _sync_folder(path.parent)
    finally:
        remove(temporary)


def write_text(path, text):
    """Publish `text` (UTF-8) as `path`."""
    with publishing(path) as temporary:
        Path(temporary).write_text(text, encoding="utf-8")


def write_bytes(path, data):
    with publishing(path) as temporary:
        Path(temporary).write_bytes(data)


def write_json(path, obj, indent=1):
    """Publish `obj` as JSON, keys sorted."""
    write_text(path, json.dumps(obj, indent=indent, sort_keys=True) + "\n")


def remove_stale(folder):
    """Remove the temporaries in `folder` of processes of this host that are gone; return their paths.

    Entries that another process removes meanwhile, or that cannot be removed (a read-only
    folder: its writer's own check reports it), are skipped.
    """
    removed = []
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError:
        return removed
    here = host_tag()
    for path in entries:
        match = TEMPORARY_RE.match(path.name)
        if match is None or match["host"] != here or is_running(int(match["pid"])):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        log.info("note: removed %s, left by a process that was killed", path)
        removed.append(path)
    return removed


# ----------------------------------------------------------------------------- checks before work


def writable(folder):
    """Whether a file can be created in `folder`: tried, since file modes do not tell for root."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


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


# ----------------------------------------------------------------------------- checksums


def sha256_of(path):
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- one writer per folder


class FolderLock:
    """`<folder>/.lock` while this process writes `folder`: a second writer is refused at once.

    The lock file holds the host, process id, start time and command of its owner; it is made
    with O_EXCL, so of two processes starting together exactly one gets it. A lock left by a
    process of this host that is gone is taken over (logged as a note). A lock from another
    host is trusted until removed by hand, since its process cannot be checked from here.
    On object stores, which have no exclusive create, a lock would not exclude: the project
    writes locks on local and network file systems only.

    Use as a context manager; `release` removes the file only while it is still ours.
    """

    def __init__(self, folder, command=None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command
        self.held = False

    def acquire(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {
            "host": host_tag(),
            "pid": os.getpid(),
            "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": self.command,
        }
        for _ in range(3):  # a stale lock is removed, then the create is tried again
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._refuse_or_clear()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(record) + "\n")
            self.held = True
            return self
        raise FolderBusy(f"{self.folder} is locked ({self.path}) and the lock could not be taken")

    def _refuse_or_clear(self):
        owner = read_lock(self.folder)
        if owner is None:  # being written this instant, or unreadable: look again
            return
        host, pid = owner.get("host"), owner.get("pid")
        if host == host_tag() and isinstance(pid, int) and not is_running(pid):
            log.info("note: took over the lock of %s from process %s, which is gone", self.folder, pid)
            self.path.unlink(missing_ok=True)
            return
        where = "" if host == host_tag() else f" on host {host}"
        raise FolderBusy(
            f"{self.folder} is in use by process {pid}{where} since {owner.get('since')}: wait for it to finish, "
            f"or remove {self.path} if that process is gone"
        )

    def release(self):
        if self.held:
            owner = read_lock(self.folder)
            if owner is not None and owner.get("pid") == os.getpid() and owner.get("host") == host_tag():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def read_lock(folder):
    """The owner record of `folder`'s lock, or None when there is none (or it cannot be read)."""
    try:
        record = json.loads((Path(folder) / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
