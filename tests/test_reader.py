"""Reading ERA5: the real sample, every kind of input (CDS netCDF layouts, CDS GRIB, ARCO-ERA5 Zarr, r from
t and q) brought to one shape, grid checks, region snapping, many inputs as one."""

import importlib.util

import netCDF4
import numpy as np
import pytest
import tensorflow as tf
import xarray as xr
from era5_samples import LAT, LON, hourly, known_values, write_era5
from era5_stores import open_sample, write_arco_zarr, write_grib

from tfrecords_builder.build import main
from tfrecords_builder.contract.era5 import humidity
from tfrecords_builder.contract.era5.reader import Era5Source, expand_inputs, open_dataset, open_field, use_valid_time
from tfrecords_builder.contract.errors import BuildError
from tfrecords_builder.contract.manifest import read_manifest
from tfrecords_builder.contract.schema import parse_example
from tfrecords_builder.options import BuildConfig

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


# A 40 x 40 region of the real sample (49-60N, 44-77E), and its three hours.
REGION = dict(lat_bounds=(50.0, 59.75), lon_bounds=(60.0, 69.75))


@pytest.fixture(scope="module")
def sample():
    from conftest import REAL_ERA5

    return open_sample(REAL_ERA5)


def read_all(inputs, variable="r", levels=(300,)):
    with Era5Source(inputs, variable, levels, **REGION) as source:
        return source, source.read(source.times)


def cfgrib_values(path, level):
    """The region as cfgrib itself decodes it: [time, lat ascending, lon]."""
    with xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""}) as ds:
        r = ds["r"]
        if "isobaricInhPa" in r.dims:
            r = r.sel(isobaricInhPa=level)
        r = r.sel(latitude=slice(59.75, 50.0), longitude=slice(60.0, 69.75)).values
    return (r[None] if r.ndim == 2 else r)[:, ::-1]


def test_new_cds_layout_is_renamed_and_sorted(tmp_path):
    path = write_era5(tmp_path / "new.nc", hourly("2020-01-01", 1), style="new", levels=(300, 500))
    ds, field = open_field(path, "r", path)
    (da,) = field.arrays["r"]
    with ds:
        assert da.dims == ("time", "level", "latitude", "longitude")
        assert da["latitude"].values[0] == 40.0 and np.all(np.diff(da["latitude"].values) > 0)
        np.testing.assert_array_equal(da["level"].values, [300.0, 500.0])
        assert set(da.coords) == {"time", "level", "latitude", "longitude"}  # number, expver dropped


def test_inputs_from_files_globs_and_folders_are_unique_and_sorted(tmp_path):
    paths = [write_era5(tmp_path / f"{name}.nc", hourly("2020-01-01", 1)) for name in ("b", "a")]
    (tmp_path / "notes.txt").write_text("not data")
    found = expand_inputs([tmp_path, str(tmp_path / "*.nc"), paths[0]])
    assert found == sorted(p.resolve() for p in paths)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BuildError, match="holds no netCDF"):
        expand_inputs([tmp_path / "empty"])


def test_zarr_stores_and_urls_are_inputs_beside_files(tmp_path, sample):
    store = write_arco_zarr(tmp_path / "era5.zarr", sample)
    nc = write_era5(tmp_path / "a.nc", hourly("2020-01-01", 1))
    url = "gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3"
    assert expand_inputs([tmp_path, url]) == [nc.resolve(), store.resolve(), url]
    assert expand_inputs([store]) == [store.resolve()]  # a store is one input, not a folder of files


def test_one_level_one_time_grib_as_the_cds_delivers_it(tmp_path, sample):
    """cfgrib gives time, step and valid_time as scalars here: the reader once failed on 'time' conflicts."""
    path = write_grib(tmp_path / "era5.grib", sample, times=sample["time"].values[:1], levels=[300])
    source, values = read_all([path])
    np.testing.assert_array_equal(source.times, sample["time"].values[:1].astype("datetime64[s]").astype(np.int64))
    np.testing.assert_array_equal(values[0], cfgrib_values(path, 300))
    expected = sample["r"].sel(level=300, latitude=slice(59.75, 50), longitude=slice(60, 69.75)).values[:1, ::-1]
    np.testing.assert_allclose(values[0], expected, atol=0.01)  # 16-bit GRIB packing of 0-150 %


def test_grib_of_several_levels_and_times(tmp_path, sample):
    path = write_grib(tmp_path / "era5.grib", sample, levels=[250, 300, 350])
    source, values = read_all([path], levels=(350, 250))
    assert values.shape == (2, 3, 40, 40)
    np.testing.assert_array_equal(source.times, sample["time"].values.astype("datetime64[s]").astype(np.int64))
    for index, level in enumerate((350, 250)):
        np.testing.assert_array_equal(values[index], cfgrib_values(path, level))


def test_grib_fields_are_placed_at_their_valid_time_not_the_analysis_time(tmp_path, sample):
    path = write_grib(tmp_path / "era5.grib", sample, levels=[300], step_hours=6)
    with xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""}) as ds:
        assert ds["time"].values[0] == sample["time"].values[0] - np.timedelta64(6, "h")
    source, values = read_all([path])
    np.testing.assert_array_equal(source.times, sample["time"].values.astype("datetime64[s]").astype(np.int64))
    np.testing.assert_array_equal(values[0], cfgrib_values(path, 300))


@pytest.mark.parametrize(
    "dims",
    [(), ("time",), ("step",), ("time", "step")],
    ids=["scalars", "per-time", "per-step", "time-by-step"],
)
def test_valid_time_replaces_analysis_time_and_step(dims):
    analysis = np.array(["2020-01-01T00", "2020-01-01T12"], "datetime64[ns]")
    steps = np.array([0, 3], "timedelta64[h]").astype("timedelta64[ns]")
    time = analysis if "time" in dims else analysis[0]
    step = steps if "step" in dims else steps[0]
    valid = np.add.outer(analysis, steps) if dims == ("time", "step") else np.asarray(time) + np.asarray(step)
    shape = tuple(2 for _ in dims)
    ds = xr.Dataset(
        {"r": ((*dims, "latitude"), np.zeros((*shape, 3)))},
        coords={"time": time, "step": step, "valid_time": (dims, valid), "latitude": [0.0, 1.0, 2.0]},
    )
    out = use_valid_time(ds)
    assert "time" not in out.variables and "step" not in out.variables
    np.testing.assert_array_equal(np.ravel(out["valid_time"].values), np.ravel(valid))
    assert set(out["r"].dims) == ({"valid_time"} if dims else set()) | {"latitude"}


def test_arco_zarr_store_reads_the_values_of_the_netcdf_it_came_from(tmp_path, sample, real_era5):
    _, from_netcdf = read_all([real_era5], levels=(250, 300))
    for zarr_format in (2, 3):
        store = write_arco_zarr(tmp_path / f"v{zarr_format}.zarr", sample, zarr_format=zarr_format)
        source, values = read_all([store], variable="relative_humidity", levels=(250, 300))
        np.testing.assert_array_equal(values, from_netcdf)
        assert source.variable == "r"


def test_a_zarr_store_reads_only_the_hours_a_day_needs(tmp_path, sample, monkeypatch):
    store = write_arco_zarr(tmp_path / "era5.zarr", sample)
    with Era5Source([store], "r", [300], **REGION) as source:
        (field,) = source._fields
        assert not field.contiguous
        got = source.read(source.times[[0, 2]])
        np.testing.assert_array_equal(got, source.read(source.times)[:, [0, 2]])


def test_a_gs_url_without_gcsfs_names_the_extra_to_install():
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed; this machine would go to the network")
    with pytest.raises(BuildError, match=r"needs gcsfs: pip install hsr-keras\[gcs\]"):
        open_dataset("gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3")


def test_relative_humidity_is_derived_from_t_and_q_where_r_is_absent(tmp_path, sample, real_era5):
    _, r = read_all([real_era5], levels=(250, 300))
    without_r = sample.drop_vars("r")
    nc = tmp_path / "tq.nc"
    without_r.to_netcdf(nc)
    store = write_arco_zarr(tmp_path / "tq.zarr", sample, variables=("t", "q"))
    grib = write_grib(tmp_path / "tq.grib", sample, variables=("t", "q"), levels=[250, 300])
    region = sample.sel(level=[250, 300], latitude=slice(59.75, 50), longitude=slice(60, 69.75)).isel(
        latitude=slice(None, None, -1)
    )
    pressure = np.array([250.0, 300.0])[None, :, None, None] * 100
    expected = humidity.relative_humidity(region["t"].values, region["q"].values, pressure).astype(np.float32)
    for inputs in ([nc], [store], [without_r]):
        _, derived = read_all(inputs, levels=(250, 300))
        np.testing.assert_allclose(derived, expected.transpose(1, 0, 2, 3), rtol=1e-6)
    _, from_grib = read_all([grib], levels=(250, 300))
    assert np.abs(from_grib - derived).max() < 0.5  # t and q through 16-bit GRIB packing
    assert np.abs(derived - r).mean() < 0.5  # ERA5's own r, to the rounding of the files


def test_an_input_without_r_and_without_t_and_q_is_one_line_that_says_so(tmp_path, sample):
    store = write_arco_zarr(tmp_path / "t.zarr", sample, variables=("t",))
    with pytest.raises(BuildError) as raised:
        Era5Source([store], "r", [300], **REGION)
    message = str(raised.value)
    assert "\n" not in message and str(store) in message
    assert "has no relative humidity: neither 'r' (relative_humidity) nor 't' and 'q'" in message
    assert "(it has t)" in message
    grib = write_grib(tmp_path / "t.grib", sample, variables=("t",), levels=[300])
    with pytest.raises(BuildError, match="has no variable 'v'"):
        Era5Source([grib], "v", [300], **REGION)


def test_a_global_zarr_store_reads_a_region_across_greenwich_as_the_netcdf(tmp_path):
    lat, lon = np.arange(90.0, -90.01, -2.5), np.arange(0.0, 359.9, 2.5)
    nc = write_era5(tmp_path / "globe.nc", hourly("2020-01-01", 1), lat=lat, lon=lon, levels=(250, 300))
    with xr.open_dataset(nc) as ds:
        store = write_arco_zarr(tmp_path / "globe.zarr", ds.load())
    reads = []
    for inputs in ([nc], [store]):
        with Era5Source(inputs, "r", [300], (40.0, 60.0), (340.0, 20.0)) as source:
            assert source.lon[0] == 340.0 and source.lon[-1] == 380.0 and len(source.lon) == 17
            reads.append(source.read(source.times[:3]))
    np.testing.assert_array_equal(reads[0], reads[1])
    expected = known_values(
        hourly("2020-01-01", 1).values[:3], np.arange(40.0, 60.01, 2.5), np.arange(340, 381, 2.5) % 360
    )
    np.testing.assert_array_equal(reads[0][0], (expected + 1).astype(np.float32))  # level 300: index 1
