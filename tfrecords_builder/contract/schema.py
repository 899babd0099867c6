"""The data contract between the builder and the model: one home for the TFRecord feature spec.

One `tf.train.Example` holds one patch-day at one pressure level (schema version 2):

    hr         bytes   float32 little-endian, shape [T, H, W], physical units (%RH)
    lr         bytes   float32 little-endian, shape [T, h, w], physical units (%RH)
    time       int64   [T] seconds since 1970-01-01 UTC of each step
    level      float   [1] pressure level in hPa
    region     bytes   [1] region (domain) name from the manifest
    patch      int64   [1] patch index (manifest `patches`)          } only in builds of more
    patch_lat  float   [1] latitude of the patch's south-west cell   } than one patch: a record
    patch_lon  float   [1] longitude of that cell                    } without them is patch 0

Schema 3 is schema 2 with the extra model inputs of a build made with predictors, static
fields or time encodings (`contract.inputs`); its records may carry one more feature:
    predictors bytes   float32 little-endian, shape [T, h, w, P], physical units, at LR, in the
                       order of the manifest's `predictors`
A build without them is still written as schema 2.

Shapes are not stored per record: they are the same for every record of a build and live
in `manifest.json` (`hr_shape`, `lr_shape`), which `parse_example` takes.

Schema 1 (before patches) had the first five features only: its records are those of a
one-patch build, byte for byte, and `parse_example` reads them as patch 0.

`SCALES`, the HR/LR resolution ratios a build may write, lives here too: the builder and the
networks of `hsr_keras` must agree on them.

TensorFlow is imported inside the functions, so this module (and the builder's reading
code) imports on machines that have no TensorFlow.
"""

import numpy as np

SCALES = (2, 4, 8, 16)
SCHEMA_VERSION = 2
# The version of a build with extra inputs (predictors, static fields, time encodings).
INPUTS_SCHEMA_VERSION = 3
# Versions this code reads: 1 is 2 with a single patch.
READABLE_SCHEMA_VERSIONS = (1, 2, 3)
MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "val", "test")
SHARD_SUFFIX = ".tfrecord.gz"
COMPRESSION = "GZIP"


def shard_name(split, index, count):
    """File name of shard `index` of `count` of a split, e.g. `train-00000-of-00004.tfrecord.gz`."""
    return f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def serialize_example(hr, lr, times, level, region, patch=None, predictors=None):
    """Serialise one patch-day to bytes, deterministically (same input, same bytes).

    `patch`: (index, corner latitude, corner longitude), or None for the only patch of a build.
    `predictors`: [T, h, w, P] LR predictors (schema 3), or None.
    """
    import tensorflow as tf

    hr = np.ascontiguousarray(hr, dtype="<f4")
    lr = np.ascontiguousarray(lr, dtype="<f4")
    times = np.asarray(times)
    if np.issubdtype(times.dtype, np.datetime64):
        times = times.astype("datetime64[s]").astype(np.int64)
    if hr.ndim != 3 or lr.ndim != 3 or not (hr.shape[0] == lr.shape[0] == len(times)):
        raise ValueError(
            f"Expected hr [T,H,W], lr [T,h,w] and T times. Received: hr {hr.shape}, lr {lr.shape}, {len(times)} times"
        )
    feature = {
        "hr": tf.train.Feature(bytes_list=tf.train.BytesList(value=[hr.tobytes()])),
        "lr": tf.train.Feature(bytes_list=tf.train.BytesList(value=[lr.tobytes()])),
        "time": tf.train.Feature(int64_list=tf.train.Int64List(value=times.tolist())),
        "level": tf.train.Feature(float_list=tf.train.FloatList(value=[float(level)])),
        "region": tf.train.Feature(bytes_list=tf.train.BytesList(value=[region.encode()])),
    }
    if predictors is not None:
        predictors = np.ascontiguousarray(predictors, dtype="<f4")
        if predictors.ndim != 4 or predictors.shape[:3] != lr.shape:
            raise ValueError(
                f"Expected predictors [T,h,w,P] with lr's [T,h,w] {lr.shape}. Received: {predictors.shape}"
            )
        feature["predictors"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[predictors.tobytes()]))
    if patch is not None:
        index, lat, lon = patch
        feature["patch"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(index)]))
        feature["patch_lat"] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(lat)]))
        feature["patch_lon"] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(lon)]))
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


def feature_spec(steps, corner=None, predictors=0):
    """The `tf.io.parse_example` spec for records with `steps` time steps (and `predictors` LR channels).

    A record without patch features is patch 0 with corner `corner` (lat, lon); NaN if None.
    """
    import tensorflow as tf

    lat, lon = (float("nan"), float("nan")) if corner is None else map(float, corner)
    extra = {"predictors": tf.io.FixedLenFeature([], tf.string)} if predictors else {}
    return {
        **extra,
        "hr": tf.io.FixedLenFeature([], tf.string),
        "lr": tf.io.FixedLenFeature([], tf.string),
        "time": tf.io.FixedLenFeature([steps], tf.int64),
        "level": tf.io.FixedLenFeature([], tf.float32),
        "region": tf.io.FixedLenFeature([], tf.string),
        "patch": tf.io.FixedLenFeature([], tf.int64, default_value=0),
        "patch_lat": tf.io.FixedLenFeature([], tf.float32, default_value=lat),
        "patch_lon": tf.io.FixedLenFeature([], tf.float32, default_value=lon),
    }


def parse_example(serialized, hr_shape, lr_shape, corner=None, predictors=0):
    """Parse one serialised record into a dict of tensors: hr [T,H,W], lr [T,h,w], time, level, region, patch,
    patch_lat, patch_lon, and predictors [T,h,w,P] when `predictors` = P > 0 (schema 3,
    `len(manifest["predictors"])`).

    `corner`: the (lat, lon) of a build's only patch (`manifest["patches"]["corners"][0]`), for
    records that do not carry it (one-patch builds, schema 1); NaN if None.
    """
    import tensorflow as tf

    parsed = tf.io.parse_single_example(serialized, feature_spec(hr_shape[0], corner, predictors))
    parsed["hr"] = tf.reshape(tf.io.decode_raw(parsed["hr"], tf.float32, little_endian=True), hr_shape)
    parsed["lr"] = tf.reshape(tf.io.decode_raw(parsed["lr"], tf.float32, little_endian=True), lr_shape)
    if predictors:
        raw = tf.io.decode_raw(parsed["predictors"], tf.float32, little_endian=True)
        parsed["predictors"] = tf.reshape(raw, [*lr_shape, predictors])
    return parsed
