"""ERA5 inputs of every kind, opened lazily and read as one variable at some levels over one region.

Kinds: netCDF in the classic or the 2024+ CDS layout; GRIB as the CDS delivers it (read by
cfgrib, `pip install hsr-keras[grib]`); Zarr stores such as Google's analysis-ready ARCO-ERA5
(`gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3`, `pip install
hsr-keras[zarr]`, and `[gcs]` for gs:// URLs), or a local copy in its layout; and
`xarray.Dataset`s in memory (e.g. `synthetic.synthetic_dataset`). Whatever the kind,
`normalise` gives the classic CDS names (r, t, q; time, level, latitude, longitude), takes
GRIB's valid time as the time, and makes a single time or level a dimension of one.

Relative humidity that an input lacks is derived from its temperature and specific humidity
(`humidity.relative_humidity`, ERA5's own formula), so `t`/`q` downloads serve as well as `r`.
The 2 m relative humidity `r2m` is derived from 2 m temperature `2t` and dewpoint `2d`
(`humidity.relative_humidity_2m`), single-level fields under any of their names (CDS netCDF
t2m/d2m, GRIB 2t/2d, VAR_2T/VAR_2D, ARCO 2m_temperature/2m_dewpoint_temperature). They have no
level dimension: they are given one pseudo-level, `SURFACE_LEVEL` (0, which no pressure level
can be), so every array keeps the shape [time, level, latitude, longitude].
Levels and variables are read in the units their `units` attributes give and converted to hPa,
%, K and kg/kg (`units`); units that cannot be known are refused.

`Era5Source` reads many inputs as one, over the region `grid` finds in them. Arrays stay on
disk (or in the cloud) until read, and only the selected region, levels and times are ever
read, so a year of hourly global data never has to fit in memory. Every problem with an
input is a `BuildError` that names it, never a traceback or a silently wrong field.
"""

import glob
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import xarray as xr

from tfrecords_builder.contract.era5.grid import GRID_TOLERANCE, grid_spacing, longitude_selection, region_slice
from tfrecords_builder.contract.era5.netcdf_files import open_netcdf
from tfrecords_builder.contract.era5.units import level_factor, variable_conversion
from tfrecords_builder.contract.errors import BuildError

NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf")
GRIB_SUFFIXES = (".grib", ".grb", ".grib2", ".grb2")
ZARR_SUFFIX = ".zarr"
ZARR_METADATA = (".zgroup", ".zmetadata", "zarr.json")
URL_SCHEMES = ("gs://", "gcs://", "s3://", "http://", "https://")
DIMS = ("time", "level", "latitude", "longitude")
# 2024+ CDS netCDF, cfgrib and CF coordinate names -> the classic CDS names. GRIB's valid_time
# becomes the time once `use_valid_time` has dropped cfgrib's analysis time.
RENAMES = {
    "valid_time": "time",
    "pressure_level": "level",
    "isobaricInhPa": "level",
    "lat": "latitude",
    "lon": "longitude",
}
# ARCO-ERA5's long variable names (and the other names of the 2 m fields: CDS netCDF, old netCDF) -> the CDS short names.
SHORT_NAMES = {
    "relative_humidity": "r",
    "temperature": "t",
    "specific_humidity": "q",
    "2m_temperature": "2t",
    "t2m": "2t",
    "VAR_2T": "2t",
    "2m_dewpoint_temperature": "2d",
    "d2m": "2d",
    "VAR_2D": "2d",
}
# Targets derived where an input lacks them -> the variables they are derived from.
DERIVED = {"r": ("t", "q"), "r2m": ("2t", "2d")}
# What the inputs of a derivation are, for messages.
DESCRIPTIONS = {
    "t": "temperature",
    "q": "specific_humidity",
    "2t": "2 metre temperature: t2m, VAR_2T or 2m_temperature",
    "2d": "2 metre dewpoint temperature: d2m, VAR_2D or 2m_dewpoint_temperature",
}
SURFACE_VARIABLES = ("r2m",)
"""Targets on a single level (2 m above the surface), read without a level dimension."""
SURFACE_LEVEL = 0.0
"""The pseudo-level of a single-level field: 0 "hPa", the top of the atmosphere, which no pressure level can be."""
SURFACE_DIMS = ("time", "latitude", "longitude")


def is_surface(variable):
    """Whether `variable` is a single-level target (r2m), read with the one pseudo-level `SURFACE_LEVEL`."""
    return SHORT_NAMES.get(variable, variable) in SURFACE_VARIABLES


def level_words(level):
    """How messages name a level: "at 300 hPa", or "at 2 m" for `SURFACE_LEVEL`."""
    return "at 2 m" if float(level) == SURFACE_LEVEL else f"at {float(level):g} hPa"


# How messages name an in-memory dataset, where a file would be named by its path.
IN_MEMORY = "the in-memory dataset"


def is_url(spec):
    return isinstance(spec, str) and spec.startswith(URL_SCHEMES)


def is_store(spec):
    """A Zarr store: a URL, a folder named *.zarr, or a folder with Zarr metadata."""
    if is_url(spec):
        return True
    path = Path(spec)
    return path.is_dir() and (path.suffix.lower() == ZARR_SUFFIX or any((path / m).exists() for m in ZARR_METADATA))


def expand_inputs(specs):
    """Files, Zarr stores, glob patterns and folders (their .nc/.grib files and .zarr stores) -> sorted unique inputs.

    Local inputs come back as resolved `Path`s, URLs as strings.
    """
    found_all = set()
    for spec in specs:
        if is_url(str(spec)):
            found_all.add(str(spec))
            continue
        path = Path(spec).expanduser()
        if is_store(path):
            found = [path]
        elif path.is_dir():
            found = [p for p in path.iterdir() if _is_input(p)]
            if not found:
                raise BuildError(f"folder {spec} holds no netCDF (.nc), GRIB (.grib) or Zarr (.zarr) inputs")
        elif glob.has_magic(str(spec)):
            found = [Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file() or is_store(p)]
            if not found:
                raise BuildError(f"no file matches {spec}")
        elif path.is_file():
            found = [path]
        else:
            raise BuildError(f"no such file: {spec}")
        found_all.update(p.resolve() for p in found)
    if not found_all:
        raise BuildError("no input files given")
    return sorted(found_all, key=str)


def _is_input(path):
    if path.is_file():
        return path.suffix.lower() in NETCDF_SUFFIXES + GRIB_SUFFIXES
    return is_store(path)


def input_kind(spec):
    """'zarr', 'netcdf3', 'netcdf4' or 'grib'; a file's kind from its first bytes (a suffix can lie)."""
    if is_store(spec):
        return "zarr"
    try:
        with open(spec, "rb") as f:
            magic = f.read(8)
    except OSError as err:
        raise BuildError(f"cannot read {spec}: {err.strerror}") from err
    if magic[:3] == b"CDF" and magic[3:4] in (b"\x01", b"\x02", b"\x05"):
        return "netcdf3"
    if magic == b"\x89HDF\r\n\x1a\n":
        return "netcdf4"
    if magic[:4] == b"GRIB" or Path(spec).suffix.lower() in GRIB_SUFFIXES:
        return "grib"
    raise BuildError(f"{spec} is not a netCDF or GRIB file")


def _check_classic_size(ds, path):
    """A truncated netCDF3 file opens and reads zeros past its end: compare its size with its header.

    Counted from the opened dataset (each variable's on-disk dtype is in its encoding): opening
    the file again, outside `netcdf_files`, would not be thread-safe.
    """
    data_bytes = sum(v.size * np.dtype(v.encoding.get("dtype", v.dtype)).itemsize for v in ds.variables.values())
    size = Path(path).stat().st_size
    if size < data_bytes:
        ds.close()
        raise BuildError(f"{path} is truncated: {size} bytes, its header describes {data_bytes} bytes of data")


def _require(module, spec, what, extra):
    try:
        __import__(module)
    except ImportError:
        raise BuildError(f"{spec} is {what}, which needs {module}: pip install hsr-keras[{extra}]") from None


def open_dataset(spec):
    """(the input opened lazily, its kind); a `BuildError` for a damaged input or a missing reader."""
    kind = input_kind(spec)
    if kind == "zarr":
        _require("zarr", spec, "a Zarr store", "zarr")
        options = {}
        if str(spec).startswith(("gs://", "gcs://")):
            _require("gcsfs", spec, "in Google Cloud Storage", "gcs")
            options["storage_options"] = {"token": "anon"}  # ARCO-ERA5 is public
        opener = lambda: xr.open_zarr(str(spec), chunks=None, **options)  # noqa: E731  (no dask: lazy arrays)
    elif kind == "grib":
        _require("cfgrib", spec, "GRIB", "grib")
        opener = lambda: xr.open_dataset(spec, engine="cfgrib", cache=False, backend_kwargs={"indexpath": ""})  # noqa: E731
    else:
        opener = lambda: open_netcdf(spec)  # noqa: E731  (thread-safe: see netcdf_files)
    try:
        with warnings.catch_warnings():  # a store without consolidated metadata is slower to open, not wrong
            warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated metadata")
            ds = opener()
    except Exception as err:  # netCDF4/HDF5/cfgrib/zarr raise many types for a damaged input
        raise BuildError(f"cannot read {spec}: corrupt {kind} {'store' if kind == 'zarr' else 'file'} ({err})") from err
    if kind == "netcdf3":
        _check_classic_size(ds, spec)
    return ds, kind


def use_valid_time(ds):
    """The time a field is valid for as `valid_time`, without cfgrib's analysis `time` and `step`.

    cfgrib (and the 2024+ CDS GRIB) give `time` (analysis), `step` and `valid_time`; each
    of `time` and `step` is a dimension or a scalar. The 2024+ CDS netCDF has `valid_time` alone.
    """
    if "valid_time" not in ds.variables:
        return ds
    dims = ds["valid_time"].dims
    if len(dims) > 1:  # analysis times x steps: one axis of valid times
        ds = ds.stack(_valid=dims)
        ds = ds.drop_vars(["_valid", *dims]).swap_dims({"_valid": "valid_time"})
    elif dims and dims[0] != "valid_time":
        ds = ds.swap_dims({dims[0]: "valid_time"})
    return ds.drop_vars([name for name in ("time", "step") if name in ds.variables])


def normalise(ds):
    """Classic CDS names, valid time as `time`, a single time or level as a dimension, no auxiliary coordinates."""
    renames = {}
    for long, short in SHORT_NAMES.items():  # the first of several names of one variable wins
        if long in ds.variables and short not in ds and short not in renames.values():
            renames[long] = short
    ds = ds.rename(renames)
    ds = use_valid_time(ds)
    ds = ds.rename({old: new for old, new in RENAMES.items() if old in ds.variables and new not in ds.variables})
    for dim in ("time", "level"):  # a single time or level may be a scalar coordinate
        if dim in ds.coords and dim not in ds.dims:
            ds = ds.expand_dims(dim)
    return ds.reset_coords(drop=True)


def _names(ds, limit=12):
    names = list(map(str, ds.data_vars))
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "") or "none"


def field_arrays(ds, variable, name):
    """{name: DataArray} of `variable`, or of what it is derived from (`DERIVED`) when the input lacks it:
    `t` and `q` for r, `2t` and `2d` for r2m."""
    if variable in ds.data_vars:
        return {variable: ds[variable]}
    sources = DERIVED.get(variable, ())
    if sources and all(source in ds.data_vars for source in sources):
        return {source: ds[source] for source in sources}
    if variable == "r":
        raise BuildError(
            f"{name} has no relative humidity: neither 'r' (relative_humidity) nor 't' and 'q' (temperature, "
            f"specific_humidity) to derive it from (it has {_names(ds)})"
        )
    if sources:
        missing = " or ".join(
            f"{source!r} ({DESCRIPTIONS[source]})" for source in sources if source not in ds.data_vars
        )
        raise BuildError(f"{name} has no {missing} to derive {variable} from (it has {_names(ds)})")
    raise BuildError(f"{name} has no variable {variable!r} (it has {_names(ds)})")


class Field:
    """One input's variable as lazy arrays [time, level, latitude, longitude], latitude and longitude ascending.

    `arrays` is {"r": [DataArray]}, or {"t": [...], "q": [...]} from which r is derived on
    reading (or {"2t": [...], "2d": [...]} for r2m, with the level `SURFACE_LEVEL`); each list holds one array per longitude piece (two when a region runs across the
    grid's seam), read one after the other. `conversions` {name: (scale, offset)} take the
    values read to %, K and kg/kg (`units`); the level coordinate is in hPa already.
    `contiguous`: read a day as one block of consecutive times and pick the steps (far faster
    than a strided read of a netCDF file); a Zarr store, chunked by time, reads only the steps.
    """

    def __init__(self, arrays, conversions, contiguous):
        self.arrays, self.conversions, self.contiguous = arrays, conversions, contiguous
        pieces = next(iter(arrays.values()))
        self.lat = pieces[0]["latitude"].values.astype(np.float64)
        self.lon = np.concatenate([piece["longitude"].values for piece in pieces]).astype(np.float64)
        self.levels = pieces[0]["level"].values.astype(np.float64)
        self.seconds = pieces[0]["time"].values.astype("datetime64[s]").astype(np.int64)

    def select(self, lat, lon_pieces, levels):
        """The field at latitude slice `lat`, longitude slices `lon_pieces` (in order) and level indices `levels`.

        Only a field not yet selected (one piece per array) can be.
        """
        if len(lon_pieces) > 1 and not self.contiguous:  # a Zarr chunk holds every longitude: decode it once
            lon_pieces = [np.concatenate([np.arange(len(self.lon))[piece] for piece in lon_pieces])]
        arrays = {
            key: [da.isel(latitude=lat, longitude=piece, level=levels) for piece in lon_pieces]
            for key, (da,) in self.arrays.items()
        }
        return Field(arrays, self.conversions, self.contiguous)

    def read(self, rows):
        """float32 [len(rows), levels, lat, lon] at time indices `rows` (ascending)."""
        rows = np.asarray(rows)
        first, last = int(rows[0]), int(rows[-1])
        steps = np.diff(rows)
        if self.contiguous:
            times, pick = slice(first, last + 1), rows - first
        elif rows.size > 1 and np.all(steps == steps[0]):
            times, pick = slice(first, last + 1, int(steps[0])), slice(None)
        else:
            times, pick = rows, slice(None)
        blocks = {}
        for key, pieces in self.arrays.items():
            parts = [piece.isel(time=times).values for piece in pieces]
            blocks[key] = (parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1))[pick]
            scale, offset = self.conversions[key]
            if (scale, offset) != (1.0, 0.0):
                blocks[key] = blocks[key] * scale + offset
        if "t" in blocks and "q" in blocks:  # r derived; `t` alone is a predictor read as it is
            from tfrecords_builder.contract.era5.humidity import relative_humidity

            pressure = self.levels[None, :, None, None] * 100.0  # hPa -> Pa
            return relative_humidity(blocks["t"], blocks["q"], pressure).astype(np.float32)
        if "2t" in blocks:
            from tfrecords_builder.contract.era5.humidity import relative_humidity_2m

            return relative_humidity_2m(blocks["2t"], blocks["2d"]).astype(np.float32)
        return blocks[next(iter(blocks))].astype(np.float32, copy=False)


def open_variable(path, variable):
    """(the input as opened, with its own names; its `variable` as a lazy DataArray [time, level, latitude,
    longitude], axes ascending). For code that must know how an input names things, e.g. to write alike."""
    ds, field = open_field(path, variable, path)
    if variable not in field.arrays:
        message = f"{path} has no variable {variable!r} (it has {_names(ds)})"
        ds.close()
        raise BuildError(message)
    return ds, field.arrays[variable][0]


def open_field(item, variable, name):
    """(dataset to close or None, `Field` of `variable`) of a path, URL or `xarray.Dataset`, checked."""
    if isinstance(item, xr.Dataset):
        return None, make_field(item, variable, name, contiguous=True)
    ds, kind = open_dataset(item)
    try:
        return ds, make_field(ds, variable, name, contiguous=kind != "zarr")
    except BaseException:
        ds.close()
        raise


def make_field(ds, variable, name, contiguous):
    """The `Field` of `variable` in a dataset: names normalised, dimensions, units and time checked, axes ascending.

    Levels come in hPa whatever the input's units (`units.level_factor`); a single-level
    target's fields (time, latitude, longitude) get the one level `SURFACE_LEVEL`.
    """
    surface = is_surface(variable)
    wanted = {variable, *DERIVED.get(variable, ())} if surface else {variable, "t", "q"}
    wanted |= {long for long, short in SHORT_NAMES.items() if short in wanted}
    ds = ds[[v for v in ds.data_vars if v in wanted]] if wanted & set(ds.data_vars) else ds
    arrays = field_arrays(normalise(ds), variable, name)
    conversions = {key: variable_conversion(da, key, name) for key, da in arrays.items()}
    for key, da in arrays.items():
        dims = SURFACE_DIMS if surface else DIMS
        if set(da.dims) != set(dims) or not all(d in da.coords for d in dims):
            kind = " (a single-level field)" if surface else ""
            raise BuildError(
                f"{key!r} in {name} has dimensions {da.dims}; expected {', '.join(dims)}{kind} with coordinates"
            )
        if not np.issubdtype(da["time"].dtype, np.datetime64):
            raise BuildError(f"time of {name} does not decode to dates (units {da['time'].attrs.get('units')!r})")
        if surface:
            da = da.expand_dims(level=[SURFACE_LEVEL])
        else:
            factor = level_factor(da["level"], name)
            if factor != 1.0:
                da = da.assign_coords(level=da["level"] * factor)
        da = da.transpose(*DIMS)
        for axis in ("latitude", "longitude"):
            coords = da[axis].values
            if coords.size > 1 and coords[0] > coords[-1]:
                da = da.isel({axis: slice(None, None, -1)})
        arrays[key] = da
    return Field({key: [da] for key, da in arrays.items()}, conversions, contiguous)


def level_indices(input_levels, levels, name):
    """Index in `input_levels` of each requested level (hPa); a `BuildError` for one the data lack."""
    indices = []
    for level in levels:
        hits = np.flatnonzero(np.isclose(input_levels, level, rtol=0, atol=1e-6))
        if hits.size == 0:
            have = ", ".join(f"{x:g}" for x in input_levels)
            raise BuildError(f"level {level:g} hPa is not in {name} (it has {have})")
        indices.append(int(hits[0]))
    return indices


def input_name(item):
    """How messages and the manifest name an input: its `Path`, its URL, or `IN_MEMORY`."""
    if isinstance(item, xr.Dataset):
        return IN_MEMORY
    return item if is_url(item) else Path(item)


class Era5Source:
    """One variable at some levels over one region of ERA5 inputs, read on demand.

    `inputs` holds file paths, Zarr store paths or URLs (opened lazily) or `xarray.Dataset`s;
    all pass the same checks, region snapping and level selection. `variable` may be a CDS
    short name (r) or an ARCO-ERA5 long one (relative_humidity). Attributes after opening:
    `lat`, `lon` (ascending, float64; longitudes continue past 360 across the 0/360 meridian),
    `resolution` (degrees), `levels` (hPa, as requested), `paths` (the inputs' names) and
    `times` (sorted int64 seconds since 1970, all inputs). `read(times)` returns float32
    [levels, T, H, W] with NaN where the data have no value.
    """

    def __init__(self, inputs, variable, levels, lat_bounds, lon_bounds):
        inputs = list(inputs)
        self.paths = [input_name(item) for item in inputs]
        self.variable = SHORT_NAMES.get(variable, variable)
        self.levels = [float(x) for x in levels]
        self._datasets, self._fields = [], []
        self.lat = self.lon = self.resolution = None
        try:
            for item, name in zip(inputs, self.paths):
                self._add(item, name, lat_bounds, lon_bounds)
            self._index_times()
        except BaseException:
            self.close()
            raise

    def _add(self, item, name, lat_bounds, lon_bounds):
        dataset, field = open_field(item, self.variable, name)
        if dataset is not None:
            self._datasets.append(dataset)
        lat, lon = field.lat, field.lon
        dlat, dlon = grid_spacing(lat, "latitude", name), grid_spacing(lon, "longitude", name)
        if abs(dlat - dlon) > GRID_TOLERANCE * dlat:
            raise BuildError(
                f"{name} has latitude spacing {dlat:g} but longitude spacing {dlon:g}; cells must be square"
            )
        lat_sel = region_slice(lat, lat_bounds, dlat, "latitude", name)
        lon_pieces, lon = longitude_selection(lon, lon_bounds, dlon, name)
        self._fields.append(field.select(lat_sel, lon_pieces, level_indices(field.levels, self.levels, name)))
        lat, lon = np.round(lat[lat_sel], 6), np.round(lon, 6)
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
            raise BuildError(f"the region's grid in {name} differs from that in {self.paths[0]}")

    def _index_times(self):
        """`times` of all inputs, sorted, and where each one is; a `BuildError` for a time in two inputs."""
        seconds = [field.seconds for field in self._fields]
        owner = np.concatenate([np.full(len(s), i) for i, s in enumerate(seconds)])
        row = np.concatenate([np.arange(len(s)) for s in seconds])
        seconds = np.concatenate(seconds)
        order = np.argsort(seconds, kind="stable")
        self.times, self._owner, self._row = seconds[order], owner[order], row[order]
        twice = np.flatnonzero(np.diff(self.times) == 0)
        if twice.size:
            first, second = (self.paths[self._owner[i]] for i in (twice[0], twice[0] + 1))
            if first == second:
                raise BuildError(f"time {np.datetime64(int(self.times[twice[0]]), 's')} appears twice in {first}")
            raise BuildError(
                f"time {np.datetime64(int(self.times[twice[0]]), 's')} appears twice: in {first} and in {second}"
            )

    def read(self, times):
        """Values at `times` (seconds since 1970, each one in `self.times`): float32 [levels, T, H, W]."""
        out = np.empty((len(self.levels), len(times), len(self.lat), len(self.lon)), np.float32)
        at = np.searchsorted(self.times, np.asarray(times, dtype=np.int64))
        by_input = defaultdict(list)
        for slot, k in enumerate(at.tolist()):
            by_input[int(self._owner[k])].append((int(self._row[k]), slot))
        for f, pairs in by_input.items():
            pairs.sort()
            rows, slots = zip(*pairs)
            try:
                block = self._fields[f].read(rows)
            except BuildError:
                raise
            except Exception as err:  # a damaged chunk surfaces only when it is read
                raise BuildError(f"cannot read {self.paths[f]}: {err}") from err
            out[:, list(slots)] = block.transpose(1, 0, 2, 3)
        return out

    def close(self):
        for ds in self._datasets:
            ds.close()
        self._datasets, self._fields = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
