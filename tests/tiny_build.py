"""A tiny build of synthetic ERA5-like data and two tiny generators, shared by the evaluation tests."""

import csv
import json

import keras
import numpy as np

from hsr_keras.models.networks import build_generator, build_srcnn
from hsr_keras.training.data import load_split
from tfrecords_builder import build, synthetic
from tfrecords_builder.contract.manifest import read_manifest

SCALE = 4
# 32 x 32 HR points, 8 x 8 LR; the test split spans two months (2 January, 2 February days).
REGION = dict(lat_bounds=(40.0, 47.75), lon_bounds=(110.0, 117.75), resolution=0.25)
SPLITS = ["--train", "2019-01-27:2019-01-29", "--val", "2019-02-03:2019-02-03", "--test", "2019-01-30:2019-02-02"]
TINY_GENERATOR = dict(filters=8, num_res_blocks=1, upsample_filters=4, num_post_blocks=1, se_ratio=4)
PAPER_COLUMNS = ["mse", "mae", "ssim", "psnr", "acc", "tcc"]


def make_tiny(root):
    """The build under `root/data`, a noisy paper generator as a fit output and an SRCNN `.keras`."""
    synthetic.write_synthetic(root / "era5", "2019-01-27", "2019-02-03", per="all", interval_hours=3, seed=0, **REGION)
    argv = [
        str(root / "era5"),
        "--out",
        str(root / "data"),
        "--lat",
        "40",
        "47.75",
        "--lon",
        "110",
        "117.75",
        "--scale",
        str(SCALE),
        "--quiet",
    ] + SPLITS
    assert build.main(argv) == 0
    manifest = read_manifest(root / "data")
    mean, std = manifest["stats"]["mean"], manifest["stats"]["std"]
    keras.utils.set_random_seed(0)
    paper = root / "paper"
    paper.mkdir()
    build_generator(scale=SCALE, mean=mean, std=std, noise_stddev=0.5, global_skip=True, **TINY_GENERATOR).save(
        paper / "generator.keras"
    )
    (paper / "config.json").write_text(json.dumps({"architecture": "paper", "filters": 8}))
    srcnn = root / "srcnn.keras"
    build_srcnn(scale=SCALE, filters=(4, 4), kernel_sizes=(3, 3, 3), mean=mean, std=std).save(srcnn)
    return {"root": root, "data": root / "data", "manifest": manifest, "paper": paper, "srcnn": srcnn}


def oracle(manifest, split):
    """A method returning the truth: looks the HR day up by its LR day (a test-only cheat)."""
    lr, hr, _ = load_split(manifest, split)
    table = {day.tobytes(): truth for day, truth in zip(lr, hr)}
    return lambda batch: np.stack([table[day.astype("float32").tobytes()] for day in batch])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def planted_lattice(field, scale):
    """`field` [..., H, W] with each interior LR sample point set to the mean of its 4 neighbours: the dotted lattice."""
    dotted = np.array(field, dtype="float64")
    rows, cols = np.ix_(np.arange(scale, field.shape[-2] - 1, scale), np.arange(scale, field.shape[-1] - 1, scale))
    dotted[..., rows, cols] = (
        dotted[..., rows - 1, cols]
        + dotted[..., rows + 1, cols]
        + dotted[..., rows, cols - 1]
        + dotted[..., rows, cols + 1]
    ) / 4
    return dotted


def make_sharded_build(root):
    """A tiny build under `root/data` whose test split has 4 shards of one day each; returns its folder."""
    synthetic.write_synthetic(root / "era5", "2019-01-27", "2019-02-03", per="all", interval_hours=3, seed=0, **REGION)
    argv = [str(root / "era5"), "--out", str(root / "data"), "--lat", "40", "47.75", "--lon", "110", "117.75"]
    argv += ["--scale", str(SCALE), "--quiet", "--shard-mb", "0.03"] + SPLITS
    assert build.main(argv) == 0
    manifest = read_manifest(root / "data")
    assert len(manifest["splits"]["test"]["shards"]) == 4, manifest["splits"]["test"]["shards"]
    return root / "data"
