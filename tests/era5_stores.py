"""ERA5 as GRIB (as the CDS delivers it) and as a Zarr store in the ARCO-ERA5 layout, written from a dataset.

Tests build both from the real sample (tests/data/era5/met-accf-pl.nc), so they read real
values in the real layouts without a network. cfgrib's `to_grib` is broken with this
xarray; GRIB is written with eccodes directly, one message per time, level and variable.
"""

import numpy as np
import xarray as xr

# CDS short name -> (GRIB paramId, ARCO-ERA5 long name, its units there)
PARAMS = {
    "r": (157, "relative_humidity", "%"),
    "t": (130, "temperature", "K"),
    "q": (133, "specific_humidity", "kg kg**-1"),
    "u": (131, "u_component_of_wind", "m s**-1"),
    "z": (129, "geopotential", "m**2 s**-2"),
}


def open_sample(path):
    """The real sample in memory, classic layout, latitude descending, values float32 as the builder reads them."""
    with xr.open_dataset(path) as ds:
        ds = ds[[name for name in PARAMS if name in ds]].load()
    return ds.astype(np.float32)


def write_grib(path, ds, variables=("r",), times=None, levels=None, step_hours=0):
    """GRIB 1 messages of `variables` in `ds` [time, level, latitude (descending), longitude] at `times` and `levels`.

    `step_hours`: each field as a forecast of that many hours from an analysis time that
    much earlier, so cfgrib's `time` is not the time the field is valid for, `valid_time` is.
    """
    import eccodes

    times = ds["time"].values if times is None else np.asarray(times, "datetime64[ns]")
    levels = ds["level"].values if levels is None else levels
    lat, lon = ds["latitude"].values, ds["longitude"].values
    step = float(abs(lat[1] - lat[0]))
    with open(path, "wb") as f:
        for time in times:
            analysis = np.datetime64(time, "m") - np.timedelta64(step_hours, "h")
            stamp = np.datetime_as_string(analysis, unit="m")  # 2022-11-11T00:00
            for level in levels:
                for name in variables:
                    field = ds[name].sel(time=time, level=level).values.astype(np.float64)
                    handle = eccodes.codes_grib_new_from_samples("regular_ll_pl_grib1")
                    keys = {
                        "Ni": len(lon),
                        "Nj": len(lat),
                        "latitudeOfFirstGridPointInDegrees": float(lat[0]),
                        "latitudeOfLastGridPointInDegrees": float(lat[-1]),
                        "longitudeOfFirstGridPointInDegrees": float(lon[0]),
                        "longitudeOfLastGridPointInDegrees": float(lon[-1]),
                        "iDirectionIncrementInDegrees": step,
                        "jDirectionIncrementInDegrees": step,
                        "jScansPositively": 0,
                        "paramId": PARAMS[name][0],
                        "level": int(level),
                        "dataDate": int(stamp[:10].replace("-", "")),
                        "dataTime": int(stamp[11:].replace(":", "")),
                        "bitsPerValue": 16,
                        "centre": 98,
                        "stepRange": str(step_hours),
                    }
                    for key, value in keys.items():
                        eccodes.codes_set(handle, key, value)
                    eccodes.codes_set_values(handle, field.ravel())
                    eccodes.codes_write(handle, f)
                    eccodes.codes_release(handle)
    return path


def write_arco_zarr(path, ds, variables=("r",), zarr_format=2):
    """`ds` as ARCO-ERA5 lays it out: long names, time/level/latitude/longitude, levels ascending, a chunk per hour."""
    arco = xr.Dataset(
        {
            PARAMS[name][1]: (
                ("time", "level", "latitude", "longitude"),
                ds[name].transpose("time", "level", "latitude", "longitude").values.astype(np.float32),
                {"units": PARAMS[name][2], "long_name": PARAMS[name][1].replace("_", " ").capitalize()},
            )
            for name in variables
        },
        coords={
            "time": ds["time"].values,
            "level": ("level", ds["level"].values.astype(np.int64), {"units": "millibars"}),
            "latitude": ("latitude", ds["latitude"].values.astype(np.float32), {"units": "degrees_north"}),
            "longitude": ("longitude", ds["longitude"].values.astype(np.float32), {"units": "degrees_east"}),
        },
    ).sortby("level")
    encoding = {PARAMS[name][1]: {"chunks": (1, *arco[PARAMS[name][1]].shape[1:])} for name in variables}
    arco.to_zarr(path, mode="w", encoding=encoding, zarr_format=zarr_format, consolidated=zarr_format == 2)
    return path
