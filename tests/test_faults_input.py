"""Bad input a user meets in the first weeks: one line, exit 2, nothing written; or, for patches, said plainly.

Beam runners and options, download ranges and area order, export versions and manifests of
another build, hand-edited manifests (counts, paths out of the build folder), evaluate's map
dates, a constant training field, and what a patch stride larger than the patch drops.
"""

import datetime
import json

import numpy as np
import pytest
from era5_samples import LAT, LON, REGION_ARGS, SPLIT_ARGS, hourly, known_values, write_era5
from test_export import make_fit_folder, make_manifest
from test_faults_files import evaluate_cli, one_error_line
from tiny_runs import write_config

from hsr_keras import export, fit
from hsr_keras.evaluation import engine
from hsr_keras.models.model_files import resolve
from hsr_keras.serving import saved_model as serving
from tfrecords_builder import build as build_module
from tfrecords_builder import download
from tfrecords_builder.build import main as build_main
from tfrecords_builder.contract.manifest import read_manifest, write_readable_json


@pytest.fixture
def era5(tmp_path):
    return write_era5(tmp_path / "era5.nc", hourly("2020-01-01", 4))


# ----------------------------------------------------------------------------- Beam


@pytest.mark.parametrize(
    "options, message",
    [
        (["--beam-runner", "NoSuchRunner"], "--beam-runner NoSuchRunner: Unexpected pipeline runner: NoSuchRunner."),
        (["--direct_num_workrs=2"], "unknown Beam pipeline option --direct_num_workrs=2 (did you mean "),
        (
            ["--direct_num_workers=abc"],
            "Beam pipeline options: argument --direct_num_workers: invalid int value: 'abc'",
        ),
        (["--beam-runner", "DataflowRunner"], "--beam-runner DataflowRunner needs --temp_location gs://BUCKET/PATH"),
        (
            ["--beam-runner", "DataflowRunner", "--temp_location", "gs://my-bucket/tmp"],
            "Beam pipeline options for DataflowRunner: Missing required option: project; Missing required option: region",
        ),
    ],
)
def test_beam_runner_and_options_are_checked_before_anything_starts(
    era5, tmp_path, capsys, monkeypatch, options, message
):
    """The issue's cases: a 33-line traceback and an empty folder; a warning; a 135-line usage."""
    pytest.importorskip("apache_beam")
    monkeypatch.setattr(build_module, "open_source", pytest.fail)
    out = tmp_path / "out"
    argv = [str(era5), "--out", str(out), *REGION_ARGS, *SPLIT_ARGS, "--quiet", "--runner", "beam", *options]
    assert build_main(argv) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert not out.exists()


# ----------------------------------------------------------------------------- download


@pytest.mark.parametrize(
    "args, message",
    [
        (["--years", str(datetime.date.today().year + 1)], f"is not one of 1940 to {datetime.date.today().year}"),
        (["--years", "1939"], "year 1939 is not one of 1940 to"),
        (["--start", "2999-01-01", "--end", "2999-01-02"], "ERA5 runs from 1940-01-01 to about five days before today"),
        (["--years", "2019", "--attempts", "0", "--dry-run"], "attempts must be a whole number of at least 1"),
        (
            ["--years", "2019", "--area", "37", "105", "52.75", "120.75"],
            "--area takes north west south east (the CDS's order); --lat MIN MAX --lon MIN MAX (the builder's) also work",
        ),
    ],
)
def test_download_ranges_are_one_line(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setattr(download, "_client", pytest.fail)
    assert download.main(["--out", str(tmp_path / "era5"), *args]) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "era5").exists()


def test_download_takes_the_builders_lat_and_lon(tmp_path, capsys):
    requests = []
    for region in (["--area", "52.75", "105", "37", "120.75"], ["--lat", "37", "52.75", "--lon", "105", "120.75"]):
        assert download.main(["--out", str(tmp_path), "--years", "2019", "--dry-run", *region]) == 0
        requests.append([json.loads(line)["request"] for line in capsys.readouterr().out.splitlines()])
    assert requests[0] == requests[1] and requests[0][0]["area"] == [52.75, 105.0, 37.0, 120.75]


# ----------------------------------------------------------------------------- patches


def test_a_stride_larger_than_the_patch_says_what_it_drops(tmp_path, capsys):
    """The issue's case: 75 % of the domain dropped, and the summary said '0 skipped'."""
    times = hourly("2020-01-01", 4)
    path = write_era5(tmp_path / "era5.nc", times, values=known_values(times.values, LAT, LON)[:, None])
    region = ["--lat", "40", "44.75", "--lon", "110", "114.75"]  # 20 x 20
    argv = [str(path), "--out", str(tmp_path / "out"), *region, *SPLIT_ARGS, "--scale", "4"]
    assert build_main([*argv, "--patch-size", "4", "--patch-stride", "8"]) == 0
    patches = read_manifest(tmp_path / "out")["patches"]
    assert (patches["count"], patches["dropped_cells"], patches["coverage"]) == (9, 400 - 144, 0.36)
    summary = capsys.readouterr().out
    assert "patches: 9 of 4x4 grid points every 8 cover 36.0% of the domain; 256 grid points are in no patch" in summary


# ----------------------------------------------------------------------------- export


def test_export_version_7_beside_007_is_refused(tmp_path, capsys, monkeypatch):
    fit_folder = make_fit_folder(tmp_path / "fit")
    (tmp_path / "saved_models" / "hsr" / "007").mkdir(parents=True)
    monkeypatch.setattr(serving.model_files, "load_generator", pytest.fail)
    assert export.main([str(fit_folder), "--out", str(tmp_path / "saved_models"), "--version", "7", "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"version 7 already exists at {tmp_path / 'saved_models' / 'hsr' / '007'}" in line
    (tmp_path / "saved_models" / "hsr" / "007" / "saved_model.pb").write_bytes(b"")
    assert resolve(tmp_path / "saved_models" / "hsr") == ("saved_model", tmp_path / "saved_models" / "hsr" / "007")


def test_export_with_the_manifest_of_another_build_is_refused(tmp_path, capsys):
    fit_folder = make_fit_folder(tmp_path / "fit", mean=50.0, std=25.0)
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps(make_manifest(mean=61.2, std=25.0)))
    out = tmp_path / "saved_models"
    assert export.main([str(fit_folder), "--manifest", str(other), "--out", str(out), "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "the model normalises with mean 50, but the training mean in" in line and "is 61.2" in line
    assert "that is the manifest of another build" in line
    assert not out.exists()


# ----------------------------------------------------------------------------- hand-edited manifests


def edit(folder, change):
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    write_readable_json(manifest, folder / "manifest.json")


def _days(manifest):
    manifest["splits"]["test"]["days"] = 40


def _examples(manifest):
    manifest["splits"]["test"]["examples"] = 3 * manifest["splits"]["test"]["days"]


def _counts_of_other_shards(manifest):
    manifest["splits"]["test"]["examples"] = manifest["splits"]["test"]["days"] = 3


def _shard_outside(manifest):
    manifest["splits"]["test"]["shards"][0] = "../elsewhere/" + manifest["splits"]["test"]["shards"][0]


def _climatology_elsewhere(manifest):
    manifest["climatology"] = {"file": "/tmp/climatology.npy", "levels": ["300"]}


@pytest.mark.parametrize(
    "change, message",
    [
        (_days, "split 'test' records 40 days between 2019-01-30 and 2019-02-02, which hold 4"),
        (_examples, "split 'test' records 12 examples of 4 days, where each day gives 1 to 1"),
        (_counts_of_other_shards, "split 'test' in {folder} holds 4 records, the manifest records 3"),
        (_shard_outside, "split 'test' names the shard '../elsewhere/test-00000-of-00004.tfrecord.gz', which is not a"),
        (_climatology_elsewhere, "names its climatology '/tmp/climatology.npy': a build's files lie in its folder"),
    ],
)
def test_a_hand_edited_manifest_is_one_line(sharded_build_copy, tmp_path, capsys, change, message):
    """The issue's cases: a 55-line traceback, shards read outside the build, an absolute path used as is."""
    edit(sharded_build_copy, change)
    assert evaluate_cli(sharded_build_copy, tmp_path / "out") == 2
    line = one_error_line(capsys.readouterr().err)
    assert message.format(folder=sharded_build_copy) in line and "rebuild the data" in line
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- evaluate, fit


@pytest.mark.parametrize(
    "dates, message",
    [
        (
            ["2019-03-01"],
            "--map-dates 2019-03-01 is outside split 'test' (2019-01-30 to 2019-02-02): choose days in it",
        ),
        (["2019-01-31", "2019-1-31"], "--map-dates '2019-1-31' is not a day like 2022-01-31"),
    ],
)
def test_map_dates_outside_the_split_are_one_line(sharded_build, tmp_path, capsys, monkeypatch, dates, message):
    """The issue's case: they were ignored without a word."""
    monkeypatch.setattr(engine, "evaluate_methods", pytest.fail)
    assert evaluate_cli(sharded_build, tmp_path / "out", "--map-dates", *dates) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_map_dates_skipped_by_the_build_are_one_line(tmp_path, capsys):
    times = hourly("2020-01-01", 4)
    keep = np.ones(len(times), bool)
    keep[48 + 3] = False  # 2020-01-03 03:00 missing: the val day is skipped
    path = write_era5(tmp_path / "era5.nc", times[keep], values=known_values(times.values, LAT, LON)[keep][:, None])
    splits = ["--train", "2020-01-01:2020-01-02", "--val", "2020-01-03:2020-01-04", "--test", "none"]
    assert build_main([str(path), "--out", str(tmp_path / "data"), *REGION_ARGS, *splits, "--quiet"]) == 0
    argv = ["--split", "val", "--map-dates", "2020-01-03"]
    assert evaluate_cli(tmp_path / "data", tmp_path / "out", *argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--map-dates 2020-01-03 was skipped by the build (missing 03:00): split 'val' has no record of it" in line


def test_fit_on_a_constant_field_is_one_line_before_anything_is_written(tmp_path, capsys):
    """The issue's case: a traceback, exit 1. The build refuses such data too, unless told to allow it."""
    times = hourly("2020-01-01", 4)
    path = write_era5(tmp_path / "era5.nc", times, values=np.full((len(times), 1, len(LAT), len(LON)), 50.0))
    data = tmp_path / "data"
    argv = [str(path), "--out", str(data), *REGION_ARGS, *SPLIT_ARGS, "--quiet", "--scale", "4"]
    assert build_main([*argv, "--allow-implausible"]) == 0
    assert "it is constant (50 % everywhere) (built anyway: --allow-implausible)" in capsys.readouterr().err
    out = tmp_path / "run"
    assert fit.main(["--data", str(data), "--config", str(write_config(tmp_path / "c.json")), "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"the train split of {data} has standard deviation 0.0: a constant field cannot be normalised" in line
    assert not out.exists()
