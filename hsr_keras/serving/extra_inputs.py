"""A model's extra inputs at prediction time: LR predictors from the input files, HR static fields from a file.

A model trained on a build with extra inputs (`tfrecords_builder.contract.inputs`) lists them
in its signature (`saved_model.model_info`): `predictors` (channels `VAR@LEVEL` or `VAR`, read
from the same files as the target with the builder's reader, `Era5Source`, in the units it
converts to), `time` (the files' times: the signature computes the time features) and `static`
(channels read from `--static-file`, an invariant netCDF on the output's fine grid: `z`, the
surface geopotential, for `orography` = z / STANDARD_GRAVITY, `lsm` for the land-sea mask;
`latitude`, `sin_longitude` and `cos_longitude` come from the grid itself). An input the model
needs and the files lack is a `PredictError` naming the variable and the file, before anything
is written.
"""

import contextlib
from pathlib import Path

import numpy as np

from tfrecords_builder.contract.era5.units import variable_conversion
from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.inputs import STANDARD_GRAVITY, STATIC_CHOICES, latlon_fields

# What --static-file must hold for each static channel: (variable, what it is).
STATIC_VARIABLES = {"orography": ("z", "surface geopotential"), "lsm": ("lsm", "land-sea mask")}
GRID_TOLERANCE = 1e-3  # of the fine spacing: how far a file's point may lie from the output's


def needed(info):
    """The extra inputs a model's signature names: {"predictors": [channel names], "time": True, "static": [names]}."""
    inputs = info["signature"]["inputs"]
    out = {}
    if "predictors" in inputs:
        out["predictors"] = [c["name"] for c in inputs["predictors"]["channels"]]
    if "time" in inputs:
        out["time"] = True
    if "static" in inputs:
        out["static"] = [c["name"] for c in inputs["static"]["channels"]]
    return out


def check_static_file(wanted, static_file, model_path, error):
    """A model with static fields needs --static-file (an existing file); one without takes none."""
    if wanted.get("static") and static_file is None:
        raise error(
            f"the model {model_path} was trained with the static fields {', '.join(wanted['static'])}: pass "
            "--static-file, an invariant netCDF (z and lsm) on the output's fine grid"
        )
    if static_file is not None and not wanted.get("static"):
        raise error(f"--static-file {static_file}: the model {model_path} takes no static fields")
    if static_file is not None and not Path(static_file).is_file():
        raise error(f"--static-file {static_file} does not exist")


def split_predictor(name):
    """("t", 300.0) of "t@300"; ("2t", None) of a single-level "2t"."""
    variable, _, level = name.partition("@")
    return variable, float(level) if level else None


@contextlib.contextmanager
def predictor_sources(names, paths, lat_bounds, lon_bounds, grid, error):
    """One `Era5Source` per predictor over the target's region; each checked to be on the target's grid."""
    from tfrecords_builder.contract.era5.reader import SURFACE_LEVEL, Era5Source

    with contextlib.ExitStack() as stack:
        sources = []
        for name in names:
            variable, level = split_predictor(name)
            try:
                source = stack.enter_context(
                    Era5Source(paths, variable, [SURFACE_LEVEL if level is None else level], lat_bounds, lon_bounds)
                )
            except InputError as err:
                raise error(f"the model was trained with the predictor {name}: {err}") from None
            if source.lat.shape != grid[0].shape or source.lon.shape != grid[1].shape:
                raise error(f"the predictor {name} in {source.paths[0]} is on another grid than the target")
            sources.append(source)
        yield sources


def read_predictors(sources, sequence):
    """float32 [T, h, w, P] of the predictors at the times of `sequence`, latitude ascending."""
    return np.stack([source.read(sequence)[0] for source in sources], axis=-1)


def read_static(path, names, lat, lon, error):
    """float32 [len(lat), len(lon), S] static channels `names` on the fine grid (`lat`, `lon` ascending).

    Points of the grid beyond the poles (which no file has) repeat the nearest row.
    """
    import xarray as xr

    try:
        ds = xr.open_dataset(path)
    except Exception as err:  # netCDF and HDF errors come in many types
        raise error(f"cannot read the static file {path}: {err}".splitlines()[0]) from None
    with ds:
        lat_name = next((n for n in ("latitude", "lat") if n in ds.coords), None)
        lon_name = next((n for n in ("longitude", "lon") if n in ds.coords), None)
        if lat_name is None or lon_name is None:
            raise error(f"the static file {path} has no latitude and longitude coordinates")
        inside = (lat >= -90.0 - 1e-6) & (lat <= 90.0 + 1e-6)
        rows = _match(ds[lat_name].values, lat[inside], lat, path, "latitude", error)
        cols = _match(ds[lon_name].values % 360.0, lon % 360.0, lat, path, "longitude", error)
        latlon = dict(zip([name for name, _ in STATIC_CHOICES["latlon"]], latlon_fields(lat[inside], lon)))
        channels = []
        for name in names:
            if name in latlon:
                field = latlon[name]
            else:
                field = _static_variable(ds, name, path, lat_name, lon_name, error)[np.ix_(rows, cols)]
            channels.append(field)
    static = np.stack(channels, axis=-1).astype(np.float32)
    first = int(np.flatnonzero(inside)[0])
    pad = (first, len(lat) - first - static.shape[0])
    return np.pad(static, (pad, (0, 0), (0, 0)), mode="edge")


def _static_variable(ds, name, path, lat_name, lon_name, error):
    """One static channel of the file as [lat, lon] in the builder's units, checked."""
    variable, what = STATIC_VARIABLES[name]
    if variable not in ds.data_vars:
        raise error(f"the static file {path} has no {variable!r} ({what}) for the model's static field {name}")
    da = ds[variable].squeeze(drop=True)
    if set(da.dims) != {lat_name, lon_name}:
        raise error(f"{variable!r} in the static file {path} has dimensions {da.dims}; expected one time at most")
    values = da.transpose(lat_name, lon_name).values.astype(np.float64)
    if name == "orography":
        try:
            scale, offset = variable_conversion(da, "z", f"the static file {path}")
        except InputError as err:
            raise error(str(err)) from None
        return (values * scale + offset) / STANDARD_GRAVITY
    if not (np.nanmin(values) >= 0.0 and np.nanmax(values) <= 1.0):
        raise error(f"'lsm' in the static file {path} is not a land fraction from 0 to 1")
    return values


def _match(coords, wanted, lat, path, axis, error):
    """Indices in `coords` of each of `wanted`; an error when the file lacks one (another grid)."""
    spacing = abs(float(lat[1] - lat[0])) if len(lat) > 1 else 1.0
    index = np.abs(coords[None, :] - wanted[:, None]).argmin(axis=1)
    off = np.abs(coords[index] - wanted) > GRID_TOLERANCE * spacing
    if off.any():
        raise error(
            f"the static file {path} is on another grid: it has no {axis} {float(wanted[off][0]):g} of the output's "
            f"fine grid (spacing {spacing:g} deg)"
        )
    return index
