"""The data contract between the builder and the model: one home for the TFRecord feature spec.

One `tf.train.Example` holds one region-day at one pressure level:

    hr      bytes   float32 little-endian, shape [T, H, W], physical units (%RH)
    lr      bytes   float32 little-endian, shape [T, h, w], physical units (%RH)
    time    int64   [T] seconds since 1970-01-01 UTC of each step
    level   float   [1] pressure level in hPa
    region  bytes   [1] region name from the manifest

Shapes are not stored per record: they are the same for every record of a build and live
in `manifest.json` (`hr_shape`, `lr_shape`), which `parse_example` takes.

TensorFlow is imported inside the functions, so this module (and the builder's reading
code) imports on machines that have no TensorFlow.
"""

import numpy as np

SCALES = (2, 4, 8, 16)
SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "val", "test")
SHARD_SUFFIX = ".tfrecord.gz"
COMPRESSION = "GZIP"


def shard_name(split, index, count):
    """File name of shard `index` of `count` of a split, e.g. `train-00000-of-00004.tfrecord.gz`."""
    return f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def serialize_example(hr, lr, times, level, region):
    """Serialise one region-day to bytes, deterministically (same input, same bytes)."""
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
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


def feature_spec(steps):
    """The `tf.io.parse_example` spec for records with `steps` time steps."""
    import tensorflow as tf

    return {
        "hr": tf.io.FixedLenFeature([], tf.string),
        "lr": tf.io.FixedLenFeature([], tf.string),
        "time": tf.io.FixedLenFeature([steps], tf.int64),
        "level": tf.io.FixedLenFeature([], tf.float32),
        "region": tf.io.FixedLenFeature([], tf.string),
    }


def parse_example(serialized, hr_shape, lr_shape):
    """Parse one serialised record into a dict of tensors: hr [T,H,W], lr [T,h,w], time, level, region."""
    import tensorflow as tf

    parsed = tf.io.parse_single_example(serialized, feature_spec(hr_shape[0]))
    parsed["hr"] = tf.reshape(tf.io.decode_raw(parsed["hr"], tf.float32, little_endian=True), hr_shape)
    parsed["lr"] = tf.reshape(tf.io.decode_raw(parsed["lr"], tf.float32, little_endian=True), lr_shape)
    return parsed
