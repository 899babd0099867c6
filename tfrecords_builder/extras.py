"""The model's inputs beyond the target, as a build reads them: LR predictors and HR static fields.

`--predictors t@300 q@300 2t ...` names other ERA5 variables (at a pressure level, or
single-level ones without @LEVEL); each is read from the inputs that hold it, in the units of
`units.BUILDER_UNITS`, cut into the target's patches and degraded to LR exactly as the target
is (`cutting.cut_day`), and written as the records' `predictors` feature. `--static
orography lsm latlon` gives HR fields of each patch, written once to `static.npy`
(`contract.inputs` describes both in the manifest). Orography and the land-sea mask come
from the single-level (invariant) fields among the inputs: the surface geopotential `z`
(ARCO-ERA5: `geopotential_at_surface`) and `lsm` (`land_sea_mask`), on the target's grid.
"""

import hashlib
import io
from typing import NamedTuple

import numpy as np
import xarray as xr

from tfrecords_builder.contract.era5.grid import GRID_TOLERANCE, grid_spacing, longitude_selection, region_slice
from tfrecords_builder.contract.era5.reader import (
    SHORT_NAMES,
    Era5Source,
    input_name,
    is_single_level,
    normalise,
    open_dataset,
)
from tfrecords_builder.contract.era5.units import BUILDER_UNITS, variable_conversion
from tfrecords_builder.contract.errors import BuildError
from tfrecords_builder.contract.inputs import STANDARD_GRAVITY, STATIC_CHOICES, STATIC_FILE, latlon_fields

# Variables a predictor may be: the target's own (r) and those `units` knows, but the land-sea mask.
PREDICTOR_VARIABLES = tuple(name for name in BUILDER_UNITS if name != "lsm")
# --static orography / lsm -> the names of its field in the inputs, ARCO-ERA5's first; z counts without a level only.
STATIC_FIELDS = {"orography": ("geopotential_at_surface", "z"), "lsm": ("land_sea_mask", "lsm")}


class ExtraSource:
    """The target's `Era5Source` (every attribute of it is this one's) with the predictors' sources beside it.

    `inputs`: all inputs of the build (the target's, the predictors' and the static fields'),
    `paths` their names, `predictors` an `Era5Source` per predictor (`open_predictors`).
    """

    def __init__(self, target, predictors, inputs):
        self.target, self.predictors, self.inputs = target, predictors, inputs
        self.paths = [input_name(item) for item in inputs]

    def __getattr__(self, name):
        return getattr(self.target, name)

    def read_predictors(self, times):
        """float32 [P, T, H, W]: each predictor's field at `times` over the domain."""
        return np.stack([source.read(times)[0] for source in self.predictors])

    def close(self):
        for source in [self.target, *self.predictors]:
            source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Predictor(NamedTuple):
    """One LR predictor: its manifest name (t@300, 2t), variable (CDS short name) and level (hPa; None: single-level)."""

    name: str
    variable: str
    level: float | None


def parse_predictor(text):
    """The `Predictor` of VAR@LEVEL (t@300) or of a single-level VAR (2t); a `BuildError` naming what is wrong."""
    given, sep, level_text = str(text).partition("@")
    variable = SHORT_NAMES.get(given.strip(), given.strip())
    if variable not in PREDICTOR_VARIABLES:
        raise BuildError(
            f"--predictors {text}: unknown variable {given!r}; choose from {', '.join(PREDICTOR_VARIABLES)}"
        )
    if is_single_level(variable):
        if sep:
            raise BuildError(f"--predictors {text}: {variable} is a single-level field; name it without @LEVEL")
        return Predictor(variable, variable, None)
    try:
        level = float(level_text)
    except ValueError:
        raise BuildError(
            f"--predictors {text}: {variable} needs a pressure level in hPa, e.g. {variable}@300"
        ) from None
    return Predictor(f"{variable}@{level:g}", variable, level)


def parse_predictors(texts):
    """The `Predictor`s of `--predictors`, in the order given; a `BuildError` for a bad or repeated one."""
    predictors = [parse_predictor(text) for text in texts or ()]
    names = [p.name for p in predictors]
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice:
        raise BuildError(f"--predictors names {twice} twice")
    return tuple(predictors)


def check_static(choices):
    """`--static` choices, checked and without repeats, in the order given."""
    for choice in choices or ():
        if choice not in STATIC_CHOICES:
            raise BuildError(f"--static {choice}: choose from {', '.join(STATIC_CHOICES)}")
    return tuple(dict.fromkeys(choices or ()))


def open_predictors(inputs, predictors, target, bounds):
    """An `Era5Source` per predictor over the inputs that hold it, on the grid of `target` (an open `Era5Source`).

    `bounds`: the (latitude, longitude) bounds of the build.
    """
    sources = []
    try:
        for predictor in predictors:
            level = [0.0] if predictor.level is None else [predictor.level]
            try:
                source = Era5Source(inputs, predictor.variable, level, *bounds, optional=True)
            except BuildError as err:
                raise BuildError(f"predictor {predictor.name}: {err}") from None
            sources.append(source)
            if not same_grid(source.lat, source.lon, target):
                raise BuildError(
                    f"predictor {predictor.name} in {source.paths[0]} is on another grid than the target "
                    f"({source.resolution:g} degrees, {len(source.lat)} x {len(source.lon)} points in the region)"
                )
    except BaseException:
        for source in sources:
            source.close()
        raise
    return sources


def same_grid(lat, lon, target):
    """Whether latitudes and longitudes are the target's (an open `Era5Source`) within `GRID_TOLERANCE`."""
    atol = GRID_TOLERANCE * target.resolution
    return (
        np.shape(lat) == target.lat.shape
        and np.shape(lon) == target.lon.shape
        and np.allclose(lat, target.lat, rtol=0, atol=atol)
        and np.allclose(lon, target.lon, rtol=0, atol=atol)
    )


def check_predictor_times(sources, predictors, times):
    """A `BuildError` naming the first predictor without a value at one of `times` (seconds since 1970)."""
    for source, predictor in zip(sources, predictors):
        missing = np.setdiff1d(times, source.times)
        if missing.size:
            when = np.datetime64(int(missing[0]), "s")
            shown = ", ".join(map(str, source.paths))
            raise BuildError(f"predictor {predictor.name} has no value at {when} in {shown}")


def _static_array(item, choice, name):
    """The `choice` field (orography or lsm) of one input as a DataArray [latitude, longitude], or None."""
    ds = normalise(item)
    for variable in STATIC_FIELDS[choice]:
        if variable in ds.data_vars and "level" not in ds[variable].dims:
            da = ds[variable]
            if "time" in da.dims:  # an invariant field: ERA5's single-levels product repeats it at each time
                da = da.isel(time=0)
            if set(da.dims) != {"latitude", "longitude"}:
                raise BuildError(
                    f"{variable!r} in {name} has dimensions {da.dims}; expected latitude, longitude (and time)"
                )
            key = "z" if choice == "orography" else "lsm"
            scale, offset = variable_conversion(da, key, name)
            return da.transpose("latitude", "longitude") * scale + offset
    return None


def read_static_field(inputs, choice, target, bounds):
    """float32 [H, W] of `choice` (orography in m, lsm) over the domain of `target` (an open `Era5Source`).

    From the first input that holds it; a `BuildError` when none does, or when its grid is not the target's.
    """
    for item in inputs:
        name = input_name(item)
        ds = item if isinstance(item, xr.Dataset) else open_dataset(item)[0]
        try:
            da = _static_array(ds, choice, name)
            if da is None:
                continue
            for axis in ("latitude", "longitude"):
                if da[axis].size > 1 and da[axis].values[0] > da[axis].values[-1]:
                    da = da.isel({axis: slice(None, None, -1)})
            lat, lon = da["latitude"].values.astype(np.float64), da["longitude"].values.astype(np.float64)
            dlat, dlon = grid_spacing(lat, "latitude", name), grid_spacing(lon, "longitude", name)
            rows = region_slice(lat, bounds[0], dlat, "latitude", name)
            pieces, lon = longitude_selection(lon, bounds[1], dlon, name)
            if not same_grid(np.round(lat[rows], 6), np.round(lon, 6), target):
                raise BuildError(
                    f"static field {choice} in {name} is on another grid than the target ({dlat:g} degrees, "
                    f"{len(lat[rows])} x {len(lon)} points in the region, the target's {target.resolution:g} degrees, "
                    f"{len(target.lat)} x {len(target.lon)}): give it on the target's grid"
                )
            values = np.concatenate([da.isel(latitude=rows, longitude=piece).values for piece in pieces], axis=-1)
        finally:
            if ds is not item:
                ds.close()
        return (values / STANDARD_GRAVITY if choice == "orography" else values).astype(np.float32)
    what = " or ".join(repr(v) for v in STATIC_FIELDS[choice])
    raise BuildError(
        f"--static {choice}: no input holds {what} without a level (ERA5's single-levels or invariant product); "
        "add that file to the inputs"
    )


def static_fields(inputs, choices, target, bounds, patches):
    """(float32 [n_patches, H, W, S] of the `--static` choices, physical units; their channel names and units)."""
    layers, channels = [], []
    for choice in choices:
        channels += STATIC_CHOICES[choice]
        if choice == "latlon":
            layers += list(latlon_fields(target.lat, target.lon))
        else:
            layers.append(read_static_field(inputs, choice, target, bounds))
    field = np.stack(layers).astype(np.float32)  # [S, H, W] over the domain
    return np.stack([np.moveaxis(part, 0, -1) for part in patches.cut(field)]), channels


def static_file(static, channels):
    """(the bytes of static.npy, the manifest's `static` record) of float32 [n_patches, H, W, S].

    A constant channel (a patch set all at sea) records std 1, so that standardising it gives 0, not a division by 0.
    """
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(static, dtype="<f4"), allow_pickle=False)
    data = buffer.getvalue()
    records = []
    for k, (name, units) in enumerate(channels):
        values = static[..., k].astype(np.float64)
        std = float(values.std())
        records.append({"name": name, "units": units, "mean": float(values.mean()), "std": std if std > 0 else 1.0})
    return data, {
        "file": STATIC_FILE,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "channels": records,
    }


def predictor_records(predictors, stats):
    """The manifest's `predictors`: name, variable, level, units and the train split's mean and std of each.

    A predictor constant over the train split cannot be standardised: a `BuildError` naming it.
    """
    records = []
    for predictor, running in zip(predictors, stats):
        summary = running.as_dict()
        if not summary["std"] > 0:
            raise BuildError(
                f"predictor {predictor.name} is constant over the train split ({summary['mean']:g} everywhere): "
                "no model can be standardised by it; drop it"
            )
        records.append(
            {
                "name": predictor.name,
                "variable": predictor.variable,
                "level": predictor.level,
                "units": BUILDER_UNITS[predictor.variable],
                "mean": summary["mean"],
                "std": summary["std"],
            }
        )
    return records
