"""`predict`: coarse ERA5 netCDF in, fine CF netCDF out, checked against the model called directly."""

import json

import numpy as np
import pytest
import xarray as xr
from test_export import SCALE, make_fit_folder, make_manifest

from hsr_keras import export, predict
from hsr_keras.models.model_files import load_generator
from hsr_keras.serving import prediction, tiling
from tfrecords_builder import synthetic

LR_RES = 2.0
LAT, LON = (30.0, 60.0), (100.0, 140.0)  # 16 x 21 LR points
LEVELS = (300, 250)
DAYS = ("2019-01-01", "2019-01-02")
STEP_HOURS = list(range(0, 24, 3))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny generator (fit folder, SavedModel, Keras model), and LR files in both CDS styles."""
    root = tmp_path_factory.mktemp("predict")
    fit = make_fit_folder(root / "fit", global_skip=True)
    assert export.main([str(fit), "--out", str(root / "saved_models"), "--quiet"]) == 0
    # The same network trained (nominally) on a 0.03125 deg grid, so that the real 0.25 deg ERA5
    # file is its LR input.
    fine_manifest = root / "fine" / "manifest.json"
    fine_manifest.parent.mkdir()
    fine_manifest.write_text(json.dumps(make_manifest(resolution=0.25 / SCALE)))
    grid = dict(lat_bounds=LAT, lon_bounds=LON, resolution=LR_RES, levels=LEVELS)
    classic = synthetic.write_synthetic(root / "classic", *DAYS, style="classic", per="all", interval_hours=1, **grid)
    new = synthetic.write_synthetic(root / "new", *DAYS, style="new", per="all", interval_hours=3, **grid)
    texture = make_fit_folder(root / "texture", global_skip=True, noise="texture", noise_stddev=0.3)
    assert export.main([str(texture), "--out", str(root / "saved_models"), "--name", "texture", "--quiet"]) == 0
    return {
        "root": root,
        "fit": fit,
        "texture": texture,
        "texture_saved_model": root / "saved_models" / "texture",
        "saved_model": root / "saved_models" / "hsr",
        "model": load_generator(fit / "generator.keras"),
        "fine_manifest": fine_manifest,
        "classic": classic[0],
        "new": new[0],
    }


def run_predict(argv):
    return predict.main([str(a) for a in argv] + ["--quiet"])


def read_lr(path, level, hours=STEP_HOURS):
    """The input independently of the package: [T, lat ascending, lon], times, lat, lon."""
    with xr.open_dataset(path) as ds:
        ds = ds.rename(
            {k: v for k, v in {"valid_time": "time", "pressure_level": "level"}.items() if k in ds.variables}
        )
        r = ds["r"].sel(level=level).sortby("latitude")
        r = r.isel(time=np.flatnonzero(np.isin(r["time"].dt.hour.values, hours)))
        return r.values.astype("float32"), r["time"].values, r["latitude"].values, r["longitude"].values


def direct(model, lr_days):
    """The Keras model on whole days: [T, h, w] per day -> [T, 8h, 8w]."""
    return np.concatenate([np.asarray(model(day[None, ..., None], training=False))[0, ..., 0] for day in lr_days])


def expected_axis(first, n, res):
    return first + np.arange(SCALE * n) * (res / SCALE)


@pytest.fixture(scope="module")
def classic_out(setup):
    out = setup["root"] / "classic_hr.nc"
    argv = [setup["classic"], "--model", setup["fit"], "--out", out, "--tile", 32, "--level", 300, "--level", 250]
    assert run_predict(argv) == 0
    return out


def test_classic_style_coordinates_and_values(setup, classic_out):
    with xr.open_dataset(classic_out) as ds:
        assert ds["r"].dims == ("time", "level", "latitude", "longitude")
        assert ds["r"].dtype == np.float32
        # The fine grid starts at the first LR point, spacing LR / 8; latitude keeps the input's order.
        lat = expected_axis(LAT[0], 16, LR_RES)[::-1]
        lon = expected_axis(LON[0], 21, LR_RES)
        np.testing.assert_allclose(ds["latitude"].values, lat, atol=1e-9)
        np.testing.assert_allclose(ds["longitude"].values, lon, atol=1e-9)
        np.testing.assert_array_equal(ds["level"].values, [300, 250])
        for k, level in enumerate(LEVELS):
            lr, times, lr_lat, _ = read_lr(setup["classic"], level)
            assert lr.shape == (16, 16, 21)  # the hourly file sampled at the model's 3-hourly steps
            np.testing.assert_array_equal(ds["time"].values, times)
            np.testing.assert_allclose(lat[::-1][::SCALE], lr_lat, atol=1e-6)  # LR point k on fine row 8k
            expected = direct(setup["model"], [lr[:8], lr[8:]])
            got = ds["r"].values[:, k, ::-1]  # back to latitude ascending
            np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-6)
            # The output follows the field (global skip): an orientation error would show here.
            assert np.corrcoef(got[:, ::SCALE, ::SCALE].ravel(), lr.ravel())[0, 1] > 0.99


def test_output_is_cf(setup, classic_out):
    with xr.open_dataset(setup["classic"]) as source:
        source_history = source.attrs["history"]
    with xr.open_dataset(classic_out) as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"
        history = ds.attrs["history"].splitlines()
        assert history[0] == source_history
        assert "python -m hsr_keras.predict" in history[-1] and "--tile 32" in history[-1]
        attrs = ds["r"].attrs
        assert (attrs["units"], attrs["long_name"], attrs["standard_name"]) == (
            "%",
            "Relative humidity",
            "relative_humidity",
        )
        assert ds["r"].encoding["zlib"] and ds["r"].encoding["dtype"] == np.float32
        for name, units, axis in (("latitude", "degrees_north", "Y"), ("longitude", "degrees_east", "X")):
            assert ds[name].attrs == {"standard_name": name, "long_name": name, "units": units, "axis": axis}
        assert ds["level"].attrs["standard_name"] == "air_pressure" and ds["level"].attrs["positive"] == "down"
        assert ds["time"].attrs["standard_name"] == "time" and ds["time"].attrs["axis"] == "T"
        assert ds["time"].encoding["units"].startswith("hours since 1900-01-01")  # the input's units


def test_new_style_with_saved_model(setup, tmp_path):
    out = tmp_path / "new_hr.nc"
    # The model base folder, as TF Serving takes it: its highest version is used.
    assert run_predict([setup["new"], "--model", setup["saved_model"], "--out", out, "--tile", 24]) == 0
    with xr.open_dataset(out) as ds:
        assert ds["r"].dims == ("valid_time", "pressure_level", "latitude", "longitude")
        np.testing.assert_array_equal(ds["pressure_level"].values, [300.0, 250.0])  # the file's order
        assert "hsr/1" in ds["r"].attrs["comment"]
        lat = expected_axis(LAT[0], 16, LR_RES)[::-1]
        np.testing.assert_allclose(ds["latitude"].values, lat, atol=1e-9)
        for k, level in enumerate((300.0, 250.0)):
            lr, times, _, _ = read_lr(setup["new"], level)
            np.testing.assert_array_equal(ds["valid_time"].values, times)
            expected = direct(setup["model"], [lr[:8], lr[8:]])
            np.testing.assert_allclose(ds["r"].values[:, k, ::-1], expected, atol=1e-4, rtol=1e-6)


def test_tiled_and_untiled_predictions_agree(setup):
    run = prediction.load_model_function("keras", setup["fit"] / "generator.keras")
    lr = read_lr(setup["new"], 300.0)[0][:8]
    whole = tiling.predict_field(run, lr, SCALE, tile=64, overlap=0)
    np.testing.assert_allclose(whole, direct(setup["model"], [lr]), atol=1e-4, rtol=1e-6)  # one tile: exact

    def max_diff(tile, overlap):
        return float(np.abs(tiling.predict_field(run, lr, SCALE, tile=tile, overlap=overlap) - whole).max())

    # The generator's SE and CBAM blocks pool over the whole field, so a tile never sees exactly
    # the statistics of the whole region: agreement is approximate. Measured on this 16 x 21 LR
    # field (output std 24 %RH), max |tiled - untiled|: defaults (tile 16, overlap 4) 0.28 %RH,
    # (8, 4) 0.56, (16, 8) 0.09; tiles butted without overlap (8, 0) 46 %RH, because the
    # generator's bilinear global skip is clamped beyond a tile's last LR point.
    default = max_diff(tiling.DEFAULT_TILE, tiling.DEFAULT_OVERLAP)
    blended, butted = max_diff(8, 4), max_diff(8, 0)
    assert default < 0.5
    assert blended < 1.0
    assert blended < butted


def test_real_era5_file(setup, real_era5, tmp_path):
    """The real classic CDS file (int16 packed, latitude descending, 9 levels, 00-02 UTC) as LR input."""
    out = tmp_path / "real_hr.nc"
    argv = [
        real_era5,
        "--model",
        setup["fit"] / "generator.keras",
        "--manifest",
        setup["fine_manifest"],
        "--out",
        out,
        "--level",
        300,
        "--tile",
        200,
    ]
    assert run_predict(argv) == 0
    with xr.open_dataset(real_era5) as source:
        field = source["r"].sel(level=300).isel(time=[0]).sortby("latitude")
        lr, lat0, lon0 = field.values.astype("float32"), float(field["latitude"][0]), float(field["longitude"][0])
        first_time = source["time"].values[0]
    with xr.open_dataset(out) as ds:
        np.testing.assert_array_equal(ds["time"].values, [first_time])  # only 00 UTC is a model step: T = 1
        np.testing.assert_allclose(ds["latitude"].values, expected_axis(lat0, 45, 0.25)[::-1], atol=1e-9)
        np.testing.assert_allclose(ds["longitude"].values, expected_axis(lon0, 133, 0.25), atol=1e-9)
        np.testing.assert_allclose(ds["r"].values[:, 0, ::-1], direct(setup["model"], [lr]), atol=1e-4, rtol=1e-6)

    # --all-times: the three hourly steps as one sequence.
    argv = [
        real_era5,
        "--model",
        setup["fit"],
        "--manifest",
        setup["fine_manifest"],
        "--out",
        out,
        "--level",
        300,
        "--all-times",
        "--overwrite",
    ]
    assert run_predict(argv) == 0
    with xr.open_dataset(out) as ds:
        assert ds.sizes["time"] == 3 and ds.sizes["latitude"] == 360 and ds.sizes["longitude"] == 1064


def test_global_grid_gives_the_era5_grid(setup, tmp_path):
    """A global 2 deg field becomes 0.25 deg from 90N to 90S (rows beyond the pole dropped), 1440 longitudes."""
    ds = synthetic.synthetic_dataset(
        "2019-01-01", "2019-01-01", lat_bounds=(-90, 90), lon_bounds=(0, 358), resolution=LR_RES, interval_hours=24
    )
    path = tmp_path / "global.nc"
    ds.to_netcdf(path)
    out = tmp_path / "global_hr.nc"
    assert run_predict([path, "--model", setup["saved_model"], "--out", out, "--tile", 48, "--overlap", 4]) == 0
    with xr.open_dataset(out) as hr:
        np.testing.assert_allclose(hr["latitude"].values, 90 - 0.25 * np.arange(721), atol=1e-9)
        np.testing.assert_allclose(hr["longitude"].values, 0.25 * np.arange(1440), atol=1e-9)
        assert np.isfinite(hr["r"].values).all()


@pytest.fixture(scope="module")
def members_out(setup):
    """`predict --members 4` with the texture generator's SavedModel, twice with seed 3 and once with seed 4."""
    outs = {}
    for name, model, seed in (("a", "texture_saved_model", 3), ("b", "texture_saved_model", 3), ("c", "texture", 4)):
        outs[name] = setup["root"] / f"members_{name}.nc"
        argv = [setup["new"], "--model", setup[model], "--out", outs[name], "--members", 4, "--seed", seed]
        assert run_predict(argv + ["--level", 300, "--tile", 24]) == 0
    return outs


def test_members_along_a_cf_realization_dimension_differ_and_repeat_by_seed(setup, members_out):
    with xr.open_dataset(members_out["a"]) as a, xr.open_dataset(members_out["b"]) as b:
        assert a["r"].dims == ("realization", "valid_time", "pressure_level", "latitude", "longitude")
        assert a["r"].shape == (4, 16, 1, 128, 168)
        assert a["realization"].attrs["standard_name"] == "realization"
        np.testing.assert_array_equal(a["realization"].values, [0, 1, 2, 3])
        assert "4 members" in a["r"].attrs["comment"]
        members = a["r"].values
        assert members.tobytes() == b["r"].values.tobytes()  # same seed, same bytes
        for i in range(4):
            for j in range(i):
                assert np.abs(members[i] - members[j]).mean() > 0.5, (i, j)  # %RH
        lr, _, _, _ = read_lr(setup["new"], 300.0)
        fine = members[:, :, 0, ::-1]  # latitude ascending
        # Each member follows the field (global skip) and keeps to the LR values' neighbourhood.
        for member in fine:
            assert np.corrcoef(member[:, ::SCALE, ::SCALE].ravel(), lr.ravel())[0, 1] > 0.95
        # The ensemble's mean is close to the best estimate (serving_default: the mean of 8 members).
        best = run_predict([setup["new"], "--model", setup["texture_saved_model"], "--out", setup["root"] / "best.nc"])
        assert best == 0
        with xr.open_dataset(setup["root"] / "best.nc") as ds:
            estimate = ds["r"].sel(pressure_level=300.0).values[:, ::-1]
        assert np.abs(fine.mean(axis=0) - estimate).mean() < np.abs(fine[0] - estimate).mean()
    with xr.open_dataset(members_out["c"]) as c:  # the .keras generator, another seed: other members
        assert np.abs(c["r"].values - members).mean() > 0.5


def test_errors_exit_2(setup, real_era5, tmp_path, capsys):
    ds = synthetic.synthetic_dataset(*DAYS, lat_bounds=LAT, lon_bounds=LON, resolution=LR_RES, interval_hours=3)
    bad_units = ds.copy()
    bad_units["r"] = bad_units["r"].assign_attrs(units="K")
    bad_units.to_netcdf(tmp_path / "units.nc")
    bad_units["r"] = bad_units["r"].assign_attrs(units="1")  # a fraction, but the values are in %
    bad_units.to_netcdf(tmp_path / "fraction.nc")
    ds.isel(time=[0]).assign_coords(time=ds["time"].values[:1] + np.timedelta64(1, "h")).to_netcdf(
        tmp_path / "01utc.nc"
    )
    with_nan = ds.copy(deep=True)
    with_nan["r"][3, 0, 2, 2] = np.nan
    with_nan.to_netcdf(tmp_path / "nan.nc")
    (tmp_path / "exists.nc").write_text("")
    model = ["--model", setup["fit"]]
    out = ["--out", tmp_path / "out.nc"]
    setup["quiet_fit"] = make_fit_folder(tmp_path / "quiet", noise_stddev=0.0)  # no noise at all
    assert export.main([str(setup["quiet_fit"]), "--out", str(tmp_path / "sm"), "--quiet"]) == 0
    setup["quiet_export"] = tmp_path / "sm" / "hsr" / "1"
    cases = [
        ([real_era5] + model + out, "has grid spacing 0.25 deg, but the model takes 2 deg"),
        ([setup["new"], "--variable", "t"] + model + out, "has no variable 't'"),
        ([tmp_path / "units.nc"] + model + out, "has units 'K'"),
        (
            [tmp_path / "fraction.nc"] + model + out,
            "300 hPa on 2019-01-01 is not relative humidity: 100.0% of its values lie outside",
        ),
        ([tmp_path / "missing.nc"] + model + out, "no such file"),
        ([tmp_path / "01utc.nc"] + model + out, "no time in the input falls on the model's step hours"),
        ([tmp_path / "nan.nc"] + model + out, "missing or non-finite values at 2019-01-01T09:00:00, 300 hPa"),
        ([setup["new"]] + model + ["--out", tmp_path / "exists.nc"], "exists: pass --overwrite"),
        ([setup["new"]] + model + out + ["--tile", 8, "--overlap", 8], "--overlap must be"),
        ([setup["new"]] + model + out + ["--level", 500], "level 500 hPa is not in"),
        ([setup["new"], "--model", tmp_path / "none.keras"] + out, "no such model file"),
        ([setup["new"], "--model", tmp_path] + out, "neither a SavedModel"),
        ([setup["new"]] + model + out + ["--members", 0], "--members must be an integer >= 1"),
        (
            [setup["new"], "--model", setup["quiet_fit"]] + out + ["--members", 2],
            "--members 2 needs a model with noise",
        ),
        ([setup["new"], "--model", setup["quiet_export"]] + out + ["--members", 2], "has no sample signature"),
    ]
    for argv, message in cases:
        assert run_predict(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err and err[-1].startswith("error: ") and message in err[-1], (argv, err)
        assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "out.nc").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial output left
