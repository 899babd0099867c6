"""The builder's extra model inputs (schema 3): LR predictors, HR static fields, time encodings, and their bad input."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import xarray as xr
from era5_samples import LAT, LON, hourly, known_values, write_era5
from era5_stores import open_sample, write_arco_zarr

from tfrecords_builder.build import main
from tfrecords_builder.contract.inputs import STANDARD_GRAVITY, load_static
from tfrecords_builder.contract.manifest import read_manifest
from tfrecords_builder.contract.schema import parse_example
from tfrecords_builder.in_memory import load_arrays

# The real sample: 2022-11-11 00-02 UTC, 9 levels (100-350 hPa), 45 x 133 cells: 16 patches of 16 x 16 at scale 8.
SAMPLE = ["--lat", "49", "60", "--lon", "44", "77", "--patch-size", "16", "--scale", "8", "--steps", "3"]
SAMPLE += ["--interval-hours", "1", "--levels", "300", "--train", "2022-11-11:2022-11-11", "--val", "none"]
SAMPLE += ["--test", "none"]
PREDICTORS = ["t@300", "q@300", "u@300", "v@300", "z@250", "r@200"]
# Four hourly days of the tiny files (era5_samples), 8 x 8 cells in 4 patches at scale 4.
TINY = ["--lat", "41", "44.75", "--lon", "111", "114.75", "--patch-size", "8", "--scale", "4"]
TINY += ["--train", "2020-01-01:2020-01-02", "--val", "2020-01-03:2020-01-03", "--test", "none"]
TIMES = hourly("2020-01-01", 3)


def build(inputs, out, *args):
    assert main([*map(str, inputs), "--out", str(out), "--quiet", *args]) == 0
    return read_manifest(out)


def records(folder, manifest, split="train"):
    """Every record of a split, parsed as the model side parses them."""
    corner = manifest["patches"]["corners"][0]
    count = len(manifest.get("predictors") or [])
    files = [str(folder / name) for name in manifest["splits"][split]["shards"]]
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    parse = lambda r: parse_example(r, manifest["hr_shape"], manifest["lr_shape"], corner, count)  # noqa: E731
    return [{k: v.numpy() for k, v in parse(r).items()} for r in dataset]


def refused(capsys, inputs, out, *args):
    """The one-line error of a build that must fail with exit status 2 and publish nothing."""
    assert main([*map(str, inputs), "--out", str(out), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not (out / "manifest.json").exists() and not (out / "static.npy").exists()
    return err


def test_the_real_samples_predictors_are_its_fields_read_with_xarray(real_era5, tmp_path):
    manifest = build([real_era5], tmp_path / "b", *SAMPLE, "--predictors", *PREDICTORS)
    assert manifest["schema_version"] == 3 and "time_encoding" not in manifest and "static" not in manifest
    assert [p["name"] for p in manifest["predictors"]] == PREDICTORS
    assert [(p["variable"], p["level"], p["units"]) for p in manifest["predictors"][:2]] == [
        ("t", 300.0, "K"),
        ("q", 300.0, "kg kg-1"),
    ]
    found = records(tmp_path / "b", manifest)
    assert len(found) == 16 and all(r["predictors"].shape == (3, 2, 2, len(PREDICTORS)) for r in found)
    ds = xr.open_dataset(real_era5).sortby("latitude")  # rows from the south, as the patches count them
    size = manifest["patches"]["size"][0]
    for r in found:
        row, col = (
            np.searchsorted(ds.latitude.values, r["patch_lat"]),
            np.searchsorted(ds.longitude.values, r["patch_lon"]),
        )
        for k, name in enumerate(PREDICTORS):
            variable, level = name.split("@")
            hr = ds[variable].sel(level=int(level)).values[:, row : row + size, col : col + size]
            np.testing.assert_array_equal(r["predictors"][..., k], hr[:, ::8, ::8].astype("float32"), err_msg=name)
    values = np.stack([r["predictors"] for r in found]).reshape(-1, len(PREDICTORS)).astype(np.float64)
    np.testing.assert_allclose([p["mean"] for p in manifest["predictors"]], values.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose([p["std"] for p in manifest["predictors"]], values.std(axis=0), rtol=1e-6)


def test_a_build_without_extra_inputs_is_schema_2_and_its_records_have_no_predictors(real_era5, tmp_path):
    manifest = build([real_era5], tmp_path / "b", *SAMPLE)
    assert manifest["schema_version"] == 2 and "predictors" not in manifest and "time_encoding" not in manifest
    assert not (tmp_path / "b" / "static.npy").exists()


def test_time_encoding_alone_is_a_manifest_flag(real_era5, tmp_path):
    manifest = build([real_era5], tmp_path / "b", *SAMPLE, "--time-encoding")
    assert manifest["schema_version"] == 3 and manifest["time_encoding"] is True
    assert "predictors" not in manifest and not (tmp_path / "b" / "static.npy").exists()
    assert (
        "predictors"
        not in tf.train.Example.FromString(
            next(
                iter(tf.data.TFRecordDataset(str(tmp_path / "b" / manifest["splits"]["train"]["shards"][0]), "GZIP"))
            ).numpy()
        ).features.feature
    )


def write_single_level(path, lat=LAT, lon=LON, **fields):
    """A CDS 2024+ single-levels file of one time: {name: (values [lat, lon], units)}."""
    data = {
        name: (("valid_time", "latitude", "longitude"), values[None], {"units": units})
        for name, (values, units) in fields.items()
    }
    coords = {"valid_time": pd.DatetimeIndex(["2020-01-01"]), "latitude": lat, "longitude": lon}
    xr.Dataset(data, coords=coords).to_netcdf(path)
    return path


def terrain(lat=LAT, lon=LON):
    """Surface geopotential (m2 s-2) and land fraction distinct at every cell."""
    height = 100.0 * (lat[:, None] - 40.0) + 10.0 * (lon[None, :] - 110.0)
    return height * STANDARD_GRAVITY, (height > 250.0).astype("float64")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """r, t (on pressure levels) and z, lsm (single-level) of the tiny grid, each in its own file."""
    folder = tmp_path_factory.mktemp("tiny")
    write_era5(folder / "r.nc", TIMES, levels=(300, 500))
    t = known_values(TIMES.values, LAT, LON, offset=200.0)[:, None]
    write_era5(folder / "t.nc", TIMES, values=t, units="K", variable="t")
    geopotential, land = terrain()
    write_single_level(folder / "invariant.nc", z=(geopotential, "m**2 s**-2"), lsm=(land, "(0 - 1)"))
    return folder


def test_static_fields_are_the_inputs_fields_cut_per_patch(tiny, tmp_path):
    args = [*TINY, "--predictors", "t@300", "--static", "orography", "lsm", "latlon"]
    manifest = build([tiny], tmp_path / "b", *args)
    static = load_static(manifest)
    assert static.shape == (4, 8, 8, 5)
    names = [c["name"] for c in manifest["static"]["channels"]]
    assert names == ["orography", "lsm", "latitude", "sin_longitude", "cos_longitude"]
    assert [c["units"] for c in manifest["static"]["channels"]][:3] == ["m", "1", "degrees_north"]
    geopotential, land = terrain()
    lat, lon = LAT[::-1], LON  # ascending
    height, land = geopotential[::-1] / STANDARD_GRAVITY, land[::-1]
    for k, (corner_lat, corner_lon) in enumerate(manifest["patches"]["corners"]):
        r, c = np.searchsorted(lat, corner_lat), np.searchsorted(lon, corner_lon)
        window = np.s_[r : r + 8, c : c + 8]
        np.testing.assert_allclose(static[k, ..., 0], height[window], rtol=1e-6)
        np.testing.assert_array_equal(static[k, ..., 1], land[window])
        np.testing.assert_allclose(static[k, ..., 2], np.broadcast_to(lat[r : r + 8, None], (8, 8)))
        np.testing.assert_allclose(static[k, ..., 4], np.cos(np.radians(lon[c : c + 8]))[None].repeat(8, 0), rtol=1e-6)
    for k, channel in enumerate(manifest["static"]["channels"]):
        assert channel["mean"] == pytest.approx(static[..., k].mean(dtype=np.float64))
    source_names = {p.rsplit("/", 1)[-1] for p in (s["path"] for s in manifest["sources"])}
    assert source_names == {"r.nc", "t.nc", "invariant.nc"}
    # The in-memory path (JAX backend) gives the same arrays.
    data = load_arrays([tiny], **inmemory_options(), predictors=("t@300",), static=("orography", "lsm", "latlon"))
    np.testing.assert_array_equal(data.static, static)
    assert data.manifest["static"]["channels"] == manifest["static"]["channels"]
    assert data.predictors["train"].shape == (2 * 4, 8, 2, 2, 1)
    assert data.manifest["predictors"] == manifest["predictors"]


def inmemory_options():
    return {
        "lat": (41, 44.75),
        "lon": (111, 114.75),
        "patch_size": 8,
        "scale": 4,
        "train": "2020-01-01:2020-01-02",
        "val": "2020-01-03:2020-01-03",
        "test": "none",
    }


def test_a_build_without_static_fields_removes_an_earlier_builds_static_npy(tiny, tmp_path):
    build([tiny], tmp_path / "b", *TINY, "--static", "latlon")
    assert (tmp_path / "b" / "static.npy").exists()
    build([tiny / "r.nc"], tmp_path / "b", *TINY)
    assert not (tmp_path / "b" / "static.npy").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--predictors", "pv@300"], "--predictors pv@300: unknown variable 'pv'; choose from r, t, q"),
        (["--predictors", "t@500"], "predictor t@500: level 500 hPa is not in"),
        (["--predictors", "u@300"], "predictor u@300: no input holds 'u' (on pressure levels): not in"),
        (["--predictors", "sp"], "predictor sp: no input holds 'sp' (a single-level field): not in"),
        (["--predictors", "2t@300"], "--predictors 2t@300: 2t is a single-level field; name it without @LEVEL"),
        (["--predictors", "t"], "--predictors t: t needs a pressure level in hPa, e.g. t@300"),
        (["--predictors", "t@300", "t@300.0"], "--predictors names t@300 twice"),
        (["--static", "orography"], "--static orography: no input holds 'geopotential_at_surface' or 'z' without"),
    ],
)
def test_a_missing_or_unknown_predictor_is_one_line_and_exit_2(tiny, tmp_path, capsys, args, message):
    inputs = [tiny / "r.nc", tiny / "t.nc"]
    err = refused(capsys, inputs, tmp_path / "out", *TINY, *args)
    assert message in err


def test_a_predictor_in_other_units_is_refused_naming_the_variable_and_file(tiny, tmp_path, capsys):
    t = known_values(TIMES.values, LAT, LON, offset=200.0)[:, None]
    wrong = write_era5(tmp_path / "t_rankine.nc", TIMES, values=t, units="degR", variable="t")
    err = refused(capsys, [tiny / "r.nc", wrong], tmp_path / "out", *TINY, "--predictors", "t@300")
    assert f"'t' in {wrong} has units 'degR'; expected temperature in K or degC" in err


def test_a_predictor_missing_a_step_the_target_has_is_refused(tiny, tmp_path, capsys):
    t = known_values(TIMES.values, LAT, LON, offset=200.0)[:, None]
    keep = TIMES != "2020-01-03T21:00"  # a step of the val split's day
    short = write_era5(tmp_path / "t.nc", TIMES[keep], values=t[keep], units="K", variable="t")
    err = refused(capsys, [tiny / "r.nc", short], tmp_path / "out", *TINY, "--predictors", "t@300")
    assert f"predictor t@300 has no value at 2020-01-03T21:00:00 in {short}" in err


def test_a_static_field_on_another_grid_is_refused(tiny, tmp_path, capsys):
    lat, lon = np.arange(45.0, 39.99, -0.5), np.arange(110.0, 115.01, 0.5)
    coarse = write_single_level(tmp_path / "coarse.nc", lat, lon, lsm=(np.zeros((lat.size, lon.size)), "(0 - 1)"))
    err = refused(capsys, [tiny / "r.nc", coarse], tmp_path / "out", *TINY, "--static", "lsm")
    assert f"static field lsm in {coarse} is on another grid than the target (0.5 degrees" in err


def test_a_static_field_in_other_units_is_refused(tiny, tmp_path, capsys):
    geopotential, _ = terrain()
    metres = write_single_level(tmp_path / "metres.nc", z=(geopotential / STANDARD_GRAVITY, "m"))
    err = refused(capsys, [tiny / "r.nc", metres], tmp_path / "out", *TINY, "--static", "orography")
    assert f"'z' in {metres} has units 'm'; expected geopotential in m**2 s**-2" in err


def test_the_target_comes_from_r_beside_a_file_of_t_and_q_it_could_be_derived_from(tiny, tmp_path):
    t = known_values(TIMES.values, LAT, LON, offset=200.0)[:, None]
    with xr.open_dataset(tiny / "t.nc") as ds_t:
        both = ds_t.load().assign(q=(ds_t["t"].dims, t * 1e-6, {"units": "kg kg**-1"}))
    both.to_netcdf(tmp_path / "tq.nc")
    alone = build([tiny / "r.nc"], tmp_path / "alone", *TINY)
    beside = build([tiny / "r.nc", tmp_path / "tq.nc"], tmp_path / "beside", *TINY, "--predictors", "t@300", "q@300")
    assert beside["stats"] == alone["stats"]
    assert beside["predictors"][1]["mean"] == pytest.approx(beside["predictors"][0]["mean"] * 1e-6)


def test_a_nan_in_a_predictor_skips_its_patch_and_says_which(tiny, tmp_path):
    t = known_values(TIMES.values, LAT, LON, offset=200.0)[:, None]
    t[6, 0, 14, 6] = np.nan  # 2020-01-01 06:00 at 41.5N 111.5E: in patch 0, the south-west one
    holed = write_era5(tmp_path / "t.nc", TIMES, values=t, units="K", variable="t")
    manifest = build([tiny / "r.nc", holed], tmp_path / "b", *TINY, "--predictors", "t@300")
    skipped = manifest["splits"]["train"]["skipped"]
    assert skipped == [{"date": "2020-01-01", "level": 300, "reason": "NaN at 06:00 in predictor t@300", "patch": 0}]
    assert manifest["splits"]["train"]["examples"] == 2 * 4 - 1


def test_an_arco_era5_store_gives_the_predictors_and_static_fields_of_its_long_names(real_era5, tmp_path):
    sample = open_sample(real_era5)
    store = write_arco_zarr(tmp_path / "era5.zarr", sample, variables=("r", "t", "u", "z"))
    lat, lon = sample["latitude"].values, sample["longitude"].values
    height = np.add.outer(10.0 * (lat - 49.0), lon - 44.0)  # distinct at every cell
    invariant = xr.Dataset(
        {
            "geopotential_at_surface": (("latitude", "longitude"), height * STANDARD_GRAVITY, {"units": "m**2 s**-2"}),
            "land_sea_mask": (("latitude", "longitude"), (height > 60).astype("float32"), {"units": "(0 - 1)"}),
        },
        coords={"latitude": lat, "longitude": lon},
    )
    invariant.to_zarr(store, mode="a", consolidated=True)
    extras = ["--predictors", "t@300", "u@300", "z@250", "--static", "orography", "lsm"]
    from_store = build([store], tmp_path / "zarr", *SAMPLE, *extras)
    from_file = build([real_era5], tmp_path / "nc", *SAMPLE, "--predictors", "t@300", "u@300", "z@250")
    assert from_store["predictors"] == from_file["predictors"]
    for got, expected in zip(records(tmp_path / "zarr", from_store), records(tmp_path / "nc", from_file)):
        np.testing.assert_array_equal(got["predictors"], expected["predictors"])
    static = load_static(from_store)
    rows = np.searchsorted(lat[::-1], [corner[0] for corner in from_store["patches"]["corners"]])
    cols = np.searchsorted(lon, [corner[1] for corner in from_store["patches"]["corners"]])
    for k, (r, c) in enumerate(zip(rows, cols)):
        np.testing.assert_allclose(static[k, ..., 0], height[::-1][r : r + 16, c : c + 16], rtol=1e-6)
        np.testing.assert_array_equal(static[k, ..., 1], (height[::-1][r : r + 16, c : c + 16] > 60))


def test_a_single_level_predictor_comes_from_a_single_level_file_beside_the_pressure_levels(tiny, tmp_path):
    values = known_values(TIMES.values, LAT, LON, offset=250.0)  # K, distinct at every step and cell
    single = xr.Dataset(
        {"t2m": (("valid_time", "latitude", "longitude"), values, {"units": "K"})},
        coords={"valid_time": TIMES, "latitude": LAT, "longitude": LON},
    )
    single.to_netcdf(tmp_path / "2t.nc")
    manifest = build([tiny, tmp_path / "2t.nc"], tmp_path / "b", *TINY, "--predictors", "2t", "t@300")
    assert [(p["name"], p["level"], p["units"]) for p in manifest["predictors"]] == [
        ("2t", None, "K"),
        ("t@300", 300.0, "K"),
    ]
    field = single["t2m"].sortby("latitude")
    for r in records(tmp_path / "b", manifest):
        steps = field.sel(valid_time=r["time"].astype("datetime64[s]"))
        rows = np.searchsorted(field.latitude.values, r["patch_lat"])
        cols = np.searchsorted(field.longitude.values, r["patch_lon"])
        expected = steps.values[:, rows : rows + 8 : 4, cols : cols + 8 : 4]
        np.testing.assert_array_equal(r["predictors"][..., 0], expected.astype("float32"))
