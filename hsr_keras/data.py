"""The `tf.data` input pipeline: sharded TFRecords of the builder -> (lr, hr) batches in %RH.

Shards are read in parallel (interleave), parsed with the feature spec of
`tfrecords_builder.schema`, cached in memory when the split is small enough, shuffled,
batched and prefetched, so the accelerator never waits for data.
"""

from pathlib import Path

import numpy as np

from tfrecords_builder.manifest import ManifestError, read_manifest
from tfrecords_builder.schema import COMPRESSION, parse_example

CACHE_LIMIT_BYTES = 2 * 1024**3


def split_files(manifest, split):
    """The shard paths of a split, checked to exist."""
    if split not in manifest["splits"]:
        raise ManifestError(f"split {split!r} is not in the manifest; it has {sorted(manifest['splits'])}")
    files = [str(Path(manifest["_dir"]) / name) for name in manifest["splits"][split]["shards"]]
    missing = [f for f in files if not Path(f).exists()]
    if missing:
        raise ManifestError(f"{len(missing)} shard(s) of split {split!r} are missing, e.g. {missing[0]}")
    return files


def split_bytes(manifest, split):
    """Decoded size of a split in memory (float32 hr + lr)."""
    examples = manifest["splits"][split]["examples"]
    return 4 * examples * (int(np.prod(manifest["hr_shape"])) + int(np.prod(manifest["lr_shape"])))


def make_dataset(manifest, split, batch_size, *, shuffle=False, repeat=False, seed=0, drop_remainder=False):
    """Batches of (lr [B,T,h,w,1], hr [B,T,H,W,1]) float32 in %RH from one split.

    Args:
        manifest: a loaded manifest (`read_manifest`) or the build folder.
        split: "train", "val" or "test".
        batch_size: samples per batch.
        shuffle: shuffle records (with a buffer of the whole split, up to 4096).
        repeat: repeat forever (steps per epoch set by the caller).
        seed: shuffling seed, for reproducible runs.
        drop_remainder: drop a last incomplete batch (needed by some distribution setups).
    """
    import tensorflow as tf

    if not isinstance(manifest, dict):
        manifest = read_manifest(manifest)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    files = split_files(manifest, split)
    hr_shape, lr_shape = manifest["hr_shape"], manifest["lr_shape"]

    def to_pair(serialized):
        record = parse_example(serialized, hr_shape, lr_shape)
        return record["lr"][..., None], record["hr"][..., None]

    ds = tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=COMPRESSION),
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    # The manifest knows the record count: with it Keras shows totals and needs no end probe.
    ds = ds.apply(tf.data.experimental.assert_cardinality(manifest["splits"][split]["examples"]))
    ds = ds.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
    if split_bytes(manifest, split) <= CACHE_LIMIT_BYTES:
        ds = ds.cache()
    if shuffle:
        buffer = max(1, min(manifest["splits"][split]["examples"], 4096))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def load_split(manifest, split, limit=None):
    """A whole split (or its first `limit` records) as numpy arrays lr [N,T,h,w], hr [N,T,H,W], time [N,T]."""
    import tensorflow as tf

    if not isinstance(manifest, dict):
        manifest = read_manifest(manifest)
    ds = tf.data.TFRecordDataset(split_files(manifest, split), compression_type=COMPRESSION)
    if limit is not None:
        ds = ds.take(limit)
    lr, hr, time = [], [], []
    for serialized in ds:
        record = parse_example(serialized, manifest["hr_shape"], manifest["lr_shape"])
        lr.append(record["lr"].numpy())
        hr.append(record["hr"].numpy())
        time.append(record["time"].numpy())
    return np.stack(lr), np.stack(hr), np.stack(time).astype("datetime64[s]")
