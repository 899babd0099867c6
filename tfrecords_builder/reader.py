"""Open ERA5 files lazily, bring both CDS layouts to one shape, check them, read one region.

Each file is opened with `xarray.open_dataset` (no dask): its arrays stay on disk and are
indexed lazily, so a build reads only the selected region, levels and times, a day at a
time, and a year of hourly data never has to fit in memory. Every problem with a file is a
`BuildError` that names the file, never a traceback or a silently wrong field.

An `xarray.Dataset` already in memory (e.g. `synthetic.synthetic_dataset`) goes through the
same `Era5Source`, so its checks, region and levels are those of a file.
"""

import glob
from collections import defaultdict
from pathlib import Path

import numpy as np
import xarray as xr

from tfrecords_builder.errors import BuildError

NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf")
GRIB_SUFFIXES = (".grib", ".grb", ".grib2", ".grb2")
DIMS = ("time", "level", "latitude", "longitude")
# 2024+ CDS netCDF, cfgrib and CF short names -> the classic CDS names.
RENAMES = {
    "valid_time": "time",
    "pressure_level": "level",
    "isobaricInhPa": "level",
    "lat": "latitude",
    "lon": "longitude",
}
PERCENT_UNITS = ("%", "percent")
# A grid is regular when every step is within this fraction of the median step.
GRID_TOLERANCE = 1e-3
# Region bounds snap to grid points that lie within this fraction of a grid step outside them.
SNAP_TOLERANCE = 0.1
# How messages name an in-memory dataset, where a file would be named by its path.
IN_MEMORY = "the in-memory dataset"


def expand_inputs(specs):
    """Files, glob patterns and folders (their .nc/.grib files) -> sorted list of unique files."""
    files = set()
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            found = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in NETCDF_SUFFIXES + GRIB_SUFFIXES]
            if not found:
                raise BuildError(f"folder {spec} holds no netCDF (.nc) or GRIB (.grib) files")
        elif glob.has_magic(str(spec)):
            found = [Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file()]
            if not found:
                raise BuildError(f"no file matches {spec}")
        elif path.is_file():
            found = [path]
        else:
            raise BuildError(f"no such file: {spec}")
        files.update(p.resolve() for p in found)
    if not files:
        raise BuildError("no input files given")
    return sorted(files)


def file_kind(path):
    """'netcdf3', 'netcdf4' or 'grib' from the file's first bytes (a suffix can lie)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except OSError as err:
        raise BuildError(f"cannot read {path}: {err.strerror}") from err
    if magic[:3] == b"CDF" and magic[3:4] in (b"\x01", b"\x02", b"\x05"):
        return "netcdf3"
    if magic == b"\x89HDF\r\n\x1a\n":
        return "netcdf4"
    if magic[:4] == b"GRIB" or Path(path).suffix.lower() in GRIB_SUFFIXES:
        return "grib"
    raise BuildError(f"{path} is not a netCDF or GRIB file")


def _check_classic_size(path):
    """A truncated netCDF3 file opens and reads zeros past its end: compare its size with its header."""
    import netCDF4

    try:
        with netCDF4.Dataset(path) as nc:
            data_bytes = sum(v.size * v.dtype.itemsize for v in nc.variables.values())
    except OSError as err:
        raise BuildError(f"cannot read {path}: corrupt netCDF ({err})") from err
    size = Path(path).stat().st_size
    if size < data_bytes:
        raise BuildError(f"{path} is truncated: {size} bytes, its header describes {data_bytes} bytes of data")


def open_variable(path, variable):
    """(open dataset, its `variable` as a lazy DataArray [time, level, latitude, longitude], axes ascending)."""
    kind = file_kind(path)
    if kind == "grib":
        try:
            import cfgrib  # noqa: F401
        except ImportError:
            raise BuildError(f"{path} is GRIB, which needs cfgrib: pip install hsr-keras[grib]") from None
        engine, options = "cfgrib", {"backend_kwargs": {"indexpath": ""}}  # no .idx files beside the data
    else:
        engine, options = "netcdf4", {}
        if kind == "netcdf3":
            _check_classic_size(path)
    try:
        ds = xr.open_dataset(path, engine=engine, cache=False, **options)
    except Exception as err:  # netCDF4/HDF5/cfgrib raise many types for a damaged file
        raise BuildError(f"cannot read {path}: corrupt {kind} file ({err})") from err
    try:
        return ds, _normalise(ds, variable, path)
    except BaseException:
        ds.close()
        raise


def _normalise(ds, variable, path):
    """Rename to the classic names, drop auxiliary coordinates, check units and time, sort the axes.

    `path` names the data in messages: a file's path, or `IN_MEMORY`.
    """
    renames = {}
    for old, new in RENAMES.items():
        if old in ds.variables and new not in ds.dims and new not in renames.values():
            renames[old] = new
    ds = ds.rename(renames)
    for dim in ("time", "level"):  # a single time or level may be a scalar coordinate
        if dim in ds.coords and dim not in ds.dims:
            ds = ds.expand_dims(dim)
    ds = ds.reset_coords(drop=True)
    if variable not in ds.data_vars:
        raise BuildError(f"{path} has no variable {variable!r} (it has {', '.join(map(str, ds.data_vars)) or 'none'})")
    da = ds[variable]
    if set(da.dims) != set(DIMS) or not all(d in da.coords for d in DIMS):
        raise BuildError(
            f"{variable!r} in {path} has dimensions {da.dims}; expected {', '.join(DIMS)} with coordinates"
        )
    units = str(da.attrs.get("units", "")).strip()
    if units.lower() not in PERCENT_UNITS:
        raise BuildError(f"{variable!r} in {path} has units {units!r}; expected relative humidity in %")
    if not np.issubdtype(da["time"].dtype, np.datetime64):
        raise BuildError(f"time of {path} does not decode to dates (units {da['time'].attrs.get('units')!r})")
    da = da.transpose(*DIMS)
    for axis in ("latitude", "longitude"):
        coords = da[axis].values
        if coords.size > 1 and coords[0] > coords[-1]:
            da = da.isel({axis: slice(None, None, -1)})
    return da


def grid_spacing(coords, axis, path):
    """The constant step of an ascending axis; a `BuildError` when the axis is not a regular grid."""
    if coords.size < 2:
        raise BuildError(f"{path} has a single {axis} point; a grid needs at least two")
    steps = np.diff(coords)
    spacing = float(np.median(steps))
    if spacing <= 0 or np.max(np.abs(steps - spacing)) > GRID_TOLERANCE * spacing:
        raise BuildError(
            f"{axis} of {path} is not a regular grid (steps from {steps.min():g} to {steps.max():g} degrees)"
        )
    return spacing


def region_slice(coords, bounds, spacing, axis, path):
    """Index slice of the grid points inside inclusive `bounds`, snapping bounds to nearby points."""
    lo, hi = bounds
    tol = SNAP_TOLERANCE * spacing
    if lo < coords[0] - tol or hi > coords[-1] + tol:
        raise BuildError(
            f"region {axis} {lo:g} to {hi:g} lies outside the grid of {path} ({coords[0]:g} to {coords[-1]:g})"
        )
    inside = np.flatnonzero((coords >= lo - tol) & (coords <= hi + tol))
    if inside.size == 0:
        raise BuildError(f"region {axis} {lo:g} to {hi:g} holds no grid point of {path}")
    return slice(int(inside[0]), int(inside[-1]) + 1)


def _level_indices(file_levels, levels, path):
    """Index in `file_levels` of each requested level (hPa); a `BuildError` for one the data lack."""
    indices = []
    for level in levels:
        hits = np.flatnonzero(np.isclose(file_levels, level, rtol=0, atol=1e-6))
        if hits.size == 0:
            have = ", ".join(f"{x:g}" for x in file_levels)
            raise BuildError(f"level {level:g} hPa is not in {path} (it has {have})")
        indices.append(int(hits[0]))
    return indices


class Era5Source:
    """One variable at some levels over one region of ERA5 files, or of datasets in memory, read on demand.

    `inputs` holds file paths (opened lazily) or `xarray.Dataset`s; both pass the same checks,
    region snapping and level selection. Attributes after opening: `lat`, `lon` (ascending,
    float64), `resolution` (degrees), `levels` (hPa, as requested), `paths` (the inputs'
    names: a `Path`, or `IN_MEMORY`) and `times` (sorted int64 seconds since 1970, all inputs).
    `read(times)` returns float32 [levels, T, H, W] with NaN where the data have no value.
    """

    def __init__(self, inputs, variable, levels, lat_bounds, lon_bounds):
        inputs = list(inputs)
        self.paths = [IN_MEMORY if isinstance(item, xr.Dataset) else Path(item) for item in inputs]
        self.variable = variable
        self.levels = [float(x) for x in levels]
        self._datasets, self._arrays = [], []
        self._where = {}  # time in seconds -> (input index, time index in that input)
        self.lat = self.lon = self.resolution = None
        try:
            for item, path in zip(inputs, self.paths):
                self._add(item, path, lat_bounds, lon_bounds)
        except BaseException:
            self.close()
            raise
        self.times = np.array(sorted(self._where), dtype=np.int64)

    def _add(self, item, path, lat_bounds, lon_bounds):
        if isinstance(item, xr.Dataset):
            da = _normalise(item, self.variable, path)
        else:
            ds, da = open_variable(path, self.variable)
            self._datasets.append(ds)
        lat, lon = da["latitude"].values.astype(np.float64), da["longitude"].values.astype(np.float64)
        dlat, dlon = grid_spacing(lat, "latitude", path), grid_spacing(lon, "longitude", path)
        if abs(dlat - dlon) > GRID_TOLERANCE * dlat:
            raise BuildError(
                f"{path} has latitude spacing {dlat:g} but longitude spacing {dlon:g}; cells must be square"
            )
        lat_sel = region_slice(lat, lat_bounds, dlat, "latitude", path)
        lon_sel = region_slice(lon, lon_bounds, dlon, "longitude", path)
        level_idx = _level_indices(da["level"].values.astype(np.float64), self.levels, path)
        self._arrays.append(da.isel(latitude=lat_sel, longitude=lon_sel, level=level_idx))
        lat, lon = np.round(lat[lat_sel], 6), np.round(lon[lon_sel], 6)
        if self.lat is None:
            self.lat, self.lon, self.resolution = lat, lon, round(dlat, 6)
        elif (
            lat.shape != self.lat.shape
            or lon.shape != self.lon.shape
            or not (
                np.allclose(lat, self.lat, rtol=0, atol=GRID_TOLERANCE * dlat)
                and np.allclose(lon, self.lon, rtol=0, atol=GRID_TOLERANCE * dlon)
            )
        ):
            raise BuildError(f"the region's grid in {path} differs from that in {self.paths[0]}")
        seconds = da["time"].values.astype("datetime64[s]").astype(np.int64)
        index = len(self._arrays) - 1
        for i, t in enumerate(seconds.tolist()):
            if t in self._where:
                other = self.paths[self._where[t][0]]
                raise BuildError(f"time {np.datetime64(t, 's')} appears twice: in {other} and in {path}")
            self._where[t] = (index, i)

    def read(self, times):
        """Values at `times` (seconds since 1970, each one in `self.times`): float32 [levels, T, H, W]."""
        out = np.empty((len(self.levels), len(times), len(self.lat), len(self.lon)), np.float32)
        by_file = defaultdict(list)
        for k, t in enumerate(times):
            f, i = self._where[int(t)]
            by_file[f].append((k, i))
        for f, pairs in by_file.items():
            slots = [k for k, _ in pairs]
            rows = np.array([i for _, i in pairs])
            first = int(rows.min())
            try:  # one contiguous read then a pick: far faster than a strided netCDF read
                block = self._arrays[f].isel(time=slice(first, int(rows.max()) + 1)).values
            except Exception as err:  # a damaged chunk surfaces only when it is read
                raise BuildError(f"cannot read {self.paths[f]}: {err}") from err
            out[:, slots] = block[rows - first].transpose(1, 0, 2, 3)
        return out

    def close(self):
        for ds in self._datasets:
            ds.close()
        self._datasets, self._arrays = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
