"""The synthetic terrain world's 2 m layer: t2m, d2m, sp files whose r2m has the terrain relation, built end to end.

Expected values come from the Tetens curves written out again (`test_surface.tetens_mixed`), the
standard atmosphere and finite differences, not from the generator's own formulas.
"""

import numpy as np
import pytest
import tensorflow as tf
import xarray as xr
from test_surface import tetens_mixed

from tfrecords_builder.build import main
from tfrecords_builder.contract.era5.humidity import dewpoint
from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.inputs import load_static
from tfrecords_builder.contract.manifest import read_manifest
from tfrecords_builder.contract.schema import parse_example
from tfrecords_builder.synthetic import main as synthetic_main
from tfrecords_builder.synthetic import write_synthetic
from tfrecords_builder.synthetic_fields import make_generator, time_axis

BOX = {"lat_bounds": (35.0, 50.0), "lon_bounds": (103.0, 118.0), "interval_hours": 3}


def generator():
    return make_generator(BOX["lat_bounds"], BOX["lon_bounds"], 0.25, (300,), 0)


def test_dewpoint_inverts_the_mixed_phase_saturation():
    t, r = np.meshgrid(np.linspace(225.0, 315.0, 37), np.linspace(2.0, 104.0, 35), indexing="ij")
    td = dewpoint(t, r)
    np.testing.assert_allclose(100 * tetens_mixed(td) / tetens_mixed(t), r, rtol=1e-9)
    assert np.all((td > t) == (r > 100))
    # the frost case of docs/inputs.md: T = -10 C, Td = -20 C gives 38.6 % with the mixed phase
    assert dewpoint(263.15, 100 * tetens_mixed(253.15) / tetens_mixed(263.15)) == pytest.approx(253.15, abs=1e-8)


def test_r2m_has_near_surface_statistics():
    r = generator().surface_frames(time_axis("2019-01-01", "2019-12-31", 37))  # a year, every 37 h
    assert 65 < r.mean() < 75 and 15 < r.std() < 21
    assert 0.002 < (r > 100).mean() < 0.03 and 0 < r.min() and r.max() < 106


def test_r2m_moistens_upslope_and_dries_in_the_lee():
    gen = generator()
    times = time_axis("2019-03-01", "2019-03-05", 3)
    change = gen.surface_frames(times) - gen.surface_frames(times, terrain=False)
    height = gen.terrain()[0]
    d_north = np.gradient(height, gen.lat, axis=0)  # m per degree
    d_east = np.gradient(height, gen.lon, axis=1)
    hours = (times - np.datetime64("1900-01-01T00", "h")).astype(np.float64)
    east, north = gen.wind(hours)  # degrees per hour
    w = east[:, None, None] * d_east + north[:, None, None] * d_north
    inner = np.s_[:, 2:-2, 2:-2]
    assert np.corrcoef(w[inner].ravel(), change[inner].ravel())[0, 1] > 0.6
    up, down = w[inner] > np.quantile(w[inner], 0.9), w[inner] < np.quantile(w[inner], 0.1)
    assert change[inner][up].mean() > 5.0 and change[inner][down].mean() < -5.0  # %RH


def test_2t_falls_with_height_and_season_and_sp_is_the_standard_atmospheres():
    gen = generator()
    height = gen.terrain()[0]
    winter, summer = (
        gen.surface(t, gen.surface_frames(t)) for t in (time_axis(d, d, 6) for d in ("2019-01-16", "2019-07-16"))
    )
    sea_level = winter["t2m"] + 0.0065 * height + 0.7 * (gen.lat[:, None] - 45.0)
    assert sea_level.std(axis=1).max() < 1e-3  # along a meridian only height and latitude change 2t
    assert 20 < summer["t2m"].mean() - winter["t2m"].mean() < 28
    standard = 101325.0 * (1 - 2.25577e-5 * height) ** 5.25588
    np.testing.assert_allclose(winter["sp"], np.broadcast_to(standard, winter["sp"].shape), rtol=0.03)
    assert np.all(winter["sp"][:, height > 500] < standard[height > 500])  # a winter column is colder: denser
    assert np.all(winter["sp"][:, height == 0] == 101325.0) and height.max() > 2000


@pytest.fixture(scope="module")
def surface_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("surface") / "era5"
    paths = write_synthetic(out, "2019-01-01", "2019-01-03", per="all", **BOX, terrain=True, surface=True)
    assert [p.name for p in paths] == [
        "era5_sl_2t-2d-sp_synthetic_2019-01-01_2019-01-03.nc",
        "era5_sl_invariant_synthetic.nc",
    ]
    return out


def test_surface_files_are_single_level_as_the_cds_writes_them(surface_folder):
    with xr.open_dataset(surface_folder / "era5_sl_2t-2d-sp_synthetic_2019-01-01_2019-01-03.nc") as ds:
        assert set(ds.data_vars) == {"t2m", "d2m", "sp"}
        assert {name: ds[name].attrs["units"] for name in ds.data_vars} == {"t2m": "K", "d2m": "K", "sp": "Pa"}
        assert all(ds[name].dims == ("valid_time", "latitude", "longitude") for name in ds.data_vars)
        assert ds["latitude"].values[0] == 50.0 and ds.sizes["valid_time"] == 24
        t, td = ds["t2m"].values, ds["d2m"].values
    intended = generator().surface_frames(time_axis("2019-01-01", "2019-01-03", 3))
    np.testing.assert_allclose(100 * tetens_mixed(td) / tetens_mixed(t), intended, atol=0.01)


def test_surface_world_builds_r2m_with_2t_sp_and_static_fields(surface_folder, tmp_path):
    args = ["--variable", "r2m", "--predictors", "2t", "sp", "--static", "orography", "lsm"]
    args += ["--lat", "37", "44.75", "--lon", "105", "112.75", "--train", "2019-01-01:2019-01-02"]
    args += ["--val", "2019-01-03:2019-01-03", "--test", "none", "--quiet"]
    assert main([str(surface_folder), "--out", str(tmp_path / "b"), *args]) == 0
    manifest = read_manifest(tmp_path / "b")
    assert manifest["variable"] == "r2m" and [p["name"] for p in manifest["predictors"]] == ["2t", "sp"]
    shards = [str(tmp_path / "b" / name) for name in manifest["splits"]["train"]["shards"]]
    first = next(iter(tf.data.TFRecordDataset(shards, compression_type="GZIP")))
    corner = manifest["patches"]["corners"][0]
    record = parse_example(first, manifest["hr_shape"], manifest["lr_shape"], corner, predictors=2)
    intended = generator().surface_frames(time_axis("2019-01-01", "2019-01-01", 3))[:, ::-1]  # latitude ascending
    lat0, lon0 = (float(v) for v in (record["patch_lat"].numpy(), record["patch_lon"].numpy()))
    rows, cols = round((lat0 - 35.0) / 0.25), round((lon0 - 103.0) / 0.25)
    h, w = manifest["hr_shape"][1:]
    np.testing.assert_allclose(record["hr"].numpy(), intended[:, rows : rows + h, cols : cols + w], atol=0.01)
    sp = record["predictors"].numpy()[..., 1]
    assert 50_000 < sp.min() and sp.max() <= 101325.0
    static = load_static(manifest)
    assert static.shape[-1] == 2 and np.isin(static[..., 1], (0.0, 1.0)).all()
    assert static[..., 0].max() > 100 and np.all(static[..., 0][static[..., 1] == 0] == 0)


def test_surface_without_terrain_is_refused(tmp_path, capsys):
    with pytest.raises(InputError, match="terrain"):
        write_synthetic(tmp_path / "a", "2019-01-01", "2019-01-01", surface=True)
    assert synthetic_main(["--out", str(tmp_path / "b"), "--surface", "--end", "2019-01-01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--terrain" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_r2m_with_predictors_and_static_fields_builds_trains_and_predicts(surface_folder, tmp_path):
    """2t, 2d, sp files and the invariants -> build -> one epoch -> predict from the LR points (about 30 s)."""
    from tiny_runs import write_config

    from hsr_keras import fit, predict

    args = ["--target", "r2m", "--predictors", "2t", "sp", "--static", "orography", "lsm", "--time-encoding"]
    args += ["--lat", "37", "44.75", "--lon", "105", "112.75", "--train", "2019-01-01:2019-01-02"]
    args += ["--val", "2019-01-03:2019-01-03", "--test", "none", "--quiet"]
    assert main([str(surface_folder), "--out", str(tmp_path / "b"), *args]) == 0
    config = write_config(tmp_path / "tiny.json", epochs=1, plot_every=100)
    run = tmp_path / "run"
    assert fit.main(["--data", str(tmp_path / "b"), "--config", str(config), "--out", str(run), "--quiet"]) == 0

    with xr.open_dataset(surface_folder / "era5_sl_2t-2d-sp_synthetic_2019-01-01_2019-01-03.nc") as ds:
        # LR points whose fine grid (8 cells each) lies inside the invariants' box
        lr = ds.sel(latitude=np.arange(47.0, 36.0, -2.0), longitude=np.arange(105.0, 116.0, 2.0)).isel(
            valid_time=slice(0, 8)
        )
        lr = lr.load()
    lr.to_netcdf(tmp_path / "lr.nc")
    out = tmp_path / "r2m_hr.nc"
    invariant = surface_folder / "era5_sl_invariant_synthetic.nc"
    argv = [str(tmp_path / "lr.nc"), "--model", str(run), "--out", str(out), "--quiet"]
    assert predict.main([*argv, "--static-file", str(invariant)]) == 0
    with xr.open_dataset(out) as ds:
        values = ds["r2m"].values
    assert values.shape == (8, 8 * lr.sizes["latitude"], 8 * lr.sizes["longitude"])
    assert np.isfinite(values).all() and 0.0 < values.mean() < 130.0
    # Without the static fields it was trained with, predict refuses in one line and writes nothing.
    assert predict.main([*argv, "--overwrite"]) == 2 and out.exists()
