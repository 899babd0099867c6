"""`python -m hsr_keras.tune` on a tiny build: the search space, the hyper-model, a real search, resume, errors."""

import csv
import json
import math

import keras
import keras_tuner
import numpy as np
import pytest

from hsr_keras import tune
from hsr_keras.config import PRESETS, load_config
from tfrecords_builder.manifest import read_manifest, write_json_atomic
from tfrecords_builder.schema import COMPRESSION, SCHEMA_VERSION, serialize_example, shard_name

T, H, W, SCALE = 2, 16, 16, 4  # 16x16: the smallest frames SSIM's 11-point window takes
# A base config small enough for a trial to take seconds on 2 CPU cores.
TINY = dict(
    scale=SCALE,
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
SEARCH = ["--tuner", "random", "--max-trials", "2", "--epochs", "1", "--space", "small", "--quiet"]


def write_build(folder, examples=None):
    examples = examples or {"train": 8, "val": 4}
    """A tiny build: one GZIP shard per split and a manifest, as tfrecords_builder writes them."""
    import tensorflow as tf

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
    write_json_atomic(manifest, folder / "manifest.json")
    return folder


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return write_build(tmp_path_factory.mktemp("tune") / "tfrecords")


@pytest.fixture(scope="module")
def base_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tune") / "base.json"
    path.write_text(json.dumps(TINY))
    return path


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_search_space_suits_both_presets():
    for preset in ("demo", "paper"):
        base = PRESETS[preset]
        space = tune.search_space(base)
        assert list(space) == [
            "g_learning_rate", "d_learning_rate", "content_weight", "adversarial_weight",
            "critic_steps", "gp_weight", "filters", "num_res_blocks", "noise_stddev",
        ]  # fmt: skip
        for name, param in space.items():  # the preset's own values lie in the space and start the search
            assert param.default == getattr(base, name), name
        assert space["g_learning_rate"].log and space["adversarial_weight"].log
        assert (space["critic_steps"].low, space["critic_steps"].high) == (1, 5)
        assert base.filters in space["filters"].values
        assert all(f % 2 == 0 for f in space["filters"].values)  # the stem splits filters in two
    assert PRESETS["paper"].filters * 2 in tune.search_space(PRESETS["paper"])["filters"].values
    small = tune.search_space(PRESETS["demo"], "small")
    assert list(small) == list(tune.SMALL_SPACE) and small["critic_steps"].high == 2
    assert list(tune.search_space(PRESETS["demo"], "gp_weight, filters")) == ["gp_weight", "filters"]
    with pytest.raises(ValueError, match="--space must be"):
        tune.search_space(PRESETS["demo"], "filters,learning_rate")
    # Parameters a base does not use are not searched.
    content = PRESETS["demo"].replace(loss="content")
    assert list(tune.search_space(content)) == ["g_learning_rate", "filters", "num_res_blocks", "noise_stddev"]
    assert "gp_weight" not in tune.search_space(PRESETS["demo"].replace(loss="gan"))
    with pytest.raises(ValueError, match="does not use"):
        tune.search_space(content, "critic_steps")


def test_build_uses_the_hp_values_and_the_seed(build, base_file):
    base = load_config(base_file, preset="demo", epochs=2)
    hypermodel = tune.GANHyperModel(base, read_manifest(build), space="full")
    fixed = {
        "g_learning_rate": 2e-4,
        "d_learning_rate": 5e-4,
        "content_weight": 1.5,
        "adversarial_weight": 0.02,
        "critic_steps": 3,
        "gp_weight": 7.0,
        "filters": 8,
        "num_res_blocks": 2,
        "noise_stddev": 0.25,
    }
    hp = keras_tuner.HyperParameters()
    hp.values.update(fixed)
    gan = hypermodel.build(hp)
    config = hypermodel.config_for(hp)
    assert {name: getattr(config, name) for name in fixed} == fixed
    assert config.replace(**{name: getattr(base, name) for name in fixed}) == base  # nothing else changed
    assert (gan.critic_steps, gan.content_weight, gan.adversarial_weight, gan.gp_weight) == (3, 1.5, 0.02, 7.0)
    assert gan.generator.get_layer("stem").filters == 8
    assert sum(layer.name.startswith("res_block_") for layer in gan.generator.layers) == 2
    assert gan.generator.get_layer("noise").stddev == 0.25
    for optimizer, rate in ((gan.g_optimizer, 2e-4), (gan.d_optimizer, 5e-4)):
        assert optimizer.get_config()["learning_rate"]["config"]["learning_rate"] == pytest.approx(rate)
    # The seed in the config fixes the initial weights: a trial is rebuilt exactly.
    weights = [w.copy() for w in gan.get_weights()]
    keras.utils.set_random_seed(99)
    again = hypermodel.build(hp)
    assert all(np.array_equal(a, b) for a, b in zip(weights, again.get_weights()))
    other = tune.GANHyperModel(base.replace(seed=4), read_manifest(build), space="full").build(hp)
    assert not np.array_equal(weights[0], other.get_weights()[0])


def test_non_finite_objective_values():
    objective = keras_tuner.Objective("val_psnr", "max")
    history = keras.callbacks.History()
    history.history = {"val_psnr": [10.0, math.nan, 12.0]}
    tune._scrub_non_finite(history, objective)
    assert history.history["val_psnr"] == [10.0, -math.inf, 12.0]
    history.history = {"val_psnr": [math.nan]}
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="diverged"):
        tune._scrub_non_finite(history, objective)


def test_search_writes_best_config_and_resumes(build, base_file, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data", str(build), "--config", str(base_file), "--out", str(out), *SEARCH]
    assert tune.main(argv) == 0
    printed = capsys.readouterr().out
    assert "best_config.json" in printed and "Best: trial" in printed

    rows = read_rows(out / "trials.csv")
    assert [row["trial"] for row in rows] == ["0", "1"]
    assert all(row["status"] == "COMPLETED" and float(row["val_content_loss"]) > 0 for row in rows)
    best = load_config(out / "best_config.json")
    assert best == load_config(out / "best_config.json", preset="paper")  # complete: no preset field used
    note = best.notes["tune"]
    winner = next(row for row in rows if row["trial"] == note["trial"])
    scores = [float(row["val_content_loss"]) for row in rows]
    assert float(winner["val_content_loss"]) == min(scores) == pytest.approx(note["score"])
    for name in tune.SMALL_SPACE:  # tuned fields: the winning trial's values
        assert str(getattr(best, name)) == winner[name]
    for name, value in TINY.items():  # the rest: the base config's
        assert getattr(best, name) == value
    assert best.epochs == 1
    assert (out / "trials.png").stat().st_size > 0
    assert "| trial | status |" in (out / "trials.md").read_text()

    # The same command again resumes the finished search: no new trial, the same best config.
    before = (out / "best_config.json").read_text()
    assert tune.main(argv) == 0
    assert len(read_rows(out / "trials.csv")) == 2
    assert len(list((out / "tuner").glob("trial_*"))) == 2
    assert (out / "best_config.json").read_text() == before

    # Other settings do not silently mix with the stored trials.
    capsys.readouterr()
    assert tune.main([*argv, "--objective", "val_psnr"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_failed_trials_are_reported(build, base_file, tmp_path, capsys, monkeypatch):
    def diverge(self, hp, model, **kwargs):
        raise keras_tuner.errors.FailedTrialError("training diverged")

    monkeypatch.setattr(tune.GANHyperModel, "fit", diverge)
    argv = ["--data", str(build), "--config", str(base_file), "--out", str(tmp_path), *SEARCH]
    assert tune.main(argv) == 1
    assert "no trial completed" in capsys.readouterr().err
    assert [row["status"] for row in read_rows(tmp_path / "trials.csv")] == ["FAILED", "FAILED"]
    assert not (tmp_path / "best_config.json").exists() and (tmp_path / "trials.png").exists()

    # KerasTuner gives up after 3 consecutive failures; the reports are still written.
    argv = [*argv, "--max-trials", "5"]
    assert tune.main(argv) == 1
    assert "consecutive failures" in capsys.readouterr().err
    assert len(read_rows(tmp_path / "trials.csv")) == 3


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tuner", "grid"], "unknown tuner 'grid'"),
        (["--objective", "val_loss"], "unknown objective 'val_loss'"),
        (["--max-trials", "0"], "--max-trials must be >= 1"),
        (["--space", "filters,lr"], "--space must be"),
    ],
)
def test_bad_options_exit_2_with_one_line(build, base_file, tmp_path, capsys, extra, message):
    argv = ["--data", str(build), "--config", str(base_file), "--out", str(tmp_path), "--quiet", *extra]
    assert tune.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_manifest_and_bad_config_exit_2(build, tmp_path, capsys):
    assert tune.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no manifest.json" in err and err.count("\n") == 1

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**TINY, "critic_steps": 0}))
    assert tune.main(["--data", str(build), "--config", str(bad), "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "critic_steps must be >= 1" in err and err.count("\n") == 1

    wrong_scale = tmp_path / "scale.json"
    wrong_scale.write_text(json.dumps({**TINY, "scale": 8}))
    assert tune.main(["--data", str(build), "--config", str(wrong_scale), "--out", str(tmp_path), "--quiet"]) == 2
    assert "does not match the data's scale 4" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bayesian", "hyperband"])
def test_other_tuners_run_a_search(build, base_file, tmp_path, name):
    argv = [
        "--data",
        str(build),
        "--config",
        str(base_file),
        "--out",
        str(tmp_path),
        "--tuner",
        name,
        "--max-trials",
        "2",
        "--epochs",
        "2",
        "--quiet",
    ]
    assert tune.main(argv) == 0
    best = load_config(tmp_path / "best_config.json", preset="demo")
    assert best.notes["tune"]["tuner"] == name
    rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert 1 <= len(rows) <= 2
