"""Synthetic ERA5-like relative humidity: the built-in demo dataset and the test data.

The values come from `synthetic_fields` (calibrated against ERA5 `r` at 300 hPa; how and why
is told there). This module delivers them as the Climate Data Store does: an in-memory
dataset (`synthetic_dataset`), netCDF files in either CDS layout (`write_synthetic`), and the
command line `python -m tfrecords_builder synthetic` (`main`).

Usage:

    ds = synthetic_dataset("2019-01-01", "2019-01-31", levels=(300,), seed=0)
    write_synthetic("data/synthetic", "2019-01-01", "2019-12-31", style="classic", per="month")
    python -m tfrecords_builder synthetic --out data/synthetic --start 2019-01-01 --end 2019-12-31
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from tfrecords_builder.contract import files
from tfrecords_builder.contract.console import run_command
from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.inputs import STANDARD_GRAVITY
from tfrecords_builder.synthetic_fields import EPOCH, make_generator, provenance, time_axis

PACKED_MIN, PACKED_MAX, PACKED_FILL = -32766, 32767, -32767
"""int16 range used by the CDS classic netCDF packing (grib_to_netcdf) and its fill value."""

STYLES = ("classic", "new")
PERIODS = ("month", "year", "all")
R_ATTRS = {"units": "%", "long_name": "Relative humidity", "standard_name": "relative_humidity"}
PREDICTOR_UNITS = {"t": "K", "q": "kg kg**-1", "u": "m s**-1", "v": "m s**-1", "z": "m**2 s**-2"}
"""The units attributes of a terrain world's predictors, as the CDS writes them."""
SURFACE_ATTRS = {
    "t2m": {"units": "K", "long_name": "2 metre temperature", "GRIB_shortName": "2t"},
    "d2m": {"units": "K", "long_name": "2 metre dewpoint temperature", "GRIB_shortName": "2d"},
    "sp": {"units": "Pa", "long_name": "Surface pressure", "GRIB_shortName": "sp"},
}
"""The variables of a surface world's files, with the CDS's netCDF names and attributes."""


# ----------------------------------------------------------------------------- public API


def synthetic_dataset(
    start,
    end,
    *,
    lat_bounds=(35.0, 55.0),
    lon_bounds=(103.0, 123.0),
    resolution=0.25,
    levels=(300,),
    interval_hours=1,
    seed=0,
    terrain=False,
):
    """Synthetic ERA5-like relative humidity as an in-memory CDS "classic" style dataset.

    Args:
        start, end: first and last day ("YYYY-MM-DD", datetime64 or date), both included.
        lat_bounds, lon_bounds: (min, max) in degrees, both on the grid. Defaults to a
            35-55N, 103-123E box around the paper region.
        resolution: grid spacing in degrees. Defaults to 0.25.
        levels: pressure levels in hPa. Defaults to (300,).
        interval_hours: hours between steps, from 00 UTC. Defaults to 1.
        seed: non-negative integer; the same seed gives the same values. Defaults to 0.
        terrain: a world with orography and a land-sea mask, where air moving upslope
            moistens and the lee side dries (`synthetic_fields`, docs/inputs.md). Adds the
            predictors t, q, u, v, z on the same levels and the invariant fields
            `geopotential_at_surface` and `land_sea_mask` (ARCO-ERA5's names). Defaults to
            False: r alone, the same values as ever.

    Returns:
        `xarray.Dataset` with `r` (float32, %) on `time, level, latitude, longitude`,
        latitude descending, as the CDS delivers it. A value depends only on the seed, level,
        grid and its own time, not on the requested range or interval.

    Example:
        ds = synthetic_dataset("2019-01-01", "2019-01-02", levels=(250, 300))
    """
    import xarray as xr

    times = time_axis(start, end, interval_hours)
    gen = make_generator(lat_bounds, lon_bounds, resolution, levels, seed)
    data = gen.frames(times, terrain=terrain)
    coords = {
        "time": ("time", times.astype("datetime64[ns]"), {"long_name": "time"}),
        "level": ("level", np.array(gen.levels, dtype=np.int32), {"units": "millibars", "long_name": "pressure_level"}),
        "latitude": ("latitude", gen.lat.astype(np.float32), {"units": "degrees_north", "long_name": "latitude"}),
        "longitude": ("longitude", gen.lon.astype(np.float32), {"units": "degrees_east", "long_name": "longitude"}),
    }
    ds = xr.Dataset(
        {"r": (("time", "level", "latitude", "longitude"), data, dict(R_ATTRS))},
        coords=coords,
        attrs={"Conventions": "CF-1.6", "history": provenance(gen.seed), "source": provenance(gen.seed)},
    )
    ds["time"].encoding.update(units="hours since 1900-01-01 00:00:00.0", calendar="gregorian", dtype="int32")
    if terrain:
        ds = ds.assign(_predictor_variables(gen, times, data)).assign(_invariant_variables(gen))
    return ds


def _predictor_variables(gen, times, r):
    """t, q, u, v, z of a terrain world, consistent with its `r` [T, level, lat, lon], as dataset variables."""
    dims = ("time", "level", "latitude", "longitude")
    return {name: (dims, values, {"units": PREDICTOR_UNITS[name]}) for name, values in gen.predictors(times, r).items()}


def _invariant_variables(gen):
    """The terrain world's surface geopotential and land-sea mask under ARCO-ERA5's names (lat, lon)."""
    height, land, _, _ = gen.terrain()
    dims = ("latitude", "longitude")
    return {
        "geopotential_at_surface": (dims, (height * STANDARD_GRAVITY).astype(np.float32), {"units": "m**2 s**-2"}),
        "land_sea_mask": (dims, land.astype(np.float32), {"units": "(0 - 1)"}),
    }


def _plan(start, end, style, per, field_kwargs, terrain=False, surface=False):
    """Check every argument before anything is written; return the generator and, for each file,
    its name and its times split by calendar month (the unit of generation)."""
    if surface and not terrain:
        raise InputError("surface is the 2 m layer of the terrain world: add terrain=True (--terrain)")
    if style not in STYLES:
        raise InputError(f"style must be one of {', '.join(STYLES)}. Received: style={style!r}")
    if per not in PERIODS:
        raise InputError(f"per must be one of {', '.join(PERIODS)}. Received: per={per!r}")
    known = {"lat_bounds", "lon_bounds", "resolution", "levels", "interval_hours", "seed"}
    unknown = sorted(set(field_kwargs) - known)
    if unknown:
        raise TypeError(f"write_synthetic() got unexpected keyword arguments: {', '.join(unknown)}")
    times = time_axis(start, end, field_kwargs.get("interval_hours", 1))
    gen = make_generator(
        field_kwargs.get("lat_bounds", (35.0, 55.0)),
        field_kwargs.get("lon_bounds", (103.0, 123.0)),
        field_kwargs.get("resolution", 0.25),
        field_kwargs.get("levels", (300,)),
        field_kwargs.get("seed", 0),
    )
    months = times.astype("datetime64[M]")
    if per == "all":
        days = times.astype("datetime64[D]")
        groups = {f"{days[0]}_{days[-1]}": np.ones(len(times), dtype=bool)}
    else:
        labels = months if per == "month" else times.astype("datetime64[Y]")
        groups = {str(label): labels == label for label in np.unique(labels)}
    files = []
    for label, in_file in groups.items():
        chunks = [times[in_file & (months == m)] for m in np.unique(months[in_file])]
        files.append((f"era5_r_synthetic_{label}.nc", chunks))
    return gen, files


def _cds_packing(low, high):
    """scale_factor and add_offset exactly as CDS (ecCodes grib_to_netcdf) chooses them for int16:
    the data range spans -32766..32767, and -32767 is left for the fill value."""
    if high == low:
        return 1.0, float(low)
    scale = (high - low) / (PACKED_MAX - PACKED_MIN)
    return scale, ((high + low) - scale * (PACKED_MIN + PACKED_MAX)) / 2


def _variable(nc, name, dtype, dims, attrs, values=None, **kwargs):
    var = nc.createVariable(name, dtype, dims, **kwargs)
    var.setncatts(attrs)
    if values is not None:
        var[:] = values
    return var


def _define_classic(nc, gen, times, scale, offset):
    """The CDS classic layout (as grib_to_netcdf writes it); returns the int16 `r` variable."""
    dims = ("time", "level", "latitude", "longitude")
    for dim, size in zip(dims, (len(times), len(gen.levels), len(gen.lat), len(gen.lon))):
        nc.createDimension(dim, size)
    _variable(nc, "longitude", "f4", ("longitude",), {"units": "degrees_east", "long_name": "longitude"}, gen.lon)
    _variable(nc, "latitude", "f4", ("latitude",), {"units": "degrees_north", "long_name": "latitude"}, gen.lat)
    _variable(
        nc,
        "level",
        "i4",
        ("level",),
        {"units": "millibars", "long_name": "pressure_level"},
        np.array(gen.levels, dtype=np.int32),
    )
    _variable(
        nc,
        "time",
        "i4",
        ("time",),
        {"units": "hours since 1900-01-01 00:00:00.0", "long_name": "time", "calendar": "gregorian"},
        (times.astype("datetime64[h]") - EPOCH).astype(np.int32),
    )
    attrs = {"scale_factor": scale, "add_offset": offset, "missing_value": np.int16(PACKED_FILL), **R_ATTRS}
    var = _variable(nc, "r", "i2", dims, attrs, fill_value=np.int16(PACKED_FILL))
    var.set_auto_maskandscale(False)  # the values are packed here, with CDS's rounding
    return var


# Over 80 lines: every variable and attribute of a 2024+ CDS file, as the CDS writes them.
def _define_new(nc, gen, times):
    """The 2024+ CDS layout (netCDF4, float32 with zlib); returns the `r` variable."""
    dims = ("valid_time", "pressure_level", "latitude", "longitude")
    for dim, size in zip(dims, (len(times), len(gen.levels), len(gen.lat), len(gen.lon))):
        nc.createDimension(dim, size)
    number = _variable(
        nc,
        "number",
        "i8",
        (),
        {"long_name": "ensemble member numerical id", "units": "1", "standard_name": "realization"},
    )
    number.assignValue(0)
    _variable(
        nc,
        "valid_time",
        "i8",
        ("valid_time",),
        {
            "long_name": "time",
            "standard_name": "time",
            "units": "seconds since 1970-01-01",
            "calendar": "proleptic_gregorian",
        },
        times.astype("datetime64[s]").astype(np.int64),
    )
    _variable(
        nc,
        "pressure_level",
        "f8",
        ("pressure_level",),
        {
            "long_name": "pressure",
            "units": "hPa",
            "positive": "down",
            "stored_direction": "decreasing",
            "standard_name": "air_pressure",
        },
        np.array(gen.levels[::-1], dtype=np.float64),
    )
    _variable(
        nc,
        "latitude",
        "f8",
        ("latitude",),
        {
            "long_name": "latitude",
            "units": "degrees_north",
            "standard_name": "latitude",
            "stored_direction": "decreasing",
        },
        gen.lat,
    )
    _variable(
        nc,
        "longitude",
        "f8",
        ("longitude",),
        {"long_name": "longitude", "units": "degrees_east", "standard_name": "longitude"},
        gen.lon,
    )
    _variable(
        nc,
        "expver",
        str,
        ("valid_time",),
        {"long_name": "model experiment version", "units": "1"},
        np.array(["0001"] * len(times), dtype=object),
    )
    attrs = {**R_ATTRS, "GRIB_paramId": 157, "GRIB_shortName": "r", "coordinates": "number expver"}
    return _variable(
        nc,
        "r",
        "f4",
        dims,
        attrs,
        zlib=True,
        complevel=1,
        fill_value=np.float32(np.nan),
        chunksizes=(1, 1, len(gen.lat), len(gen.lon)),
    )


def _write_file(path, gen, chunks, style, terrain=False):
    """Write one file month by month, so at most a month of data is in memory, through a
    temporary name, so a failed write never leaves a file that looks complete."""
    import netCDF4

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    times = np.concatenate(chunks)
    first = gen.frames(chunks[0], terrain=terrain)
    if style == "classic":
        # CDS packs with the data range of the whole file, so a longer file takes a first
        # pass for the range (generating is cheaper than holding a year in memory).
        low, high = float(first.min()), float(first.max())
        for chunk in chunks[1:]:
            values = gen.frames(chunk, terrain=terrain)
            low, high = min(low, float(values.min())), max(high, float(values.max()))
        scale, offset = _cds_packing(low, high)
    with files.publishing(path) as tmp:
        with netCDF4.Dataset(tmp, "w", format="NETCDF3_64BIT_OFFSET" if style == "classic" else "NETCDF4") as nc:
            nc.setncatts(
                {
                    "Conventions": "CF-1.6" if style == "classic" else "CF-1.7",
                    "history": provenance(gen.seed),
                    "source": provenance(gen.seed),
                }
            )
            var = _define_classic(nc, gen, times, scale, offset) if style == "classic" else _define_new(nc, gen, times)
            start = 0
            for i, chunk in enumerate(chunks):
                values = first if i == 0 else gen.frames(chunk, terrain=terrain)
                if style == "classic":
                    var[start : start + len(chunk)] = np.rint((values - offset) / scale).astype(np.int16)
                else:
                    var[start : start + len(chunk)] = values[:, ::-1]  # pressure_level decreasing
                start += len(chunk)
    return path


def write_terrain(out_dir, gen, files):
    """The predictor files (t, q, u, v, z: era5_pl_tquvz_synthetic_<label>.nc, one per r file) and the invariant
    file (era5_sl_invariant_synthetic.nc: z, lsm at one time) of a terrain world, in the classic CDS layout,
    float32. Returns their paths."""
    import xarray as xr

    paths = []
    coords = {"latitude": gen.lat.astype(np.float32), "longitude": gen.lon.astype(np.float32)}
    for name, chunks in files:
        times = np.concatenate(chunks)
        fields = _predictor_variables(gen, times, gen.frames(times, terrain=True))
        level = ("level", np.array(gen.levels, dtype=np.int32), {"units": "millibars"})
        ds = xr.Dataset(fields, coords={"time": times.astype("datetime64[ns]"), "level": level, **coords})
        path = Path(out_dir) / name.replace("era5_r_synthetic", "era5_pl_tquvz_synthetic")
        paths.append(_publish_dataset(ds, path))
    return [*paths, _write_invariant(out_dir, gen, files[0][1][0][0])]


def write_surface(out_dir, gen, files):
    """The 2 m files of a surface world (t2m, d2m, sp: era5_sl_2t-2d-sp_synthetic_<label>.nc, one per planned
    file, in the 2024+ CDS single-level layout) and its invariant file. Returns their paths."""
    import xarray as xr

    paths = []
    for name, chunks in files:
        parts = [gen.surface(chunk, gen.surface_frames(chunk)) for chunk in chunks]  # a month at a time
        times = np.concatenate(chunks)
        dims = ("valid_time", "latitude", "longitude")
        fields = {key: (dims, np.concatenate([p[key] for p in parts]), attrs) for key, attrs in SURFACE_ATTRS.items()}
        coords = {
            "valid_time": times.astype("datetime64[ns]"),
            "latitude": ("latitude", gen.lat, {"units": "degrees_north"}),
            "longitude": ("longitude", gen.lon, {"units": "degrees_east"}),
            "number": 0,
            "expver": ("valid_time", np.array(["0001"] * len(times))),
        }
        ds = xr.Dataset(fields, coords=coords, attrs={"history": provenance(gen.seed), "source": provenance(gen.seed)})
        path = Path(out_dir) / name.replace("era5_r_synthetic", "era5_sl_2t-2d-sp_synthetic")
        encoding = {"valid_time": {"units": "seconds since 1970-01-01", "calendar": "proleptic_gregorian"}}
        paths.append(_publish_dataset(ds, path, "NETCDF4", encoding))
    return [*paths, _write_invariant(out_dir, gen, files[0][1][0][0])]


def _write_invariant(out_dir, gen, first):
    """era5_sl_invariant_synthetic.nc: surface geopotential z and land-sea mask lsm at the time `first`."""
    import xarray as xr

    invariant = {
        short: (("time", *dims), values[None], attrs)
        for short, (dims, values, attrs) in zip(("z", "lsm"), _invariant_variables(gen).values())
    }
    coords = {"latitude": gen.lat.astype(np.float32), "longitude": gen.lon.astype(np.float32)}
    ds = xr.Dataset(invariant, coords={"time": np.array([first], dtype="datetime64[ns]"), **coords})
    return _publish_dataset(ds, Path(out_dir) / "era5_sl_invariant_synthetic.nc")


CLASSIC_TIME = {"time": {"units": "hours since 1900-01-01 00:00:00.0", "calendar": "gregorian", "dtype": "int32"}}


def _publish_dataset(ds, path, file_format="NETCDF3_64BIT", encoding=CLASSIC_TIME):
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.publishing(path) as tmp:
        ds.to_netcdf(tmp, format=file_format, encoding=encoding)
    return path


def write_synthetic(out_dir, start, end, *, style="classic", per="month", terrain=False, surface=False, **field_kwargs):
    """Write synthetic ERA5-like `r` files as the CDS delivers them, one per month, year or all.

    Args:
        out_dir: folder for the files (created).
        start, end: first and last day, both included.
        style: "classic" (netCDF3 64-bit offset, int16 packed as CDS packs, `time, level,
            latitude, longitude`) or "new" (the 2024+ CDS style: netCDF4, float32 with zlib,
            `valid_time, pressure_level, latitude, longitude`). Defaults to "classic".
        per: "month", "year" or "all": one file per calendar month, per year, or one file.
            Defaults to "month". The values do not depend on it.
        terrain: a world with orography and upslope moistening (`synthetic_dataset`): the r
            files, then the predictors t, q, u, v, z beside each (`write_terrain`) and one
            invariant file with the surface geopotential z and the land-sea mask lsm.
            Defaults to False.
        surface: with `terrain`, the world's 2 m layer instead of its pressure levels: t2m, d2m
            (K) and sp (Pa) files in the 2024+ CDS single-level layout whatever `style`
            (`write_surface`), r2m = 100 e_sat(2d) / e_sat(2t) having the terrain world's
            relation, and the invariant file; `levels` is not used. Defaults to False.
        **field_kwargs: `lat_bounds`, `lon_bounds`, `resolution`, `levels`,
            `interval_hours`, `seed`, as for `synthetic_dataset`.

    Returns:
        The paths written, in time order, named like `era5_r_synthetic_2019-01.nc`
        (`_2019.nc` per year, `_2019-01-01_2019-12-31.nc` for all); with `terrain`, the
        predictor and invariant files after them; with `surface`, `era5_sl_2t-2d-sp_synthetic_2019-01.nc`
        and so on, then the invariant file.

    Example:
        write_synthetic("data/era5", "2019-01-01", "2020-12-31", interval_hours=3)
    """
    gen, planned = _plan(start, end, style, per, field_kwargs, terrain, surface)
    if surface:
        return write_surface(out_dir, gen, planned)
    paths = [_write_file(Path(out_dir) / name, gen, chunks, style, terrain) for name, chunks in planned]
    return paths + (write_terrain(out_dir, gen, planned) if terrain else [])


# ----------------------------------------------------------------------------- command line


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_builder synthetic",
        description=(
            "Write synthetic ERA5-like relative humidity (r, %) as CDS netCDF files: the built-in demo "
            "data. The fields are calibrated on ERA5 r at 300 hPa (spatial std, share above 100 %, "
            "power spectrum, hourly change) and depend only on the seed, level, grid and time."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--out", required=True, default=argparse.SUPPRESS, help="folder for the netCDF files (created); required"
    )
    parser.add_argument("--start", default="2019-01-01", help="first day, YYYY-MM-DD (from 00 UTC)")
    parser.add_argument("--end", default="2019-01-31", help="last day, YYYY-MM-DD (included)")
    parser.add_argument("--lat-min", type=float, default=35.0, help="southern bound, degrees north")
    parser.add_argument("--lat-max", type=float, default=55.0, help="northern bound, degrees north")
    parser.add_argument("--lon-min", type=float, default=103.0, help="western bound, degrees east")
    parser.add_argument("--lon-max", type=float, default=123.0, help="eastern bound, degrees east")
    parser.add_argument("--resolution", type=float, default=0.25, help="grid spacing in degrees")
    parser.add_argument("--levels", type=int, nargs="+", default=[300], help="pressure levels in hPa")
    parser.add_argument("--interval-hours", type=int, default=1, help="hours between steps, from 00 UTC")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    parser.add_argument(
        "--style",
        choices=STYLES,
        default="classic",
        help="classic: netCDF3, int16 packed, dims time/level; new: the 2024+ CDS netCDF4, dims valid_time/pressure_level",
    )
    parser.add_argument("--per", choices=PERIODS, default="month", help="one file per month, per year, or one file")
    parser.add_argument(
        "--terrain",
        action="store_true",
        help="a world with orography and a land-sea mask where upslope air moistens and the lee dries; also writes "
        "the predictors t, q, u, v, z and an invariant file (z, lsm) for the builder's --predictors and --static",
    )
    parser.add_argument(
        "--surface",
        action="store_true",
        help="with --terrain: its 2 m layer instead of pressure levels: t2m, d2m, sp files and the invariant file, "
        "for the builder's --variable r2m (--levels and --style are not used)",
    )
    return parser


def main(argv=None):
    """`python -m tfrecords_builder synthetic ...`: write the files and print their paths.

    Exit codes as every command's (`tfrecords_builder.contract.console`): 2 with a one-line message
    for bad input or a folder that cannot be written.
    """
    return run_command(_command, argv)


def _command(argv):
    from tqdm import tqdm

    args = _parser().parse_args(argv)
    kwargs = {
        "lat_bounds": (args.lat_min, args.lat_max),
        "lon_bounds": (args.lon_min, args.lon_max),
        "resolution": args.resolution,
        "levels": args.levels,
        "interval_hours": args.interval_hours,
        "seed": args.seed,
    }
    gen, planned = _plan(args.start, args.end, args.style, args.per, kwargs, args.terrain, args.surface)
    with files.FolderLock(args.out, command="tfrecords_builder synthetic"):
        if args.surface:
            paths = write_surface(args.out, gen, planned)
        else:
            paths = [
                _write_file(Path(args.out) / name, gen, chunks, args.style, args.terrain)
                for name, chunks in tqdm(planned, desc="synthetic ERA5 r", unit="file", disable=None)
            ]
            if args.terrain:
                paths += write_terrain(args.out, gen, planned)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
