"""Tiny data builds and configs shared by the training tests: test_training, test_fit."""

import csv
import json

from tfrecords_builder import build, synthetic

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
