"""The record contract: schema 2 records of several patches, and one-patch (schema 1) records read alike."""

import numpy as np
import pytest

from tfrecords_builder.contract.schema import READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION, parse_example, serialize_example

HR = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8)
LR = HR[:, ::4, ::4].copy()
TIMES = np.array([1577836800, 1577847600])


def parsed(record, corner=None):
    return {k: v.numpy() for k, v in parse_example(record, [2, 8, 8], [2, 2, 2], corner).items()}


def test_a_patch_record_carries_its_index_and_corner():
    got = parsed(serialize_example(HR, LR, TIMES, 300.0, "globe", patch=(7, -12.5, 357.5)))
    assert (got["patch"], got["patch_lat"], got["patch_lon"]) == (7, -12.5, 357.5)
    np.testing.assert_array_equal(got["hr"], HR)
    np.testing.assert_array_equal(got["lr"], LR)
    np.testing.assert_array_equal(got["time"], TIMES)
    assert got["level"] == 300.0 and got["region"] == b"globe"


def test_a_record_without_patch_features_is_patch_zero_at_the_corner_given():
    record = serialize_example(HR, LR, TIMES, 300.0, "lat37-52.75_lon105-120.75")
    got = parsed(record, corner=(37.0, 105.0))
    assert (got["patch"], got["patch_lat"], got["patch_lon"]) == (0, 37.0, 105.0)
    assert np.isnan(parsed(record)["patch_lat"])
    assert SCHEMA_VERSION == 2 and READABLE_SCHEMA_VERSIONS == (1, 2, 3)


def test_serialisation_is_deterministic_and_patch_features_only_add_bytes():
    plain = serialize_example(HR, LR, TIMES, 300.0, "r")
    assert plain == serialize_example(HR.copy(), LR.copy(), TIMES.astype("datetime64[s]"), 300, "r")
    assert len(serialize_example(HR, LR, TIMES, 300.0, "r", patch=(0, 0.0, 0.0))) > len(plain)
    with pytest.raises(ValueError, match="Expected hr"):
        serialize_example(HR[0], LR, TIMES, 300.0, "r")
