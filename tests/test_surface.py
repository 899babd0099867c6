"""The 2 m relative-humidity target r2m: read from 2 m temperature and dewpoint, built, trained, predicted.

The fields are synthetic, in the 2024+ CDS single-level netCDF layout (`valid_time`, `latitude`
descending, `longitude`; `t2m`, `d2m` in K); the expected r2m is computed here from the Tetens
curves written out again (not with the package's function).
"""

import math

import netCDF4
import numpy as np
import pytest
import tensorflow as tf
import xarray as xr
from tiny_runs import write_config

from hsr_keras import fit, predict
from tfrecords_builder import build
from tfrecords_builder.contract.era5.reader import Era5Source, expand_inputs
from tfrecords_builder.contract.manifest import read_manifest
from tfrecords_builder.contract.schema import parse_example

SCALE = 4
LAT = np.arange(47.75, 39.99, -0.25)  # 32 points, descending as the CDS writes them
LON = np.arange(110.0, 117.76, 0.25)  # 32 points
REGION = ["--lat", "40", "47.75", "--lon", "110", "117.75"]
SPLITS = ["--train", "2019-01-01:2019-01-03", "--val", "2019-01-04:2019-01-04", "--test", "none"]


def tetens_mixed(t):
    """e_sat (Pa) over water above 273.16 K, ice below 250.16 K, mixed with weight ((T - 250.16) / 23)^2 between."""
    t = np.asarray(t, dtype=np.float64)
    water = 611.21 * np.exp(17.502 * (t - 273.16) / (t - 32.19))
    ice = 611.21 * np.exp(22.587 * (t - 273.16) / (t + 0.7))
    alpha = np.clip((t - 250.16) / 23.0, 0.0, 1.0) ** 2
    return alpha * water + (1 - alpha) * ice


def fields(times):
    """Smooth synthetic 2 m temperature and dewpoint (K), [time, lat descending, lon]: -5..25 C, RH 30..98 %."""
    hours = (times - times[0]) / np.timedelta64(1, "h")
    y, x = np.meshgrid(np.radians(LAT) * 6, np.radians(LON) * 5, indexing="ij")
    phase = 2 * math.pi * hours[:, None, None] / 24.0
    t = 283.0 + 10.0 * np.sin(x + 0.3 * phase) * np.cos(y) + 5.0 * np.sin(phase)
    depression = 8.0 + 7.5 * np.sin(2 * x - y + 0.5 * phase)  # 0.5 .. 15.5 K
    return t.astype(np.float32), (t - depression).astype(np.float32)


def write_2m(path, times, lat=LAT, lon=LON, variables=("t2m", "d2m"), units="K", t=None, td=None):
    """A single-level file as the CDS delivers it since 2024 (netCDF4, valid_time, number and expver)."""
    if t is None:
        t, td = fields(times)
    attrs = {
        "t2m": {"units": units, "long_name": "2 metre temperature", "GRIB_shortName": "2t"},
        "d2m": {"units": units, "long_name": "2 metre dewpoint temperature", "GRIB_shortName": "2d"},
    }
    offset = 273.15 if units == "degC" else 0.0
    data = {"t2m": t - offset, "d2m": td - offset}
    ds = xr.Dataset(
        {name: (("valid_time", "latitude", "longitude"), data[name], attrs[name]) for name in variables},
        coords={
            "valid_time": times,
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"}),
            "number": 0,
            "expver": ("valid_time", np.array(["0001"] * len(times))),
        },
    )
    ds.to_netcdf(path, format="NETCDF4")
    return path


def three_hourly(first, days):
    return np.arange(np.datetime64(first, "h"), np.datetime64(first, "h") + days * 24, 3).astype("datetime64[ns]")


@pytest.fixture
def surface_file(tmp_path):
    return write_2m(tmp_path / "era5_2m.nc", three_hourly("2019-01-01", 4))


def test_reader_derives_r2m_with_one_pseudo_level(surface_file):
    times = three_hourly("2019-01-01", 4)
    t, td = fields(times)
    expected = 100 * tetens_mixed(td) / tetens_mixed(t)
    with Era5Source(expand_inputs([surface_file]), "r2m", [0.0], (40.0, 47.75), (110.0, 117.75)) as source:
        assert source.levels == [0.0]
        got = source.read(source.times[:8])  # [level, T, lat ascending, lon]
    assert got.shape == (1, 8, 32, 32)
    np.testing.assert_allclose(got[0], expected[:8, ::-1], rtol=1e-5)
    assert 25.0 < got.min() and got.max() < 100.0


@pytest.mark.parametrize(
    "names",
    [("2t", "2d"), ("VAR_2T", "VAR_2D"), ("2m_temperature", "2m_dewpoint_temperature")],
)
def test_reader_accepts_every_name_of_2t_and_2d_and_degc(tmp_path, names):
    times = three_hourly("2019-01-01", 1)
    path = write_2m(tmp_path / "in.nc", times, units="degC")
    with xr.open_dataset(path) as ds:
        renamed = ds.rename({"t2m": names[0], "d2m": names[1]}).load()
    renamed.to_netcdf(tmp_path / "renamed.nc")
    t, td = fields(times)
    with Era5Source([tmp_path / "renamed.nc"], "r2m", [0.0], (40.0, 47.75), (110.0, 117.75)) as source:
        got = source.read(source.times)
    np.testing.assert_allclose(got[0], (100 * tetens_mixed(td) / tetens_mixed(t))[:, ::-1], rtol=1e-4)


def run_build(inputs, out, *extra):
    return build.main(
        [*map(str, inputs), "--out", str(out), "--variable", "r2m", "--scale", str(SCALE)]
        + REGION
        + SPLITS
        + ["--quiet", *extra]
    )


def test_build_of_r2m_states_the_surface_and_stores_the_derivation(surface_file, tmp_path):
    out = tmp_path / "data"
    assert run_build([surface_file], out) == 0
    manifest = read_manifest(out)
    assert manifest["variable"] == "r2m" and manifest["levels"] == [0] and manifest["level_type"] == "surface"
    assert list(manifest["climatology"]) == ["0"]
    assert manifest["splits"]["train"]["examples"] == 3 and manifest["splits"]["val"]["examples"] == 1
    shards = [str(out / name) for name in manifest["splits"]["train"]["shards"]]
    corner = manifest["patches"]["corners"][0]
    first = next(iter(tf.data.TFRecordDataset(shards, compression_type="GZIP")))
    record = {k: v.numpy() for k, v in parse_example(first, manifest["hr_shape"], manifest["lr_shape"], corner).items()}
    t, td = fields(three_hourly("2019-01-01", 1))
    hand = (100 * tetens_mixed(td) / tetens_mixed(t))[:, ::-1]  # latitude ascending, as records hold it
    assert record["level"] == 0.0
    np.testing.assert_allclose(record["hr"], hand, rtol=1e-5)
    np.testing.assert_allclose(record["lr"], hand[:, ::SCALE, ::SCALE], rtol=1e-5)  # stride: the LR grid points


def test_target_names_the_same_option_as_variable(surface_file, tmp_path):
    from tfrecords_builder.options import parse_args

    assert parse_args([str(surface_file), "--out", str(tmp_path), "--target", "r2m"]).variable == "r2m"
    assert parse_args([str(surface_file), "--out", str(tmp_path), "--variable", "r2m"]).variable == "r2m"
    assert parse_args([str(surface_file), "--out", str(tmp_path)]).variable == "r"


def test_build_refuses_levels_and_a_missing_dewpoint_in_one_line(tmp_path, capsys):
    times = three_hourly("2019-01-01", 4)
    good = write_2m(tmp_path / "good.nc", times)
    assert run_build([good], tmp_path / "a", "--levels", "300") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--levels 300" in err and "single-level" in err
    lacking = write_2m(tmp_path / "only_t2m.nc", times, variables=("t2m",))
    assert run_build([lacking], tmp_path / "b") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'2d'" in err and "only_t2m.nc" in err and "d2m" in err
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_existing_pressure_level_builds_are_unchanged_by_default(tmp_path):
    """No --variable, no --levels: the manifest has no level_type and levels [300], as before."""
    from tfrecords_builder.options import parse_args

    config = parse_args(["x.nc", "--out", str(tmp_path)])
    assert config.variable == "r" and config.levels == (300,)
    assert parse_args(["x.nc", "--out", str(tmp_path), "--variable", "r2m"]).levels == ()


def test_r2m_end_to_end_build_fit_predict(tmp_path):
    """2t/2d files -> build -> one epoch of a tiny model -> predict from the LR points of the same files (11-17 s)."""
    times = three_hourly("2019-01-01", 4)
    hr_file = write_2m(tmp_path / "era5_2m.nc", times)
    data = tmp_path / "data"
    assert run_build([hr_file], data) == 0
    run = tmp_path / "run"
    config = write_config(tmp_path / "tiny.json", epochs=1)
    assert fit.main(["--data", str(data), "--config", str(config), "--out", str(run), "--quiet"]) == 0

    # the model's input: the same fields at every SCALE-th point (its LR grid), one day
    t, td = fields(times)
    lr_lat, lr_lon = LAT[::SCALE], LON[::SCALE]
    lr_file = write_2m(
        tmp_path / "lr_2m.nc", times[:8], lat=lr_lat, lon=lr_lon, t=t[:8, ::SCALE, ::SCALE], td=td[:8, ::SCALE, ::SCALE]
    )
    out = tmp_path / "r2m_hr.nc"
    assert predict.main([str(lr_file), "--model", str(run), "--out", str(out), "--quiet"]) == 0
    with netCDF4.Dataset(out) as nc:
        var = nc["r2m"]
        assert var.dimensions == ("valid_time", "latitude", "longitude")
        assert var.standard_name == "relative_humidity" and var.units == "%"
        assert var.long_name == "2 metre relative humidity" and var.coordinates == "height"
        assert float(nc["height"][...]) == 2.0 and "pressure_level" not in nc.variables
        values = var[:].filled(np.nan)
    assert values.shape == (8, 8 * SCALE, 8 * SCALE)
    assert np.isfinite(values).all() and -10.0 < values.min() and values.max() < 130.0


def test_predict_refuses_files_without_2t_and_2d_and_levels(surface_file, tmp_path, capsys):
    """A model trained on r2m, given pressure-level r or --level: one line, exit 2, nothing written."""
    from test_export import make_fit_folder

    from tfrecords_builder import synthetic

    fit_folder = make_fit_folder(tmp_path / "fit")
    manifest_file = fit_folder / "manifest.json"
    manifest = __import__("json").loads(manifest_file.read_text())
    manifest_file.write_text(
        __import__("json").dumps({**manifest, "variable": "r2m", "levels": [0], "level_type": "surface"})
    )
    grid = dict(lat_bounds=(30.0, 44.0), lon_bounds=(100.0, 114.0), resolution=2.0, levels=(300,))
    r_file = synthetic.write_synthetic(
        tmp_path / "lr", "2019-01-01", "2019-01-01", per="all", interval_hours=3, **grid
    )[0]
    out = tmp_path / "out.nc"
    assert predict.main([str(r_file), "--model", str(fit_folder), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'2t'" in err and "'2d'" in err and r_file.name in err and "r2m" in err
    assert (
        predict.main([str(surface_file), "--model", str(fit_folder), "--out", str(out), "--level", "300", "--quiet"])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--level 300" in err and "single-level" in err
    assert not out.exists()
