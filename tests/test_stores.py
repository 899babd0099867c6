"""Every kind of ERA5 input brought to one shape: CDS netCDF layouts, CDS GRIB, ARCO-ERA5 Zarr, r from t and q."""

import importlib.util

import numpy as np
import pytest
import xarray as xr
from era5_samples import hourly, known_values, write_era5
from era5_stores import open_sample, write_arco_zarr, write_grib

from tfrecords_builder import humidity
from tfrecords_builder.errors import BuildError
from tfrecords_builder.reader import Era5Source
from tfrecords_builder.stores import expand_inputs, open_dataset, open_field, use_valid_time

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
