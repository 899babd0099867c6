"""The cutting steps a build and the in-memory path share: checks, one source, region, tallies, split records."""

import numpy as np
import pytest
import xarray as xr
from era5_samples import LAT, LON, hourly, known_values, write_era5

from tfrecords_builder.contract.errors import BuildError
from tfrecords_builder.cutting import (
    Region,
    Sample,
    Tally,
    check_config,
    cut_day,
    describe_region,
    open_source,
    patches_of,
    plan_splits,
    split_record,
    training_facts,
)
from tfrecords_builder.options import BuildConfig

REGION = dict(lat=(41.0, 44.75), lon=(111.0, 114.75))
SPLITS = dict(train="2020-01-01:2020-01-02", val="2020-01-03:2020-01-03", test="none")
SHAPES = Region("lat41-44.75_lon111-114.75", [8, 16, 16], [8, 2, 2])  # of REGION at scale 8


def cut_for(**options):
    return check_config(BuildConfig(inputs=(), out="", **{**REGION, **SPLITS, **options}))


def test_check_config_gives_hours_splits_and_sorted_levels():
    cut = cut_for(levels=(500, 250, 500))
    assert cut.hours == [0, 3, 6, 9, 12, 15, 18, 21] and cut.levels == [250.0, 500.0]
    assert cut.splits == {
        "train": (np.datetime64("2020-01-01"), np.datetime64("2020-01-02")),
        "val": (np.datetime64("2020-01-03"), np.datetime64("2020-01-03")),
    }


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(scale=3), "scale 3 is not one of 2, 4, 8, 16"),
        (dict(degradation="mean"), "degradation 'mean' is not one of stride, block_mean"),
        (dict(lat=(44.75, 41.0)), "latitude bounds 44.75 to 41: the minimum is above the maximum"),
        (dict(steps=9), "do not fit in one day"),
        (dict(val="2020-01-02:2020-01-03"), "overlap"),
    ],
)
def test_check_config_rejects_a_bad_request(options, message):
    with pytest.raises(BuildError, match=message):
        cut_for(**options)


def test_a_dataset_in_memory_is_read_as_its_file(tmp_path):
    path = write_era5(tmp_path / "era5.nc", hourly("2020-01-01", 2), style="new", levels=(300, 500))
    cut = cut_for(levels=(500, 300))
    with xr.open_dataset(path) as dataset, open_source(dataset.load(), cut) as memory, open_source(path, cut) as file:
        for name in ("lat", "lon", "times"):
            np.testing.assert_array_equal(getattr(memory, name), getattr(file, name))
        assert memory.resolution == file.resolution == 0.25
        np.testing.assert_array_equal(memory.read(file.times[5:9]), file.read(file.times[5:9]))
    with xr.open_dataset(path) as dataset:
        kelvin = dataset.load()
    kelvin["r"].attrs["units"] = "K"
    with pytest.raises(BuildError, match="'r' in the in-memory dataset has units 'K'"):
        open_source(kelvin, cut)


def test_region_is_named_by_its_bounds_unless_named_and_must_divide_by_the_scale(tmp_path):
    path = write_era5(tmp_path / "era5.nc", hourly("2020-01-01", 1))
    with open_source(path, cut_for()) as source:
        assert describe_region(source, cut_for()) == ("lat41-44.75_lon111-114.75", [8, 16, 16], [8, 2, 2])
        assert describe_region(source, cut_for(region_name="north", scale=4)).name == "north"
    odd = cut_for(lat=(41.0, 44.5))
    with (
        open_source(path, odd) as source,
        pytest.raises(BuildError, match="15x16 grid points, not divisible by scale 8"),
    ):
        describe_region(source, odd)


def test_cut_day_degrades_each_level_or_gives_the_reason_to_skip_it(tmp_path):
    times = hourly("2020-01-01", 4)
    field = known_values(times.values, LAT, LON)
    values = np.stack([field, field + 1.0], axis=1)
    values[24 + 6, 0, 3, 4] = np.nan  # 2020-01-02 06:00 at 300 hPa only
    path = write_era5(tmp_path / "era5.nc", times, values=values, levels=(300, 500))
    cut = cut_for(levels=(300, 500))
    with open_source(path, cut) as source:
        plans = plan_splits(source, cut)
        assert plans["train"] == ([np.datetime64("2020-01-01"), np.datetime64("2020-01-02")], [])
        day_times, samples = cut_day(source, np.datetime64("2020-01-02"), cut)
    np.testing.assert_array_equal(np.diff(day_times), 3 * 3600)
    nan, kept = samples
    assert (nan.level, nan.lr, nan.reason) == (300.0, None, "NaN at 06:00")
    assert kept.level == 500.0 and kept.reason is None
    np.testing.assert_array_equal(kept.lr, kept.hr[:, ::8, ::8])


def test_split_record_lists_every_skipped_sample_in_date_and_level_order():
    cut = cut_for(levels=(300, 500))
    tally = Tally(cut, SHAPES, training=False)
    hr = np.zeros((8, 16, 16), np.float32)
    tally.add(np.datetime64("2020-01-02"), [Sample(300.0, hr, hr, None), Sample(500.0, hr, None, "NaN at 03:00")])
    record = split_record("train", cut, [(np.datetime64("2020-01-01"), "missing 21:00")], tally)
    assert record == {
        "start": "2020-01-01",
        "end": "2020-01-02",
        "examples": 1,
        "days": 1,
        "skipped": [
            {"date": "2020-01-01", "level": 300, "reason": "missing 21:00"},
            {"date": "2020-01-01", "level": 500, "reason": "missing 21:00"},
            {"date": "2020-01-02", "level": 500, "reason": "NaN at 03:00"},
        ],
        "skipped_count": 3,
    }
    empty = Tally(cut, SHAPES, training=False)
    empty.add(np.datetime64("2020-01-02"), [Sample(300.0, hr, None, "NaN at 03:00")])
    with pytest.raises(BuildError, match=r"split train has no complete days .* \(3 skipped, e.g. 2020-01-01: missing"):
        split_record("train", cut, [(np.datetime64("2020-01-01"), "missing 21:00")], empty)


def test_tallies_merged_in_order_give_the_statistics_of_one_tally():
    cut, region = cut_for(), SHAPES
    rng = np.random.default_rng(0)
    days = [(np.datetime64("2020-01-01") + i, rng.uniform(0, 140, (8, 16, 16)).astype(np.float32)) for i in range(4)]
    whole, parts = Tally(cut, region, training=True), [Tally(cut, region, training=True) for _ in range(2)]
    for i, (day, hr) in enumerate(days):
        for tally in (whole, parts[i // 2]):
            tally.add(day, [Sample(300.0, hr, hr[:, ::8, ::8], None)])
    merged = Tally(cut, region, training=True)
    for part in parts:
        merged.merge(part)
    assert (merged.examples, merged.days, merged.skipped) == (whole.examples, whole.days, whole.skipped) == (4, 4, [])
    one, other = training_facts(whole, cut), training_facts(merged, cut)
    assert one["stats"] == pytest.approx(other["stats"], rel=1e-12)
    np.testing.assert_allclose(one["climatology"]["300"], np.mean([hr for _, hr in days], axis=0), atol=1e-4)
    assert one["climatology"] == other["climatology"]


def test_cut_day_with_patches_gives_level_by_level_patch_by_patch_and_the_tally_keeps_each_position(tmp_path):
    times = hourly("2020-01-01", 2)
    field = known_values(times.values, LAT, LON)
    path = write_era5(tmp_path / "era5.nc", times, values=np.stack([field, field + 1.0], axis=1), levels=(300, 500))
    cut = cut_for(levels=(300, 500), lat=(41.0, 44.75), lon=(111.0, 114.75), scale=4, patch_size=8)
    with open_source(path, cut) as source:
        region, patches = describe_region(source, cut), patches_of(source, cut)
        _, samples = cut_day(source, np.datetime64("2020-01-01"), cut, patches)
    assert region.hr_shape == [8, 8, 8] and region.lr_shape == [8, 2, 2] and patches.count == 4
    assert [(s.level, s.patch) for s in samples] == [(level, p) for level in (300.0, 500.0) for p in range(4)]
    np.testing.assert_array_equal(samples[5].hr - samples[1].hr, 1.0)  # same patch, next level
    tally = Tally(cut, region, training=True, patches=4)
    bad = samples[6]._replace(lr=None, reason="NaN at 03:00")
    tally.add(np.datetime64("2020-01-01"), [*samples[:6], bad, samples[7]])
    record = split_record("train", cut, [(np.datetime64("2020-01-02"), "missing 21:00")], tally)
    assert record["skipped"] == [
        {"date": "2020-01-01", "level": 500, "reason": "NaN at 03:00", "patch": 2},
        {"date": "2020-01-02", "level": 300, "reason": "missing 21:00"},
        {"date": "2020-01-02", "level": 500, "reason": "missing 21:00"},
    ]
    assert (record["examples"], record["skipped_count"]) == (7, 1 + 2 * 4)
    climatology = training_facts(tally, cut)["climatology"]
    assert np.shape(climatology["500"]) == (4, 8, 8, 8)
    np.testing.assert_allclose(climatology["500"][1], samples[5].hr, atol=1e-4)
