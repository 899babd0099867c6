"""Publishing files whole, and knowing who writes a folder: the one way both packages write.

Every file or folder the project publishes (shards, manifests, configs, generators, run
records, exports, predictions, downloads) is written under a temporary name beside its final
one, `.<stem>.<host>.<pid>.part<suffix>` (`temporary_path`), flushed to disk, and renamed onto
its final name (`publishing`): a reader sees the old file or the new one, never half of one.
The suffix is kept because some writers need it (Keras saves only to `*.keras`).

A process killed while writing leaves its temporary behind. `remove_stale(folder)` removes
the temporaries of processes of this host that are gone; those of running processes, or made
on another host of a shared file system, are kept. `FolderLock` keeps a second process from
writing the same folder (or, with `file_lock`, the same file) at once, by the same
host-and-process test (`is_running`).

A full disk or an exceeded quota is one line naming the folder, the space free and, where the
writer knows it, the space needed (`DiskFull`, raised by `publishing`, `check_space` and
`reporting_full_disk`), never a traceback of the library that happened to write.

Nothing here imports TensorFlow, Keras or xarray.
"""

import contextlib
import datetime
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
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


class DiskFull(OutputError):
    """No space left (or the quota exceeded) where a command writes: one line, exit status 2."""


# ----------------------------------------------------------------------------- full disks

NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# How the libraries that do not raise an OSError (TensorFlow, h5py) say the same.
NO_SPACE_TEXTS = tuple(os.strerror(number) for number in NO_SPACE_ERRNOS)


def is_disk_full(err):
    """Whether `err`, or an error it was raised from, is a full disk or an exceeded quota."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, DiskFull) or (isinstance(err, OSError) and err.errno in NO_SPACE_ERRNOS):
            return True
        if any(text in str(err) for text in NO_SPACE_TEXTS):
            return True
        err = err.__cause__ or err.__context__
    return False


def mebibytes(count):
    return f"{count / 2**20:.1f} MiB"


def free_bytes(folder):
    """Bytes that may still be written where `folder` is (or would be made); None when unknown."""
    try:
        return shutil.disk_usage(_nearest_existing(folder)).free
    except OSError:
        return None


def disk_full(folder, needed=None, what="needed"):
    """The `DiskFull` error of `folder`: the space free and, when known, `needed` bytes (`what`: for what)."""
    free = free_bytes(folder)
    counts = [] if free is None else [f"{mebibytes(free)} free"]
    if needed is not None:
        counts.append(f"{mebibytes(needed)} {what}")
    shown = f" ({', '.join(counts)})" if counts else ""
    return DiskFull(
        f"no space left in {folder}{shown}: free some space (or raise the quota) and run the same command again"
    )


def check_space(folder, needed, what="needed"):
    """Raise `disk_full` now when `folder` has less than `needed` bytes free: better than failing halfway."""
    free = free_bytes(folder)
    if free is not None and free < needed:
        raise disk_full(folder, needed, what)


ALMOST_FULL_BYTES = 2**20
"""Less free space than this after a write failed: the disk is full, whatever the library said (netCDF: 'HDF error')."""


@contextlib.contextmanager
def reporting_full_disk(folder, needed=None, what="needed"):
    """Turn a full disk met in the block (an `OSError`, TensorFlow's or h5py's error) into `disk_full(folder, ...)`.

    Some libraries do not say why a write failed (netCDF4: 'NetCDF: HDF error'); an error in
    a folder left with almost no free space is taken as the full disk it almost surely is.
    """
    try:
        yield
    except InputError:  # said in one line already (a DiskFull among them)
        raise
    except Exception as err:
        free = free_bytes(folder)
        if not (is_disk_full(err) or (free is not None and free < ALMOST_FULL_BYTES)):
            raise
        raise disk_full(folder, needed, what) from err


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
    replaces an existing `path` only if that is an empty folder (`os.replace`'s rule). A full
    disk (or quota) met in the block is a `DiskFull` naming the folder.
    """
    path = Path(path)
    temporary = temporary_path(path)
    try:
        with reporting_full_disk(path.parent):
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


UNREADABLE_LOCK_S = 5.0
"""An empty or unreadable lock younger than this is being written (looked at again); an older one is stale."""

_held = {}  # lock file (absolute path) -> how many uses in this process hold it
_held_guard = threading.Lock()


class FolderLock:
    """`<folder>/.lock` while this process writes `folder`: a second writer is refused at once.

    The lock file holds the host, process id, start time and command of its owner; it is made
    with O_EXCL, so of two processes starting together exactly one gets it. A lock left by a
    process of this host that is gone (or left unreadable) is taken over, with a note. A lock
    from another host is trusted until removed by hand, since its process cannot be checked
    from here. On object stores, which have no exclusive create, a lock would not exclude:
    the project writes locks on local and network file systems only.

    A process holds a lock once: a use nested in another (a command around the library
    function it calls) shares it. The folders the lock made (`folder` and missing parents)
    are removed on release when they are left empty, so a command that fails leaves no empty
    folder behind. `name` and `subject` lock one file of the folder instead (`file_lock`).

    Use as a context manager; `release` removes the file only while it is still ours.
    """

    def __init__(self, folder, command=None, name=LOCK_NAME, subject=None):
        self.folder = Path(folder)
        self.path = self.folder / name
        self.subject = subject or self.folder
        self.command = command
        self.held = False
        self._made = []

    def acquire(self):
        key = os.path.abspath(self.path)
        with _held_guard:
            if key in _held:
                _held[key] += 1
                self.held = True
                return self
        self._made = _missing_folders(self.folder)
        with reporting_full_disk(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
        record = {
            "host": host_tag(),
            "pid": os.getpid(),
            "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": self.command,
        }
        for _ in range(100):  # a stale lock is removed, an unfinished one waited for, then the create tried again
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._refuse_or_clear()
                continue
            try:
                with reporting_full_disk(self.folder), os.fdopen(fd, "w") as f:
                    f.write(json.dumps(record) + "\n")
            except BaseException:
                self.path.unlink(missing_ok=True)
                self._remove_made()
                raise
            with _held_guard:
                _held[key] = 1
            self.held = True
            return self
        raise FolderBusy(f"{self.subject} is locked ({self.path}) and the lock could not be taken")

    def _refuse_or_clear(self):
        owner = read_lock(self.path)
        if owner is None:  # being written this instant, or left unreadable by a process killed meanwhile
            with contextlib.suppress(OSError):
                if time.time() - self.path.stat().st_mtime > UNREADABLE_LOCK_S:
                    log.info("note: took over the unreadable lock %s", self.path)
                    self.path.unlink(missing_ok=True)
                    return
            time.sleep(0.05)
            return
        host, pid = owner.get("host"), owner.get("pid")
        if host == host_tag() and isinstance(pid, int) and not is_running(pid):
            log.info("note: took over the lock of %s from process %s, which is gone", self.subject, pid)
            self.path.unlink(missing_ok=True)
            return
        where = "" if host == host_tag() else f" on host {host}"
        raise FolderBusy(
            f"{self.subject} is in use by process {pid}{where} since {owner.get('since')}: wait for it to finish, "
            f"or remove {self.path} if that process is gone"
        )

    def release(self):
        if not self.held:
            return
        self.held = False
        key = os.path.abspath(self.path)
        with _held_guard:
            _held[key] -= 1
            if _held[key]:
                return
            del _held[key]
        owner = read_lock(self.path)
        if owner is not None and owner.get("pid") == os.getpid() and owner.get("host") == host_tag():
            self.path.unlink(missing_ok=True)
        self._remove_made()

    def _remove_made(self):
        for folder in reversed(self._made):  # the deepest first; one that is not empty stops it
            try:
                folder.rmdir()
            except OSError:
                break

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def file_lock(path, command=None):
    """The lock of one file (`.<name>.lock` beside it): writers of other files in its folder are not held up."""
    path = Path(path)
    return FolderLock(path.parent, command, name=f".{path.name}.lock", subject=path)


def _missing_folders(folder):
    """The folders `mkdir(parents=True)` would make for `folder`, outermost first."""
    missing = []
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]


def read_lock(path):
    """The owner record of a lock (a lock file, or a folder's `LOCK_NAME`), or None when there is none or it is unreadable."""
    path = Path(path)
    try:
        record = json.loads((path / LOCK_NAME if path.is_dir() else path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
