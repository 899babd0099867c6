"""`manifest.json`: what a build contains, written by the builder and read by `hsr_keras`.

Keys (schema version `schema.SCHEMA_VERSION`):

    schema_version   int
    created_by       "tfrecords_builder <version>"
    command          the argv of the build
    variable, units  "r", "%"
    levels           [hPa, ...]
    region           {"name", "lat_min", "lat_max", "lon_min", "lon_max"}
    steps_per_day, interval_hours, step_hours    e.g. 8, 3, [0, 3, ..., 21]
    scale, degradation                           e.g. 8, "stride" | "block_mean"
    hr_shape, lr_shape                           [T, H, W], [T, h, w]
    grid             {"lat": [...], "lon": [...], "lr_lat": [...], "lr_lon": [...],
                      "resolution_deg": 0.25}; latitude ascending (row 0 = south)
    splits           {name: {"start", "end", "examples", "days", "shards": [file names],
                             "bytes", "skipped": [{"date", "level", "reason"}], "skipped_count"}}
                     "bytes" is the total size of the split's shards; an optional
                     "shard_files": [{"name", "bytes", "sha256"}] (`shard_record`) gives each
                     shard's size and checksum, which `hsr_keras.data.check_shards` compares
    stats            {"mean", "std", "min", "max", "fraction_above_100", "count"}:
                     HR values of the training split only
    climatology      {"<level>": [T][H][W]}: per grid point and step-of-day mean of the
                     training split
    sources          [{"path", "bytes", "sha256"}]
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path

from tfrecords_builder.errors import InputError
from tfrecords_builder.schema import MANIFEST_NAME, SCHEMA_VERSION

REQUIRED_KEYS = ("schema_version", "hr_shape", "lr_shape", "scale", "grid", "splits", "stats")


class ManifestError(InputError):
    """A manifest is missing, unreadable or of another schema version."""


def manifest_path(path):
    """Accept a build folder or the manifest file itself."""
    path = Path(path)
    return path / MANIFEST_NAME if path.is_dir() else path


def read_manifest(path):
    """Load and check a manifest; raise `ManifestError` with a one-line reason."""
    file = manifest_path(path)
    if not file.exists():
        raise ManifestError(f"no {MANIFEST_NAME} at {file}: build the data with `python -m tfrecords_builder`")
    try:
        manifest = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ManifestError(f"cannot read {file}: {err}") from err
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise ManifestError(f"{file} lacks {', '.join(missing)}: not a tfrecords_builder manifest")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise ManifestError(
            f"{file} has schema version {manifest['schema_version']}, this code reads {SCHEMA_VERSION}: "
            "rebuild the data with this version of tfrecords_builder"
        )
    manifest["_dir"] = str(file.parent)
    return manifest


def write_json_atomic(obj, path):
    """Write JSON through a temporary file and a rename, so a crash never leaves half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a manifest is for everyone to read
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def shard_record(path, name=None):
    """{"name", "bytes", "sha256"} of a shard file, for a split's "shard_files" (`name`: its published name)."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"name": name or path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}
