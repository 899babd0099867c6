"""`predict` for a model with extra inputs (issue 21): predictors from the input files, static fields from
--static-file, times from the files; each one missing is one line naming it, exit 2, nothing written."""

import json

import keras
import numpy as np
import pytest
import xarray as xr
from test_export import SCALE, TINY, make_manifest

from hsr_keras import export, predict
from hsr_keras.models.networks import build_generator
from tfrecords_builder import synthetic
from tfrecords_builder.contract.inputs import STANDARD_GRAVITY, time_features
from tfrecords_builder.contract.schema import INPUTS_SCHEMA_VERSION

LR_RES = 2.0
LAT, LON = (30.0, 44.0), (100.0, 114.0)  # 8 x 8 LR points
DAY = "2019-07-01"
PREDICTORS = [
    {"name": "t@300", "variable": "t", "level": 300.0, "units": "K", "mean": 240.0, "std": 8.0},
    {"name": "q@300", "variable": "q", "level": 300.0, "units": "kg kg**-1", "mean": 4e-4, "std": 2e-4},
]
STATIC = [
    {"name": "orography", "units": "m", "mean": 800.0, "std": 600.0},
    {"name": "lsm", "units": "1", "mean": 0.5, "std": 0.4},
]


def write_fit_folder(folder):
    """A fit folder: a tiny random generator with predictors, time features and static fields, and its manifest."""
    folder.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    model = build_generator(
        scale=SCALE,
        mean=50.0,
        std=25.0,
        global_skip=True,
        predictor_mean=[p["mean"] for p in PREDICTORS],
        predictor_std=[p["std"] for p in PREDICTORS],
        time_features=True,
        static_mean=[c["mean"] for c in STATIC],
        static_std=[c["std"] for c in STATIC],
        **TINY,
    )
    model.save(folder / "generator.keras")
    (folder / "config.json").write_text(json.dumps({"scale": SCALE, "global_skip": True, **TINY}))
    manifest = make_manifest(mean=50.0, std=25.0)
    manifest.update(
        schema_version=INPUTS_SCHEMA_VERSION,
        predictors=PREDICTORS,
        time_encoding=True,
        static={"file": "static.npy", "bytes": 0, "sha256": "", "channels": STATIC},
    )
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder, model


def write_inputs(path, drop=()):
    """LR files of r, t and q at 300 hPa (CDS classic style, latitude descending), without the names in `drop`."""
    ds = synthetic.synthetic_dataset(DAY, DAY, lat_bounds=LAT, lon_bounds=LON, resolution=LR_RES, interval_hours=3)
    rng = np.random.default_rng(1)
    shape = ds["r"].shape
    ds["t"] = (ds["r"].dims, rng.normal(240.0, 8.0, shape).astype("float32"), {"units": "K"})
    ds["q"] = (ds["r"].dims, rng.normal(4e-4, 2e-4, shape).astype("float32"), {"units": "kg kg**-1"})
    ds.drop_vars(list(drop)).to_netcdf(path)
    return path


def write_static(path, lat_step=LR_RES / SCALE, drop=()):
    """An invariant file of z (m**2 s**-2) and lsm on the fine grid of the LR files (one time, latitude descending)."""
    lat = np.arange(LAT[0], LAT[1] + LR_RES, lat_step)[::-1]
    lon = np.arange(LON[0], LON[1] + LR_RES, LR_RES / SCALE)
    rng = np.random.default_rng(2)
    dims = ("time", "latitude", "longitude")
    ds = xr.Dataset(
        {
            "z": (dims, rng.uniform(0, 20000, (1, lat.size, lon.size)).astype("float32"), {"units": "m**2 s**-2"}),
            "lsm": (dims, rng.uniform(0, 1, (1, lat.size, lon.size)).astype("float32"), {"units": "(0 - 1)"}),
        },
        coords={"time": [np.datetime64("1940-01-01")], "latitude": lat, "longitude": lon},
    )
    ds.drop_vars(list(drop)).to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs_predict")
    fit, model = write_fit_folder(root / "fit")
    assert export.main([str(fit), "--out", str(root / "saved_models"), "--quiet"]) == 0
    return {
        "root": root,
        "fit": fit,
        "model": model,
        "saved_model": root / "saved_models" / "hsr" / "1",
        "inputs": write_inputs(root / "lr.nc"),
        "static": write_static(root / "static.nc"),
    }


def run_predict(argv):
    return predict.main([str(a) for a in argv] + ["--quiet"])


def expected(setup):
    """The model called directly on the files' values, read here with xarray: [T, lat ascending, lon]."""
    with xr.open_dataset(setup["inputs"]) as ds:
        ds = ds.sel(level=300.0).sortby("latitude")
        lr = ds["r"].values[None, ..., None]
        predictors = np.stack([ds["t"].values, ds["q"].values], -1)[None]
        seconds = ds["time"].values.astype("datetime64[s]").astype("int64")
    with xr.open_dataset(setup["static"]) as ds:
        ds = ds.isel(time=0).sortby("latitude")
        static = np.stack([ds["z"].values / STANDARD_GRAVITY, ds["lsm"].values], -1)[None]
    feed = {"lr": lr, "predictors": predictors, "time_features": time_features(seconds)[None], "static": static}
    feed = {name: keras.ops.convert_to_tensor(value.astype("float32")) for name, value in feed.items()}
    return np.asarray(setup["model"](feed, training=False))[0, ..., 0]


@pytest.mark.parametrize("model", ["fit", "saved_model"])
def test_predict_feeds_every_input_the_model_was_trained_with(setup, model, tmp_path):
    out = tmp_path / "hr.nc"
    argv = [setup["inputs"], "--model", setup[model], "--static-file", setup["static"], "--out", out, "--tile", 16]
    assert run_predict(argv) == 0
    with xr.open_dataset(out) as ds:
        hr = ds["r"].sel(level=300.0).sortby("latitude").values
    np.testing.assert_allclose(hr, expected(setup), atol=2e-3)


def test_tiles_cut_every_input_alike(setup, tmp_path):
    # Tiles of 4 LR points (overlapping by 2) against one tile: close, as for the LR field alone.
    outs = []
    for tile, overlap in ((16, 0), (4, 2)):
        out = tmp_path / f"hr{tile}.nc"
        argv = [setup["inputs"], "--model", setup["fit"], "--static-file", setup["static"], "--out", out]
        assert run_predict(argv + ["--tile", tile, "--overlap", overlap]) == 0
        with xr.open_dataset(out) as ds:
            outs.append(ds["r"].values)
    assert np.abs(outs[0] - outs[1]).mean() < 0.05 * np.abs(outs[0]).mean()


def test_missing_inputs_are_one_line_exit_2_and_nothing_written(setup, tmp_path, capsys):
    root = setup["root"]
    no_q = write_inputs(tmp_path / "no_q.nc", drop=("q",))
    coarse_static = write_static(tmp_path / "coarse.nc", lat_step=2 * LR_RES / SCALE)
    no_lsm = write_static(tmp_path / "no_lsm.nc", drop=("lsm",))
    static = ["--static-file", setup["static"]]
    cases = [
        (
            [setup["inputs"], "--model", setup["fit"]],
            "was trained with the static fields orography, lsm: pass --static-file",
        ),
        ([no_q, "--model", setup["fit"], *static], "trained with the predictor q@300"),
        ([no_q, "--model", setup["saved_model"], *static], f"{no_q} has no variable 'q'"),
        (
            [setup["inputs"], "--model", setup["fit"], "--static-file", coarse_static],
            f"static file {coarse_static} is on another grid",
        ),
        ([setup["inputs"], "--model", setup["fit"], "--static-file", no_lsm], "has no 'lsm' (land-sea mask)"),
        ([setup["inputs"], "--model", setup["fit"], "--static-file", root / "nowhere.nc"], "does not exist"),
    ]
    for argv, message in cases:
        out = tmp_path / "out.nc"
        assert run_predict(argv + ["--out", out]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], (message, err)
        assert not out.exists() and not list(tmp_path.glob(".out.nc*")), argv


def test_members_of_a_model_with_extras_differ_and_repeat_by_seed(setup, tmp_path):
    # The export's sample signature and the .keras generator's sampling function: the same members.
    runs = []
    for model in ("saved_model", "fit"):
        out = tmp_path / f"{model}.nc"
        argv = [setup["inputs"], "--model", setup[model], "--static-file", setup["static"], "--out", out]
        assert run_predict(argv + ["--tile", 16, "--members", 2, "--seed", 5]) == 0
        with xr.open_dataset(out) as ds:
            runs.append(ds["r"].values)
    assert runs[0].shape[0] == 2 and not np.allclose(runs[0][0], runs[0][1])
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-3)


def test_read_static_gives_each_channel_on_the_fine_grid(tmp_path):
    """Orography from z / g, lsm as stored, latitude and sin/cos of longitude from the grid; rows ascending."""
    from hsr_keras.serving.extra_inputs import read_static
    from hsr_keras.serving.model_functions import PredictError

    path = write_static(tmp_path / "static.nc")
    with xr.open_dataset(path) as ds:
        z, lsm = ds["z"].values[0, ::-1], ds["lsm"].values[0, ::-1]  # latitude ascending
        lat, lon = ds["latitude"].values[::-1], ds["longitude"].values
    names = ["orography", "lsm", "latitude", "sin_longitude", "cos_longitude"]
    static = read_static(path, names, lat[2:10], lon[1:7], PredictError)
    assert static.shape == (8, 6, 5) and static.dtype == np.float32
    np.testing.assert_allclose(static[..., 0], z[2:10, 1:7] / STANDARD_GRAVITY, rtol=1e-6)
    np.testing.assert_array_equal(static[..., 1], lsm[2:10, 1:7])
    np.testing.assert_allclose(static[:, 0, 2], lat[2:10])
    np.testing.assert_allclose(static[0, :, 3], np.sin(np.deg2rad(lon[1:7])), atol=1e-7)
    np.testing.assert_allclose(static[0, :, 4], np.cos(np.deg2rad(lon[1:7])), atol=1e-7)
    with xr.open_dataset(path) as ds:
        ds["z"].attrs["units"] = "m"
        ds.to_netcdf(tmp_path / "metres.nc")
    with pytest.raises(PredictError, match=r"'z' in the static file .*metres.nc has units 'm'; expected geopotential"):
        read_static(tmp_path / "metres.nc", names, lat[2:10], lon[1:7], PredictError)
