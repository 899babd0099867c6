"""Tests of `hsr_keras.serving.prediction` that need no model: grouping time stamps into the model's sequences."""

import numpy as np

from hsr_keras.serving import prediction

STEP_HOURS = list(range(0, 24, 3))


def test_select_sequences():
    day = np.datetime64("2019-01-01", "s").astype(np.int64)
    hourly = day + 3600 * np.arange(48 + 6)  # two days and 00-05 of the third
    seqs = prediction.select_sequences(hourly, 8, 3, STEP_HOURS)
    assert [len(s) for s in seqs] == [8, 8, 2]  # a trailing part-day is predicted with T = 2
    assert all((s % 10800 == 0).all() for s in seqs)
    gappy = np.delete(day + 10800 * np.arange(8), 3)  # 09 UTC missing
    assert [len(s) for s in prediction.select_sequences(gappy, 8, 3, STEP_HOURS)] == [3, 4]
    assert [len(s) for s in prediction.select_sequences(hourly, 8, 3, STEP_HOURS, all_times=True)] == [8] * 6 + [6]
    assert prediction.select_sequences(day + 3600 + 10800 * np.arange(4), 8, 3, STEP_HOURS) == []
