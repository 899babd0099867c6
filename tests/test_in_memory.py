"""The in-memory path: the same samples and manifest facts as a TFRecord build of the same data."""

import numpy as np
import pytest
import xarray as xr
from era5_samples import LAT, LON, REGION_ARGS, hourly, known_values, write_era5

from hsr_keras.training.data import load_split
from tfrecords_builder import build, synthetic
from tfrecords_builder.contract.errors import BuildError
from tfrecords_builder.contract.manifest import read_manifest
from tfrecords_builder.in_memory import load_arrays, synthetic_arrays

TINY_REGION = dict(lat=(40.0, 43.75), lon=(110.0, 113.75), interval_hours=3)  # 16 x 16 points


def test_in_memory_arrays_equal_the_tfrecord_build(tmp_path):
    dates = dict(train="2019-01-01:2019-01-04", val="2019-01-05:2019-01-06", test="none")
    # A larger box than the region, and float32 files ("new" style), so the in-memory draw
    # of the region alone must give exactly the same values.
    synthetic.write_synthetic(
        tmp_path / "era5",
        "2019-01-01",
        "2019-01-06",
        style="new",
        per="all",
        seed=3,
        interval_hours=3,
        lat_bounds=(39.0, 45.0),
        lon_bounds=(109.0, 115.0),
    )
    argv = [str(tmp_path / "era5"), "--out", str(tmp_path / "tf"), "--quiet", "--lat", "40", "43.75"]
    argv += ["--lon", "110", "113.75"] + [f"--{name}={value}" for name, value in dates.items()]
    assert build.main(argv) == 0
    manifest = read_manifest(tmp_path / "tf")
    from_files = load_arrays(tmp_path / "era5", **TINY_REGION, **dates)
    drawn = synthetic_arrays("2019-01-01", "2019-01-06", seed=3, **TINY_REGION, **dates)
    assert drawn.test is None
    for data in (from_files, drawn):
        for split in ("train", "val"):
            lr, hr, time = load_split(manifest, split)
            got = getattr(data, split)
            np.testing.assert_array_equal(got.lr, lr)
            np.testing.assert_array_equal(got.hr, hr)
            np.testing.assert_array_equal(got.time, time)
            assert data.manifest["splits"][split]["examples"] == manifest["splits"][split]["examples"]
        for key in ("scale", "hr_shape", "lr_shape", "grid", "levels", "step_hours", "degradation"):
            assert data.manifest[key] == manifest[key], key
        for key, value in manifest["stats"].items():
            assert data.manifest["stats"][key] == pytest.approx(value, rel=1e-12), key
        np.testing.assert_allclose(data.manifest["climatology"]["300"], manifest["climatology"]["300"])


def test_skipped_days_and_every_manifest_fact_match_the_build(tmp_path, capsys):
    """Two levels, a NaN at one level, a missing step: from files and from a dataset, as the build."""
    times = hourly("2020-01-01", 5)
    field = known_values(times.values, LAT, LON)
    values = np.stack([field, field + 3.0], axis=1)
    values[24 + 6, 1, 3, 4] = np.nan  # 2020-01-02 06:00 at 500 hPa only
    keep = np.ones(len(times), bool)
    keep[72 + 3] = False  # 2020-01-04 03:00 missing at every level
    path = write_era5(tmp_path / "era5.nc", times[keep], values=values[keep], levels=(300, 500))
    options = dict(lat=(41.0, 44.75), lon=(111.0, 114.75), levels=(500, 300))

    def build_argv(out, **splits):
        argv = [str(path), "--out", str(tmp_path / out), *REGION_ARGS, "--levels", "500", "300", "--quiet"]
        return argv + [f"--{name}={value}" for name, value in splits.items()]

    # A split whose only day misses a step: the build refuses it, and the arrays with the same words.
    bad = dict(train="2020-01-01:2020-01-03", val="2020-01-04:2020-01-04", test="none")
    assert build.main(build_argv("bad", **bad)) == 2
    message = capsys.readouterr().err.removeprefix("error: ").strip()
    with pytest.raises(BuildError) as raised:
        load_arrays(path, **options, **bad)
    assert str(raised.value) == message and "(1 skipped, e.g. 2020-01-04: missing 03:00)" in message

    splits = dict(train="2020-01-01:2020-01-03", val="2020-01-04:2020-01-05", test="none")
    assert build.main(build_argv("tf", **splits)) == 0
    manifest = read_manifest(tmp_path / "tf")
    assert manifest["splits"]["train"]["skipped"] == [{"date": "2020-01-02", "level": 500, "reason": "NaN at 06:00"}]
    assert manifest["splits"]["val"]["skipped"] == [
        {"date": "2020-01-04", "level": level, "reason": "missing 03:00"} for level in (300, 500)
    ]
    with xr.open_dataset(path) as dataset:
        from_dataset = load_arrays(dataset.load(), **options, **splits)
    for data in (load_arrays(path, **options, **splits), from_dataset):
        for key in set(manifest) - {"_dir", "command", "sources", "splits"}:
            assert data.manifest[key] == manifest[key], key
        for name in ("train", "val"):
            files = {"shards", "bytes", "shard_files"}
            assert data.manifest["splits"][name] == {
                k: v for k, v in manifest["splits"][name].items() if k not in files
            }
            lr, hr, time = load_split(manifest, name)
            got = getattr(data, name)
            np.testing.assert_array_equal(got.lr, lr)
            np.testing.assert_array_equal(got.hr, hr)
            np.testing.assert_array_equal(got.time, time)


def test_patches_in_memory_equal_the_patch_build_with_their_indices(tmp_path):
    lat, lon = np.arange(90.0, -90.01, -2.5), np.arange(0.0, 359.9, 2.5)
    path = write_era5(tmp_path / "globe.nc", hourly("2020-01-01", 3), lat=lat, lon=lon)
    # a ramp, not humidity
    options = dict(lat=(40.0, 60.0), lon=(340.0, 20.0), scale=2, patch_size=4, patch_stride=4, allow_implausible=True)
    splits = dict(train="2020-01-01:2020-01-02", val="2020-01-03:2020-01-03", test="none")
    argv = [str(path), "--out", str(tmp_path / "tf"), "--quiet", "--lat", "40", "60", "--lon", "340", "20"]
    argv += ["--scale", "2", "--patch-size", "4", "--allow-implausible"]
    argv += [f"--{name}={value}" for name, value in splits.items()]
    assert build.main(argv) == 0
    manifest = read_manifest(tmp_path / "tf")
    data = load_arrays(path, **options, **splits)
    for key in set(manifest) - {"_dir", "command", "sources", "splits", "climatology"}:
        assert data.manifest[key] == manifest[key], key
    np.testing.assert_array_equal(data.manifest["climatology"]["300"], manifest["climatology"]["300"])
    assert manifest["climatology"]["300"].shape == (8, 8, 4, 4)  # per patch position, from climatology.npy
    for name in ("train", "val"):
        lr, hr, time = load_split(manifest, name)
        np.testing.assert_array_equal(getattr(data, name).hr, hr)
        np.testing.assert_array_equal(getattr(data, name).lr, lr)
        np.testing.assert_array_equal(getattr(data, name).time, time)
        days = len(hr) // 8
        np.testing.assert_array_equal(data.patch[name], np.tile(np.arange(8), days))


def test_an_arco_zarr_store_loads_as_its_netcdf(real_era5, tmp_path):
    from era5_stores import open_sample, write_arco_zarr

    store = write_arco_zarr(tmp_path / "era5.zarr", open_sample(real_era5))
    options = dict(lat=(50.0, 59.75), lon=(60.0, 69.75), levels=(300,), steps=3, interval_hours=1)
    options.update(train="2022-11-11:2022-11-11", val="none", test="none")
    from_zarr, from_netcdf = load_arrays(store, **options), load_arrays(real_era5, **options)
    np.testing.assert_array_equal(from_zarr.train.hr, from_netcdf.train.hr)
    assert from_zarr.manifest == from_netcdf.manifest and list(from_zarr.patch["train"]) == [0]


def test_a_one_level_one_time_grib_loads_as_the_build_reads_it(real_era5, tmp_path):
    from era5_stores import open_sample, write_grib

    sample = open_sample(real_era5)
    grib = write_grib(tmp_path / "era5.grib", sample, times=sample["time"].values[:1], levels=[300])
    options = dict(lat=(50.0, 59.75), lon=(60.0, 69.75), steps=1, interval_hours=1, scale=8)
    options.update(train="2022-11-11:2022-11-11", val="none", test="none")
    data = load_arrays(grib, **options)
    argv = [str(grib), "--out", str(tmp_path / "tf"), "--quiet", "--lat", "50", "59.75", "--lon", "60", "69.75"]
    argv += ["--steps", "1", "--interval-hours", "1", "--train", "2022-11-11:2022-11-11", "--val", "none"]
    assert build.main([*argv, "--test", "none"]) == 0
    lr, hr, time = load_split(read_manifest(tmp_path / "tf"), "train")
    np.testing.assert_array_equal(data.train.hr, hr)
    np.testing.assert_array_equal(data.train.time, time)
    assert data.train.hr.shape == (1, 1, 40, 40) and str(time[0, 0]) == "2022-11-11T00:00:00"
