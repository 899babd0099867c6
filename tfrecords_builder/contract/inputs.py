"""The model's inputs beyond the target's LR field: LR predictors, time encodings, HR static fields.

A build made with any of them is schema 3 (`schema.INPUTS_SCHEMA_VERSION`); its manifest says
which, and the networks, training, export and predict read that from here:

    manifest["predictors"]     [{"name": "t@300", "variable": "t", "level": 300.0, "units": "K",
                                 "mean": ..., "std": ...}, ...]; the records' `predictors`
                                feature [T, h, w, P], physical units, in this order
    manifest["time_encoding"]  true: 4 LR channels computed from each record's `time`
                                (`time_features`), nothing stored
    manifest["static"]         {"file": "static.npy", "bytes", "sha256", "channels": [{"name",
                                "units", "mean", "std"}, ...]}: float32 [n_patches, H, W, S] in
                                physical units, patch i of the manifest's patches, written once

The generator's inputs, by name (`input_names`): `lr` [B,T,h,w,1] %RH, then, when the build has
them, `predictors` [B,T,h,w,P], `time_features` [B,T,4] and `static` [B,H,W,S]. A build without
extras has the one input `lr`, as before.

numpy only: importing this module imports no TensorFlow, Beam or netCDF code.
"""

import hashlib
from pathlib import Path

import numpy as np

from tfrecords_builder.contract.errors import InputError

STATIC_FILE = "static.npy"
# The generator's inputs beside `lr`, in `input_names`' order.
EXTRA_INPUT_NAMES = ("predictors", "time_features", "static")
# What `--static` may ask for, and the channels each one gives: (name, units).
STATIC_CHOICES = {
    "orography": [("orography", "m")],  # surface geopotential / STANDARD_GRAVITY
    "lsm": [("lsm", "1")],  # land fraction, 0..1
    "latlon": [("latitude", "degrees_north"), ("sin_longitude", "1"), ("cos_longitude", "1")],
}
STANDARD_GRAVITY = 9.80665  # m s-2 (WMO): geopotential (m2 s-2) / g = geopotential height (m)
TIME_FEATURES = ("sin_hour", "cos_hour", "sin_day_of_year", "cos_day_of_year")
DAYS_PER_YEAR = 365.25
SECONDS_PER_DAY = 86400


def time_features(seconds):
    """[..., 4] float32 encodings of UTC times given in seconds since 1970-01-01.

    sin and cos of 2 pi h / 24 (h: the fractional hour of the day) and of 2 pi (d - 1) / 365.25
    (d: the day of the year, from 1, with its fraction): the daily and the seasonal cycle, each a
    point on a circle, so 23 h lies next to 0 h and 31 December next to 1 January.
    """
    seconds = np.asarray(seconds, dtype=np.int64)
    days = seconds // SECONDS_PER_DAY
    hour = (seconds - days * SECONDS_PER_DAY) / 3600.0
    dates = days.astype("datetime64[D]")
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + hour / 24.0  # from 0
    daily = 2 * np.pi * hour / 24.0
    seasonal = 2 * np.pi * day_of_year / DAYS_PER_YEAR
    return np.stack([np.sin(daily), np.cos(daily), np.sin(seasonal), np.cos(seasonal)], axis=-1).astype("float32")


def tf_time_features(seconds):
    """`time_features` in TensorFlow ops, for the input pipeline and an exported signature (same numbers).

    `seconds`: an int64 tensor [...] of seconds since 1970-01-01 UTC. The day of the year comes
    from the proleptic Gregorian calendar in integer arithmetic (H. Hinnant's days_from_civil),
    as numpy's datetime64 does.
    """
    import tensorflow as tf

    seconds = tf.cast(seconds, tf.int64)
    days = tf.math.floordiv(seconds, SECONDS_PER_DAY)
    hour = tf.cast(seconds - days * SECONDS_PER_DAY, tf.float64) / 3600.0
    # The civil year of each day (Hinnant's civil_from_days), then the day number of its 1 January.
    z = days + 719468
    era = tf.math.floordiv(z, 146097)
    doe = z - era * 146097
    yoe = tf.math.floordiv(doe - doe // 1460 + doe // 36524 - doe // 146096, 365)
    day_from_march = doe - (365 * yoe + yoe // 4 - yoe // 100)
    year = yoe + era * 400 + tf.cast(day_from_march >= 306, tf.int64)  # March-based year to January-based
    before = year - 1  # days_from_civil(year, 1, 1): 1 January is day 306 of the March-based year before
    era = tf.math.floordiv(before, 400)
    yoe = before - era * 400
    january_first = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + 306 - 719468
    day_of_year = tf.cast(days - january_first, tf.float64) + hour / 24.0  # from 0
    daily = 2 * np.pi * hour / 24.0
    seasonal = 2 * np.pi * day_of_year / DAYS_PER_YEAR
    features = [tf.sin(daily), tf.cos(daily), tf.sin(seasonal), tf.cos(seasonal)]
    return tf.cast(tf.stack(features, axis=-1), tf.float32)


def latlon_fields(lat, lon):
    """The `latlon` channels on the grid `lat` x `lon` (degrees): latitude, sin and cos of longitude, [3, lat, lon].

    The builder writes them into static.npy and predict computes them for its fine grid, alike.
    """
    lat, lon = np.meshgrid(np.asarray(lat, np.float64), np.radians(np.asarray(lon, np.float64)), indexing="ij")
    return np.stack([lat, np.sin(lon), np.cos(lon)])


def predictor_count(manifest):
    """P, the LR predictor channels of a build (0 without)."""
    return len(manifest.get("predictors") or [])


def static_channels(manifest):
    """The static channels' records (name, units, mean, std) of a build, [] without."""
    return list((manifest.get("static") or {}).get("channels") or [])


def input_names(manifest):
    """The generator's inputs for a build, in order: `lr`, then those of its extras."""
    names = ["lr"]
    if predictor_count(manifest):
        names.append("predictors")
    if manifest.get("time_encoding"):
        names.append("time_features")
    if static_channels(manifest):
        names.append("static")
    return names


def load_static(manifest):
    """The static fields of a build, float32 [n_patches, H, W, S], checked against the manifest.

    A missing, truncated or altered file is an `InputError` naming it.
    """
    record = manifest.get("static")
    if not record:
        raise InputError(
            f"the build in {manifest.get('_dir', '?')} has no static fields (it was built without --static)"
        )
    folder = Path(manifest.get("_dir", "."))
    path = folder / Path(record["file"]).name  # the build's own folder only
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read the static fields {path}: {err.strerror or err}") from None
    if len(data) != record.get("bytes") or hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise InputError(f"{path} does not match its manifest (size or checksum): rebuild the data")
    static = np.load(path, allow_pickle=False)
    hr_shape = manifest["hr_shape"]
    expected = (tuple(hr_shape[1:3]), len(record["channels"]))
    if static.ndim != 4 or (static.shape[1:3], static.shape[3]) != expected:
        raise InputError(f"{path} has shape {static.shape}, not [patches, {hr_shape[1]}, {hr_shape[2]}, {expected[1]}]")
    return static.astype("float32", copy=False)
