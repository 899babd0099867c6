"""`manifest.json`: what a build contains, written by the builder and read by `hsr_keras`.

Keys (schema version `schema.SCHEMA_VERSION`; `read_manifest` also reads version 1, which
lacks `patches`, as a build of one patch):

    schema_version   int
    created_by       "tfrecords_builder <version>"
    command          the argv of the build
    variable, units  "r", "%"
    levels           [hPa, ...]; [0] for a single-level target (r2m), with
    level_type       "surface" (only then): 0 is the pseudo-level `reader.SURFACE_LEVEL`, and
                     records and climatology keys carry it as they carry a pressure level
    region           {"name", "lat_min", "lat_max", "lon_min", "lon_max"}: the domain
    steps_per_day, interval_hours, step_hours    e.g. 8, 3, [0, 3, ..., 21]
    scale, degradation                           e.g. 8, "stride" | "block_mean"
    hr_shape, lr_shape                           [T, H, W], [T, h, w] of one sample (patch)
    grid             {"lat": [...], "lon": [...], "lr_lat": [...], "lr_lon": [...],
                      "resolution_deg": 0.25}: the domain's HR and LR cell coordinates;
                     latitude ascending (row 0 = south), longitude ascending from the west
                     bound, past 360 across the 0/360 meridian (take it modulo 360)
    patches          {"size": [H, W], "stride": [rows, cols], "rows", "cols", "count",
                      "corners": [[lat, lon], ...], "dropped_rows", "dropped_cols",
                      "dropped_cells", "coverage"}: patch k covers grid rows r..r+H-1 and
                     columns c..c+W-1 from its corner (its south-west HR cell),
                     r = stride[0] * (k // cols), c = stride[1] * (k % cols); "dropped_cells"
                     counts the domain's grid points in no patch (dropped rows and columns,
                     and the gaps a stride larger than the size leaves), "coverage" the
                     share in some patch (builds before it lack both)
    splits           {name: {"start", "end", "examples", "days", "shards": [file names],
                             "bytes", "shard_files", "skipped": [{"date", "level", "reason"}],
                             "skipped_count"}}; "bytes" is the total size of the split's shards,
                     "shard_files": [{"name", "bytes", "sha256"}] (`shard_record`) each shard's
                     size and checksum, which `hsr_keras.training.data.check_shards` compares (builds
                     before it have only "bytes"); with several patches a skipped entry of one
                     patch has "patch": k too (one without stands for every patch), and
                     skipped_count counts samples
    stats            {"mean", "std", "min", "max", "fraction_above_100", "count"}:
                     HR values of the training split only
    climatology      {"<level>": [T][H][W]}: per grid point and step-of-day mean of the
                     training split. With several patches it is {"<level>": float32 array
                     [patch, T, H, W]}, which `write_manifest` keeps in climatology.npy
                     (float32 [level, patch, T, H, W]; the JSON holds {"file", "levels"})
                     and `read_manifest` maps back: a global build's climatology has
                     millions of values
    sources          [{"path", "bytes", "sha256"}] per file, [{"path", "format": "zarr"}] per store
"""

import contextlib
import json
from pathlib import Path

import numpy as np

from tfrecords_builder.contract import files
from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.patches import one_patch
from tfrecords_builder.contract.schema import MANIFEST_NAME, READABLE_SCHEMA_VERSIONS

CLIMATOLOGY_NAME = "climatology.npy"
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
    version = manifest["schema_version"]
    if version not in READABLE_SCHEMA_VERSIONS:
        newer = isinstance(version, int) and version > max(READABLE_SCHEMA_VERSIONS)
        why = "a newer hsr-keras made it: upgrade hsr-keras, or rebuild" if newer else "rebuild"
        raise ManifestError(
            f"{file} has schema version {version!r}, this code reads "
            f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}: {why} the data with this version of tfrecords_builder"
        )
    clim = manifest.get("climatology")
    if isinstance(clim, dict) and "file" in clim:
        if not is_plain_name(clim["file"]):
            raise ManifestError(
                f"{file} names its climatology {clim['file']!r}: a build's files lie in its folder; rebuild the data"
            )
        try:
            values = np.load(file.parent / clim["file"], mmap_mode="r")
        except (OSError, ValueError) as err:
            raise ManifestError(f"cannot read the climatology of {file}: {err}") from err
        manifest["climatology"] = {level: values[i] for i, level in enumerate(clim["levels"])}
    if "patches" not in manifest:  # schema 1: the whole region is the one patch
        _, height, width = manifest["hr_shape"]
        manifest["patches"] = one_patch(height, width).describe(manifest["grid"]["lat"], manifest["grid"]["lon"])
    for name, split in manifest["splits"].items():
        problem = split_problem(split, manifest)
        if problem:
            raise ManifestError(
                f"{file}: split {name!r} {problem}: the manifest was edited or damaged; rebuild the data"
            )
    manifest["_dir"] = str(file.parent)
    return manifest


def is_plain_name(name):
    """Whether `name` is a file name of the build's own folder: no folder in it, no '..', not absolute."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def split_problem(split, manifest):
    """What makes a split's record impossible (a file outside the build, counts that contradict each other), or None.

    Counts: every kept day gives at least one record and at most one per level and patch; a
    split holds no more days than its dates.
    """
    names = list(split.get("shards") or []) + [entry.get("name") for entry in split.get("shard_files") or []]
    outside = next((name for name in names if not is_plain_name(name)), None)
    if outside is not None:
        return f"names the shard {outside!r}, which is not a file of the build's folder"
    examples, days = split.get("examples"), split.get("days")
    if examples is None or days is None:
        return None
    if not all(isinstance(n, int) and n >= 0 for n in (examples, days)):
        return f"records {examples!r} examples and {days!r} days: counts must be whole numbers"
    if split.get("start") and split.get("end"):
        try:
            span = int((np.datetime64(split["end"], "D") - np.datetime64(split["start"], "D")).astype(int)) + 1
        except (TypeError, ValueError):
            return f"runs from {split['start']!r} to {split['end']!r}, which are not dates"
        if days > span:
            return f"records {days} days between {split['start']} and {split['end']}, which hold {span}"
    per_day = len(manifest.get("levels") or [1]) * int(manifest["patches"].get("count", 1))
    if not days <= examples <= days * per_day:
        return f"records {examples} examples of {days} days, where each day gives 1 to {per_day}"
    return None


def readable_json(obj, indent=""):
    """JSON with one key per line and each list of numbers on one line.

    As readable as `json.dump(indent=1)` where it matters, and far faster: the numbers (a
    climatology of a global build holds millions) go through json's C encoder, which an
    indented dump never uses.
    """
    inner = indent + " "
    if isinstance(obj, dict) and obj:
        items = (f"{inner}{json.dumps(str(k))}: {readable_json(obj[k], inner)}" for k in sorted(obj))
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(obj, list) and any(isinstance(item, dict) for item in obj):
        return "[\n" + ",\n".join(inner + readable_json(item, inner) for item in obj) + f"\n{indent}]"
    return json.dumps(obj, sort_keys=True)


def write_readable_json(obj, path):
    """Publish `obj` as `readable_json` (whole or not at all, `files.publishing`)."""
    files.write_text(path, readable_json(obj) + "\n")


def write_manifest(manifest, out_dir):
    """`manifest.json` in `out_dir`, with a climatology of arrays (several patches) in climatology.npy beside it."""
    with publishing_manifest(manifest, out_dir):
        pass


@contextlib.contextmanager
def publishing_manifest(manifest, out_dir):
    """Write the manifest (and climatology.npy) to temporaries, run the block, then publish them, the manifest last.

    The block (a build swapping its shards in) runs only once the manifest is written whole:
    a full disk stops a build before it touches the earlier one.
    """
    out_dir = Path(out_dir)
    clim = manifest.get("climatology") or {}
    arrays = any(isinstance(value, np.ndarray) for value in clim.values())
    values = None
    if arrays:
        values = np.stack([np.asarray(value, dtype=np.float32) for value in clim.values()])
        manifest = {**manifest, "climatology": {"file": CLIMATOLOGY_NAME, "levels": list(clim)}}
    with contextlib.ExitStack() as stack:  # published in the reverse order: climatology.npy, then the manifest
        temporary = stack.enter_context(files.publishing(out_dir / MANIFEST_NAME))
        Path(temporary).write_text(readable_json(manifest) + "\n", encoding="utf-8")
        if arrays:
            temporary = stack.enter_context(files.publishing(out_dir / CLIMATOLOGY_NAME))
            with open(temporary, "wb") as f:
                np.save(f, values)
        yield
        if not arrays:
            (out_dir / CLIMATOLOGY_NAME).unlink(missing_ok=True)


def shard_record(path, name=None):
    """{"name", "bytes", "sha256"} of a shard file, for a split's "shard_files" (`name`: its published name)."""
    path = Path(path)
    return {"name": name or path.name, "bytes": path.stat().st_size, "sha256": files.sha256_of(path)}
