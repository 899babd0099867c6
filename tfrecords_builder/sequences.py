"""Day sequences (T steps of one UTC day) and the low-resolution field of each high-resolution one.

A day is kept only when every step exists and holds no NaN: a model trained on padded or
interpolated days would learn the padding, so an incomplete day is skipped and reported.
"""

import numpy as np

from tfrecords_builder.contract.errors import BuildError

DEGRADATIONS = ("stride", "block_mean")


def step_hours(steps, interval_hours):
    """Hours of the day of each step, from 00 UTC: 8 steps every 3 h -> [0, 3, ..., 21]."""
    if steps < 1 or interval_hours < 1 or steps * interval_hours > 24:
        raise BuildError(
            f"{steps} steps every {interval_hours} h do not fit in one day: need steps >= 1, "
            "interval >= 1 h and steps x interval <= 24 h"
        )
    return [k * interval_hours for k in range(steps)]


def day_times(day, hours):
    """Seconds since 1970 of the steps of `day` (a datetime64 day)."""
    start = np.datetime64(day, "D").astype("datetime64[s]").astype(np.int64)
    return start + np.asarray(hours, dtype=np.int64) * 3600


def _clock(hours):
    return ", ".join(f"{h:02d}:00" for h in hours)


def plan_days(available, start, end, hours):
    """Days of [start, end] within the data's span: (complete days, [(day, reason)] for the others).

    Days outside the span of `available` (sorted seconds since 1970) are not the data's and
    are not reported; a day inside it with any step absent is skipped as "missing 03:00".
    """
    if len(available) == 0:
        return [], []
    first = max(np.datetime64(start, "D"), np.datetime64(int(available[0]), "s").astype("datetime64[D]"))
    last = min(np.datetime64(end, "D"), np.datetime64(int(available[-1]), "s").astype("datetime64[D]"))
    present = set(np.asarray(available).tolist())
    complete, skipped = [], []
    for day in np.arange(first, last + 1):
        missing = [h for h, t in zip(hours, day_times(day, hours).tolist()) if t not in present]
        if not missing:
            complete.append(day)
        elif len(missing) == len(hours):
            skipped.append((day, f"missing all {len(hours)} steps"))
        else:
            skipped.append((day, f"missing {_clock(missing)}"))
    return complete, skipped


def nan_reason(hr, hours):
    """None for a field [T, H, W] with only finite values, else the reason to skip it ("NaN at 06:00")."""
    bad = ~np.isfinite(hr).all(axis=(1, 2))
    if not bad.any():
        return None
    return f"NaN at {_clock(h for h, b in zip(hours, bad) if b)}"


def degrade(hr, scale, method):
    """LR fields [T, H/s, W/s] of HR [T, H, W]: every s-th point (the paper's) or each s x s block's mean."""
    if method == "stride":
        return np.ascontiguousarray(hr[:, ::scale, ::scale])
    if method == "block_mean":
        t, h, w = hr.shape
        blocks = hr.reshape(t, h // scale, scale, w // scale, scale)
        return blocks.mean(axis=(2, 4), dtype=np.float64).astype(np.float32)
    raise BuildError(f"unknown degradation {method!r}; choose one of {', '.join(DEGRADATIONS)}")


def lr_coords(coords, scale, method):
    """Coordinates the LR values stand for: the sampled HR points, or the centres of the blocks."""
    coords = np.asarray(coords, dtype=np.float64)
    if method == "stride":
        return coords[::scale]
    return np.round(coords.reshape(-1, scale).mean(axis=1), 6)
