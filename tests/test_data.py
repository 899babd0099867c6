"""The input pipeline's shard checks: sizes, checksums and GZIP/TFRecord integrity, before and while reading.

A tiny build whose test split has four shards; each test damages a copy of it (truncated, a
flipped bit, a missing file) and asserts the `ShardError` names the shard and the split.
"""

import json
import os

import numpy as np
import pytest

from hsr_keras.training import data
from hsr_keras.training.data import (
    CHEAP_CHECK_BYTES,
    ShardError,
    check_shards,
    load_split,
    make_dataset,
    read_errors,
    scan_shard,
)
from tfrecords_builder.contract.manifest import read_manifest, shard_record, write_readable_json


def truncate(path):
    os.truncate(path, path.stat().st_size // 2)


def flip_bit(path):
    """Flip one bit in the middle of the file: same size, damaged deflate data."""
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def first_test_shard(folder):
    return folder / read_manifest(folder)["splits"]["test"]["shards"][0]


def record_checksums(folder):
    """Add each shard's size and sha256 to the manifest ("shard_files"), as the builder can record them."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for split in manifest["splits"].values():
        split["shard_files"] = [shard_record(folder / name) for name in split["shards"]]
    write_readable_json(manifest, folder / "manifest.json")


def test_small_builds_are_checksummed_by_default(sharded_build_copy):
    """Under CHEAP_CHECK_BYTES the contents are checked too, so a bit-flip is caught before reading."""
    assert check_shards(sharded_build_copy, ["train", "val", "test"])["checksums"] is True
    flip_bit(first_test_shard(sharded_build_copy))
    with pytest.raises(ShardError, match="is corrupt"):
        check_shards(sharded_build_copy, "test")


def test_total_size_mismatch_names_the_shard(sharded_build_copy):
    """Without per-shard sizes a split's total tells; the damaged one of its shards is found and named."""
    manifest = read_manifest(sharded_build_copy)
    third = sharded_build_copy / manifest["splits"]["test"]["shards"][2]
    truncate(third)
    with pytest.raises(ShardError, match=f"shard {third.name} of split 'test' .* is truncated"):
        check_shards(manifest, "test")


def test_recorded_sizes_and_checksums(sharded_build_copy, monkeypatch):
    monkeypatch.setattr(data, "CHEAP_CHECK_BYTES", 0, raising=False)
    record_checksums(sharded_build_copy)
    assert check_shards(sharded_build_copy, ["train", "val", "test"], checksums=True)["checksums"] is True
    shard = first_test_shard(sharded_build_copy)
    size = shard.stat().st_size
    flip_bit(shard)
    check_shards(sharded_build_copy, "test")  # the size is right
    with pytest.raises(ShardError, match=f"{shard.name} .* is corrupt: its sha256 differs from the manifest's"):
        check_shards(sharded_build_copy, "test", checksums=True)
    truncate(shard)
    with pytest.raises(ShardError, match=f"is truncated: {size // 2} bytes, the manifest records {size}"):
        check_shards(sharded_build_copy, "test")


def test_missing_shard(sharded_build_copy):
    first_test_shard(sharded_build_copy).unlink()
    with pytest.raises(ShardError, match="1 shard\\(s\\) of split 'test' are missing"):
        check_shards(sharded_build_copy, "test")


def test_make_dataset_checks_before_reading(sharded_build_copy):
    """`fit`'s input pipeline: a truncated training shard is named before the first step."""
    shard = sharded_build_copy / read_manifest(sharded_build_copy)["splits"]["train"]["shards"][0]
    truncate(shard)
    with pytest.raises(ShardError, match=f"shard {shard.name} of split 'train'"):
        make_dataset(sharded_build_copy, "train", 2)


def test_read_errors_names_the_shard(sharded_build_copy):
    """The context manager `fit` wraps its training in: a DataLossError becomes a ShardError."""
    import tensorflow as tf

    manifest = read_manifest(sharded_build_copy)
    flip_bit(sharded_build_copy / manifest["splits"]["val"]["shards"][0])
    with pytest.raises(ShardError, match="of split 'val'"):
        with read_errors(manifest, ["train", "val"]):
            raise tf.errors.DataLossError(None, None, "inflate() failed with error -3: incorrect data check")
    with pytest.raises(KeyError):  # anything else passes through
        with read_errors(manifest, ["train", "val"]):
            raise KeyError("x")


def test_scan_shard(sharded_build, tmp_path):
    shard = first_test_shard(sharded_build)
    assert scan_shard(shard) == (1, None)
    copy = tmp_path / shard.name
    copy.write_bytes(shard.read_bytes()[:-3])
    assert "truncated" in scan_shard(copy)[1]
    copy.write_bytes(b"")
    assert "truncated" in scan_shard(copy)[1]
    copy.write_bytes(b"not gzip at all")
    assert "corrupt" in scan_shard(copy)[1]


def test_intact_build_reads(sharded_build):
    assert check_shards(sharded_build, ["train", "val", "test"]) == {
        "shards": 8,
        "bytes": sum(read_manifest(sharded_build)["splits"][s]["bytes"] for s in ("train", "val", "test")),
        "checksums": True,
    }
    assert CHEAP_CHECK_BYTES >= 1 << 20
    lr, hr, time = load_split(sharded_build, "test")
    assert lr.shape[0] == hr.shape[0] == time.shape[0] == 4 and np.isfinite(hr).all()


def test_record_count_must_match(sharded_build_copy):
    """Shards that are intact but not those the manifest describes (a shard of another build, an edited count).

    Checksums do not tell the count: it is compared with or without them.
    """
    manifest = json.loads((sharded_build_copy / "manifest.json").read_text())
    manifest["splits"]["test"]["examples"] = manifest["splits"]["test"]["days"] = 3
    write_readable_json(manifest, sharded_build_copy / "manifest.json")
    with pytest.raises(ShardError, match="holds 4 records, the manifest records 3: the manifest was edited"):
        check_shards(sharded_build_copy, "test")
    del manifest["splits"]["test"]["shard_files"]
    write_readable_json(manifest, sharded_build_copy / "manifest.json")
    with pytest.raises(ShardError, match="holds 4 records, the manifest records 3"):
        check_shards(sharded_build_copy, "test")


def test_rebuild_hint_without_a_command(sharded_build_copy):
    manifest = read_manifest(sharded_build_copy)
    del manifest["command"]
    truncate(first_test_shard(sharded_build_copy))
    with pytest.raises(ShardError, match="rebuild the data with python -m tfrecords_builder$"):
        check_shards(manifest, "test")
