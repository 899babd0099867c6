"""The build as a Beam pipeline: the local build's bytes and manifest, retries that change nothing, no half build."""

import hashlib
import sys

import apache_beam as beam
import numpy as np
import pandas as pd
import pytest
from era5_samples import LAT, LON, known_values, write_era5

from tfrecords_builder import beam_pipeline
from tfrecords_builder import writer as writer_module
from tfrecords_builder.build import main
from tfrecords_builder.contract.manifest import read_manifest
from tfrecords_builder.options import parse_args

REGION = ["--lat", "40", "45", "--lon", "110", "115"]  # 21 x 21: four 8 x 8 patches at scale 4
PATCHES = ["--patch-size", "8", "--patch-stride", "8", "--scale", "4"]
MONTHS = ["--train", "2020-01-01:2020-02-29", "--val", "2020-03-01:2020-03-15", "--test", "2020-03-16:2020-03-31"]
# Several shards per split; multi_threading runs two workers in this process, so monkeypatches reach them.
DIRECT = ["--runner", "beam", "--direct_num_workers=2", "--direct_running_mode=multi_threading"]
# The real sample: one day of 3 hourly steps, 9 levels, 45 x 133 cells in 16 patches of 16 x 16 (manifest has 144 records).
SAMPLE = ["--lat", "49", "60", "--lon", "44", "77", "--patch-size", "16", "--scale", "8", "--steps", "3"]
SAMPLE += ["--interval-hours", "1", "--levels", "100", "125", "150", "175", "200", "225", "250", "300", "350"]
SAMPLE += ["--train", "2022-11-11:2022-11-11", "--val", "none", "--test", "none"]


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    """Three months of 3-hourly data with a NaN on 2020-01-20 06:00 in patch 1, and a missing step on 2020-03-05."""
    times = pd.date_range("2020-01-01", "2020-03-31 21:00", freq="3h")
    field = known_values(times.values, LAT, LON) + 10.0 * np.sin(np.arange(len(times)) / 7.0)[:, None, None]
    field[(19 * 8) + 2, -2, 10] = np.nan
    keep = np.ones(len(times), bool)
    keep[(64 * 8) + 3] = False
    return write_era5(tmp_path_factory.mktemp("months") / "era5.nc", times[keep], values=field[keep][:, None])


def build(inputs, out, *args):
    assert main([str(inputs), "--out", str(out), "--quiet", *args]) == 0
    return read_manifest(out)


def files(folder):
    """{name: sha256} of a build's shards and climatology (the manifest is compared key by key)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name != "manifest.json"
    }


def assert_same_build(local, beam_built, local_dir, beam_dir):
    """Identical shards and manifests; the climatology to 1e-4 (its float64 sums are added in another order)."""
    local_files, beam_files = files(local_dir), files(beam_dir)
    assert set(local_files) == set(beam_files)
    assert {name: digest for name, digest in local_files.items() if name.endswith(".tfrecord.gz")} == {
        name: digest for name, digest in beam_files.items() if name.endswith(".tfrecord.gz")
    }
    for key in set(local) - {"command", "_dir", "climatology"}:
        assert local[key] == beam_built[key], key
    assert local["climatology"].keys() == beam_built["climatology"].keys()
    for level, values in local["climatology"].items():
        np.testing.assert_allclose(beam_built["climatology"][level], values, rtol=0, atol=1e-4)


def test_the_real_sample_builds_the_same_bytes_on_beam(real_era5, tmp_path):
    local = build(real_era5, tmp_path / "local", *SAMPLE)
    on_beam = build(real_era5, tmp_path / "beam", *SAMPLE, *DIRECT)
    assert local["patches"]["count"] == 16 and local["splits"]["train"]["examples"] == 144
    assert_same_build(local, on_beam, tmp_path / "local", tmp_path / "beam")
    assert on_beam["stats"] == local["stats"]  # merged in shard order: the same float64 numbers


def test_predictors_and_static_fields_build_the_same_bytes_on_beam(real_era5, tmp_path):
    extras = ["--predictors", "t@300", "q@300", "u@300", "v@300", "z@250", "--static", "latlon", "--time-encoding"]
    local = build(real_era5, tmp_path / "local", *SAMPLE, *extras)
    on_beam = build(real_era5, tmp_path / "beam", *SAMPLE, *extras, *DIRECT)
    assert local["schema_version"] == 3 and len(local["predictors"]) == 5
    assert_same_build(local, on_beam, tmp_path / "local", tmp_path / "beam")
    assert on_beam["predictors"] == local["predictors"]  # merged in shard order: the same float64 numbers
    assert files(tmp_path / "local")["static.npy"] == files(tmp_path / "beam")["static.npy"]


def test_predictor_statistics_of_many_shards_are_the_local_builds_on_beam(months, tmp_path):
    args = [*REGION, *PATCHES, *MONTHS, "--shard-mb", "0.05", "--predictors", "r@300"]  # the target as a predictor
    local = build(months, tmp_path / "local", *args, "--workers", "2")
    on_beam = build(months, tmp_path / "beam", *args, *DIRECT)
    assert len(local["splits"]["train"]["shards"]) > 4
    assert_same_build(local, on_beam, tmp_path / "local", tmp_path / "beam")
    assert on_beam["predictors"] == local["predictors"]


def test_months_of_patches_build_the_same_shards_and_statistics_on_beam(months, tmp_path):
    args = [*REGION, *PATCHES, *MONTHS, "--shard-mb", "0.05"]
    local = build(months, tmp_path / "local", *args, "--workers", "2")
    on_beam = build(months, tmp_path / "beam", *args, *DIRECT)
    train = local["splits"]["train"]
    assert len(train["shards"]) > 4 and len(local["splits"]["test"]["shards"]) > 1
    assert {"date": "2020-01-20", "level": 300, "reason": "NaN at 06:00", "patch": 1} in train["skipped"]
    assert local["splits"]["val"]["skipped"][0]["date"] == "2020-03-05"
    assert_same_build(local, on_beam, tmp_path / "local", tmp_path / "beam")
    assert on_beam["stats"] == local["stats"]
    assert on_beam["command"][-len(DIRECT) :] == DIRECT


def test_a_shard_that_fails_once_is_retried_by_beam_without_a_lost_or_doubled_record(months, tmp_path, monkeypatch):
    # BundleBasedDirectRunner retries a failed bundle, as Dataflow does; the failure comes after a
    # shard's first record, as when a worker dies midway.
    args = [*REGION, *PATCHES, *MONTHS, "--shard-mb", "0.05"]
    local = build(months, tmp_path / "local", *args)
    flag = tmp_path / "failed-once"
    real_write = writer_module.ShardWriter.write

    def fail_once(self, record):
        if self.records == 1 and self.path.name.startswith(".train-00002") and not flag.exists():
            flag.touch()
            raise RuntimeError("worker lost")
        real_write(self, record)

    monkeypatch.setattr(writer_module.ShardWriter, "write", fail_once)
    retried = build(months, tmp_path / "beam", *args, "--runner", "beam", "--beam-runner", "BundleBasedDirectRunner")
    assert flag.exists()
    assert_same_build(local, retried, tmp_path / "local", tmp_path / "beam")


def test_a_failed_pipeline_publishes_nothing_and_keeps_the_earlier_build(months, tmp_path, monkeypatch):
    out = tmp_path / "out"
    args = [*REGION, *PATCHES, *MONTHS, "--shard-mb", "0.05"]
    build(months, out, *args)
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}

    def fail_late(self, record):
        if self.path.name.startswith(".test-00001"):
            raise RuntimeError("worker lost for good")
        real_write(self, record)

    real_write = writer_module.ShardWriter.write
    monkeypatch.setattr(writer_module.ShardWriter, "write", fail_late)
    with pytest.raises(RuntimeError, match="worker lost for good"):
        main([str(months), "--out", str(out), "--quiet", *args, "--shard-mb", "0.02", *DIRECT])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier  # no new shard, manifest or temporary


def test_a_pipeline_stopped_before_its_last_step_leaves_no_manifest(months, tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(beam_pipeline, "publish_build", killed)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="killed"):
        main([str(months), "--out", str(out), "--quiet", *REGION, *PATCHES, *MONTHS, *DIRECT])
    assert not out.exists()  # the folder the build made is removed again


def test_bad_input_is_one_line_and_exit_2_before_the_pipeline_starts(
    months, tmp_path, read_only_folder, monkeypatch, capsys
):
    def no_pipeline(*args, **kwargs):
        raise AssertionError("the pipeline started")

    monkeypatch.setattr(beam, "Pipeline", no_pipeline)
    cases = [
        ([tmp_path / "absent.nc"], "no such file"),
        ([months, "--train", "2021-01-01:2021-01-31"], "split train has no complete days"),
        ([months, "--patch-size", "24"], "a patch of 24x24 grid points is larger than the domain of 21x21"),
        ([months, "--patch-size", "10"], "patch size 10 is not a positive multiple of the scale 4"),
    ]
    for index, (argv, message) in enumerate(cases):
        extra = [*REGION, *PATCHES, *MONTHS, *argv[1:]]
        code = main([str(argv[0]), "--out", str(tmp_path / f"out{index}"), "--quiet", *extra, *DIRECT])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, (message, err)
    unwritable = read_only_folder / "build"
    assert main([str(months), "--out", str(unwritable), "--quiet", *REGION, *PATCHES, *MONTHS, *DIRECT]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(unwritable) in err


def test_bad_input_messages_are_the_local_builds(months, tmp_path, capsys):
    argv = [str(months), *REGION, *MONTHS, "--scale", "4", "--patch-size", "24", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    local = capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "b"), *DIRECT]) == 2
    assert capsys.readouterr().err == local and local.count("\n") == 1


def test_unknown_options_go_to_beam_only_with_the_beam_runner(capsys):
    config = parse_args(["x.nc", "--out", "o", "--runner", "beam", "--direct_num_workers=2", "--project", "p"])
    assert config.runner == "beam"
    assert config.beam_args == ("--runner=DirectRunner", "--project=p", "--direct_num_workers=2")  # --project is named
    dataflow = parse_args(["x.nc", "--out", "o", "--runner", "beam", "--beam-runner", "DataflowRunner"])
    assert dataflow.beam_args == ("--runner=DataflowRunner",)
    assert parse_args(["x.nc", "--out", "o"]).runner == "local"
    with pytest.raises(SystemExit) as stop:
        parse_args(["x.nc", "--out", "o", "--direct_num_workers=2"])
    assert stop.value.code == 2 and "unrecognized arguments: --direct_num_workers=2" in capsys.readouterr().err


def test_without_apache_beam_the_beam_runner_says_what_to_install(months, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "apache_beam", None)
    monkeypatch.delitem(sys.modules, "tfrecords_builder.beam_pipeline")
    assert main([str(months), "--out", str(tmp_path / "out"), "--quiet", *REGION, *MONTHS, "--runner", "beam"]) == 2
    assert capsys.readouterr().err == "error: --runner beam needs Apache Beam: pip install hsr-keras[beam]\n"
    assert not (tmp_path / "out").exists()


def test_a_refused_shard_write_ends_in_one_line_and_exit_2_as_in_the_local_build(months, tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    def refuse(path, options=None):
        raise tf.errors.PermissionDeniedError(None, None, f"{path}; Permission denied")

    monkeypatch.setattr(tf.io, "TFRecordWriter", refuse)
    out = tmp_path / "out"
    assert main([str(months), "--out", str(out), "--quiet", *REGION, *PATCHES, *MONTHS, *DIRECT]) == 2
    # Beam logs the worker's traceback first (on Dataflow the only place it shows); the command ends with the one line.
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("error: cannot write ") and last.endswith("Permission denied")
    assert not out.exists()
