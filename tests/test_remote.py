"""Builds, runs and exports in buckets: `memory://` (fsspec's in-process store) and `file://` URLs, end to end."""

import importlib.util
import json
from pathlib import Path

import fsspec
import numpy as np
import pytest
from tiny_runs import write_config

from tfrecords_builder import build, synthetic
from tfrecords_builder.contract import remote
from tfrecords_builder.contract.manifest import read_manifest

SPLITS = ["--train=2019-01-01:2019-01-12", "--val=2019-01-13:2019-01-16", "--test=none"]


@pytest.fixture(autouse=True)
def _fresh_store_and_cache(tmp_path, monkeypatch):
    """An empty memory:// store and a cache of this test's own."""
    store = fsspec.filesystem("memory").store
    store.clear()
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "cache"))
    yield
    store.clear()


@pytest.fixture(scope="module")
def era5(tmp_path_factory):
    folder = tmp_path_factory.mktemp("era5")
    synthetic.write_synthetic(folder, "2019-01-01", "2019-01-16", interval_hours=3, per="all", seed=3)
    return folder


def memory_files(url):
    """{relative name: bytes} of everything under a memory:// URL."""
    fs, root = remote.filesystem(url)
    return {name: fs.cat_file(remote.join(root, name)) for name in remote.listing(fs, root)}


def folder_files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def without_command(manifest_bytes):
    manifest = json.loads(manifest_bytes)
    manifest.pop("command")
    return manifest


def test_build_to_memory_equals_the_local_build_byte_for_byte(era5, tmp_path):
    local = tmp_path / "local"
    assert build.main([str(era5), "--out", str(local), *SPLITS, "--quiet"]) == 0
    assert build.main([str(era5), "--out", "memory://bucket/era5", *SPLITS, "--quiet"]) == 0
    published = memory_files("memory://bucket/era5")
    here = folder_files(local)
    assert sorted(published) == sorted(here)
    for name in here:
        if name != "manifest.json":
            assert published[name] == here[name], name
    # the manifest differs by the command only (it names its --out)
    assert without_command(published["manifest.json"]) == without_command(here["manifest.json"])
    assert "memory://bucket/era5" in json.loads(published["manifest.json"])["command"]
    # nothing staged is left: not on the bucket, not in the cache
    assert not list((tmp_path / "cache" / "staging").iterdir())


def test_fetch_build_checks_and_reuses_the_cached_copy(era5, tmp_path, monkeypatch):
    assert build.main([str(era5), "--out", "memory://bucket/era5", *SPLITS, "--quiet"]) == 0
    local = remote.fetch_build("memory://bucket/era5")
    assert folder_files(local) == memory_files("memory://bucket/era5")
    assert read_manifest(local)["splits"]["train"]["examples"] == 12
    # a second fetch downloads nothing: the copy is intact
    calls = []
    monkeypatch.setattr(remote, "_download", lambda *args, **kwargs: calls.append(args))
    assert remote.fetch_build("memory://bucket/era5") == local and calls == []
    # a damaged shard in the cache is downloaded again
    monkeypatch.undo()
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "cache"))
    shard = next(local.glob("train-*"))
    good = shard.read_bytes()
    shard.write_bytes(good[:-1])
    remote.fetch_build("memory://bucket/era5")
    assert shard.read_bytes() == good


def test_fetch_build_refuses_a_shard_that_differs_from_its_manifest(era5):
    assert build.main([str(era5), "--out", "memory://bucket/era5", *SPLITS, "--quiet"]) == 0
    fs, root = remote.filesystem("memory://bucket/era5")
    name = next(n for n in remote.listing(fs, root) if n.startswith("train-"))
    fs.pipe_file(remote.join(root, name), b"not a shard")
    with pytest.raises(remote.RemoteError, match=f"{name} differs from its manifest"):
        remote.fetch_build("memory://bucket/era5")


def test_an_interrupted_publish_leaves_the_earlier_build_readable(era5, tmp_path, monkeypatch, capsys):
    assert build.main([str(era5), "--out", "memory://bucket/era5", *SPLITS, "--quiet"]) == 0
    before = memory_files("memory://bucket/era5")
    uploads = []

    def fail_on_the_second(fs, local, path):
        uploads.append(path)
        if len(uploads) == 2:
            raise KeyboardInterrupt  # a kill midway through the upload
        fs.put_file(str(local), path)

    monkeypatch.setattr(remote, "_upload", fail_on_the_second)
    # another build (other dates: other shards, another manifest) to the same URL, cut short
    other = ["--train=2019-01-01:2019-01-10", "--val=2019-01-11:2019-01-16", "--test=none"]
    assert build.main([str(era5), "--out", "memory://bucket/era5", *other, "--quiet"]) == 130
    assert len(uploads) == 2
    assert memory_files("memory://bucket/era5") == before  # the earlier build as it was
    assert all(name.startswith("era5/") for name in memory_files("memory://bucket"))  # the staged files removed
    assert read_manifest(remote.fetch_build("memory://bucket/era5"))["splits"]["train"]["days"] == 12
    # the same command again replaces it
    monkeypatch.undo()
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "cache"))
    assert build.main([str(era5), "--out", "memory://bucket/era5", *other, "--quiet"]) == 0
    assert read_manifest(remote.fetch_build("memory://bucket/era5"))["splits"]["train"]["days"] == 10


def test_a_publish_cut_short_while_copying_leaves_no_manifest(tmp_path, monkeypatch):
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, text in ((old, "old"), (new, "new")):
        folder.mkdir()
        for name in ("a", "b", "manifest.json"):
            (folder / name).write_text(text)
    remote.publish_folder(old, "memory://bucket/f")
    copies = []
    real_copy = remote._copy

    def fail_on_the_second(fs, source, target):
        copies.append(target)
        if len(copies) == 2:
            raise OSError("connection reset")
        real_copy(fs, source, target)

    monkeypatch.setattr(remote, "_copy", fail_on_the_second)
    with pytest.raises(OSError):
        remote.publish_folder(new, "memory://bucket/f")
    # a and b are not both one build's: there is no manifest to trust them
    assert memory_files("memory://bucket/f") == {"a": b"new", "b": b"old"}


def test_file_urls_publish_and_fetch_a_folder_laid_out_like_a_bucket(era5, tmp_path):
    bucket = tmp_path / "bucket"
    url = f"file://{bucket}/era5"
    assert build.main([str(era5), "--out", url, *SPLITS, "--quiet"]) == 0
    assert (bucket / "era5" / "manifest.json").is_file()
    assert not [p for p in (bucket / "era5").iterdir() if p.name.startswith(".")]
    assert folder_files(remote.fetch_build(url)) == folder_files(bucket / "era5")


def test_netcdf_inputs_on_a_bucket_are_fetched_first(era5, tmp_path):
    fs = fsspec.filesystem("memory")
    for path in sorted(era5.glob("*.nc")):
        fs.put_file(str(path), f"/inputs/{path.name}")
    urls = [f"memory://inputs/{p.name}" for p in sorted(era5.glob("*.nc"))]
    out = tmp_path / "from-bucket"
    assert build.main([*urls, "--out", str(out), *SPLITS, "--quiet"]) == 0
    local = tmp_path / "local"
    assert build.main([str(era5), "--out", str(local), *SPLITS, "--quiet"]) == 0
    shards = sorted(p.name for p in local.glob("*.tfrecord.gz"))
    assert shards and all((out / n).read_bytes() == (local / n).read_bytes() for n in shards)


@pytest.mark.parametrize(
    "argv",
    [
        ["--out", "s3://bucket/era5"],
        ["--out", "memory://bucket/era5", "--runner", "beam", "--beam-runner", "DataflowRunner"],
    ],
)
def test_bucket_outputs_refused_in_one_line(era5, tmp_path, capsys, argv):
    if argv[1].startswith("s3://") and importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed")
    code = build.main([str(era5), *argv, *SPLITS, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert ("s3:// needs s3fs: pip install hsr-keras[s3]" in err) or ("DataflowRunner" in err)
    assert memory_files("memory://bucket") == {}
    assert not (tmp_path / "cache" / "staging").exists() or not list((tmp_path / "cache" / "staging").iterdir())


@pytest.fixture
def build_url(era5):
    assert build.main([str(era5), "--out", "memory://bucket/era5", *SPLITS, "--quiet"]) == 0
    return "memory://bucket/era5"


@pytest.mark.slow  # about 17 s: a fit and two SavedModel exports
def test_build_fit_export_with_memory_urls_in_and_out(build_url, tmp_path, capsys):
    from hsr_keras import export, fit
    from hsr_keras.models.model_files import load_generator
    from hsr_keras.training.data import load_split

    config = write_config(tmp_path / "tiny.json", epochs=1)
    run = "memory://bucket/runs/tiny"
    assert fit.main(["--data", build_url, "--config", str(config), "--out", run, "--quiet"]) == 0
    published = memory_files(run)
    for name in ("config.json", "run.json", "generator.keras", "best.json", "history.csv", "evaluation.json"):
        assert name in published, name
    assert not [name for name in published if name.startswith("backup/")]  # a finished run
    assert published["history.csv"].decode().count("\n") == 2  # header and one epoch
    # the run trained on the cached copy of the build, which the published run names by its URL
    staged = remote.staging_folder("runs", run)
    assert json.loads((staged / "run.json").read_text())["data"] == str(remote.fetch_build(build_url).resolve())
    assert json.loads(published["run.json"])["data"] == build_url

    assert export.main([run, "--out", "memory://bucket/models", "--quiet"]) == 0
    assert export.main([run, "--out", "memory://bucket/models", "--quiet"]) == 0
    versions = memory_files("memory://bucket/models/hsr")
    assert {name.split("/")[0] for name in versions} == {"1", "2"}
    assert "1/saved_model.pb" in versions and "1/assets/hsr_manifest.json" in versions
    capsys.readouterr()
    assert export.main([run, "--out", "memory://bucket/models", "--version", "2", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: version 2 already exists at memory://bucket/models/hsr: choose another --version or omit it"
    )

    # the published SavedModel serves what the published generator predicts
    import tensorflow as tf

    served = tf.saved_model.load(str(remote.fetch_folder("memory://bucket/models/hsr/1", tmp_path / "v1")))
    generator = load_generator(remote.fetch_input(f"{run}/generator.keras"))
    lr, _, _ = load_split(remote.fetch_build(build_url), "val", limit=2)
    expected = generator.predict(lr[..., None], verbose=0)
    got = served.signatures["serving_default"](lr=tf.constant(lr[..., None]))["hr"].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-3)


@pytest.mark.slow
def test_a_run_at_a_url_resumes_from_it_on_another_machine(build_url, tmp_path, monkeypatch):
    from hsr_keras import fit

    config = write_config(tmp_path / "tiny.json", epochs=2)
    run = "memory://bucket/runs/resumed"
    argv = ["--data", build_url, "--config", str(config), "--out", run, "--quiet"]
    real = fit._publishing_callback
    epochs_trained = []

    def counting(stop):
        def make(*args):
            callback = real(*args)
            publish = callback.on_epoch_end

            def on_epoch_end(epoch, logs=None):
                publish(epoch, logs)
                epochs_trained.append(epoch)
                if stop:
                    raise KeyboardInterrupt  # killed once the epoch is published

            callback.on_epoch_end = on_epoch_end
            return callback

        return make

    monkeypatch.setattr(fit, "_publishing_callback", counting(stop=True))
    assert fit.main(argv) == 130
    first = memory_files(run)
    assert "backup/training_metadata.json" in first and first["history.csv"].decode().count("\n") == 2
    monkeypatch.setattr(fit, "_publishing_callback", counting(stop=False))
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "other-machine"))  # no staging folder, no cached build
    assert fit.main(argv) == 0
    assert epochs_trained == [0, 1]  # epoch 0, then only epoch 1 after the resume
    done = memory_files(run)
    assert done["history.csv"].decode().startswith(first["history.csv"].decode())
    assert done["history.csv"].decode().count("\n") == 3
    assert not [name for name in done if name.startswith("backup/")]


def test_predict_from_and_to_memory_urls(predict_setup, tmp_path, capsys):
    import xarray as xr

    from hsr_keras import predict

    remote.publish_folder(predict_setup["fit"], "memory://bucket/runs/fit", marker=None)
    lr = predict_setup["lr"]
    fsspec.filesystem("memory").put_file(str(lr), f"/inputs/{lr.name}")
    common = ["--model", "memory://bucket/runs/fit", "--tile", "32", "--quiet"]
    assert predict.main([f"memory://inputs/{lr.name}", *common, "--out", "memory://bucket/out/hr.zarr"]) == 0
    assert predict.main([f"memory://inputs/{lr.name}", *common, "--out", "memory://bucket/out/hr.nc"]) == 0
    here = tmp_path / "hr.nc"
    assert (
        predict.main([str(lr), "--model", str(predict_setup["fit"]), "--tile", "32", "--out", str(here), "--quiet"])
        == 0
    )
    with (
        xr.open_dataset(here) as expected,
        xr.open_dataset(remote.fetch_input("memory://bucket/out/hr.nc")) as nc,
        xr.open_zarr(remote.fetch_copy("memory://bucket/out/hr.zarr")) as zr,
    ):
        np.testing.assert_array_equal(nc["r"].values, expected["r"].values)
        np.testing.assert_array_equal(zr["r"].values, expected["r"].values)
        assert zr.attrs["complete"] is True
    published = memory_files("memory://bucket/out/hr.zarr")
    assert "zarr.json" in published and not [name for name in published if ".done" in name]
    capsys.readouterr()
    assert predict.main([f"memory://inputs/{lr.name}", *common, "--out", "memory://bucket/out/hr.zarr"]) == 2
    assert (
        capsys.readouterr().err.strip() == "error: memory://bucket/out/hr.zarr exists: pass --overwrite to replace it"
    )


def test_beam_direct_runner_builds_to_a_url(era5, tmp_path):
    pytest.importorskip("apache_beam")
    local = tmp_path / "local"
    assert build.main([str(era5), "--out", str(local), *SPLITS, "--quiet"]) == 0
    argv = [str(era5), "--out", "memory://bucket/beam", *SPLITS, "--quiet", "--runner", "beam"]
    assert build.main(argv) == 0
    published, here = memory_files("memory://bucket/beam"), folder_files(local)
    assert sorted(published) == sorted(here)
    assert all(published[name] == here[name] for name in here if name.endswith(".tfrecord.gz"))
    assert json.loads(published["manifest.json"])["splits"] == json.loads(here["manifest.json"])["splits"]


@pytest.mark.parametrize(
    "command, argv",
    [
        ("fit", ["--data", "s3://bucket/era5", "--out", "{tmp}/run"]),
        ("fit", ["--data", "memory://bucket/era5", "--out", "s3://bucket/run"]),  # refused before the download
        ("export", ["s3://bucket/runs/tiny", "--out", "{tmp}/models"]),
        ("export", ["memory://bucket/runs/tiny", "--out", "s3://bucket/models"]),
        ("predict", ["s3://bucket/lr.nc", "--model", "{tmp}/model", "--out", "{tmp}/hr.nc"]),
        ("predict", ["{tmp}/lr.nc", "--model", "{tmp}/model", "--out", "s3://bucket/hr.zarr"]),
    ],
)
def test_a_missing_fsspec_backend_is_one_line_and_writes_nothing(tmp_path, capsys, command, argv):
    import importlib

    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed")
    main = importlib.import_module(f"hsr_keras.{command}").main
    assert main([arg.format(tmp=tmp_path) for arg in argv] + ["--quiet"]) == 2
    assert capsys.readouterr().err == "error: s3:// needs s3fs: pip install hsr-keras[s3]\n"
    assert list(tmp_path.iterdir()) == []  # no output, no cache


def test_fetch_input_fetches_a_replaced_file_again(tmp_path):
    fs = fsspec.filesystem("memory")
    fs.pipe_file("/bucket/run/generator.keras", b"epoch 1")
    first = remote.fetch_input("memory://bucket/run/generator.keras")
    assert first.read_bytes() == b"epoch 1"
    assert remote.fetch_input("memory://bucket/run/generator.keras") == first  # the same version: the same copy
    fs.pipe_file("/bucket/run/generator.keras", b"epoch 2")  # the same size, other bytes
    assert remote.fetch_input("memory://bucket/run/generator.keras").read_bytes() == b"epoch 2"


@pytest.mark.slow
def test_a_run_whose_publish_was_cut_short_resumes_only_from_its_whole_staged_copy(
    build_url, tmp_path, monkeypatch, capsys
):
    from hsr_keras import fit

    config = write_config(tmp_path / "tiny.json", epochs=2)
    run = "memory://bucket/runs/cut"
    argv = ["--data", build_url, "--config", str(config), "--out", run, "--quiet"]
    histories = []
    real_copy = remote._copy

    def fail_in_the_second_publish(fs, source, target):
        histories.extend([target] if target.endswith("/history.csv") else [])
        if len(histories) == 2:
            raise OSError("connection reset")  # the epoch-2 publish, in its copy phase
        real_copy(fs, source, target)

    monkeypatch.setattr(remote, "_copy", fail_in_the_second_publish)
    assert fit.main(argv) == 2
    monkeypatch.undo()
    cut = memory_files(run)
    assert "backup/training_metadata.json" not in cut and any(name.startswith("backup/") for name in cut)

    capsys.readouterr()
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "other-machine"))
    assert fit.main(argv) == 2  # the URL's copy may mix two epochs, and this machine has no whole one
    assert capsys.readouterr().err == (
        f"error: {run} holds a run whose last publish was cut short (backup/training_metadata.json missing): resume "
        "it on the machine that trained it, whose staged copy is whole, or add --overwrite\n"
    )
    assert not list((tmp_path / "other-machine").rglob("history.csv"))

    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "cache"))  # the machine that trained it
    assert fit.main(argv) == 0
    done = memory_files(run)
    assert done["history.csv"].decode().count("\n") == 3 and "generator.keras" in done
    assert not any(name.startswith("backup/") for name in done)


@pytest.mark.slow
def test_a_killed_zarr_predict_to_a_url_resumes_from_its_staging_copy(tmp_path, monkeypatch):
    import xarray as xr
    from test_export import make_fit_folder
    from test_predict import LAT, LEVELS, LON, LR_RES
    from test_predict_zarr import count_fields

    from hsr_keras import predict

    grid = dict(lat_bounds=LAT, lon_bounds=LON, resolution=LR_RES, levels=LEVELS)
    lr = synthetic.write_synthetic(tmp_path / "lr", "2019-01-01", "2019-01-03", per="all", interval_hours=3, **grid)[0]
    fsspec.filesystem("memory").put_file(str(lr), f"/inputs/{lr.name}")
    remote.publish_folder(make_fit_folder(tmp_path / "fit", global_skip=True), "memory://bucket/fit", marker=None)
    argv = [f"memory://inputs/{lr.name}", "--model", "memory://bucket/fit", "--tile", "32", "--quiet"]
    argv += ["--out", "memory://bucket/hr.zarr"]
    count_fields(monkeypatch, fail_after=3)  # the first day (2 levels) written, killed inside the second
    assert predict.main(argv) == 130
    assert memory_files("memory://bucket/hr.zarr") == {}  # published only when complete
    calls = count_fields(monkeypatch)
    assert predict.main(argv) == 0
    assert len(calls) == 2 * len(LEVELS)  # the second and third days only
    here = tmp_path / "hr.nc"
    assert predict.main([str(lr), "--model", str(tmp_path / "fit"), "--tile", "32", "--quiet", "--out", str(here)]) == 0
    with xr.open_dataset(here) as nc, xr.open_zarr(remote.fetch_copy("memory://bucket/hr.zarr")) as zr:
        np.testing.assert_array_equal(zr["r"].values, nc["r"].values)
