"""The `tf.data` input pipeline: sharded TFRecords of the builder -> (lr, hr) batches in %RH.

A build with extra inputs (schema 3, `tfrecords_builder.contract.inputs`) gives
`({"lr", "predictors", "time_features", "static"}: only those it has}, hr)` batches instead:
the predictors from each record, the time features computed from its times, the static
fields of its patch from the build's `static.npy`.

Shards are read in parallel (interleave), parsed with the feature spec of
`tfrecords_builder.contract.schema`, cached in memory when the split is small enough, shuffled,
batched and prefetched, so the accelerator never waits for data.

Damaged data is named, never a traceback: `check_shards` checks a split's shards before they
are read (each shard exists and has the size the manifest records; with `checksums=True`, or
always when the shards total at most CHEAP_CHECK_BYTES, also their sha256 where the manifest
records it, else their GZIP stream and TFRecord framing read whole), and `read_errors` turns
a `DataLossError` met while reading (a bit-flip that keeps the size) into a `ShardError`
naming the shard. `make_dataset` and `load_split` do both.
"""

import contextlib
import hashlib
import os
import re
import shlex
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

from tfrecords_builder.contract.files import sha256_of
from tfrecords_builder.contract.inputs import (
    input_names,
    load_static,
    predictor_count,
    static_channels,
    tf_time_features,
)
from tfrecords_builder.contract.manifest import ManifestError, read_manifest
from tfrecords_builder.contract.schema import COMPRESSION, parse_example

CACHE_LIMIT_BYTES = 2 * 1024**3
# tf.data's autotuner runs a model thread that an iterator's destruction does not wake, so the
# end of a `fit` could wait out the thread's optimisation period (19-56 s seen in 4 of 10 demo
# runs). The pipeline is simple enough to size by hand: PARALLELISM threads read and parse,
# PREFETCH batches wait ahead of the step.
PARALLELISM = min(8, os.cpu_count() or 1)
PREFETCH = 2
CHEAP_CHECK_BYTES = 64 * 1024**2
"""Shards totalling at most this many bytes are checksummed whenever they are checked (well under a second)."""
_FRAME_HEADER = 12  # TFRecord framing before each record: uint64 length and its masked CRC-32C
_FRAME_FOOTER = 4  # after each record: the masked CRC-32C of its data
_MAX_RECORD = 1 << 34  # a length beyond this is damaged framing, not a record


# Shards found intact in this process: (path, size, mtime, sha256 or None) -> records. A search
# or tune that builds its datasets again for every trial reads each shard once.
_INTACT = {}


class ShardError(ManifestError):
    """A shard that is missing, truncated or corrupt; the message names it and how to rebuild the data."""


def _splits_of(splits):
    return [splits] if isinstance(splits, str) else list(splits)


def rebuild_hint(manifest):
    """How to rebuild a build: the command recorded in its manifest, else the builder's name."""
    command = manifest.get("command")
    if isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        return f"rebuild the data: {shlex.join(command)}"
    return "rebuild the data with python -m tfrecords_builder"


def _shard_problem(manifest, split, name, problem):
    where = f" in {manifest['_dir']}" if "_dir" in manifest else ""
    return ShardError(f"shard {name} of split {split!r}{where} {problem}; {rebuild_hint(manifest)}")


def scan_shard(path, digest=None):
    """Read a GZIP TFRecord file whole: (records, problem), `problem` None when it is intact.

    The GZIP stream is inflated to its end, which checks the deflate data, the CRC-32 of the
    content and its length; the TFRecord framing is walked record by record. `digest` (a
    hashlib object) is fed the file's bytes on the way, so a checksum costs no second read.
    """
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    records, header, skip, started = 0, b"", 0, False
    try:
        with open(path, "rb") as f:
            # Small reads bound what one inflate call returns (deflate expands at most ~1000x).
            for chunk in iter(lambda: f.read(1 << 16), b""):
                if digest is not None:
                    digest.update(chunk)
                while chunk:
                    if inflater.eof:  # a further GZIP member
                        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                    data = inflater.decompress(chunk)
                    started = True
                    chunk = inflater.unused_data if inflater.eof else b""
                    pos = 0
                    while pos < len(data):
                        if skip:
                            step = min(skip, len(data) - pos)
                            skip, pos = skip - step, pos + step
                            continue
                        take = min(_FRAME_HEADER - len(header), len(data) - pos)
                        header, pos = header + data[pos : pos + take], pos + take
                        if len(header) == _FRAME_HEADER:
                            length = struct.unpack("<Q", header[:8])[0]
                            if length > _MAX_RECORD:
                                return records, f"has damaged TFRecord framing after record {records}"
                            skip, header, records = length + _FRAME_FOOTER, b"", records + 1
    except zlib.error as err:
        return records, f"is corrupt: its GZIP data fails to inflate ({err})"
    if not started or not inflater.eof:
        return records, "is truncated: its GZIP stream ends early"
    if header or skip:
        return records, "is truncated: its last record is cut off"
    return records, None


def _find_damaged(manifest, split):
    """The first (shard name, problem) of a split that `scan_shard` finds damaged, or None."""
    for name in manifest["splits"][split]["shards"]:
        problem = scan_shard(Path(manifest["_dir"]) / name)[1]
        if problem:
            return name, problem
    return None


def check_shards(manifest, splits, checksums=False):
    """Check the shards of `splits` before they are read; raise `ShardError` naming the first bad one.

    Always (a stat per shard): every shard exists and has the size the manifest records, per
    shard where it has "shard_files", else the split's total "bytes". With `checksums`, or when
    the shards total at most CHEAP_CHECK_BYTES: each shard read whole (its GZIP stream, its
    TFRecord framing and its sha256 where the manifest records one), and the split's record
    count against the manifest's.

    Args:
        manifest: a loaded manifest (`read_manifest`) or the build folder.
        splits: a split name or names.
        checksums: read every shard whole, however large.

    Returns:
        {"shards", "bytes", "checksums"}: what was checked.
    """
    if not isinstance(manifest, dict):
        manifest = read_manifest(manifest)
    splits = _splits_of(splits)
    files = {split: split_files(manifest, split) for split in splits}
    total = 0
    for split, paths in files.items():
        record = manifest["splits"][split]
        recorded = {entry.get("name"): entry for entry in record.get("shard_files") or [] if isinstance(entry, dict)}
        sizes = [Path(path).stat().st_size for path in paths]
        total += sum(sizes)
        for name, size in zip(record["shards"], sizes):
            expected = recorded.get(name, {}).get("bytes")
            if expected is not None and size != expected:
                problem = "is truncated" if size < expected else "does not match the build"
                raise _shard_problem(manifest, split, name, f"{problem}: {size} bytes, the manifest records {expected}")
        expected = record.get("bytes")
        if not recorded and expected is not None and sum(sizes) != expected:
            found = _find_damaged(manifest, split) if len(paths) > 1 else None
            if found is None and len(paths) == 1:
                problem = "is truncated" if sum(sizes) < expected else "does not match the build"
                found = (record["shards"][0], f"{problem}: {sum(sizes)} bytes, the manifest records {expected}")
            if found is not None:
                raise _shard_problem(manifest, split, *found)
            raise ShardError(
                f"the {len(paths)} shards of split {split!r} in {manifest['_dir']} hold {sum(sizes)} bytes, the "
                f"manifest records {expected}: a shard is truncated or was replaced; {rebuild_hint(manifest)}"
            )
    full = bool(checksums) or total <= CHEAP_CHECK_BYTES
    if full:
        for split in splits:
            _check_contents(manifest, split)
    return {"shards": sum(len(paths) for paths in files.values()), "bytes": total, "checksums": full}


def _check_contents(manifest, split):
    record = manifest["splits"][split]
    recorded = {entry.get("name"): entry for entry in record.get("shard_files") or [] if isinstance(entry, dict)}
    records = 0
    for name in record["shards"]:
        path = Path(manifest["_dir"]) / name
        stat = path.stat()
        digest = recorded.get(name, {}).get("sha256")
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, digest)
        if key in _INTACT:  # read whole earlier in this process, unchanged since
            records += _INTACT[key]
            continue
        sha256 = hashlib.sha256()
        count, problem = scan_shard(path, sha256)
        if digest and (sha256_of(path) if problem else sha256.hexdigest()) != digest:  # the surer diagnosis
            raise _shard_problem(manifest, split, name, "is corrupt: its sha256 differs from the manifest's")
        if problem:
            raise _shard_problem(manifest, split, name, problem)
        _INTACT[key] = count
        records += count
    expected = record.get("examples")
    if expected is not None and records != expected:
        raise ShardError(
            f"split {split!r} in {manifest['_dir']} holds {records} records, the manifest records {expected}: "
            f"the manifest was edited or the shards are not those of this build; {rebuild_hint(manifest)}"
        )


def _tf_message(err):
    """The useful part of a TensorFlow error: without the function-node prefix and the op suffix."""
    text = " ".join(str(getattr(err, "message", err)).split())
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text).strip() or type(err).__name__


@contextlib.contextmanager
def read_errors(manifest, splits):
    """Turn a TensorFlow `DataLossError` raised while reading `splits` into a `ShardError` naming the shard.

    The damaged shard is found by reading the splits' shards whole (`scan_shard`); the error
    says which split was being read when none of them is found damaged. A split holding another
    number of records than its manifest says (found only at its end when it was too large to
    count beforehand) is a `ShardError` too.
    """
    try:
        yield
    except Exception as err:
        tf = sys.modules.get("tensorflow")
        if tf is None or not isinstance(err, tf.errors.OpError):
            raise
        if not isinstance(manifest, dict):
            manifest = read_manifest(manifest)
        splits = _splits_of(splits)
        if not isinstance(err, tf.errors.DataLossError):
            if "expected to contain" not in str(err):
                raise
            raise ShardError(
                f"split {', '.join(repr(s) for s in splits)} in {manifest.get('_dir', '?')} does not hold the records "
                f"its manifest counts ({_tf_message(err)}): the manifest was edited or the shards are not those of "
                f"this build; {rebuild_hint(manifest)}"
            ) from err
        for split in splits:
            found = _find_damaged(manifest, split)
            if found is not None:
                raise _shard_problem(manifest, split, *found) from err
        names = ", ".join(repr(s) for s in splits)
        raise ShardError(
            f"reading split {names} in {manifest.get('_dir', '?')} failed: {_tf_message(err)}; {rebuild_hint(manifest)}"
        ) from err


def split_files(manifest, split):
    """The shard paths of a split, checked to exist."""
    if split not in manifest["splits"]:
        raise ManifestError(f"split {split!r} is not in the manifest; it has {sorted(manifest['splits'])}")
    files = [str(Path(manifest["_dir"]) / name) for name in manifest["splits"][split]["shards"]]
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise ShardError(
            f"{len(missing)} shard(s) of split {split!r} are missing, e.g. {missing[0]}; {rebuild_hint(manifest)}"
        )
    return files


def split_bytes(manifest, split):
    """Decoded size of a split in memory (float32 hr + lr, and the extra inputs of each record)."""
    examples = manifest["splits"][split]["examples"]
    hr, lr = int(np.prod(manifest["hr_shape"])), int(np.prod(manifest["lr_shape"]))
    extra = lr * predictor_count(manifest) + manifest["hr_shape"][0] * 4 * bool(manifest.get("time_encoding"))
    extra += hr // manifest["hr_shape"][0] * len(static_channels(manifest))
    return 4 * examples * (hr + lr + extra)


def record_inputs(manifest):
    """A function of a serialised record to `(inputs, hr [T,H,W,1])`, in TensorFlow ops.

    `inputs` is lr [T,h,w,1] for a build without extras, else the dict of the generator's
    named inputs (`contract.inputs.input_names`). The static fields are read (and checked
    against the manifest) once, here.
    """
    import tensorflow as tf

    names = input_names(manifest)
    hr_shape, lr_shape, predictors = manifest["hr_shape"], manifest["lr_shape"], predictor_count(manifest)
    static = tf.constant(load_static(manifest)) if "static" in names else None

    def parse(serialized):
        record = parse_example(serialized, hr_shape, lr_shape, predictors=predictors)
        lr, hr = record["lr"][..., None], record["hr"][..., None]
        if len(names) == 1:
            return lr, hr
        inputs = {"lr": lr}
        if predictors:
            inputs["predictors"] = record["predictors"]
        if "time_features" in names:
            inputs["time_features"] = tf_time_features(record["time"])
        if static is not None:
            inputs["static"] = tf.gather(static, record["patch"])
        return inputs, hr

    return parse


def make_dataset(manifest, split, batch_size, *, shuffle=False, repeat=False, seed=0, drop_remainder=False):
    """Batches of (lr [B,T,h,w,1], hr [B,T,H,W,1]) float32 in %RH from one split.

    A build with extra inputs gives `({name: [B, ...]}, hr)` (`record_inputs`).

    Args:
        manifest: a loaded manifest (`read_manifest`) or the build folder.
        split: "train", "val" or "test".
        batch_size: samples per batch.
        shuffle: shuffle records (with a buffer of the whole split, up to 4096).
        repeat: repeat forever (steps per epoch set by the caller).
        seed: shuffling seed, for reproducible runs.
        drop_remainder: drop a last incomplete batch (needed by some distribution setups).

    The split's shards are checked first (`check_shards`, sizes; checksums when they are
    small): a damaged one is a `ShardError` naming it. Wrap the loop that reads the dataset
    in `read_errors` to name a shard found damaged while reading.
    """
    import tensorflow as tf

    if not isinstance(manifest, dict):
        manifest = read_manifest(manifest)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    check_shards(manifest, split)
    files = split_files(manifest, split)
    to_pair = record_inputs(manifest)

    ds = tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=COMPRESSION),
        cycle_length=min(len(files), 8),
        num_parallel_calls=min(len(files), PARALLELISM),
        deterministic=True,
    )
    # The manifest knows the record count: with it Keras shows totals and needs no end probe.
    ds = ds.apply(tf.data.experimental.assert_cardinality(manifest["splits"][split]["examples"]))
    ds = ds.map(to_pair, num_parallel_calls=PARALLELISM)
    if split_bytes(manifest, split) <= CACHE_LIMIT_BYTES:
        ds = ds.cache()
    if shuffle:
        buffer = max(1, min(manifest["splits"][split]["examples"], 4096))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return without_autotune(ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(PREFETCH))


def without_autotune(ds):
    """`ds` with tf.data's autotuner off: its model thread would hold up the iterator's end (see PARALLELISM)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def load_split(manifest, split, limit=None):
    """A whole split (or its first `limit` records) as numpy arrays lr [N,T,h,w], hr [N,T,H,W], time [N,T]."""
    import tensorflow as tf

    if not isinstance(manifest, dict):
        manifest = read_manifest(manifest)
    ds = tf.data.TFRecordDataset(split_files(manifest, split), compression_type=COMPRESSION)
    if limit is not None:
        ds = ds.take(limit)
    lr, hr, time = [], [], []
    with read_errors(manifest, split):
        for serialized in ds:
            record = parse_example(serialized, manifest["hr_shape"], manifest["lr_shape"])
            lr.append(record["lr"].numpy())
            hr.append(record["hr"].numpy())
            time.append(record["time"].numpy())
    return np.stack(lr), np.stack(hr), np.stack(time).astype("datetime64[s]")


def load_extras(manifest, split, limit=None):
    """The extra inputs of a split's first `limit` records, by name, as numpy ({} for a build without)."""
    import tensorflow as tf

    if not isinstance(manifest, dict):
        manifest = read_manifest(manifest)
    if input_names(manifest) == ["lr"]:
        return {}
    ds = tf.data.TFRecordDataset(split_files(manifest, split), compression_type=COMPRESSION)
    if limit is not None:
        ds = ds.take(limit)
    parse = record_inputs(manifest)
    extras = {}
    with read_errors(manifest, split):
        for inputs, _ in ds.map(parse):
            for name, value in inputs.items():
                if name != "lr":
                    extras.setdefault(name, []).append(value.numpy())
    return {name: np.stack(values) for name, values in extras.items()}
