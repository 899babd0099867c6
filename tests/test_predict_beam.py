"""`predict --runner beam`: RunInference on DirectRunner writes the local Zarr predict's store, resumable alike."""

import numpy as np
import pytest
import xarray as xr
import zarr
from test_beam_cloud import DATAFLOW, dataflow_service_stub  # noqa: F401 (a fixture)
from test_predict import LAT, LEVELS, LON, LR_RES, run_predict
from test_predict_zarr import DAYS, count_fields

from hsr_keras.serving import zarr_store
from tfrecords_builder import synthetic

BEAM = ["--runner", "beam"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny generator without and one with noise, three days of LR input, their local Zarr predictions."""
    from test_export import make_fit_folder

    root = tmp_path_factory.mktemp("predict_beam")
    grid = dict(lat_bounds=LAT, lon_bounds=LON, resolution=LR_RES, levels=LEVELS)
    lr = synthetic.write_synthetic(root / "lr", *DAYS, style="new", per="all", interval_hours=3, **grid)[0]
    fit = make_fit_folder(root / "fit", global_skip=True)
    texture = make_fit_folder(root / "texture", global_skip=True, noise="texture", noise_stddev=0.3)
    local = root / "local.zarr"
    assert run_predict([lr, "--model", fit, "--out", local, "--tile", 32]) == 0
    return {"root": root, "lr": lr, "fit": fit, "texture": texture, "local": local}


def assert_same_store(got, expected):
    """Same variables, values (bit for bit), chunks and attributes, but for the history line and fingerprint."""
    with xr.open_zarr(expected) as want, xr.open_zarr(got) as zr:
        assert zr.sizes == want.sizes
        for name in want.variables:
            np.testing.assert_array_equal(zr[name].values, want[name].values, err_msg=name)
            assert zr[name].attrs == want[name].attrs, name
        ignore = ("history", "hsr_fingerprint")
        assert {k: v for k, v in zr.attrs.items() if k not in ignore} == {
            k: v for k, v in want.attrs.items() if k not in ignore
        }
    got_r, want_r = zarr.open_array(str(got), path="r", mode="r"), zarr.open_array(str(expected), path="r", mode="r")
    assert got_r.chunks == want_r.chunks


def test_beam_store_is_the_local_store(setup, tmp_path):
    out = tmp_path / "beam.zarr"
    assert run_predict([setup["lr"], "--model", setup["fit"], "--out", out, "--tile", 32, *BEAM]) == 0
    group = zarr.open_group(str(out), mode="r")
    assert group.attrs["complete"] is True and group.metadata.consolidated_metadata is not None
    assert not zarr_store.done_folder(out).exists()
    assert_same_store(out, setup["local"])


def test_beam_resumes_a_killed_local_store(setup, tmp_path, monkeypatch):
    out = tmp_path / "hr.zarr"
    argv = [setup["lr"], "--model", setup["fit"], "--out", out, "--tile", 32]
    count_fields(monkeypatch, fail_after=3)  # the first day (2 levels) written, killed inside the second
    assert run_predict(argv) == 130
    calls = count_fields(monkeypatch)  # DirectRunner runs the pipeline in this process
    assert run_predict([*argv, *BEAM]) == 0
    assert len(calls) == 2 * len(LEVELS)  # the second and third days only
    assert_same_store(out, setup["local"])
    calls = count_fields(monkeypatch)
    assert run_predict([*argv, *BEAM]) == 0 and not calls  # complete: nothing left


@pytest.mark.slow
def test_beam_members_on_two_worker_processes(setup, tmp_path):
    argv = [setup["lr"], "--model", setup["texture"], "--tile", 32, "--members", 2, "--seed", 3]
    local, beam = tmp_path / "local.zarr", tmp_path / "beam.zarr"
    assert run_predict([*argv, "--out", local]) == 0
    workers = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    assert run_predict([*argv, "--out", beam, *BEAM, *workers]) == 0
    assert_same_store(beam, local)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--runner", "beam", "--beam-runner", "NoSuchRunner"], "--beam-runner NoSuchRunner"),
        (["--runner", "beam", "--beam-runner", "DataflowRunner"], "needs --temp_location gs://BUCKET/PATH"),
    ],
)
def test_bad_beam_options_are_one_line(setup, tmp_path, capsys, extra, message):
    out = tmp_path / "hr.zarr"
    assert run_predict([setup["lr"], "--model", setup["fit"], "--out", out, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_beam_needs_a_zarr_out(setup, tmp_path, capsys):
    out = tmp_path / "hr.nc"
    assert run_predict([setup["lr"], "--model", setup["fit"], "--out", out, *BEAM]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--runner beam writes a Zarr store" in err, err
    assert list(tmp_path.iterdir()) == []


def test_beam_options_need_runner_beam(setup, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        run_predict([setup["lr"], "--model", setup["fit"], "--out", tmp_path / "hr.zarr", "--direct_num_workers=2"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --direct_num_workers=2" in capsys.readouterr().err


def test_a_workers_bad_input_is_one_line(setup, tmp_path, capsys):
    grid = dict(lat_bounds=LAT, lon_bounds=LON, resolution=LR_RES, levels=LEVELS)
    lr = synthetic.write_synthetic(tmp_path / "lr", *DAYS, style="new", per="all", interval_hours=3, **grid)[0]
    with xr.open_dataset(lr) as ds:
        bad = ds.load()
    bad["r"][9, 0] = np.nan  # the second day, first level
    bad.to_netcdf(tmp_path / "bad.nc")
    out = tmp_path / "hr.zarr"
    assert run_predict([tmp_path / "bad.nc", "--model", setup["fit"], "--out", out, "--tile", 32, *BEAM]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing or non-finite values at 2019-01-02T03:00:00" in err, err
    assert zarr.open_group(str(out), mode="r").attrs["complete"] is False


@pytest.mark.slow
def test_beam_with_a_saved_model(setup, tmp_path):
    from hsr_keras import export

    assert export.main([str(setup["fit"]), "--out", str(tmp_path / "saved_models"), "--quiet"]) == 0
    argv = [setup["lr"], "--model", tmp_path / "saved_models" / "hsr", "--tile", 32]
    local, beam = tmp_path / "local.zarr", tmp_path / "beam.zarr"
    assert run_predict([*argv, "--out", local]) == 0
    assert run_predict([*argv, "--out", beam, *BEAM]) == 0
    assert_same_store(beam, local)


def test_beam_finishes_a_store_killed_after_its_last_chunk(setup, tmp_path, monkeypatch):
    out = tmp_path / "hr.zarr"
    argv = [setup["lr"], "--model", setup["fit"], "--out", out, "--tile", 32]
    finish = zarr_store.finish_store

    def killed(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(zarr_store, "finish_store", killed)
    assert run_predict(argv) == 130
    assert len(list(zarr_store.done_folder(out).iterdir())) == 3  # every day written, the store not finished
    monkeypatch.setattr(zarr_store, "finish_store", finish)
    calls = count_fields(monkeypatch)
    assert run_predict([*argv, *BEAM]) == 0 and not calls  # no chunk left: the pipeline only finishes the store
    assert zarr.open_group(str(out), mode="r").attrs["complete"] is True
    assert_same_store(out, setup["local"])


@pytest.mark.usefixtures("dataflow_service_stub")
def test_the_dataflow_job_graph_is_built_offline(setup, tmp_path, monkeypatch):
    """DataflowRunner's own translation with dry_run (test_beam_cloud's stub keeps the job instead of sending it)."""
    from apache_beam.internal import pickler
    from apache_beam.portability.api import beam_runner_api_pb2

    from hsr_keras.serving import beam_prediction

    results = []
    monkeypatch.setattr(beam_prediction, "run_pipeline", lambda pipeline: results.append(pipeline.run()))
    out = tmp_path / "hr.zarr"
    image = ["--sdk_container_image", "example.org/hsr-keras:0.1.0", "--beam-option", "dry_run=True"]
    assert run_predict([setup["lr"], "--model", setup["fit"], "--out", out, "--tile", 32, *DATAFLOW, *image]) == 0
    (result,) = results
    transforms = result.job.proto.components.transforms
    names = {t.unique_name for t in transforms.values()}
    assert {"Chunks", "Spread", "Read", "Write", "Count", "Finish"} <= names
    assert any(name.startswith("Predict/") for name in names)  # RunInference's own steps
    (environment,) = result.job.proto.components.environments.values()
    assert beam_runner_api_pb2.DockerPayload.FromString(environment.payload).container_image == image[1]
    read = next(t for t in transforms.values() if t.unique_name == "Read")
    do_fn = pickler.loads(beam_runner_api_pb2.ParDoPayload.FromString(read.spec.payload).do_fn.payload)[0]
    assert isinstance(do_fn, beam_prediction.ReadChunk)  # as a worker unpickles it
    assert do_fn.job.paths == [setup["lr"].resolve()] and do_fn.job.out == str(out)
    assert zarr.open_group(str(out), mode="r").attrs["complete"] is False  # translated, not run


def test_beam_not_installed_is_one_line(setup, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.delitem(sys.modules, "tfrecords_builder.beam_pipeline", raising=False)
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # an import of it fails as when it is not installed
    assert run_predict([setup["lr"], "--model", setup["fit"], "--out", tmp_path / "hr.zarr", *BEAM]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --runner beam needs Apache Beam: pip install hsr-keras[beam]", err
    assert list(tmp_path.iterdir()) == []
