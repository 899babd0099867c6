"""The synthetic terrain world: orography, a land-sea mask, upslope moistening and consistent predictors."""

import numpy as np
import pytest

from tfrecords_builder.build import main
from tfrecords_builder.contract.era5.humidity import relative_humidity
from tfrecords_builder.contract.inputs import STANDARD_GRAVITY, load_static
from tfrecords_builder.contract.manifest import read_manifest
from tfrecords_builder.in_memory import synthetic_arrays
from tfrecords_builder.synthetic import synthetic_dataset, write_synthetic

BOX = {"lat_bounds": (35.0, 50.0), "lon_bounds": (103.0, 118.0), "interval_hours": 3}


@pytest.fixture(scope="module")
def worlds():
    """Five days of the same weather without and with terrain."""
    plain = synthetic_dataset("2019-03-01", "2019-03-05", **BOX)
    return plain, synthetic_dataset("2019-03-01", "2019-03-05", **BOX, terrain=True)


def upslope_wind(ds):
    """w = V . grad(h) in m/s from the dataset's own u, v and surface geopotential, with finite differences."""
    height = ds["geopotential_at_surface"].values / STANDARD_GRAVITY
    lat, lon = ds["latitude"].values, ds["longitude"].values
    metres = 111_195.0
    d_north = np.gradient(height, lat * metres, axis=0)
    d_east = np.gradient(height, lon * metres, axis=1) / np.cos(np.radians(lat))[:, None]
    u, v = ds["u"].values[:, 0], ds["v"].values[:, 0]
    return u * d_east + v * d_north


def test_without_terrain_the_dataset_is_r_alone_and_unchanged(worlds):
    plain, terrain = worlds
    assert list(plain.data_vars) == ["r"]
    assert set(terrain.data_vars) == {"r", "t", "q", "u", "v", "z", "geopotential_at_surface", "land_sea_mask"}
    np.testing.assert_array_equal(plain["r"].values, synthetic_dataset("2019-03-01", "2019-03-05", **BOX)["r"].values)


def test_air_moving_upslope_is_moister_and_the_lee_side_drier(worlds):
    plain, terrain = worlds
    w = upslope_wind(terrain)
    change = terrain["r"].values[:, 0] - plain["r"].values[:, 0]
    inner = np.s_[:, 2:-2, 2:-2]  # away from the one-sided differences at the edges
    assert np.corrcoef(w[inner].ravel(), change[inner].ravel())[0, 1] > 0.6
    up, down = w[inner] > np.quantile(w[inner], 0.9), w[inner] < np.quantile(w[inner], 0.1)
    assert change[inner][up].mean() > 10.0 and change[inner][down].mean() < -10.0  # %RH
    sea = terrain["land_sea_mask"].values == 0
    assert np.all(terrain["geopotential_at_surface"].values[sea] == 0) and 0.3 < 1 - sea.mean() < 0.8


def test_the_targets_statistics_stay_close_to_those_without_terrain():
    days = ("2019-03-01", "2019-03-10")  # the realism sample of test_synthetic_fields, every 3 h
    a = synthetic_dataset(*days, interval_hours=3)["r"].values
    b = synthetic_dataset(*days, interval_hours=3, terrain=True)["r"].values
    assert abs(a.mean() - b.mean()) < 4 and abs(a.std() - b.std()) < 3
    assert abs((a > 100).mean() - (b > 100).mean()) < 0.04 and b.min() >= 0 and b.max() < 145


def test_the_predictors_are_consistent_with_r(worlds):
    _, terrain = worlds
    r = relative_humidity(terrain["t"].values, terrain["q"].values, 300.0 * 100.0)
    np.testing.assert_allclose(r, terrain["r"].values, atol=0.01)
    t = terrain["t"].values
    assert 215 < t.min() and t.max() < 245 and t[:, 0, 0].mean() < t[:, 0, -1].mean()  # colder to the north
    assert 85_000 < terrain["z"].values.mean() < 95_000  # the standard atmosphere's 300 hPa is about 9.2 km
    speed = np.hypot(terrain["u"].values, terrain["v"].values)
    assert 1.0 < speed.mean() < 10.0


def test_overlapping_boxes_share_their_mountains():
    one = synthetic_dataset(
        "2019-03-01", "2019-03-01", lat_bounds=(40.0, 45.0), lon_bounds=(110.0, 115.0), terrain=True
    )
    two = synthetic_dataset(
        "2019-03-01", "2019-03-01", lat_bounds=(42.0, 47.0), lon_bounds=(112.0, 117.0), terrain=True
    )
    common = {"latitude": slice(45.0, 42.0), "longitude": slice(112.0, 115.0)}
    np.testing.assert_array_equal(
        one["geopotential_at_surface"].sel(common).values, two["geopotential_at_surface"].sel(common).values
    )


def test_terrain_files_build_with_predictors_and_static_fields(tmp_path):
    paths = write_synthetic(tmp_path / "era5", "2019-01-01", "2019-01-03", per="all", **BOX, terrain=True)
    assert [p.name for p in paths] == [
        "era5_r_synthetic_2019-01-01_2019-01-03.nc",
        "era5_pl_tquvz_synthetic_2019-01-01_2019-01-03.nc",
        "era5_sl_invariant_synthetic.nc",
    ]
    args = ["--lat", "37", "44.75", "--lon", "105", "112.75", "--train", "2019-01-01:2019-01-02"]
    args += ["--val", "2019-01-03:2019-01-03", "--test", "none", "--predictors", "t@300", "q@300", "u@300", "v@300"]
    args += ["z@300", "--static", "orography", "lsm", "--time-encoding", "--quiet"]
    assert main([str(tmp_path / "era5"), "--out", str(tmp_path / "b"), *args]) == 0
    manifest = read_manifest(tmp_path / "b")
    static = load_static(manifest)
    world = synthetic_dataset("2019-01-01", "2019-01-01", **BOX, terrain=True).sortby("latitude")
    expected = world["geopotential_at_surface"].sel(latitude=slice(37, 44.75), longitude=slice(105, 112.75))
    np.testing.assert_allclose(static[0, ..., 0], expected.values / STANDARD_GRAVITY, rtol=1e-5)
    assert [p["name"] for p in manifest["predictors"]] == ["t@300", "q@300", "u@300", "v@300", "z@300"]


def test_synthetic_arrays_of_a_terrain_world_carry_predictors_and_static_fields():
    data = synthetic_arrays(
        "2019-01-01",
        "2019-01-03",
        terrain=True,
        lat=(37.0, 44.75),
        lon=(105.0, 112.75),
        train="2019-01-01:2019-01-02",
        val="2019-01-03:2019-01-03",
        test="none",
        predictors=("u@300", "q@300"),
        static=("orography", "lsm"),
        time_encoding=True,
    )
    assert data.predictors["train"].shape == (2, 8, 4, 4, 2) and data.static.shape == (1, 32, 32, 2)
    assert data.manifest["schema_version"] == 3 and data.manifest["time_encoding"] is True
    box = {"lat_bounds": (37.0, 44.75), "lon_bounds": (105.0, 112.75), "interval_hours": 3}
    world = synthetic_dataset("2019-01-01", "2019-01-01", **box, terrain=True).sortby("latitude")
    np.testing.assert_array_equal(data.predictors["train"][0, ..., 1], world["q"].values[:, 0, ::8, ::8])
    np.testing.assert_array_equal(data.static[0, ..., 1], world["land_sea_mask"].values)
