"""`predict` into a Zarr store, one region per predicted sequence, resumable after a kill.

The store has the variables, coordinates and attributes of the netCDF output (its header is
written by the same code into a temporary netCDF file and copied), the predicted variable
chunked as one chunk of the model's sequence length along time, one level, the whole fine grid
and (with `--members`) one realization. Each sequence is written as a region with xarray's
`to_zarr(region=...)`, then marked finished by an empty file in `.<name>.done/` beside the
store (a marker file appears whole or not at all, where rewriting the store's attributes after
each region could be cut short by a kill). A store is complete when its root attributes say
`complete: true` and its metadata are consolidated; the markers are removed then.

The store's attribute `hsr_fingerprint` (a hash of the inputs' paths, sizes and modification
times, the model's path and time, and the options) lets a second run resume only into a store
started with the same inputs, model and options.
"""

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from tfrecords_builder.contract import files
from tfrecords_builder.contract.errors import InputError

FINGERPRINT = "hsr_fingerprint"
COMPLETE = "complete"


def is_zarr(path):
    """Whether `--out` names a Zarr store (a name ending in `.zarr`)."""
    return str(path).rstrip("/").lower().endswith(".zarr")


def done_folder(store):
    store = Path(store)
    return store.parent / f".{store.name}.done"


def check_store(path, overwrite=False, option="--out"):
    """`path` can be written or resumed as a Zarr store: its folder exists and is writable."""
    path = Path(str(path).rstrip("/"))
    parent = path.parent
    if not parent.is_dir():
        raise files.OutputError(f"the folder of {option} {path} does not exist")
    if not files.writable(parent):
        raise files.OutputError(f"cannot write {path}: its folder {parent} is read-only")
    if path.exists() and not path.is_dir() and not overwrite:
        raise files.OutputError(f"{path} exists and is not a Zarr store: pass --overwrite to replace it")
    return path


def fingerprint(paths, model_path, options):
    """A hash of what decides the store's numbers: inputs (path, size, mtime), model (path, mtime), options."""

    def stamp(path):
        stat = Path(path).stat()
        return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]

    what = {
        "inputs": [stamp(p) for p in paths],
        "model": [str(Path(model_path).resolve()), Path(model_path).stat().st_mtime_ns],
        "options": options,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def resume_state(path, print_, overwrite):
    """None to start afresh, COMPLETE for a finished store, or the set of finished chunk names to resume.

    A store written by another run (its fingerprint differs, or it has none) is refused.
    """
    path = Path(path)
    if overwrite or not path.exists():
        return None
    import zarr

    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception:  # noqa: BLE001 - anything unreadable is not a store of ours
        attrs = {}
    if attrs.get(FINGERPRINT) != print_:
        what = "other inputs, model or options" if FINGERPRINT in attrs else "another program"
        raise InputError(f"{path} was written with {what}: pass --overwrite to start afresh")
    if attrs.get(COMPLETE) is True:
        return COMPLETE
    done = done_folder(path)
    return {p.name for p in done.iterdir()} if done.is_dir() else set()


def start_store(path, header_writer, variable, chunks, print_):
    """Write the store's coordinates, attributes and empty variable (`complete: false`), replacing any old one.

    `header_writer(netcdf_path)` writes the netCDF output's header (an empty variable);
    its variables, attributes and dimensions are copied.
    """
    import netCDF4
    import xarray as xr
    import zarr

    path = Path(path)
    for old in (path, done_folder(path)):
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.header.") as tmp:
        header = os.path.join(tmp, "header.nc")
        header_writer(header)
        with netCDF4.Dataset(header) as nc:
            var = nc.variables[variable]
            dims, shape = var.dimensions, var.shape
            attrs = {k: _json(var.getncattr(k)) for k in var.ncattrs()}
        with xr.open_dataset(header, decode_cf=False) as ds:
            template = ds.drop_vars(variable).load()
    for v in template.variables.values():
        v.encoding = {}
    template.attrs = {k: _json(v) for k, v in template.attrs.items()}
    template.attrs.update({FINGERPRINT: print_, COMPLETE: False})
    template.to_zarr(str(path), mode="w", consolidated=False)
    group = zarr.open_group(str(path), mode="r+")
    group.create_array(
        name=variable,
        shape=shape,
        chunks=chunks,
        dtype="float32",
        fill_value=np.nan,
        dimension_names=dims,
        attributes=attrs,
    )
    done_folder(path).mkdir()
    return dims


def finish_store(path):
    """Mark the store complete (`complete: true`), consolidate its metadata, remove the markers."""
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    group.attrs[COMPLETE] = True
    # zarr notes that consolidated metadata is not in the v3 spec (yet); xarray reads it
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
        zarr.consolidate_metadata(str(path))
    shutil.rmtree(done_folder(path), ignore_errors=True)


class SequenceWriter:
    """Stands for the output variable in `_fill`: collects a sequence's fields, writes them as one region.

    `skip(member, index)` says whether that chunk was finished by an earlier run; `finish`
    writes the collected region with `to_zarr(region=...)` and then its marker.
    """

    def __init__(self, path, variable, dims, done):
        self.path, self.variable, self.dims, self.done = Path(path), variable, dims, set(done)
        self.members = dims[0] == "realization"
        self.time = 1 if self.members else 0  # the index of the time axis in `dims`
        self.parts = []
        self.shape = None
        self.written = 0  # regions written by this run

    @staticmethod
    def name(member, index):
        return f"s{index}" if member is None else f"m{member}-s{index}"

    def skip(self, member, index):
        return self.name(member, index) in self.done

    def __setitem__(self, at, value):
        self.parts.append((at, np.asarray(value, dtype="float32")))

    def finish(self, member, index, start, length):
        import xarray as xr
        import zarr

        if self.shape is None:
            self.shape = zarr.open_array(str(self.path), path=self.variable, mode="r").shape
        shape = (length, *self.shape[self.time + 1 :])  # this sequence, without realization
        data = np.full(shape, np.nan, dtype="float32")
        for at, value in self.parts:
            at = at[1:] if self.members else at  # drop the member index
            data[(slice(0, length), *at[1:])] = value
        self.parts = []
        dims = self.dims[self.time :]
        region = {self.dims[self.time]: slice(start, start + length)}
        if self.members:
            data, dims = data[None], self.dims
            region["realization"] = slice(member, member + 1)
        # safe_chunks off: a day split at a gap can share a time chunk with its neighbour; they are written in turn
        xr.Dataset({self.variable: (dims, data)}).to_zarr(
            str(self.path), region=region, mode="r+", consolidated=False, safe_chunks=False
        )
        (done_folder(self.path) / self.name(member, index)).touch()  # after the region: a marker means written
        self.written += 1


def _json(value):
    """An attribute value JSON can hold (netCDF gives numpy scalars and arrays)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
