"""`predict --out X.zarr`: the netCDF output's content in a Zarr store, chunked by sequence, resumable."""

import numpy as np
import pytest
import xarray as xr
import zarr
from test_export import make_fit_folder
from test_predict import LAT, LEVELS, LON, LR_RES, run_predict

from hsr_keras.serving import model_functions, zarr_store
from tfrecords_builder import synthetic

DAYS = ("2019-01-01", "2019-01-03")  # three daily sequences
PREDICT_FIELD = model_functions.predict_field


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny generator without and one with noise (fit folders), an LR file and its netCDF prediction."""
    root = tmp_path_factory.mktemp("predict_zarr")
    grid = dict(lat_bounds=LAT, lon_bounds=LON, resolution=LR_RES, levels=LEVELS)
    lr = synthetic.write_synthetic(root / "lr", *DAYS, style="new", per="all", interval_hours=3, **grid)[0]
    other = synthetic.write_synthetic(root / "other", *DAYS, style="new", per="all", interval_hours=3, **grid)[0]
    fit = make_fit_folder(root / "fit", global_skip=True)
    texture = make_fit_folder(root / "texture", global_skip=True, noise="texture", noise_stddev=0.3)
    nc = root / "hr.nc"
    assert run_predict([lr, "--model", fit, "--out", nc, "--tile", 32]) == 0
    return {"root": root, "lr": lr, "other": other, "fit": fit, "texture": texture, "nc": nc}


def count_fields(monkeypatch, fail_after=None):
    """Count the fields predicted; raise KeyboardInterrupt (a kill) after `fail_after` of them."""
    calls = []
    original = PREDICT_FIELD

    def counted(*args, **kwargs):
        if fail_after is not None and len(calls) == fail_after:
            raise KeyboardInterrupt
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(model_functions, "predict_field", counted)
    return calls


def test_zarr_equals_netcdf(setup, tmp_path):
    out = tmp_path / "hr.zarr"
    assert run_predict([setup["lr"], "--model", setup["fit"], "--out", out, "--tile", 32]) == 0
    group = zarr.open_group(str(out), mode="r")
    assert group.attrs["complete"] is True
    assert group.metadata.consolidated_metadata is not None
    assert not zarr_store.done_folder(out).exists()
    assert group["r"].chunks == (8, 1, 128, 168)  # one day, one level, the whole fine grid
    with xr.open_dataset(setup["nc"]) as nc, xr.open_zarr(out) as zr:
        assert zr["r"].dims == nc["r"].dims and zr.sizes == nc.sizes
        np.testing.assert_allclose(zr["r"].values, nc["r"].values, rtol=0, atol=0)
        for name in nc.variables:
            np.testing.assert_array_equal(zr[name].values, nc[name].values)
            assert zr[name].attrs == nc[name].attrs, name
        ignore = ("history", "hsr_fingerprint", "complete")
        assert {k: v for k, v in zr.attrs.items() if k not in ignore} == {
            k: v for k, v in nc.attrs.items() if k != "history"
        }


def test_killed_run_resumes_with_the_remaining_sequences(setup, tmp_path, monkeypatch):
    out = tmp_path / "hr.zarr"
    argv = [setup["lr"], "--model", setup["fit"], "--out", out, "--tile", 32]
    count_fields(monkeypatch, fail_after=3)  # the first day (2 levels) written, killed inside the second
    assert run_predict(argv) == 130
    assert zarr.open_group(str(out), mode="r").attrs["complete"] is False
    assert sorted(p.name for p in zarr_store.done_folder(out).iterdir()) == ["s0"]
    calls = count_fields(monkeypatch)
    assert run_predict(argv) == 0
    assert len(calls) == 2 * len(LEVELS)  # the second and third days only
    with xr.open_dataset(setup["nc"]) as nc, xr.open_zarr(out) as zr:
        np.testing.assert_allclose(zr["r"].values, nc["r"].values, rtol=0, atol=0)
    calls = count_fields(monkeypatch)
    assert run_predict(argv) == 0 and not calls  # a complete store: nothing left to do


def test_other_run_is_refused_and_overwrite_restarts(setup, tmp_path, monkeypatch, capsys):
    out = tmp_path / "hr.zarr"
    argv = [setup["lr"], "--model", setup["fit"], "--out", out, "--tile", 32]
    count_fields(monkeypatch, fail_after=2)
    assert run_predict(argv) == 130
    capsys.readouterr()
    for changed in (
        [setup["other"], *argv[1:]],  # other inputs
        [*argv[:-1], 16],  # other options
        [setup["lr"], "--model", setup["texture"], "--out", out, "--tile", 32],  # another model
    ):
        assert run_predict(changed) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "other inputs, model or options: pass --overwrite" in err, err
    calls = count_fields(monkeypatch)
    assert run_predict([setup["other"], *argv[1:], "--overwrite"]) == 0
    assert len(calls) == 3 * len(LEVELS)  # started afresh
    assert zarr.open_group(str(out), mode="r").attrs["complete"] is True


def test_members_along_realization(setup, tmp_path):
    out = tmp_path / "members.zarr"
    nc = tmp_path / "members.nc"
    for path in (out, nc):
        argv = [setup["lr"], "--model", setup["texture"], "--out", path, "--tile", 32, "--members", 2, "--seed", 3]
        assert run_predict(argv) == 0
    with xr.open_dataset(nc) as expected, xr.open_zarr(out) as zr:
        assert (
            zr["r"].dims
            == expected["r"].dims
            == ("realization", "valid_time", "pressure_level", "latitude", "longitude")
        )
        assert zarr.open_array(str(out), path="r", mode="r").chunks == (1, 8, 1, 128, 168)
        np.testing.assert_array_equal(zr["realization"].values, [0, 1])
        assert zr["realization"].attrs == expected["realization"].attrs
        np.testing.assert_allclose(zr["r"].values, expected["r"].values, rtol=0, atol=0)
