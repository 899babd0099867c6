"""Training on a build with extra inputs (issue 21): the named batches, the train step, a whole run."""

import keras
import numpy as np
import pytest
from tiny_runs import PREDICTORS, SCALE, H, T, W, make_inputs_build, write_build, write_config

from hsr_keras.models import model_files
from hsr_keras.models.wgan import SuperResolutionGAN
from hsr_keras.training import trainer
from hsr_keras.training.config import load_config
from hsr_keras.training.data import load_extras, load_split, make_dataset
from hsr_keras.training.run_folder import TrainingError
from tfrecords_builder.contract.inputs import tf_time_features, time_features
from tfrecords_builder.contract.manifest import read_manifest


@pytest.fixture(scope="module")
def inputs_build(tmp_path_factory):
    return make_inputs_build(tmp_path_factory.mktemp("inputs") / "build", patches=2)


def test_tf_time_features_equal_the_contracts_numpy_ones():
    rng = np.random.default_rng(0)
    # Random times from 1875 to 2128, leap days, the turn of a year, before 1970.
    seconds = np.concatenate(
        [rng.integers(-3_000_000_000, 5_000_000_000, 5000), [0, -1, 951782400, 951868800, 978307199, 4107542400]]
    )
    np.testing.assert_allclose(tf_time_features(seconds).numpy(), time_features(seconds), atol=1e-6)


def test_batches_carry_the_named_inputs_of_their_records(inputs_build):
    manifest = read_manifest(inputs_build)
    x, hr = next(iter(make_dataset(manifest, "val", batch_size=4)))
    assert sorted(x) == ["lr", "predictors", "static", "time_features"]
    assert x["lr"].shape == (4, T, H // SCALE, W // SCALE, 1) and hr.shape == (4, T, H, W, 1)
    assert x["predictors"].shape == (4, T, H // SCALE, W // SCALE, len(PREDICTORS))
    lr, _, times = load_split(manifest, "val")
    np.testing.assert_array_equal(x["lr"].numpy()[..., 0], lr)
    np.testing.assert_allclose(x["time_features"].numpy(), time_features(times.astype("int64")), atol=1e-6)
    static = np.load(inputs_build / "static.npy")
    np.testing.assert_array_equal(x["static"].numpy(), static[[0, 1, 0, 1]])  # day d is patch d % 2
    extras = load_extras(manifest, "val", limit=2)
    np.testing.assert_array_equal(extras["static"], static[[0, 1]])
    np.testing.assert_array_equal(extras["predictors"], x["predictors"].numpy()[:2])


def test_a_build_without_extras_gives_the_pairs_it_gave(tmp_path):
    manifest = read_manifest(write_build(tmp_path / "plain"))
    lr, hr = next(iter(make_dataset(manifest, "val", batch_size=2)))
    assert not isinstance(lr, dict) and lr.shape == (2, T, H // SCALE, W // SCALE, 1)
    assert load_extras(manifest, "val") == {}


def test_a_damaged_static_file_is_named(tmp_path):
    build = make_inputs_build(tmp_path / "build")
    (build / "static.npy").write_bytes((build / "static.npy").read_bytes()[:-8])
    with pytest.raises(Exception, match="static.npy does not match its manifest"):
        make_dataset(read_manifest(build), "train", batch_size=2)


def test_the_critic_scores_each_field_beside_its_static_fields(inputs_build, monkeypatch):
    # One WGAN-GP step: the critic is called on real, generated and interpolated fields, each
    # with the batch's static fields (never interpolated), and the generator on all inputs.
    manifest = read_manifest(inputs_build)
    config = load_config(write_config(inputs_build.parent / "c.json"), preset="demo")
    gan = trainer.build_gan(config, manifest, steps_per_epoch=1)
    x, hr = next(iter(make_dataset(manifest, "train", batch_size=4)))
    seen = []
    call = gan.critic.call

    def spy(inputs, *args, **kwargs):
        seen.append(inputs)
        return call(inputs, *args, **kwargs)

    monkeypatch.setattr(gan.critic, "call", spy)
    logs = gan.tf_train_step((x, hr))
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert len(seen) == 4  # real, fake, interpolates, then the generator update's fake
    for inputs in seen:
        assert sorted(inputs) == ["hr", "static"]
        np.testing.assert_array_equal(np.asarray(inputs["static"]), x["static"].numpy())
    np.testing.assert_array_equal(np.asarray(seen[0]["hr"]), hr.numpy())


def test_a_model_with_extras_trains_and_its_best_generator_takes_them(inputs_build, tmp_path):
    config = load_config(write_config(tmp_path / "tiny.json", epochs=2), preset="demo")
    result = trainer.train(config, inputs_build, tmp_path / "run", verbose=0)
    generator = model_files.load_generator(result["generator_path"])
    assert sorted(i.name for i in generator.inputs) == ["lr", "predictors", "static", "time_features"]
    history = result["history"]
    assert len(history["g_loss"]) == 2 and np.isfinite(history["g_loss"]).all()
    assert list((tmp_path / "run" / "samples").glob("*.png"))


def test_a_content_only_run_takes_the_extras(inputs_build, tmp_path):
    config = load_config(write_config(tmp_path / "tiny.json", epochs=1, loss="content"), preset="demo")
    result = trainer.train(config, inputs_build, tmp_path / "run", verbose=0)
    assert "static" in [i.name for i in model_files.load_generator(result["generator_path"]).inputs]


def test_an_lr_only_architecture_refuses_extras(inputs_build, tmp_path):
    config = load_config(write_config(tmp_path / "tiny.json", architecture="srcnn", loss="content"), preset="demo")
    with pytest.raises(TrainingError, match=r"extra inputs \(predictors, time_features, static\).*'srcnn'"):
        trainer.train(config, inputs_build, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_ensemble_members_repeat_every_named_input():
    gan = SuperResolutionGAN(keras.Sequential([keras.Input((1,))]), None)
    gan.ensemble_size = 2
    out = gan.repeat_members({"lr": np.ones((3, 1), "float32"), "static": np.zeros((3, 2), "float32")})
    assert out["lr"].shape == (6, 1) and out["static"].shape == (6, 2)


@pytest.mark.slow
def test_a_model_with_extras_trains_under_jax(inputs_build, tmp_path):
    """`fit` under KERAS_BACKEND=jax on a build with extras: tf.data feeds JAX the named inputs (about 30 s)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = write_config(tmp_path / "tiny.json", epochs=1, plot_every=100)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(root)}
    argv = ["--data", str(inputs_build), "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"]
    done = subprocess.run([sys.executable, "-m", "hsr_keras.fit", *argv], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "best.json").read_text())["epoch"] == 1
    check = "import keras; from hsr_keras.models import model_files; g = model_files.load_generator('{}'); "
    check += "print(keras.backend.backend(), sorted(i.name for i in g.inputs))"
    shown = subprocess.run(
        [sys.executable, "-c", check.format(tmp_path / "run" / "generator.keras")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert shown.stdout.strip() == "jax ['lr', 'predictors', 'static', 'time_features']", shown.stderr[-2000:]
