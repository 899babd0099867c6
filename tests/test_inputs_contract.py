"""The contract for the model's extra inputs: time encodings, the predictors feature, static.npy."""

import hashlib
import math
from datetime import datetime, timezone

import numpy as np
import pytest

from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.inputs import STATIC_FILE, input_names, load_static, time_features
from tfrecords_builder.contract.schema import parse_example, serialize_example


@pytest.mark.parametrize(
    "stamp",
    ["2019-01-01T00:00:00", "2019-12-31T21:00:00", "2020-02-29T12:30:00", "2020-12-31T23:59:59", "1969-07-20T20:17:00"],
)
def test_time_features_against_the_calendar(stamp):
    when = datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)
    hour = when.hour + when.minute / 60 + when.second / 3600
    day = when.timetuple().tm_yday - 1 + hour / 24
    expected = [math.sin(2 * math.pi * hour / 24), math.cos(2 * math.pi * hour / 24)]
    expected += [math.sin(2 * math.pi * day / 365.25), math.cos(2 * math.pi * day / 365.25)]
    got = time_features(int(when.timestamp()))
    assert got.dtype == np.float32 and got.shape == (4,)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_time_features_keep_the_shape_of_their_input():
    seconds = np.arange(2 * 8).reshape(2, 8) * 3 * 3600
    features = time_features(seconds)
    assert features.shape == (2, 8, 4)
    np.testing.assert_allclose(features[0, 4], [0, -1, *time_features(12 * 3600)[2:]], atol=1e-6)  # 12 UTC


def test_predictors_round_trip_through_a_record():
    rng = np.random.default_rng(0)
    hr, lr = rng.random((2, 16, 16), "float32"), rng.random((2, 2, 2), "float32")
    predictors = rng.random((2, 2, 2, 3), "float32")
    record = serialize_example(hr, lr, [0, 10800], 300.0, "r", predictors=predictors)
    parsed = parse_example(record, [2, 16, 16], [2, 2, 2], predictors=3)
    np.testing.assert_array_equal(parsed["predictors"].numpy(), predictors)
    np.testing.assert_array_equal(parsed["lr"].numpy(), lr)
    # A record without predictors is the schema-2 record, byte for byte.
    assert serialize_example(hr, lr, [0, 10800], 300.0, "r") == serialize_example(
        hr, lr, [0, 10800], 300.0, "r", predictors=None
    )
    with pytest.raises(ValueError, match=r"Expected predictors \[T,h,w,P\]"):
        serialize_example(hr, lr, [0, 10800], 300.0, "r", predictors=predictors[:, :1])


def static_build(folder, array):
    np.save(folder / STATIC_FILE, array)
    data = (folder / STATIC_FILE).read_bytes()
    channels = [{"name": "orography", "units": "m", "mean": 0.0, "std": 1.0}]
    return {
        "_dir": str(folder),
        "hr_shape": [8, 4, 4],
        "static": {
            "file": STATIC_FILE,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "channels": channels,
        },
    }


def test_load_static_checks_the_file_against_the_manifest(tmp_path):
    array = np.arange(2 * 4 * 4, dtype="float32").reshape(2, 4, 4, 1)
    manifest = static_build(tmp_path, array)
    np.testing.assert_array_equal(load_static(manifest), array)
    assert input_names(manifest) == ["lr", "static"]
    assert input_names({**manifest, "predictors": [{}], "time_encoding": True}) == [
        "lr",
        "predictors",
        "time_features",
        "static",
    ]
    assert input_names({}) == ["lr"]

    with open(tmp_path / STATIC_FILE, "r+b") as f:  # one byte altered
        f.seek(-1, 2)
        f.write(b"\x01")
    with pytest.raises(InputError, match="does not match its manifest"):
        load_static(manifest)
    (tmp_path / STATIC_FILE).unlink()
    with pytest.raises(InputError, match="cannot read the static fields"):
        load_static(manifest)
    wrong = static_build(tmp_path, np.zeros((2, 4, 5, 1), "float32"))
    with pytest.raises(InputError, match=r"has shape \(2, 4, 5, 1\), not \[patches, 4, 4, 1\]"):
        load_static(wrong)
    with pytest.raises(InputError, match="built without --static"):
        load_static({"_dir": str(tmp_path)})
