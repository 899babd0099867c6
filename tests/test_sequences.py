"""Day sequences and degradation, on small arrays."""

import numpy as np
import pytest

from tfrecords_builder.contract.errors import BuildError
from tfrecords_builder.sequences import degrade, lr_coords, nan_reason, plan_days, step_hours


def test_plan_days_reports_days_with_missing_steps():
    hours = step_hours(8, 3)
    day = np.datetime64("2020-01-01", "s").astype(np.int64)
    available = np.array([day + h * 3600 for h in range(72) if h not in (3, 27, 28, 29, 30)], np.int64)
    complete, skipped = plan_days(available, "2019-12-01", "2020-12-31", hours)
    assert complete == [np.datetime64("2020-01-03")]
    assert [(str(d), r) for d, r in skipped] == [
        ("2020-01-01", "missing 03:00"),
        ("2020-01-02", "missing 03:00, 06:00"),
    ]
    with pytest.raises(BuildError):
        step_hours(8, 4)


def test_nan_reason_names_every_step_with_a_nan():
    hr = np.zeros((3, 2, 2), np.float32)
    assert nan_reason(hr, [0, 1, 2]) is None
    hr[1, 0, 0] = hr[2, 1, 1] = np.nan
    assert nan_reason(hr, [0, 1, 2]) == "NaN at 01:00, 02:00"


def test_degrade_and_lr_coords():
    hr = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    np.testing.assert_array_equal(degrade(hr, 2, "stride"), hr[:, ::2, ::2])
    np.testing.assert_array_equal(degrade(hr, 2, "block_mean")[0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(lr_coords([0.0, 0.25, 0.5, 0.75], 2, "stride"), [0.0, 0.5])
    np.testing.assert_array_equal(lr_coords([0.0, 0.25, 0.5, 0.75], 2, "block_mean"), [0.125, 0.625])
