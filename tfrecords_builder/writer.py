"""Sharded GZIP TFRecord files, written under temporary names and published only when a build succeeded.

A shard is written to its temporary name in the output folder (`files.temporary_path`);
`publish` writes the manifest (and its climatology) to temporaries too, and only once all of
them are complete removes the earlier build's manifest and shards, renames the shards and the
manifest last. Renames need no space: a full disk or an interrupt before them leaves the
earlier build as it was, and no build ever leaves a shard or manifest that looks complete
before it is.

Every shard is a GZIP file, so every reader reads it alike; `COMPRESSIONS` trade its size
for the time to write it. Deflate, the default, costs about 6x the read of the same netCDF
data; the faster choices suit a build that must keep up with its input and has the disk.
"""

import math
import os
import re
from pathlib import Path

import numpy as np

from tfrecords_builder.contract import files
from tfrecords_builder.contract.inputs import STATIC_FILE
from tfrecords_builder.contract.manifest import publishing_manifest
from tfrecords_builder.contract.schema import COMPRESSION, MANIFEST_NAME, SHARD_SUFFIX, SPLITS

SHARD_RE = re.compile(rf"^({'|'.join(SPLITS)})-\d{{5}}-of-\d{{5}}{re.escape(SHARD_SUFFIX)}$")
# TFRecord framing around each record: length, its CRC and the data's CRC.
FRAME_BYTES = 16
# --compression -> zlib settings of the GZIP stream. deflate: zlib's default level (the bytes
# of every build before this option); huffman: Huffman coding alone (Z_HUFFMAN_ONLY), about
# 5x faster; store: no compression, fastest. Shards of the real ERA5 sample: huffman 1.33x,
# store 1.55x the size of deflate's (synthetic data: 1.06x, 1.22x).
COMPRESSIONS = {
    "deflate": {},
    "huffman": {"compression_strategy": 2},
    "store": {"compression_level": 0},
}


def shard_runs(items, item_bytes, shard_bytes):
    """Split `items` into contiguous runs of about `shard_bytes` each (at least one item per run)."""
    count = max(1, min(len(items), math.ceil(len(items) * item_bytes / shard_bytes)))
    return [list(run) for run in np.array_split(np.asarray(items), count)]


class ShardWriter:
    """A GZIP TFRecord file at a temporary path: deleted on error, kept for `publish` on success."""

    def __init__(self, path, compression="deflate"):
        import tensorflow as tf

        self.path = Path(path)
        self.records = 0
        options = tf.io.TFRecordOptions(compression_type=COMPRESSION, **COMPRESSIONS[compression])
        self._errors = tf.errors.OpError
        try:
            self._writer = tf.io.TFRecordWriter(str(self.path), options=options)
        except self._errors as err:
            raise OSError(f"cannot write {self.path}: {err.message}") from err

    def write(self, record):
        try:
            self._writer.write(record)
        except self._errors as err:  # e.g. a full disk: one line naming the file, not TensorFlow's trace
            raise OSError(f"cannot write {self.path}: {err.message}") from err
        self.records += 1

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """Close the file (where GZIP writes its last block); on any error, the block's or the close's, delete it.

        A close that fails after the block failed (a full disk fails both) is not reported:
        the block's error is the one that says what happened.
        """
        try:
            self._writer.close()
        except self._errors as err:
            self.path.unlink(missing_ok=True)
            if exc_type is None:
                raise OSError(f"cannot write {self.path}: {err.message}") from err
        if exc_type is not None:
            self.path.unlink(missing_ok=True)


def publish(out_dir, renames, manifest, static=None):
    """Replace the folder's earlier build by this one: [(temporary path, shard name)], the manifest and
    `static`, the bytes of static.npy (`extras.static_file`; None: the build has no static fields).

    The manifest is written (to its temporaries) and every shard synced before the earlier
    build is touched; what follows are removals and renames.
    """
    out_dir = Path(out_dir)
    static_tmp = None if static is None else files.temporary_path(out_dir / STATIC_FILE)
    try:
        if static_tmp is not None:
            static_tmp.write_bytes(static)
            renames = [*renames, (static_tmp, STATIC_FILE)]
        for tmp, _ in renames:
            files.sync(tmp)
        with publishing_manifest(manifest, out_dir):  # published when the block ends
            (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
            (out_dir / STATIC_FILE).unlink(missing_ok=True)
            for path in out_dir.iterdir():
                if SHARD_RE.match(path.name):
                    path.unlink()
            for tmp, name in renames:
                os.replace(tmp, out_dir / name)
    finally:
        if static_tmp is not None:
            static_tmp.unlink(missing_ok=True)
