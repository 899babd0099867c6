"""Tiny ERA5-like netCDF files in both CDS layouts with known values, for the builder's tests."""

import numpy as np
import pandas as pd
import xarray as xr

# Multiples of 0.25 at every grid point and hour, so int16 packing with scale 0.25 is exact.
LAT = np.arange(45.0, 39.99, -0.25)  # descending on disk, as CDS writes it
LON = np.arange(110.0, 115.01, 0.25)


def known_values(times, lat, lon, offset=0.0):
    """r(time, lat, lon): distinct along every axis, so a misplaced row, column or hour shows."""
    hours = (np.asarray(times, "datetime64[h]").astype(np.int64) % 48).astype(np.float64)
    return (
        offset
        + 20.0
        + 0.25 * hours[:, None, None]
        + 2.0 * (np.asarray(lat)[None, :, None] - 40.0)
        + 1.0 * (np.asarray(lon)[None, None, :] - 110.0)
    )


def write_era5(path, times, *, style="classic", levels=(300,), lat=LAT, lon=LON, values=None, units="%", variable="r"):
    """Write an ERA5-like file; `values` [time, level, lat, lon] defaults to `known_values` at every level."""
    times = pd.DatetimeIndex(times)
    if values is None:
        field = known_values(times.values, lat, lon)
        values = np.stack([field + i for i in range(len(levels))], axis=1)
    attrs = {"units": units, "long_name": "Relative humidity"}
    if style == "classic":
        coords = {"time": times, "level": np.asarray(levels, "i4")}
        coords.update(latitude=lat.astype("f4"), longitude=lon.astype("f4"))
        ds = xr.Dataset({variable: (("time", "level", "latitude", "longitude"), values, attrs)}, coords=coords)
        encoding = {
            variable: {"dtype": "int16", "scale_factor": 0.25, "add_offset": 50.0, "_FillValue": np.int16(-32767)},
            "time": {"units": "hours since 1900-01-01", "dtype": "i4"},
        }
        ds.to_netcdf(path, format="NETCDF3_64BIT", encoding=encoding)
    else:
        coords = {
            "valid_time": times,
            "pressure_level": np.asarray(levels, "f8"),
            "latitude": lat,
            "longitude": lon,
            "number": 0,
            "expver": ("valid_time", np.full(len(times), "0001")),
        }
        dims = ("valid_time", "pressure_level", "latitude", "longitude")
        ds = xr.Dataset({variable: (dims, values.astype("f4"), attrs)}, coords=coords)
        encoding = {
            variable: {"zlib": True, "complevel": 1},
            "valid_time": {"units": "seconds since 1970-01-01", "dtype": "i8"},
        }
        ds.to_netcdf(path, format="NETCDF4", encoding=encoding)
    return path


def hourly(start, days):
    return pd.date_range(start, periods=24 * days, freq="h")


# A 16x16 region inside LAT x LON, and splits for 4 hourly days from 2020-01-01.
REGION_ARGS = ["--lat", "41", "44.75", "--lon", "111", "114.75"]
SPLIT_ARGS = ["--train", "2020-01-01:2020-01-02", "--val", "2020-01-03:2020-01-03", "--test", "2020-01-04:2020-01-04"]
