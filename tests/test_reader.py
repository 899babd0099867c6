"""Reading ERA5: the real classic-layout sample, grid checks, region snapping, many inputs as one."""

import netCDF4
import numpy as np
import pytest
import tensorflow as tf
import xarray as xr
from era5_samples import LAT, LON, hourly, known_values, write_era5

from tfrecords_builder.build import BuildConfig, main
from tfrecords_builder.errors import BuildError
from tfrecords_builder.manifest import read_manifest
from tfrecords_builder.reader import Era5Source
from tfrecords_builder.schema import parse_example

# The sample covers 49-60N, 44-77E at 0.25 degrees, 2022-11-11 00, 01 and 02 UTC, 9 levels.
SAMPLE_HOURS = np.array(["2022-11-11T00", "2022-11-11T01", "2022-11-11T02"], "datetime64[s]").astype(np.int64)


def netcdf4_region(path, level, lat, lon):
    """The region read with netCDF4's own unpacking, independently of xarray: [time, lat asc, lon]."""
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(True)
        file_lat, file_lon = nc["latitude"][:], nc["longitude"][:]
        rows = [int(np.flatnonzero(np.isclose(file_lat, y))[0]) for y in lat]
        cols = [int(np.flatnonzero(np.isclose(file_lon, x))[0]) for x in lon]
        k = int(np.flatnonzero(nc["level"][:] == level)[0])
        values = nc["r"][:, k, :, :][:, rows][:, :, cols]
    return np.ma.filled(values.astype(np.float64), np.nan)


def test_real_sample_decodes_packed_values_like_netcdf4_with_latitude_ascending(real_era5):
    with Era5Source([real_era5], "r", [250, 300], (50.0, 59.75), (60.0, 69.75)) as source:
        assert source.lat[0] == 50.0 and source.lat[-1] == 59.75 and np.all(np.diff(source.lat) == 0.25)
        assert source.lon[0] == 60.0 and len(source.lon) == 40 and source.resolution == 0.25
        np.testing.assert_array_equal(source.times, SAMPLE_HOURS)
        values = source.read(SAMPLE_HOURS)
    assert values.shape == (2, 3, 40, 40) and values.dtype == np.float32
    for index, level in enumerate((250, 300)):
        expected = netcdf4_region(real_era5, level, source.lat, source.lon)
        np.testing.assert_array_equal(values[index], expected.astype(np.float32))
    assert not np.array_equal(values[0], values[1])
    assert 0 < values.min() and values.max() < 150  # %RH, over 100 in cold air, never clipped


def test_real_sample_builds_one_day_from_three_hourly_steps(real_era5, tmp_path):
    out = tmp_path / "out"
    argv = [
        str(real_era5),
        "--out",
        str(out),
        "--lat",
        "50",
        "59.75",
        "--lon",
        "60",
        "69.75",
        "--levels",
        "300",
        "--train",
        "2022-11-11:2022-11-11",
        "--val",
        "none",
        "--test",
        "none",
        "--quiet",
    ]
    assert main([*argv, "--steps", "3", "--interval-hours", "1"]) == 0
    manifest = read_manifest(out)
    assert manifest["hr_shape"] == [3, 40, 40] and manifest["lr_shape"] == [3, 5, 5]
    assert manifest["grid"]["lr_lat"] == [50.0, 52.0, 54.0, 56.0, 58.0]
    assert manifest["splits"]["train"]["days"] == 1
    dataset = tf.data.TFRecordDataset([str(out / manifest["splits"]["train"]["shards"][0])], compression_type="GZIP")
    (record,) = [parse_example(r, manifest["hr_shape"], manifest["lr_shape"]) for r in dataset]
    expected = netcdf4_region(real_era5, 300, manifest["grid"]["lat"], manifest["grid"]["lon"])
    np.testing.assert_array_equal(record["hr"].numpy(), expected.astype(np.float32))
    np.testing.assert_array_equal(record["lr"].numpy(), expected.astype(np.float32)[:, ::8, ::8])
    np.testing.assert_array_equal(record["time"].numpy(), SAMPLE_HOURS)
    assert manifest["stats"]["count"] == 3 * 40 * 40
    # The paper's 8 steps every 3 h need 00-21 UTC: the sample's day is incomplete.
    assert main([*argv, "--out", str(tmp_path / "paper")]) == 2


def test_real_sample_region_outside_its_grid_is_an_error(real_era5):
    paper = BuildConfig(inputs=(), out="")  # the paper's region, 37-52.75N 105-120.75E, is not in it
    with pytest.raises(BuildError, match="latitude 37 to 52.75 lies outside the grid"):
        Era5Source([real_era5], "r", [300], paper.lat, paper.lon)


def test_single_level_as_a_scalar_coordinate_is_read(tmp_path):
    times = hourly("2020-01-01", 1)
    values = known_values(times.values, LAT, LON).astype("f4")
    ds = xr.Dataset(
        {"r": (("valid_time", "latitude", "longitude"), values, {"units": "percent"})},
        coords={"valid_time": times, "pressure_level": 300.0, "latitude": LAT, "longitude": LON},
    )
    ds.to_netcdf(tmp_path / "scalar.nc", format="NETCDF4")
    with Era5Source([tmp_path / "scalar.nc"], "r", [300], (41, 44.75), (111, 114.75)) as source:
        got = source.read(source.times[:2])
    np.testing.assert_array_equal(got[0], known_values(times.values[:2], source.lat, source.lon).astype("f4"))


def test_region_bounds_snap_to_nearby_grid_points(tmp_path):
    path = write_era5(tmp_path / "era5.nc", hourly("2020-01-01", 1))
    with Era5Source([path], "r", [300], (40.98, 44.77), (111.02, 114.76)) as source:
        assert (source.lat[0], source.lat[-1], source.lon[0], source.lon[-1]) == (41.0, 44.75, 111.0, 114.75)
    with pytest.raises(BuildError, match="longitude 109 to 112 lies outside the grid"):
        Era5Source([path], "r", [300], (41, 44), (109, 112))


def test_cells_must_be_square(tmp_path):
    path = write_era5(tmp_path / "era5.nc", hourly("2020-01-01", 1), lon=np.arange(110.0, 120.01, 0.5))
    with pytest.raises(BuildError, match="latitude spacing 0.25 but longitude spacing 0.5"):
        Era5Source([path], "r", [300], (41, 44), (111, 114))


def test_a_time_in_two_files_is_an_error(tmp_path):
    a = write_era5(tmp_path / "a.nc", hourly("2020-01-01", 1))
    b = write_era5(tmp_path / "b.nc", hourly("2020-01-01T12", 1))
    with pytest.raises(BuildError, match="appears twice"):
        Era5Source([a, b], "r", [300], (41, 44), (111, 114))
