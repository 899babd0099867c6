"""Builds, runs, exports and predictions in buckets: stage locally, transfer with fsspec.

Where a command takes a folder it also takes a URL (`gs://`, `s3://`, `memory://`, `file://`:
any fsspec protocol). The command works on a local folder exactly as it does without a URL, and
this module moves that folder:

- in: `fetch_build` copies a build into the cache (`cache_root()/builds/<hash of the URL and
  its manifest>`), every shard checked against the manifest's size and sha256, and reuses a
  copy that is already there and intact; `fetch_folder` copies a folder (a run to resume),
  `fetch_copy` a folder into the cache (a model) and `fetch_input` one file (a netCDF input,
  a .keras model).
- out: `publish_folder` uploads a finished local folder to a URL, `publish_file` one file.

Object stores have no rename: one object appears whole when its upload ends, but a folder
appears object by object. So `publish_folder` uploads the new files under a hidden staging
prefix of the URL first, leaving the earlier content untouched; only then does it remove the
folder's marker (a build's manifest.json), copy the staged files into place (a copy inside
the store), remove the files the new folder no longer has, and upload the marker last.
Readers trust only what the marker lists: a publish cut short while uploading leaves the
earlier folder as it was; one cut short while copying leaves no marker (no build, never half
of one) until the same command runs again.

Locks stay local (`files.FolderLock` on the staging folder): two machines writing the same URL
are not kept apart. fsspec is imported lazily: this module costs nothing to commands given
only local paths.
"""

import filecmp
import hashlib
import importlib.util
import json
import os
import re
import socket
from pathlib import Path

from tfrecords_builder.contract import files
from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.schema import MANIFEST_NAME

CACHE_ENV = "HSR_KERAS_CACHE"
# The packages fsspec needs for the protocols users are most likely to give, and the extra that installs them.
BACKENDS = {"gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"), "s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3")}
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
STAGING_PREFIX = ".publishing-"  # a staged upload in a bucket's root


class RemoteError(InputError):
    """A URL that cannot be read or written (its fsspec package missing, nothing there): one line, exit 2."""


def is_url(path):
    """Whether `path` is a URL (`scheme://...`) rather than a local path."""
    return isinstance(path, str) and _URL_RE.match(path) is not None


def cache_root():
    """Where fetched builds and staged folders live: `$HSR_KERAS_CACHE`, else ~/.cache/hsr-keras."""
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/hsr-keras").expanduser()


def cache_folder(kind, *keys):
    """`cache_root()/kind/<hash of keys>`: the same URL (and contents) gives the same folder on every run."""
    digest = hashlib.sha256("\n".join(str(key) for key in keys).encode()).hexdigest()[:20]
    return cache_root() / kind / digest


def filesystem(url):
    """(fsspec file system, path inside it) of `url`; a `RemoteError` naming the package a protocol needs."""
    protocol = url.split("://", 1)[0].lower()
    if importlib.util.find_spec("fsspec") is None:
        raise RemoteError(f"{protocol}:// needs fsspec: pip install fsspec")
    import fsspec

    if protocol in BACKENDS:
        module, extra = BACKENDS[protocol]
        if importlib.util.find_spec(module) is None:
            raise RemoteError(f"{protocol}:// needs {module}: pip install hsr-keras[{extra}]")
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as err:
        raise RemoteError(f"{protocol}:// needs a package that is not installed: {err}") from None
    except ValueError as err:
        raise RemoteError(f"{url}: {err}") from None


def join(root, name):
    return f"{root.rstrip('/')}/{name}"


def listing(fs, root):
    """{relative name: size} of the files under `root` (none when nothing is there)."""
    found = fs.find(root, detail=True) if fs.exists(root) else {}
    prefix = root.rstrip("/") + "/"
    return {path[len(prefix) :]: info.get("size") for path, info in found.items() if path.startswith(prefix)}


# ----------------------------------------------------------------------------- in


def fetch_input(url):
    """A file on a bucket (a netCDF input, a .keras model) copied to the cache, once per version of it.

    The version is fsspec's `ukey` of the file (the object's generation or ETag on GCS and S3,
    its size and time elsewhere): a file replaced at the URL is fetched again.
    """
    fs, path = filesystem(url)
    if not fs.isfile(path):
        raise RemoteError(f"no file at {url}")
    local = cache_folder("files", url, fs.ukey(path)) / Path(path).name
    if not local.is_file():
        _download(fs, path, local)
    return local


def fetch_folder(url, local):
    """Make `local` a copy of the folder at `url` (empty when nothing is there); returns `local`.

    Files whose bytes did not change are kept as they were, with their modification times
    (a resumed predict fingerprints its model by them); files and folders the URL lacks are
    removed. What publishes in progress stage in a bucket's root is not copied.
    """
    fs, root = filesystem(url)
    local = Path(local)
    remote = [name for name in listing(fs, root) if STAGING_PREFIX not in name]
    if local.is_dir():
        for path in sorted(local.rglob("*"), reverse=True):  # files before their folders
            name = str(path.relative_to(local))
            if path.is_file() and name not in remote and name != files.LOCK_NAME:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    for name in remote:
        _download(fs, join(root, name), local / name)
    return local


def fetch_copy(url):
    """The folder at `url` (a model, a run) copied into the cache (`fetch_folder`), one copy per URL; returns it."""
    folder = cache_folder("folders", url.rstrip("/"))
    with files.FolderLock(folder, command=f"fetching {url}"):
        fetch_folder(url, folder / "copy")
    if not any((folder / "copy").iterdir()):
        raise RemoteError(f"nothing at {url}")
    return folder / "copy"


def build_files(manifest):
    """{file name: its shard_files entry, or None} of every file a build's manifest names, the manifest aside."""
    names = {}
    for split in manifest["splits"].values():
        names.update(dict.fromkeys(split.get("shards") or []))
        names.update({entry["name"]: entry for entry in split.get("shard_files") or []})
    climatology = manifest.get("climatology")
    if isinstance(climatology, dict) and "file" in climatology:
        names[climatology["file"]] = None
    return names


def fetch_build(url):
    """The local copy of the build at `url`: downloaded into the cache, or the copy already there if intact.

    Every shard is checked against the size and sha256 its manifest records; the manifest is
    written last, so a copy cut short is completed by the next fetch.
    """
    from tfrecords_builder.contract.manifest import ManifestError, is_plain_name

    fs, root = filesystem(url)
    try:
        text = fs.cat_file(join(root, MANIFEST_NAME))
    except FileNotFoundError:
        raise ManifestError(
            f"no {MANIFEST_NAME} at {url}: build the data with `python -m tfrecords_builder ... --out {url}`"
        ) from None
    try:
        wanted = build_files(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ManifestError(f"cannot read {join(url, MANIFEST_NAME)}: {err}") from None
    outside = next((name for name in wanted if not is_plain_name(name)), None)
    if outside is not None:
        raise ManifestError(f"{join(url, MANIFEST_NAME)} names {outside!r}, which is not a file of the build")
    local = cache_folder("builds", url.rstrip("/"), hashlib.sha256(text).hexdigest())
    with files.FolderLock(local, command=f"fetching {url}"):
        if (local / MANIFEST_NAME).is_file() and all(_intact(local / n, e) for n, e in wanted.items()):
            return local
        files.remove_stale(local)
        for name, entry in wanted.items():
            if not (entry and _intact(local / name, entry, checksum=True)):
                _download(fs, join(root, name), local / name, entry, url)
        files.write_bytes(local / MANIFEST_NAME, text)
    return local


def _intact(path, entry, checksum=False):
    """Whether `path` holds what its manifest entry records: the size (and with `checksum` the sha256)."""
    if not path.is_file():
        return False
    if entry is None:
        return True
    if path.stat().st_size != entry.get("bytes"):
        return False
    return not (checksum and entry.get("sha256")) or files.sha256_of(path) == entry["sha256"]


def _download(fs, path, local, entry=None, url=None):
    """Copy `path` of `fs` to `local`, replaced whole, checked against a manifest `entry` when given.

    A `local` file that already holds the same bytes is left as it is.
    """
    local.parent.mkdir(parents=True, exist_ok=True)
    temporary = files.temporary_path(local)
    try:
        with files.reporting_full_disk(local.parent):
            try:
                fs.get_file(path, str(temporary))
            except FileNotFoundError:
                raise RemoteError(f"{url or 'the folder'} lacks {Path(path).name}: run again, or rebuild it") from None
            if entry is not None and not _intact(temporary, entry, checksum=True):
                raise RemoteError(
                    f"{join(url, Path(path).name)} differs from its manifest (size or sha256): the build at the URL is "
                    "being replaced or is damaged; run again, or rebuild it"
                )
            if local.is_file() and filecmp.cmp(local, temporary, shallow=False):
                return
            files.sync(temporary)
            os.replace(temporary, local)
    finally:
        files.remove(temporary)


# ----------------------------------------------------------------------------- out


def publish_folder(local, url, marker=MANIFEST_NAME, owned=None):
    """Upload the folder `local` to `url`, `marker` last; the earlier content is replaced only once all is up.

    Args:
        local: the finished local folder (its lock and temporaries are not uploaded).
        url: where it goes; what was there is replaced.
        marker: the file readers trust (a build's manifest.json): removed before the staged
            files are copied into place, uploaded last. None: no marker (a folder whose every
            file is whole on its own).
        owned: which of the files already at `url` the new folder replaces, by relative name
            (a predicate); those the new folder lacks are removed. None: every file.
    """
    fs, root = filesystem(url)
    local = Path(local)
    names = sorted(
        str(path.relative_to(local))
        for path in local.rglob("*")
        if path.is_file() and path.name != files.LOCK_NAME and not files.TEMPORARY_RE.match(path.name)
    )
    if marker in names:
        names.remove(marker)
    before = listing(fs, root)
    staging = _staging(root)
    try:
        for name in names:  # phase 1: the earlier content untouched
            _upload(fs, local / name, join(staging, name))
        if marker is not None and marker in before:
            fs.rm_file(join(root, marker))
        for name in names:  # phase 2: no marker until every file is in place
            _copy(fs, join(staging, name), join(root, name))
        for name in before:
            if name not in names and name != marker and STAGING_PREFIX not in name:
                if owned is None or owned(name):
                    fs.rm_file(join(root, name))
        if marker is not None and (local / marker).is_file():
            _upload(fs, local / marker, join(root, marker))
    finally:
        if fs.exists(staging):
            fs.rm(staging, recursive=True)


def _staging(root):
    """Where a publish to `root` uploads first: a hidden sibling (`.<name>.publishing-<host>-<pid>`), inside a bucket's root.

    Beside the folder, not in it: a reader listing the folder (TF Serving polling an export's
    version folders) never sees the staged files.
    """
    parent, _, name = root.rstrip("/").rpartition("/")
    tag = f"{STAGING_PREFIX}{files.host_tag()}-{os.getpid()}"
    return join(parent, f".{name}{tag}") if parent.strip("/") else join(root, tag)


def publish_file(local, url):
    """Upload one file (an object appears whole when its upload ends)."""
    fs, path = filesystem(url)
    _upload(fs, Path(local), path)


def _upload(fs, local, path):
    _make_parent(fs, path)
    fs.put_file(str(local), path)


def _copy(fs, source, target):
    _make_parent(fs, target)
    fs.copy(source, target)


def _make_parent(fs, path):
    """Folders exist on local file systems only; object stores need none (`makedirs` is a no-op there)."""
    parent = path.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)


def staging_folder(kind, url, *keys):
    """The local folder a command writes for `url` (a run, a prediction): `cache_root()/kind/<hash>`, per host (and `keys`)."""
    return cache_folder(kind, url.rstrip("/"), socket.gethostname(), *keys)
