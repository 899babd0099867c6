"""The build end to end: records back equal to the source, splits, statistics, atomicity, bad input."""

import hashlib
import importlib.util
import json
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
import xarray as xr
from conftest import REAL_ERA5
from era5_samples import LAT, LON, REGION_ARGS, SPLIT_ARGS, hourly, known_values, write_era5
from era5_stores import open_sample, write_arco_zarr, write_grib

from tfrecords_builder import __main__ as cli
from tfrecords_builder import cutting
from tfrecords_builder import writer as writer_module
from tfrecords_builder.build import main
from tfrecords_builder.contract import files
from tfrecords_builder.contract.manifest import read_manifest
from tfrecords_builder.contract.schema import parse_example

# Every key that manifest.py's docstring lists.
MANIFEST_KEYS = {
    "schema_version",
    "created_by",
    "command",
    "variable",
    "units",
    "levels",
    "region",
    "steps_per_day",
    "interval_hours",
    "step_hours",
    "scale",
    "degradation",
    "hr_shape",
    "lr_shape",
    "grid",
    "splits",
    "stats",
    "climatology",
    "sources",
    "patches",
}
SPLIT_KEYS = {"start", "end", "examples", "days", "shards", "bytes", "skipped", "skipped_count"}


@pytest.fixture
def era5(tmp_path):
    """A classic-layout file of 4 hourly days from 2020-01-01, matching `SPLIT_ARGS`."""
    return write_era5(tmp_path / "era5.nc", hourly("2020-01-01", 4))


def run(inputs, out, *extra, region=REGION_ARGS, splits=SPLIT_ARGS):
    argv = [str(p) for p in (inputs if isinstance(inputs, list) else [inputs])]
    code = main([*argv, "--out", str(out), *region, *splits, "--quiet", *extra])
    assert code == 0
    return read_manifest(out)


def records(manifest, split):
    files = [f"{manifest['_dir']}/{name}" for name in manifest["splits"][split]["shards"]]
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    corner = manifest["patches"]["corners"][0]
    parsed = [parse_example(r, manifest["hr_shape"], manifest["lr_shape"], corner) for r in dataset]
    return [{key: value.numpy() for key, value in p.items()} for p in parsed]


def shard_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "manifest.json"}


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_round_trip_gives_the_source_values_at_the_right_times_and_places(era5, tmp_path):
    manifest = run(era5, tmp_path / "out")
    assert MANIFEST_KEYS <= set(manifest) and SPLIT_KEYS <= set(manifest["splits"]["train"])
    lat, lon = np.array(manifest["grid"]["lat"]), np.array(manifest["grid"]["lon"])
    np.testing.assert_array_equal(lat, np.arange(41.0, 44.8, 0.25))  # ascending: row 0 is south
    np.testing.assert_array_equal(lon, np.arange(111.0, 114.8, 0.25))
    assert manifest["grid"]["lr_lat"] == [41.0, 43.0] and manifest["grid"]["lr_lon"] == [111.0, 113.0]
    assert manifest["hr_shape"] == [8, 16, 16] and manifest["lr_shape"] == [8, 2, 2]
    assert manifest["step_hours"] == [0, 3, 6, 9, 12, 15, 18, 21] and manifest["levels"] == [300]
    train = records(manifest, "train")
    assert [r["time"][0] for r in train] == [1577836800, 1577923200]  # 2020-01-01, 2020-01-02, in order
    for record in train + records(manifest, "val") + records(manifest, "test"):
        times = record["time"].astype("datetime64[s]")
        np.testing.assert_array_equal(np.diff(record["time"]), 3 * 3600)
        np.testing.assert_array_equal(record["hr"], known_values(times, lat, lon).astype(np.float32))
        np.testing.assert_array_equal(record["lr"], record["hr"][:, ::8, ::8])
        assert record["level"] == 300.0 and record["region"] == b"lat41-44.75_lon111-114.75"
    assert manifest["splits"]["val"]["examples"] == manifest["splits"]["test"]["examples"] == 1


def test_block_mean_is_the_mean_of_each_block_at_the_block_centres(era5, tmp_path):
    manifest = run(era5, tmp_path / "out", "--degradation", "block_mean", "--scale", "4")
    assert manifest["grid"]["lr_lat"] == [41.375, 42.375, 43.375, 44.375]
    assert manifest["grid"]["lr_lon"] == [111.375, 112.375, 113.375, 114.375]
    for record in records(manifest, "train"):
        hr = record["hr"].astype(np.float64)
        expected = np.empty((8, 4, 4))
        for i in range(4):
            for j in range(4):
                expected[:, i, j] = hr[:, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].mean(axis=(1, 2))
        np.testing.assert_allclose(record["lr"], expected, rtol=1e-6)


def test_both_cds_layouts_give_identical_records(tmp_path):
    times = hourly("2020-01-01", 4)
    classic = run(write_era5(tmp_path / "classic.nc", times), tmp_path / "a")
    new = run(write_era5(tmp_path / "new.nc", times, style="new"), tmp_path / "b")
    for name in ("train", "val", "test"):
        for shard in classic["splits"][name]["shards"]:
            assert (tmp_path / "a" / shard).read_bytes() == (tmp_path / "b" / shard).read_bytes()
    for key in ("grid", "stats", "climatology", "splits"):
        assert classic[key] == new[key]


def test_files_split_by_month_or_day_read_as_one(tmp_path):
    days = hourly("2020-01-01", 4)
    parts = [write_era5(tmp_path / f"part{i}.nc", days[i * 24 : i * 24 + 24]) for i in range(4)]
    folder = run(tmp_path, tmp_path / "out_folder")
    globbed = run(str(tmp_path / "part*.nc"), tmp_path / "out_glob")
    single = run(write_era5(tmp_path / "whole.nc.tmp", days), tmp_path / "out_single")
    assert [s["path"] for s in globbed["sources"]] == [str(p.resolve()) for p in parts]
    assert folder["splits"] == globbed["splits"] == single["splits"] and folder["stats"] == single["stats"]


def test_reruns_are_byte_identical_and_workers_do_not_change_the_bytes(era5, tmp_path):
    out = tmp_path / "out"
    args = ("--shard-mb", "0.01", "--workers", "2")  # 2 train shards of one day each
    first = run(era5, out, *args)
    assert first["splits"]["train"]["shards"] == [f"train-0000{i}-of-00002.tfrecord.gz" for i in (0, 1)]
    before = digests(out)
    run(era5, out, *args)
    assert digests(out) == before
    run(era5, tmp_path / "serial", "--shard-mb", "0.01", "--workers", "1")
    after = digests(tmp_path / "serial")
    assert {k: v for k, v in after.items() if k != "manifest.json"} == {
        k: v for k, v in before.items() if k != "manifest.json"
    }
    with open(out / "train-00000-of-00002.tfrecord.gz", "rb") as f:
        assert f.read(10)[4:8] == b"\0\0\0\0"  # no timestamp in the gzip header


def test_statistics_and_climatology_come_from_the_training_split_only(tmp_path):
    times = hourly("2020-01-01", 4)
    field = known_values(times.values, LAT, LON)
    field[48:] += 50.0  # val and test days: a very different mean
    path = write_era5(tmp_path / "era5.nc", times, values=field[:, None])
    manifest = run(path, tmp_path / "out")
    train = np.stack([r["hr"] for r in records(manifest, "train")]).astype(np.float64)
    stats = manifest["stats"]
    assert stats["count"] == train.size
    assert stats["mean"] == pytest.approx(train.mean(), rel=1e-12)
    assert stats["std"] == pytest.approx(train.std(), rel=1e-9)
    assert (stats["min"], stats["max"]) == (train.min(), train.max())
    assert stats["fraction_above_100"] == pytest.approx(np.mean(train > 100))
    np.testing.assert_allclose(manifest["climatology"]["300"], train.mean(axis=0), atol=1e-4)


def test_incomplete_days_are_skipped_and_reported_not_padded(tmp_path):
    times = hourly("2020-01-01", 4)
    field = known_values(times.values, LAT, LON)
    field[24 + 6, 3, 4] = np.nan  # 2020-01-02 06:00: NaN
    keep = np.ones(len(times), bool)
    keep[48 + 3] = False  # 2020-01-03 03:00: missing
    path = write_era5(tmp_path / "era5.nc", times[keep], values=field[keep][:, None])
    out = tmp_path / "out"
    # One shard per day: the NaN day's shard ends up empty, is dropped and the other renumbered.
    splits = ["--train", "2020-01-01:2020-01-03", "--val", "", "--test", "none"]
    manifest = run(path, out, "--shard-mb", "0.01", splits=splits)
    assert set(manifest["splits"]) == {"train"}
    train = manifest["splits"]["train"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "train-00000-of-00001.tfrecord.gz"]
    assert (train["days"], train["examples"], train["skipped_count"]) == (1, 1, 2)
    assert train["skipped"] == [
        {"date": "2020-01-02", "level": 300, "reason": "NaN at 06:00"},
        {"date": "2020-01-03", "level": 300, "reason": "missing 03:00"},
    ]
    assert [r["time"][0] for r in records(manifest, "train")] == [1577836800]


def test_several_levels_make_one_record_per_day_and_level_in_level_order(tmp_path):
    path = write_era5(tmp_path / "era5.nc", hourly("2020-01-01", 4), levels=(250, 300, 500))
    manifest = run(path, tmp_path / "out", "--levels", "500", "250")
    assert manifest["levels"] == [250, 500] and set(manifest["climatology"]) == {"250", "500"}
    train = records(manifest, "train")
    assert [(r["time"][0], r["level"]) for r in train] == [
        (1577836800, 250.0),
        (1577836800, 500.0),
        (1577923200, 250.0),
        (1577923200, 500.0),
    ]
    np.testing.assert_array_equal(train[1]["hr"] - train[0]["hr"], 2.0)  # level index 2 minus index 0


def test_an_interrupted_build_leaves_nothing_that_looks_complete(era5, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_write = writer_module.ShardWriter.write

    def failing_write(self, record):
        if self.records == 1:
            raise RuntimeError("disk full")
        real_write(self, record)

    monkeypatch.setattr(writer_module.ShardWriter, "write", failing_write)
    with pytest.raises(RuntimeError, match="disk full"):
        main([str(era5), "--out", str(out), *REGION_ARGS, *SPLIT_ARGS, "--quiet"])
    assert not out.exists()  # the folder the build made is removed again


@pytest.mark.parametrize("where", ["inside", "itself"])
def test_an_unwritable_output_is_one_line_and_exit_2_before_any_reading(era5, read_only_folder, where, capsys):
    out = read_only_folder / "build" if where == "inside" else read_only_folder
    assert main([str(era5), "--out", str(out), *REGION_ARGS, *SPLIT_ARGS, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(out) in err


def test_a_write_error_is_named_in_one_line_not_hidden_by_the_cleanup(era5, tmp_path, monkeypatch, capsys):
    # TensorFlow's writer refuses the shard (a permission or disk error): the user reads that, in one
    # line naming the shard, and nothing of the build is left behind.
    out = tmp_path / "out"

    def refuse(path, options=None):
        raise tf.errors.PermissionDeniedError(None, None, f"{path}; Permission denied")

    monkeypatch.setattr(tf.io, "TFRecordWriter", refuse)
    assert main([str(era5), "--out", str(out), *REGION_ARGS, *SPLIT_ARGS, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ") and "Permission denied" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_failed_rebuild_keeps_the_earlier_build_and_a_new_one_replaces_it(era5, tmp_path, monkeypatch, dead_pid):
    out = tmp_path / "out"
    run(era5, out, "--shard-mb", "0.01")
    earlier = digests(out)
    files.temporary_path(out / "test-00000-of-00001.tfrecord.gz", pid=dead_pid).write_bytes(b"left by a killed build")
    monkeypatch.setattr(cutting, "degrade", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main([str(era5), "--out", str(out), *REGION_ARGS, *SPLIT_ARGS, "--quiet"])
    monkeypatch.undo()
    assert digests(out) == earlier  # the killed build's temporary is gone, the earlier build intact
    manifest = run(era5, out)  # one shard per split now: the earlier two train shards are removed
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *(s for split in manifest["splits"].values() for s in split["shards"])]
    )
    assert manifest["splits"]["train"]["shards"] == ["train-00000-of-00001.tfrecord.gz"]


def _bad_inputs(tmp_path):
    """(argv, what the message must say) for each kind of bad input."""
    good = write_era5(tmp_path / "good.nc", hourly("2020-01-01", 4))
    text = tmp_path / "notes.nc"
    text.write_text("relative humidity, by hand\n")
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(good.read_bytes()[:-2000])
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(300))
    kelvin = write_era5(tmp_path / "kelvin.nc", hourly("2020-01-01", 1), units="K")
    irregular = write_era5(tmp_path / "irregular.nc", hourly("2020-01-01", 1), lon=np.r_[LON[:-1], LON[-1] + 0.1])
    times = hourly("2020-01-01", 4)
    field = known_values(times.values, LAT, LON)
    field[72 + 9] = np.nan  # every value of the test day at 09:00
    nan_test_day = write_era5(tmp_path / "nan.nc", times, values=field[:, None])
    grib = tmp_path / "era5.grib"
    grib.write_bytes(b"GRIB" + bytes(100))
    cases = [
        ([tmp_path / "absent.nc"], "no such file"),
        ([tmp_path / "*.grb"], "no file matches"),
        ([text], "not a netCDF or GRIB file"),
        ([truncated], "is truncated"),
        ([corrupt], "corrupt netcdf4 file"),
        ([good, "--variable", "q"], "has no variable 'q'"),
        ([kelvin], "units 'K'"),
        ([good, "--lat", "30", "45"], "latitude 30 to 45 lies outside the grid"),
        ([irregular], "longitude of"),
        ([good, "--lat", "41", "44.5"], "15x16 grid points, not divisible by scale 8"),
        ([good, "--test", "2021-01-01:2021-01-31"], "split test has no complete days between 2021-01-01 and 2021-01"),
        (
            [nan_test_day],
            "split test has no complete days between 2020-01-04 and 2020-01-04 (1 skipped, e.g. "
            "2020-01-04: NaN at 09:00)",
        ),
        ([good, "--val", "2020-01-02:2020-01-03"], "splits train (2020-01-01:2020-01-02) and val"),
        ([good, "--val", "2020-01-03"], "is not START:END"),
        ([good, "--train", "none"], "the train split is required"),
        ([good, "--steps", "9"], "do not fit in one day"),
    ]
    if importlib.util.find_spec("cfgrib") is None:
        cases.append(([grib], "pip install hsr-keras[grib]"))
    else:
        cases.append(([grib], f"cannot read {grib}: corrupt grib file"))
    sample = open_sample(REAL_ERA5)
    with xr.open_dataset(good) as ds:
        store = write_arco_zarr(tmp_path / "good.zarr", ds.load())
    t_only = write_arco_zarr(tmp_path / "t.zarr", sample, variables=("t",))
    t_grib = write_grib(tmp_path / "t.grib", sample, variables=("t",), levels=[300])
    sample_region = ["--lat", "50", "59.75", "--lon", "60", "69.75"]
    cases += [
        ([good, "--levels", "425"], "level 425 hPa is not in"),
        ([good, "--variable", "relative_humidity", "--levels", "300", "425"], "level 425 hPa is not in"),
        ([store, "--variable", "specific_humidity"], "has no variable 'q'"),
        ([t_only, *sample_region], "has no relative humidity: neither 'r' (relative_humidity) nor 't' and 'q'"),
        ([t_grib, *sample_region], "has no relative humidity"),
        ([store, "--lat", "30", "45"], "latitude 30 to 45 lies outside the grid"),
        ([store, "--lon", "350", "10"], "longitude 350 to 10 lies outside the grid"),
        ([store, "--test", "2021-01-01:2021-01-31"], "split test has no complete days between 2021-01-01"),
        ([good, "--patch-size", "12"], "patch size 12 is not a positive multiple of the scale 8"),
        ([good, "--patch-size", "8", "--patch-stride", "4"], "patch stride 4 is not a positive multiple of the scale"),
        ([good, "--patch-size", "24"], "a patch of 24x24 grid points is larger than the domain of 16x16"),
        ([good, "--patch-stride", "8"], "--patch-stride needs --patch-size"),
    ]
    return cases


def test_each_bad_input_gives_exit_code_2_and_one_line_that_names_it(tmp_path, capsys):
    for index, (argv, message) in enumerate(_bad_inputs(tmp_path)):
        out = tmp_path / f"out{index}"
        code = main([str(argv[0]), "--out", str(out), *REGION_ARGS, *SPLIT_ARGS, "--quiet", *argv[1:]])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, (message, err)
        assert not out.exists() or list(out.iterdir()) == [], message


def test_command_line_errors_come_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tfrecords_builder", str(tmp_path / "absent.nc"), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: no such file: {tmp_path / 'absent.nc'}"]


def test_help_gives_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in (
        "--levels",
        "--lat",
        "--lon",
        "--steps",
        "--interval-hours",
        "--scale",
        "--degradation",
        "--train",
        "--val",
        "--test",
        "--shard-mb",
        "--workers",
        "--variable",
    ):
        assert option in text
    for default in (
        "(default: 8)",
        "(default: 3)",
        "(default: stride)",
        "(default: 2019-01-01:2020-12-31)",
        "(default: [37.0, 52.75])",
        "(default: [105.0, 120.75])",
        "(default: 64.0)",
        "(default: r)",
    ):
        assert default in text


def test_synthetic_subcommand_goes_to_the_synthetic_module(monkeypatch):
    seen = []
    fake = types.ModuleType("tfrecords_builder.synthetic")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "tfrecords_builder.synthetic", fake)
    monkeypatch.setattr("tfrecords_builder.synthetic", fake, raising=False)
    assert cli.main(["synthetic", "--out", "x"]) == 0
    assert seen == [["--out", "x"]]


def test_summary_lists_each_split(era5, tmp_path, capsys):
    assert main([str(era5), "--out", str(tmp_path / "out"), *REGION_ARGS, *SPLIT_ARGS]) == 0
    out = capsys.readouterr().out
    assert "train 2020-01-01..2020-01-02: 2 days, 2 examples in 1 shards" in out and "manifest.json" in out
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["command"][3] == str(era5)


def test_paper_defaults_on_synthetic_files_in_both_layouts(tmp_path):
    from tfrecords_builder.synthetic import write_synthetic

    splits = ["--train", "2019-01-01:2019-01-01", "--val", "2019-01-02:2019-01-02", "--test", "none"]
    for style in ("classic", "new"):
        files = write_synthetic(tmp_path / style, "2019-01-01", "2019-01-02", style=style, per="all")
        manifest = run(files, tmp_path / f"out-{style}", region=[], splits=splits)
        assert manifest["hr_shape"] == [8, 64, 64] and manifest["lr_shape"] == [8, 8, 8]
        assert manifest["region"] == {
            "name": "lat37-52.75_lon105-120.75",
            "lat_min": 37.0,
            "lat_max": 52.75,
            "lon_min": 105.0,
            "lon_max": 120.75,
        }
        assert manifest["grid"]["lr_lat"] == [37.0 + 2 * i for i in range(8)]
        assert manifest["splits"]["train"]["examples"] == manifest["splits"]["val"]["examples"] == 1
        assert 20 < manifest["stats"]["mean"] < 90 and manifest["stats"]["max"] > 100


# A coarse global grid, so a domain across 0/360 and the whole globe stay small. `known_values`
# on it is a ramp, not humidity: builds of it pass --allow-implausible.
GLOBAL_LAT = np.arange(90.0, -90.01, -2.5)
GLOBAL_LON = np.arange(0.0, 359.9, 2.5)
RAMP = "--allow-implausible"


def test_patches_across_greenwich_carry_their_index_and_corner_and_the_source_values(tmp_path):
    path = write_era5(tmp_path / "globe.nc", hourly("2020-01-01", 4), lat=GLOBAL_LAT, lon=GLOBAL_LON)
    region = ["--lat", "40", "60", "--lon", "340", "20"]  # 9 x 17 cells at 2.5 degrees
    patches = ["--scale", "2", "--patch-size", "4", "--patch-stride", "4"]
    manifest = run(path, tmp_path / "out", *patches, RAMP, region=region)
    grid = manifest["patches"]
    assert (grid["rows"], grid["cols"], grid["count"], grid["size"], grid["stride"]) == (2, 4, 8, [4, 4], [4, 4])
    assert (grid["dropped_rows"], grid["dropped_cols"]) == (1, 1)
    assert grid["corners"][:5] == [[40.0, 340.0], [40.0, 350.0], [40.0, 360.0], [40.0, 370.0], [50.0, 340.0]]
    assert manifest["grid"]["lon"][0] == 340.0 and manifest["grid"]["lon"][-1] == 380.0
    assert manifest["hr_shape"] == [8, 4, 4] and manifest["lr_shape"] == [8, 2, 2]
    assert manifest["region"]["name"] == "lat40-60_lon340-380"
    train = records(manifest, "train")
    assert len(train) == manifest["splits"]["train"]["examples"] == 2 * 8
    assert [r["patch"] for r in train[:9]] == [*range(8), 0]  # day by day, patch by patch
    for record in train:
        lat0, lon0 = grid["corners"][record["patch"]]
        assert (record["patch_lat"], record["patch_lon"]) == (lat0, lon0)
        lat, lon = lat0 + 2.5 * np.arange(4), (lon0 + 2.5 * np.arange(4)) % 360
        expected = known_values(record["time"].astype("datetime64[s]"), lat, lon).astype(np.float32)
        np.testing.assert_array_equal(record["hr"], expected)
        np.testing.assert_array_equal(record["lr"], record["hr"][:, ::2, ::2])
    climatology = manifest["climatology"]["300"]
    assert climatology.shape == (8, 8, 4, 4)  # per patch position, kept in climatology.npy
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["climatology"] == {
        "file": "climatology.npy",
        "levels": ["300"],
    }
    np.testing.assert_allclose(climatology[3], np.mean([r["hr"] for r in train if r["patch"] == 3], axis=0), atol=1e-4)
    assert manifest["stats"]["count"] == 16 * 8 * 16


def test_the_whole_globe_in_patches(tmp_path):
    path = write_era5(tmp_path / "globe.nc", hourly("2020-01-01", 4), lat=GLOBAL_LAT, lon=GLOBAL_LON)
    region = ["--lat", "-90", "90", "--lon", "-180", "177.5"]  # 73 x 144 cells, seam at 180
    manifest = run(path, tmp_path / "out", "--patch-size", "16", "--scale", "8", RAMP, region=region)
    grid = manifest["patches"]
    assert (grid["rows"], grid["cols"], grid["dropped_rows"], grid["dropped_cols"]) == (4, 9, 9, 0)
    assert grid["corners"][0] == [-90.0, -180.0] and grid["corners"][-1] == [30.0, 140.0]
    assert manifest["splits"]["val"]["examples"] == 36


def test_a_nan_skips_only_its_patch_and_the_manifest_says_which(tmp_path):
    times = hourly("2020-01-01", 4)
    field = known_values(times.values, LAT, LON)
    field[24 + 6, -2, 10] = np.nan  # 2020-01-02 06:00, at 40.25N 112.5E: in the patch at 40N 112E
    path = write_era5(tmp_path / "era5.nc", times, values=field[:, None])
    region = ["--lat", "40", "45", "--lon", "110", "115"]  # 21 x 21
    manifest = run(path, tmp_path / "out", "--patch-size", "8", "--patch-stride", "8", "--scale", "4", region=region)
    train = manifest["splits"]["train"]
    assert manifest["patches"]["corners"] == [[40.0, 110.0], [40.0, 112.0], [42.0, 110.0], [42.0, 112.0]]
    assert train["skipped"] == [{"date": "2020-01-02", "level": 300, "reason": "NaN at 06:00", "patch": 1}]
    assert (train["examples"], train["skipped_count"], train["days"]) == (2 * 4 - 1, 1, 2)
    assert manifest["patches"]["dropped_rows"] == 5 and manifest["patches"]["dropped_cols"] == 5


def test_one_patch_over_the_region_is_the_build_without_patches_byte_for_byte(era5, tmp_path):
    plain = run(era5, tmp_path / "plain")
    one = run(era5, tmp_path / "one", "--patch-size", "16")
    assert shard_bytes(tmp_path / "plain") == shard_bytes(tmp_path / "one")
    assert (
        one["patches"]
        == plain["patches"]
        == {
            "size": [16, 16],
            "stride": [16, 16],
            "rows": 1,
            "cols": 1,
            "count": 1,
            "corners": [[41.0, 111.0]],
            "dropped_rows": 0,
            "dropped_cols": 0,
            "dropped_cells": 0,
            "coverage": 1.0,
        }
    )
    (record, *_) = records(plain, "train")
    assert (record["patch"], record["patch_lat"], record["patch_lon"]) == (0, 41.0, 111.0)


def test_a_region_across_greenwich_without_patches(tmp_path):
    path = write_era5(tmp_path / "globe.nc", hourly("2020-01-01", 4), lat=GLOBAL_LAT, lon=GLOBAL_LON)
    manifest = run(path, tmp_path / "out", "--scale", "2", RAMP, region=["--lat", "40", "57.5", "--lon", "350", "7.5"])
    assert manifest["grid"]["lon"] == [350.0, 352.5, 355.0, 357.5, 360.0, 362.5, 365.0, 367.5]
    (record, *_) = records(manifest, "val")
    lon = np.array(manifest["grid"]["lon"]) % 360
    expected = known_values(record["time"].astype("datetime64[s]"), manifest["grid"]["lat"], lon)
    np.testing.assert_array_equal(record["hr"], expected.astype(np.float32))


SAMPLE_ARGS = ["--lat", "50", "59.75", "--lon", "60", "69.75", "--levels", "250", "300"]
SAMPLE_SPLITS = ["--steps", "3", "--interval-hours", "1", "--train", "2022-11-11:2022-11-11", "--val", "none"]
SAMPLE_SPLITS += ["--test", "none"]


def test_an_arco_zarr_store_builds_the_bytes_of_the_netcdf_it_came_from(real_era5, tmp_path):
    store = write_arco_zarr(tmp_path / "era5.zarr", open_sample(real_era5))
    from_netcdf = run(real_era5, tmp_path / "nc", region=SAMPLE_ARGS, splits=SAMPLE_SPLITS)
    from_zarr = run(store, tmp_path / "zarr", region=SAMPLE_ARGS, splits=SAMPLE_SPLITS)
    assert shard_bytes(tmp_path / "nc") == shard_bytes(tmp_path / "zarr")
    for key in ("grid", "stats", "climatology", "splits", "patches"):
        assert from_netcdf[key] == from_zarr[key]
    assert from_zarr["sources"] == [{"path": str(store.resolve()), "format": "zarr"}]


def test_grib_as_the_cds_delivers_it_builds(real_era5, tmp_path):
    sample = open_sample(real_era5)
    grib = write_grib(tmp_path / "era5.grib", sample, levels=[250, 300])
    manifest = run(grib, tmp_path / "grib", region=SAMPLE_ARGS, splits=SAMPLE_SPLITS)
    netcdf = records(run(real_era5, tmp_path / "nc", region=SAMPLE_ARGS, splits=SAMPLE_SPLITS), "train")
    for got, want in zip(records(manifest, "train"), netcdf, strict=True):
        np.testing.assert_allclose(got["hr"], want["hr"], atol=0.01)  # 16-bit GRIB packing
        np.testing.assert_array_equal(got["time"], want["time"])
        assert got["level"] == want["level"]


def test_r_derived_from_t_and_q_builds(real_era5, tmp_path):
    store = write_arco_zarr(tmp_path / "tq.zarr", open_sample(real_era5), variables=("t", "q"))
    derived = records(run(store, tmp_path / "tq", region=SAMPLE_ARGS, splits=SAMPLE_SPLITS), "train")
    era5 = records(run(real_era5, tmp_path / "r", region=SAMPLE_ARGS, splits=SAMPLE_SPLITS), "train")
    assert len(derived) == len(era5) == 2
    for got, want in zip(derived, era5):
        assert np.abs(got["hr"] - want["hr"]).mean() < 0.5


def test_faster_compressions_write_the_same_records(era5, tmp_path):
    sizes = {}
    for compression in ("deflate", "huffman", "store"):
        manifest = run(era5, tmp_path / compression, "--compression", compression)
        assert manifest["command"][-2:] == ["--compression", compression]
        sizes[compression] = manifest["splits"]["train"]["bytes"]
        got = records(manifest, "train")
        if compression == "deflate":
            first = got
        for a, b in zip(got, first, strict=True):
            assert a["hr"].tobytes() == b["hr"].tobytes() and a["lr"].tobytes() == b["lr"].tobytes()
    assert sizes["deflate"] < sizes["huffman"] < sizes["store"]
