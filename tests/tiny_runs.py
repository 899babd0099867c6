"""Tiny data builds and configs shared by the training tests: test_training, test_fit, test_search, test_tune."""

import csv
import json

import numpy as np

from tfrecords_builder import build, synthetic
from tfrecords_builder.contract.manifest import write_readable_json
from tfrecords_builder.contract.schema import COMPRESSION, SCHEMA_VERSION, serialize_example, shard_name

# Networks small enough for a run of a few epochs to take seconds (test_training, test_fit).
TINY_RUN = {
    "filters": 8,
    "num_res_blocks": 1,
    "upsample_filters": 8,
    "num_post_blocks": 0,
    "se_ratio": 4,
    "global_skip": True,
    "critic_filters": 8,
    "critic_res_blocks": 0,
    "critic_post_blocks": 0,
    "batch_size": 4,
    "epochs": 2,
    "plot_every": 1,
    "plot_samples": 2,
}


def make_build(folder, train="2019-01-01:2019-01-12", val="2019-01-13:2019-01-16", end="2019-01-16"):
    """A TFRecord build (scale 8) of synthetic files under `folder`; returns its folder."""
    era5 = folder / "era5"
    synthetic.write_synthetic(era5, "2019-01-01", end, interval_hours=3, per="all", seed=3)
    out = folder / "tfrecords"
    assert build.main([str(era5), "--out", str(out), f"--train={train}", f"--val={val}", "--test=none", "--quiet"]) == 0
    return out


def write_config(path, **changes):
    """A config file of `TINY_RUN` updated by `changes`."""
    path.write_text(json.dumps({**TINY_RUN, **changes}))
    return path


def history_rows(out):
    """The rows of a run's history.csv."""
    return list(csv.DictReader((out / "history.csv").open()))


T, H, W, SCALE = 2, 16, 16, 4  # 16x16: the smallest frames SSIM's 11-point window takes
# A base config small enough for a trial to take seconds on 2 CPU cores.
TINY_SEARCH = dict(
    filters=4,
    num_res_blocks=1,
    upsample_filters=4,
    num_post_blocks=0,
    se_ratio=2,
    use_cbam=False,
    critic_filters=4,
    critic_res_blocks=0,
    critic_post_blocks=0,
    batch_size=4,
    seed=3,
)


def write_build(folder, examples=None):
    """A tiny build: one GZIP shard per split and a manifest, as tfrecords_builder writes them."""
    import tensorflow as tf

    examples = examples or {"train": 8, "val": 4}
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    splits = {}
    for split, count in examples.items():
        name = shard_name(split, 0, 1)
        with tf.io.TFRecordWriter(str(folder / name), options=COMPRESSION) as writer:
            for day in range(count):
                hr = rng.uniform(0.0, 110.0, (T, H, W)).astype("float32")
                times = np.datetime64("2019-01-01") + np.timedelta64(day, "D") + np.arange(T) * np.timedelta64(3, "h")
                writer.write(serialize_example(hr, hr[:, ::SCALE, ::SCALE], times, 300.0, "tiny"))
        splits[split] = {"examples": count, "days": count, "shards": [name], "skipped": [], "skipped_count": 0}
    grid = {
        "lat": list(range(H)),
        "lon": list(range(W)),
        "lr_lat": list(range(0, H, SCALE)),
        "lr_lon": list(range(0, W, SCALE)),
    }
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "hr_shape": [T, H, W],
        "lr_shape": [T, H // SCALE, W // SCALE],
        "scale": SCALE,
        "grid": grid,
        "splits": splits,
        "stats": {"mean": 55.0, "std": 31.7, "min": 0.0, "max": 110.0},
    }
    write_readable_json(manifest, folder / "manifest.json")
    return folder


# The extra inputs of `make_inputs_build`: (name, variable, level, units, typical value, spread).
PREDICTORS = (("t@300", "t", 300.0, "K", 240.0, 8.0), ("q@300", "q", 300.0, "kg kg**-1", 4e-4, 2e-4))
STATIC = (("orography", "m"), ("lsm", "1"))


def make_inputs_build(folder, examples=None, patches=1, time_encoding=True):
    """A tiny schema-3 build with the contract's extra inputs (issue 21), written directly, not by the builder.

    `write_build`'s layout plus: records carrying `predictors` [T, h, w, 2] (`PREDICTORS`, physical
    units, their statistics over the train split in the manifest), `time_encoding`, and a
    `static.npy` of `patches` patches [patches, H, W, 2] (`STATIC`). Records of day d are
    patch d % patches; the HR field rises with the orography, so the static fields carry signal.
    """
    import hashlib

    import tensorflow as tf

    from tfrecords_builder.contract.inputs import STATIC_FILE
    from tfrecords_builder.contract.schema import INPUTS_SCHEMA_VERSION

    examples = examples or {"train": 8, "val": 4}
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    static = np.stack(
        [np.stack([rng.uniform(0, 2000, (H, W)), rng.uniform(0, 1, (H, W)).round()], -1) for _ in range(patches)]
    ).astype("float32")
    np.save(folder / STATIC_FILE, static)
    splits, train_predictors = {}, []
    for split, count in examples.items():
        name = shard_name(split, 0, 1)
        with tf.io.TFRecordWriter(str(folder / name), options=COMPRESSION) as writer:
            for day in range(count):
                patch = day % patches
                hr = np.clip(rng.uniform(0.0, 80.0, (T, H, W)) + static[patch, ..., 0] / 100.0, 0, 110).astype(
                    "float32"
                )
                lr = hr[:, ::SCALE, ::SCALE]
                predictors = np.stack(
                    [rng.normal(mean, spread, lr.shape) for _, _, _, _, mean, spread in PREDICTORS], -1
                ).astype("float32")
                if split == "train":
                    train_predictors.append(predictors)
                times = np.datetime64("2019-01-01") + np.timedelta64(day, "D") + np.arange(T) * np.timedelta64(3, "h")
                corner = (patch, 10.0 * patch, 0.0) if patches > 1 else None
                writer.write(serialize_example(hr, lr, times, 300.0, "tiny", corner, predictors=predictors))
        splits[split] = {"examples": count, "days": count, "shards": [name], "skipped": [], "skipped_count": 0}
    stacked = np.stack(train_predictors).reshape(-1, len(PREDICTORS))
    data = (folder / STATIC_FILE).read_bytes()
    manifest = {
        "schema_version": INPUTS_SCHEMA_VERSION,
        "hr_shape": [T, H, W],
        "lr_shape": [T, H // SCALE, W // SCALE],
        "scale": SCALE,
        "grid": {
            "resolution_deg": 1.0,
            "lat": list(range(H)),
            "lon": list(range(W)),
            "lr_lat": list(range(0, H, SCALE)),
            "lr_lon": list(range(0, W, SCALE)),
        },
        "splits": splits,
        "stats": {"mean": 55.0, "std": 31.7, "min": 0.0, "max": 110.0},
        "predictors": [
            {"name": n, "variable": v, "level": level, "units": u, "mean": float(m), "std": float(s)}
            for (n, v, level, u, _, _), m, s in zip(PREDICTORS, stacked.mean(0), stacked.std(0))
        ],
        "time_encoding": time_encoding,
        "static": {
            "file": STATIC_FILE,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "channels": [
                {"name": n, "units": u, "mean": float(static[..., i].mean()), "std": float(static[..., i].std())}
                for i, (n, u) in enumerate(STATIC)
            ],
        },
    }
    write_readable_json(manifest, folder / "manifest.json")
    return folder
