"""Streaming float64 statistics of the training fields, mergeable across shards in a fixed order."""

import numpy as np


class RunningStats:
    """Count, mean, variance (Chan et al.'s pairwise update), min, max and count above 100 %."""

    def __init__(self):
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.above_100 = 0

    def update(self, values):
        values = np.asarray(values, dtype=np.float64).ravel()
        other = RunningStats()
        other.count = values.size
        other.mean = float(values.mean())
        other.m2 = float(np.sum((values - other.mean) ** 2))
        other.min, other.max = float(values.min()), float(values.max())
        other.above_100 = int(np.count_nonzero(values > 100.0))
        self.merge(other)

    def merge(self, other):
        if other.count == 0:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self.above_100 += other.above_100

    def as_dict(self):
        return {
            "mean": self.mean,
            "std": float(np.sqrt(self.m2 / self.count)),
            "min": self.min,
            "max": self.max,
            "fraction_above_100": self.above_100 / self.count,
            "count": self.count,
        }


class Climatology:
    """Per level, per step of the day and per grid point: the sum and number of training days."""

    def __init__(self, levels, shape):
        self.sums = np.zeros((levels, *shape), dtype=np.float64)
        self.days = np.zeros(levels, dtype=np.int64)

    def update(self, level_index, hr):
        self.sums[level_index] += hr
        self.days[level_index] += 1

    def merge(self, other):
        self.sums += other.sums
        self.days += other.days

    def means(self, decimals=4):
        """[levels][T][H][W] means, rounded (float32 data carry no more digits) to keep the JSON small."""
        return np.round(self.sums / np.maximum(self.days, 1)[:, None, None, None], decimals)
