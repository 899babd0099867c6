"""Download ERA5 pressure-level data from the Copernicus Climate Data Store, one file per month.

Needs `pip install -e ".[download]"` (cdsapi) and a CDS account whose key is in ~/.cdsapirc,
as cdsapi documents; the ERA5 licence must be accepted once on the dataset's web page.

Why one request per month: the CDS refuses requests above a size limit and queues big ones
for long, so a month (at most 31 days x 24 hours) is the unit that always passes. Each month
goes to a hidden temporary file, is checked (variables, times, levels, area) and only then
renamed to its final name, so a file with the final name is complete and a rerun skips it:
an interrupted download resumes where it stopped, and a damaged file is fetched again.

Usage:

    python -m tfrecords_builder download --out data/era5 --years 2019-2022
    python -m tfrecords_builder download --out data/era5 --variable t,q --start 2019-01-15 --end 2019-03-10
    python -m tfrecords_builder download --out data/era5 --years 2019 --dry-run   # print the requests
    python -m tfrecords_builder download --out data/era5 --years 2019 --lat 37 52.75 --lon 105 120.75
    python -m tfrecords_builder download --out data/era5_2m --years 2019 --variable r2m   # 2 m T and Td
    python -m tfrecords_builder download --out data/era5 --years 2019 --predictors t@300 z@500 2t --static lsm

`--variable r2m` (the builder's 2 m relative-humidity target) asks for 2m_temperature and
2m_dewpoint_temperature from ERA5 on single levels (`reanalysis-era5-single-levels`, no
pressure levels, files era5_sl_2d-2t_<month>.nc holding t2m and d2m); it is downloaded on its
own, without --levels.

`--predictors` and `--static` (the builder's options, docs/inputs.md) add a monthly file per
predictor level and one of the single-level predictors, and one invariant file (surface
geopotential and land-sea mask at one step) for the static fields.

The region is `--area N W S E`, the CDS's order, or `--lat MIN MAX --lon MIN MAX`, the
builder's. Years run from 1940 to this year, days up to today (ERA5's preliminary ERA5T data
reach about five days before today; the CDS refuses what it does not have yet). One download
at a time writes a folder (`files.FolderLock`).

or from Python, with any object that has cdsapi's `retrieve(dataset, request, target)`:

    download("data/era5", years=[2019], client=cdsapi.Client())
"""

import argparse
import datetime
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfrecords_builder.contract import files
from tfrecords_builder.contract.console import one_line, run_command
from tfrecords_builder.contract.era5.netcdf_files import open_netcdf
from tfrecords_builder.contract.era5.reader import RENAMES
from tfrecords_builder.contract.errors import BuildError

log = logging.getLogger(__name__)

DATASET = "reanalysis-era5-pressure-levels"
SINGLE_LEVEL_DATASET = "reanalysis-era5-single-levels"

SINGLE_LEVEL_VARIABLES = {
    "2d": ("2m_dewpoint_temperature", "d2m"),
    "2t": ("2m_temperature", "t2m"),
    "msl": ("mean_sea_level_pressure", "msl"),
    "sp": ("surface_pressure", "sp"),
    "tcwv": ("total_column_water_vapour", "tcwv"),
    "z": ("geopotential", "z"),  # at the surface: the orography of --static
    "lsm": ("land_sea_mask", "lsm"),
}
"""ERA5 single-level variables the builder reads: short name -> (CDS long name, name in the delivered file)."""

SINGLE_LEVEL_TARGETS = {"r2m": {short: SINGLE_LEVEL_VARIABLES[short] for short in ("2d", "2t")}}
"""A single-level target the builder derives -> {short name: (CDS long name, name in the delivered file)} it needs."""

STATIC_VARIABLES = {"orography": "z", "lsm": "lsm", "latlon": None}
"""The builder's --static choices -> the invariant single-level field each needs (latlon: none)."""

VARIABLES = {
    "cc": "fraction_of_cloud_cover",
    "ciwc": "specific_cloud_ice_water_content",
    "clwc": "specific_cloud_liquid_water_content",
    "crwc": "specific_rain_water_content",
    "cswc": "specific_snow_water_content",
    "d": "divergence",
    "o3": "ozone_mass_mixing_ratio",
    "pv": "potential_vorticity",
    "q": "specific_humidity",
    "r": "relative_humidity",
    "t": "temperature",
    "u": "u_component_of_wind",
    "v": "v_component_of_wind",
    "vo": "vorticity",
    "w": "vertical_velocity",
    "z": "geopotential",
}
"""ERA5 pressure-level variables: the short name (the variable's name in the delivered file)
-> the CDS long name used in requests."""

LEVELS_HPA = (1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100, 125, 150, 175, 200, 225, 250, 300, 350, 400, 450, 500, 550)
LEVELS_HPA += (600, 650, 700, 750, 775, 800, 825, 850, 875, 900, 925, 950, 975, 1000)
"""The 37 pressure levels of ERA5 (hPa)."""

PAPER_AREA = (52.75, 105.0, 37.0, 120.75)
"""The paper's region as the CDS `area` (north, west, south, east): 64 x 64 points at 0.25 degrees."""

DEFAULT_HOURS = tuple(range(0, 24, 3))
"""Every 3 hours from 00 UTC, the paper's sampling."""

FORMATS = {"netcdf": ".nc", "grib": ".grib"}
"""`data_format` of the request -> suffix of the file."""

FIRST_YEAR = 1940
"""ERA5 starts on 1940-01-01."""

GRID_DEG = 0.25
"""ERA5's grid spacing: the CDS snaps an area to it, so a file's bounds may differ by up to a step."""


class DownloadFailed(RuntimeError):
    """A month could not be fetched in the allowed attempts; the command prints it and exits with 1."""


@dataclass(frozen=True)
class MonthRequest:
    """One CDS request: what is asked for and what the file must hold to count as complete."""

    request: dict
    target: Path
    times: np.ndarray  # datetime64[h], every step the file must hold
    variables: tuple  # short names
    levels: tuple  # () for single-level data
    area: tuple
    dataset: str = DATASET


# ----------------------------------------------------------------------------- planning


def _variables(names):
    """Short or long names (repeatable, comma lists) -> sorted unique short names."""
    long_to_short = {long: short for short, long in VARIABLES.items()}
    shorts = set()
    for name in _items(names):
        if name in VARIABLES or name in long_to_short:
            shorts.add(long_to_short.get(name, name))
        else:
            shorts_list = ", ".join(VARIABLES)
            raise BuildError(
                f"unknown variable {name!r}: use a CDS name like relative_humidity or one of {shorts_list}"
            )
    if not shorts:
        raise BuildError("no variable given")
    return tuple(sorted(shorts))


def _items(values):
    """Repeated options and comma lists -> their stripped items."""
    return [text.strip() for item in values for text in str(item).split(",") if text.strip()]


def _numbers(values, name, allowed):
    """Integers (repeatable, comma lists) from `allowed` -> sorted unique tuple."""
    found = set()
    for text in _items(values):
        try:
            number = int(text.removesuffix(":00"))
        except ValueError:
            raise BuildError(f"{name} {text!r} is not a whole number") from None
        if number not in allowed:
            choices = f"{allowed[0]} to {allowed[-1]}" if isinstance(allowed, range) else ", ".join(map(str, allowed))
            raise BuildError(f"{name} {number} is not one of {choices}")
        found.add(number)
    if not found:
        raise BuildError(f"no {name} given")
    return tuple(sorted(found))


def era5_years():
    """The years ERA5 has, at least in part: 1940 to this year."""
    return range(FIRST_YEAR, datetime.date.today().year + 1)


def _years(values):
    """Years like 2019, 2019,2020 or 2019-2022 (both included) -> sorted unique tuple."""
    years = set()
    for text in _items(values):
        first, _, last = text.partition("-")
        (low,) = _numbers([first], "year", era5_years())
        (high,) = _numbers([last or first], "year", era5_years())
        if high < low:
            raise BuildError(f"years {text!r} end before they start")
        years.update(range(low, high + 1))
    if not years:
        raise BuildError("no year given")
    return tuple(sorted(years))


ORDER_HINT = (
    "--area takes north west south east (the CDS's order); --lat MIN MAX --lon MIN MAX (the builder's) also work"
)


def _area(area):
    try:
        north, west, south, east = (float(v) for v in area)
    except (TypeError, ValueError):
        raise BuildError(f"area must be four numbers: north west south east. Received: {area!r}") from None
    if not (-90 <= south < north <= 90):
        raise BuildError(f"area north {north:g}, south {south:g}: need -90 <= south < north <= 90; {ORDER_HINT}")
    if not (-180 <= west < east <= 360 and east - west <= 360):
        raise BuildError(
            f"area west {west:g}, east {east:g}: need -180 <= west < east <= 360, at most 360 apart; {ORDER_HINT}"
        )
    return north, west, south, east


def area_of(lat, lon):
    """The CDS `area` (north, west, south, east) of the builder's `--lat MIN MAX --lon MIN MAX`."""
    (south, north), (west, east) = lat, lon
    return north, west, south, east


def _day(text, name):
    try:
        return datetime.date.fromisoformat(str(text))
    except ValueError:
        raise BuildError(f"{name} {text!r} is not a date like 2019-01-31") from None


def _days(years, start, end):
    """The requested days, in order, from whole years or a start and end date (both included)."""
    if (years is None) == (start is None and end is None):
        raise BuildError("give either years or a start and an end date")
    if years is not None:
        spans = [(datetime.date(y, 1, 1), datetime.date(y, 12, 31)) for y in _years(years)]
    else:
        if start is None or end is None:
            raise BuildError("give both a start and an end date")
        first, last = _day(start, "start"), _day(end, "end")
        if last < first:
            raise BuildError(f"start {first} is after end {last}")
        if first.year < FIRST_YEAR or last > datetime.date.today():
            raise BuildError(
                f"days {first} to {last}: ERA5 runs from {FIRST_YEAR}-01-01 to about five days before today"
            )
        spans = [(first, last)]
    return [first + datetime.timedelta(n) for first, last in spans for n in range((last - first).days + 1)]


def plan(
    out_dir,
    *,
    variables=("relative_humidity",),
    levels=None,
    area=PAPER_AREA,
    years=None,
    start=None,
    end=None,
    hours=DEFAULT_HOURS,
    data_format="netcdf",
    predictors=(),
    static=(),
):
    """Check every argument and return one `MonthRequest` per calendar month, in time order.

    `levels` None: 300 hPa, or none for a single-level target (`SINGLE_LEVEL_TARGETS`, e.g. r2m),
    which is fetched from `SINGLE_LEVEL_DATASET` on its own. `predictors` and `static`: the
    builder's --predictors (t@300, 2t, ...) and --static (orography, lsm, latlon); each
    predictor level, and the single-level predictors, get their own monthly files after the
    target's, and the invariant fields one file of one step (era5_sl_invariant_lsm-z.nc).
    Raises `BuildError` (one line) for bad input, before anything is fetched or written.
    """
    if data_format not in FORMATS:
        raise BuildError(f"format {data_format!r} is not one of {', '.join(FORMATS)}")
    targets = [name for name in _items(variables) if name in SINGLE_LEVEL_TARGETS]
    if targets:
        others = [name for name in _items(variables) if name not in SINGLE_LEVEL_TARGETS]
        if others or len(set(targets)) > 1:
            raise BuildError(
                f"{targets[0]} comes from {SINGLE_LEVEL_DATASET}: download it on its own, not with "
                f"{', '.join(others or targets[1:])}"
            )
        if levels is not None:
            raise BuildError(
                f"--levels {' '.join(map(str, _items(levels)))}: {targets[0]} is a single-level field (2 m above "
                "the surface); give no --levels"
            )
        needed = SINGLE_LEVEL_TARGETS[targets[0]]
        shorts, levels, dataset = tuple(sorted(needed)), (), SINGLE_LEVEL_DATASET
        in_file = tuple(needed[short][1] for short in shorts)
        long_names = [needed[short][0] for short in shorts]
        stem = f"era5_sl_{'-'.join(shorts)}"
    else:
        shorts = _variables(variables)
        levels = _numbers((300,) if levels is None else levels, "level", LEVELS_HPA)
        dataset, in_file, long_names = DATASET, shorts, [VARIABLES[s] for s in shorts]
        stem = f"era5_pl_{'-'.join(shorts)}_{'-'.join(map(str, levels))}hPa"
    hours = _numbers(hours, "hour", range(24))
    area = _area(area)
    days = _days(years, start, end)
    extras = _extra_groups(predictors, static, shorts, levels, dataset)
    where = (out_dir, area, data_format)
    requests = _months(where, (dataset, long_names, in_file, levels, stem), days, hours)
    for group in extras["series"]:
        requests += _months(where, group, days, hours)
    if extras["invariant"]:  # invariant fields: one step (the first day's first hour) is all there is
        long_names, in_file = extras["invariant"]
        group = (SINGLE_LEVEL_DATASET, long_names, in_file, (), f"era5_sl_invariant_{'-'.join(in_file)}")
        requests += _months(where, group, days[:1], hours[:1], suffix="")
    return requests


def _months(where, group, days, hours, suffix=None):
    """One `MonthRequest` per calendar month of `days` for the variables of one group.

    `where`: (folder, area, data format); `group`: (dataset, CDS long names, names in the
    file, levels, file stem); `suffix`: the file name's part after the stem, "_YYYY-MM" when None.
    """
    out_dir, area, data_format = where
    dataset, long_names, in_file, levels, stem = group
    by_month = {}
    for day in days:
        by_month.setdefault((day.year, day.month), []).append(day.day)
    requests = []
    for (year, month), month_days in by_month.items():
        request = {
            "product_type": ["reanalysis"],
            "variable": list(long_names),
            "year": [f"{year:04d}"],
            "month": [f"{month:02d}"],
            "day": [f"{d:02d}" for d in month_days],
            "time": [f"{h:02d}:00" for h in hours],
            "pressure_level": [str(level) for level in levels],
            "data_format": data_format,
            "download_format": "unarchived",
            "area": list(area),
        }
        if not levels:  # single levels: the CDS takes no pressure_level key
            del request["pressure_level"]
        times = np.array(
            [np.datetime64(f"{year:04d}-{month:02d}-{d:02d}T{h:02d}", "h") for d in month_days for h in hours],
            dtype="datetime64[h]",
        )
        name = f"_{year:04d}-{month:02d}" if suffix is None else suffix
        target = Path(out_dir) / f"{stem}{name}{FORMATS[data_format]}"
        requests.append(MonthRequest(request, target, times, tuple(in_file), tuple(levels), area, dataset))
    return requests


def _extra_groups(predictors, static, shorts, levels, dataset):
    """The requests the builder's --predictors and --static need beyond the target's (`shorts` at `levels` of
    `dataset`): {"series": [(dataset, long names, names in the file, levels, file stem)], "invariant": (long
    names, names in the file) or None}. A predictor the target's files hold already is not asked for again."""
    from tfrecords_builder.extras import check_static, parse_predictors

    have = {(short, level) for short in shorts for level in (levels or (None,))} if dataset == DATASET else set()
    have |= {(short, None) for short in shorts} if dataset == SINGLE_LEVEL_DATASET else set()
    by_level = {}
    for predictor in parse_predictors(predictors):
        level = None if predictor.level is None else _numbers([f"{predictor.level:g}"], "level", LEVELS_HPA)[0]
        if (predictor.variable, level) not in have:
            by_level.setdefault(level, set()).add(predictor.variable)
    series = []
    for level, names in sorted(by_level.items(), key=lambda item: -1 if item[0] is None else item[0]):
        names = sorted(names)
        if level is None:
            if any(name not in SINGLE_LEVEL_VARIABLES for name in names):
                raise BuildError(f"--predictors: {', '.join(names)} is not in {SINGLE_LEVEL_DATASET}")
            fields = [SINGLE_LEVEL_VARIABLES[name] for name in names]
            stem = f"era5_sl_{'-'.join(names)}"
            series.append((SINGLE_LEVEL_DATASET, [f[0] for f in fields], [f[1] for f in fields], (), stem))
        else:
            stem = f"era5_pl_{'-'.join(names)}_{level}hPa"
            series.append((DATASET, [VARIABLES[name] for name in names], names, (level,), stem))
    needed = sorted({STATIC_VARIABLES[choice] for choice in check_static(static)} - {None})
    fields = [SINGLE_LEVEL_VARIABLES[name] for name in needed]
    invariant = ([f[0] for f in fields], [f[1] for f in fields]) if fields else None
    return {"series": series, "invariant": invariant}


# ----------------------------------------------------------------------------- checking


def _open(path, data_format):
    import xarray as xr

    if data_format == "grib":
        return xr.open_dataset(path, engine="cfgrib", cache=False, backend_kwargs={"indexpath": ""})
    return open_netcdf(path)


def _off_by(a, b, period=None):
    diff = float(a) - float(b)
    if period:
        diff = (diff + period / 2) % period - period / 2
    return abs(diff)


def problem(path, month):
    """Why `path` is not the complete file for `month` (a `MonthRequest`), or None when it is."""
    try:
        ds = _open(path, month.request["data_format"])
    except Exception as err:  # netCDF4, HDF5 and cfgrib raise many types for a damaged file
        return f"cannot be read ({' '.join(str(err).split())})"
    with ds:
        renames = {old: new for old, new in RENAMES.items() if old in ds.variables and new not in ds.dims}
        ds = ds.rename(renames)
        missing = [v for v in month.variables if v not in ds.data_vars]
        if missing:
            return f"lacks variable(s) {', '.join(missing)}"
        if "time" not in ds.coords or (month.levels and "level" not in ds.coords):
            return "has no time or pressure-level coordinate"
        times = np.unique(np.atleast_1d(ds["time"].values).astype("datetime64[h]"))
        if not np.array_equal(times, month.times):
            return f"holds {times.size} time steps, expected {month.times.size}"
        levels = sorted(int(round(float(v))) for v in np.atleast_1d(ds["level"].values)) if month.levels else []
        if levels != list(month.levels):
            return f"holds levels {levels}, expected {list(month.levels)}"
        north, west, south, east = month.area
        lat, lon = ds["latitude"].values, ds["longitude"].values
        bounds = [(lat.max(), north, None), (lat.min(), south, None), (lon.min(), west, 360), (lon.max(), east, 360)]
        if any(_off_by(got, want, period) > GRID_DEG + 1e-6 for got, want, period in bounds):
            return f"covers {lat.max():g}N {lon.min():g}E to {lat.min():g}N {lon.max():g}E, not the requested area"
        for name in month.variables:  # a truncated file fails here, at its last step
            last = ds[name].isel(time=-1) if "time" in ds[name].dims else ds[name]
            try:
                values = last.values
            except Exception as err:
                return f"cannot read {name} ({' '.join(str(err).split())})"
            if not np.isfinite(values).any():
                return f"has no values of {name} at its last step"
    return None


# ----------------------------------------------------------------------------- fetching


def check_retries(attempts, base_delay_s):
    """Raise `BuildError` unless `attempts` is a whole number >= 1 and the delay a number >= 0."""
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise BuildError(f"attempts must be a whole number of at least 1. Received: {attempts!r}")
    if isinstance(base_delay_s, bool) or not isinstance(base_delay_s, (int, float)) or not base_delay_s >= 0:
        raise BuildError(f"the retry delay must be at least 0 seconds. Received: {base_delay_s!r}")


class _Rejected(Exception):
    """A delivered file that fails its check: fetched again."""


def _fetch(client, month, attempts, base_delay_s, sleep):
    """Fetch one month to a hidden temporary file, check it, publish it; retry with back-off."""
    why = ""
    for attempt in range(1, attempts + 1):
        try:
            with files.publishing(month.target) as tmp:
                client.retrieve(month.dataset, month.request, str(tmp))
                why = problem(tmp, month)
                if why is not None:
                    raise _Rejected(f"the delivered file {why}")
            return
        except files.DiskFull:  # no retry helps
            raise
        except Exception as err:  # network, HTTP and CDS queue errors all come as exceptions
            why = " ".join(str(err).split()) or type(err).__name__
        if attempt < attempts:
            sleep(base_delay_s * 2 ** (attempt - 1))
    raise DownloadFailed(f"{month.target.name}: failed after {attempts} attempt(s): {why}")


def download(out_dir, *, client, attempts=5, base_delay_s=30.0, sleep=None, **request_kwargs):
    """Fetch every month that is not already complete in `out_dir`; return all the months' paths.

    Args:
        out_dir: folder for the files (created).
        client: an object with cdsapi's `retrieve(dataset, request, target)`, e.g. `cdsapi.Client()`.
        attempts: tries per month before giving up. Defaults to 5.
        base_delay_s: wait after the first failed try; it doubles after each further one.
        sleep: the function that waits; defaults to `time.sleep` (tests pass one that does not wait).
        **request_kwargs: `variables`, `levels`, `area`, `years` or `start` and `end`, `hours`,
            `data_format`, `predictors`, `static`, as for `plan`.

    Raises:
        BuildError: bad input, before anything is fetched or written.
        DownloadFailed: a month failed `attempts` times; the months before it are kept.
    """
    from tqdm import tqdm

    check_retries(attempts, base_delay_s)
    months = plan(out_dir, **request_kwargs)
    fetched = 0
    with files.FolderLock(out_dir, command="tfrecords_builder download"):
        files.remove_stale(out_dir)  # months a killed download left half fetched
        with tqdm(months, desc="ERA5 from the CDS", unit="month", disable=None) as bar:
            for month in bar:
                bar.set_postfix_str(month.target.name)
                if month.target.exists() and problem(month.target, month) is None:
                    continue
                _fetch(client, month, attempts, base_delay_s, sleep or time.sleep)
                fetched += 1
    log.info("%d month(s) downloaded, %d already complete", fetched, len(months) - fetched)
    return [month.target for month in months]


# ----------------------------------------------------------------------------- command line


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_builder download",
        description=(
            f"Download ERA5 pressure-level data ({DATASET}) from the Copernicus Climate Data Store, one "
            'file per month. Needs pip install -e ".[download]" and your CDS key in ~/.cdsapirc. Complete '
            "files are skipped, so an interrupted run resumes when started again."
        ),
    )
    parser.add_argument("--out", required=True, help="folder for the files (created); required")
    parser.add_argument(
        "--variable",
        action="append",
        help="CDS name or short name (r, t, q, ...); repeat or comma-separate for several (default: relative_humidity); "
        "r2m: 2 m temperature and dewpoint from the single-levels product, for the builder's 2 m target",
    )
    parser.add_argument("--levels", nargs="+", help="pressure levels in hPa (default: 300; none with r2m)")
    parser.add_argument(
        "--predictors",
        nargs="+",
        default=[],
        metavar="VAR[@HPA]",
        help="the builder's --predictors (t@300 q@300 z@500 2t sp ...): fetched too, a file per month and level "
        "(single-level ones from the single-levels product)",
    )
    parser.add_argument(
        "--static",
        nargs="+",
        default=[],
        choices=tuple(STATIC_VARIABLES),
        help="the builder's --static: surface geopotential (orography) and land-sea mask, fetched once from the "
        "single-levels product (latlon needs nothing)",
    )
    region = parser.add_mutually_exclusive_group()
    region.add_argument(
        "--area",
        nargs=4,
        type=float,
        metavar=("N", "W", "S", "E"),
        help="region in degrees, in the CDS's order north west south east (default: the paper's, 52.75 105 37 120.75)",
    )
    region.add_argument(
        "--lat",
        nargs=2,
        type=float,
        metavar=("MIN", "MAX"),
        help="the region's latitudes, as the builder takes them; needs --lon (the same as --area MAX LON_MIN MIN LON_MAX)",
    )
    parser.add_argument(
        "--lon", nargs=2, type=float, metavar=("MIN", "MAX"), help="the region's longitudes, with --lat"
    )
    dates = parser.add_mutually_exclusive_group(required=True)
    dates.add_argument("--years", nargs="+", help="whole years, e.g. 2019 2020 or 2019-2022")
    dates.add_argument("--start", help="first day, YYYY-MM-DD; needs --end")
    parser.add_argument("--end", help="last day, YYYY-MM-DD, included")
    parser.add_argument(
        "--hours", nargs="+", default=[str(h) for h in DEFAULT_HOURS], help="hours UTC (default: 0,3,...,21)"
    )
    parser.add_argument("--format", choices=FORMATS, default="netcdf", help="file format (default: netcdf)")
    parser.add_argument("--attempts", type=int, default=5, help="tries per month before giving up (default: 5)")
    parser.add_argument(
        "--retry-delay", type=float, default=30.0, help="seconds after the first failure, doubling (default: 30)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the requests as JSON, one per month; send none")
    return parser


def _client():
    """cdsapi's client, imported only here so the rest works without it."""
    try:
        import cdsapi
    except ImportError:
        raise BuildError('downloading needs cdsapi: pip install -e ".[download]"') from None
    try:
        return cdsapi.Client()
    except Exception as err:  # cdsapi raises a bare Exception when ~/.cdsapirc is missing
        raise BuildError(f"cdsapi cannot start ({err}); put your CDS key in ~/.cdsapirc as cdsapi documents") from err


def main(argv=None):
    """`python -m tfrecords_builder download ...`: print the paths of the month files.

    Exit codes as every command's (`tfrecords_builder.contract.console`): 2 with a one-line message for
    bad input (also no cdsapi, no key, or a folder that cannot be written); 1 when a month
    keeps failing; 130 on Ctrl-C, complete months kept.
    """
    return run_command(_command, argv)


def _command(argv):
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.lat is None) != (args.lon is None):
        parser.error("--lat and --lon go together")
    area = area_of(args.lat, args.lon) if args.lat is not None else args.area or PAPER_AREA
    kwargs = {
        "variables": args.variable or ["relative_humidity"],
        "levels": args.levels,
        "area": area,
        "years": args.years,
        "start": args.start,
        "end": args.end,
        "hours": args.hours,
        "data_format": args.format,
        "predictors": args.predictors,
        "static": args.static,
    }
    try:
        check_retries(args.attempts, args.retry_delay)
        if args.dry_run:
            for month in plan(args.out, **kwargs):
                print(json.dumps({"dataset": month.dataset, "request": month.request, "target": str(month.target)}))
            return 0
        plan(args.out, **kwargs)  # bad input is reported before cdsapi is needed
        paths = download(args.out, client=_client(), attempts=args.attempts, base_delay_s=args.retry_delay, **kwargs)
    except DownloadFailed as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: complete months are kept; run the same command again to resume", file=sys.stderr)
        return 130
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
