"""The JAX backend: its train step against TensorFlow's, an install without TensorFlow, in-memory data.

This session runs the TensorFlow backend, so the JAX side runs once, in a subprocess with
`KERAS_BACKEND=jax` in which `import tensorflow` fails: `jax_worker` below (this module
imports no TensorFlow at its top). It reads the initial weights and batches this process
writes to an .npz, runs every JAX check, and writes its numbers back (and, for a check that
failed, the traceback, which the test that asked for it reports).
"""

import importlib.util
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from hsr_keras.models.provenance import code_version
from hsr_keras.models.wgan import SuperResolutionGAN

T, H, W, SCALE, BATCH = 2, 16, 16, 4, 4
# The penalty's interpolation weights, one per sample, the same under both backends.
EPS = np.linspace(0.2, 0.8, BATCH, dtype="float32").reshape(-1, 1, 1, 1, 1)
LOG_NAMES = ("d_loss", "g_loss", "content_loss", "adversarial_loss", "gradient_penalty", "critic_gap")
PARITY_LOG_NAMES = (*LOG_NAMES, "lattice_loss")  # the parity runs weigh the lattice loss in too
ENSEMBLE_LOG_NAMES = (*PARITY_LOG_NAMES, "crps_loss", "spectral_loss")  # and the ensemble run its terms
NO_TENSORFLOW_MODULES = (
    "hsr_keras",
    "hsr_keras.training.config",
    "hsr_keras.evaluation.engine",
    "hsr_keras.fit",
    "tfrecords_builder.in_memory",
    "hsr_keras.scoring.interpolation",
    "hsr_keras.layers",
    "hsr_keras.models.losses",
    "hsr_keras.scoring.metrics",
    "hsr_keras.models.model_files",
    "hsr_keras.models.networks",
    "hsr_keras.training.schedules",
    "hsr_keras.training.search",
    "hsr_keras.training.trainer",
    "hsr_keras.training.run_folder",
    "hsr_keras.models.wgan",
    "tfrecords_builder.contract",
    "tfrecords_builder.contract.files",
    "tfrecords_builder.contract.manifest",
    "tfrecords_builder.contract.era5.reader",
    "tfrecords_builder.contract.schema",
    "tfrecords_builder.sequences",
    "tfrecords_builder.synthetic",
)
TINY_REGION = dict(lat=(40.0, 43.75), lon=(110.0, 113.75), interval_hours=3)  # 16 x 16 points
TINY_NETWORKS = dict(
    filters=8,
    num_res_blocks=1,
    upsample_filters=8,
    num_post_blocks=0,
    se_ratio=4,
    global_skip=True,
    critic_filters=8,
    critic_res_blocks=0,
    critic_post_blocks=0,
)
# The project's networks with every kind of layer once (no noise: the outputs are deterministic).
NETWORK_CHECK = dict(TINY_NETWORKS, num_post_blocks=1, critic_res_blocks=1, critic_post_blocks=1, noise_stddev=0.0)


def tiny_in_memory_data():
    """Ten synthetic days of the tiny region in memory: 8 to train, 2 to validate."""
    from tfrecords_builder import in_memory

    return in_memory.synthetic_arrays(
        "2019-01-01",
        "2019-01-10",
        train="2019-01-01:2019-01-08",
        val="2019-01-09:2019-01-10",
        test="none",
        **TINY_REGION,
    )


# -- models and steps shared by both sides ---------------------------------------------------


# The tiny networks scale %RH to about 1 first, as the real ones standardise: on raw 0-100
# values the critic's units saturate and the two backends' float32 rounding then diverges.


def tiny_generator(batch_norm=True):
    inputs = keras.Input((None, None, None, 1))
    x = keras.layers.Rescaling(0.02)(inputs)
    x = keras.layers.UpSampling3D((1, SCALE, SCALE))(x)
    x = keras.layers.Conv3D(4, (1, 3, 3), padding="same", activation="relu")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization()(x)  # non-trainable state the step must carry
    x = keras.layers.Conv3D(1, (1, 1, 1), dtype="float32")(x)
    outputs = keras.layers.Rescaling(50.0, dtype="float32")(x)
    return keras.Model(inputs, outputs)


def tiny_critic():
    inputs = keras.Input((None, None, None, 1))
    x = keras.layers.Rescaling(0.02)(inputs)
    x = keras.layers.Conv3D(4, (1, 3, 3), strides=(1, 2, 2), activation="tanh")(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    outputs = keras.layers.Dense(1, dtype="float32")(x)
    return keras.Model(inputs, outputs)


def linear_critic(weight):
    inputs = keras.Input((T, H, W, 1))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(weight))(x)
    return keras.Model(inputs, outputs)


class FixedInterpolationGAN(SuperResolutionGAN):
    """The gradient penalty on interpolates with fixed weights `EPS`, so both backends see the same."""

    def interpolate(self, real, fake):
        eps = ops.convert_to_tensor(EPS)
        return eps * ops.cast(real, "float32") + (1.0 - eps) * ops.cast(fake, "float32")


def project_networks():
    """The demo preset's generator and critic, shrunk to NETWORK_CHECK."""
    from hsr_keras.models import networks
    from hsr_keras.training.config import PRESETS

    config = PRESETS["demo"].replace(**NETWORK_CHECK)
    return networks.build_generator(**config.generator_kwargs(SCALE, 55.0, 25.0)), networks.build_critic(
        **config.critic_kwargs(55.0, 25.0)
    )


def make_batches(n_batches=2, seed=0):
    rng = np.random.default_rng(seed)
    lr = rng.uniform(0, 100, (n_batches, BATCH, T, H // SCALE, W // SCALE, 1)).astype("float32")
    hr = rng.uniform(0, 100, (n_batches, BATCH, T, H, W, 1)).astype("float32")
    return lr, hr


def parity_run(loss, g_init, d_init, lr, hr, ensemble=False):
    """Two iterations (two critic updates each) from given weights: the logs and the weights after.

    `ensemble`: two members per sequence (the deterministic tiny generator's are alike, so both
    backends see the same), with the crps and spectral terms weighed in.
    """
    generator, critic = tiny_generator(), tiny_critic()
    generator.set_weights(g_init)
    critic.set_weights(d_init)
    gan = FixedInterpolationGAN(generator, critic, data_std=25.0, seed=1)
    weights = {"lattice": 0.5, **({"crps": 0.5, "spectral": 0.1} if ensemble else {})}
    gan.compile(
        keras.optimizers.SGD(0.05),
        keras.optimizers.SGD(0.05),
        loss=loss,
        critic_steps=2,
        loss_weights=weights,
        ensemble_size=2 if ensemble else 1,
    )
    logs = [gan.train_on_batch(lr[i], hr[i], return_dict=True) for i in range(len(lr))]
    names = ENSEMBLE_LOG_NAMES if ensemble else PARITY_LOG_NAMES
    return {
        "logs": np.array([[float(step[name]) for name in names] for step in logs]),
        "weights": generator.get_weights() + critic.get_weights(),
    }


# -- the JAX side ------------------------------------------------------------------------------


def jax_worker(folder):
    """Every JAX check, run in a subprocess under `KERAS_BACKEND=jax` without TensorFlow."""
    folder = Path(folder)
    inputs = np.load(folder / "inputs.npz")
    results, errors = {}, {}

    def check(name):
        def wrap(fn):
            start = time.perf_counter()
            try:
                keras.utils.set_random_seed(0)
                results.update({f"{name}/{key}": value for key, value in fn().items()})
            except Exception:
                errors[name] = traceback.format_exc()
            finally:
                keras.mixed_precision.set_global_policy("float32")
                print(f"JAX check {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)

        return wrap

    @check("no_tensorflow")
    def _():
        import importlib

        for module in NO_TENSORFLOW_MODULES:
            importlib.import_module(module)
        from hsr_keras.models import networks
        from hsr_keras.training.config import PRESETS

        config = PRESETS["demo"].replace(**TINY_NETWORKS)
        generator = networks.build_generator(**config.generator_kwargs(8, 55.0, 25.0))
        critic = networks.build_critic(**config.critic_kwargs(55.0, 25.0))
        lr = np.random.default_rng(0).uniform(0, 100, (1, 8, 2, 2, 1)).astype("float32")
        hr = generator.predict(lr, verbose=0)
        return {
            "backend": np.array(keras.backend.backend()),
            "tensorflow_loaded": np.array("tensorflow" in sys.modules),
            "hr": hr,
            "score": critic.predict(hr, verbose=0),
        }

    for loss in ("wgan-gp", "gan"):

        @check(f"parity_{loss}")
        def _(loss=loss):
            g_init = [inputs[f"g{i}"] for i in range(int(inputs["g_count"]))]
            d_init = [inputs[f"d{i}"] for i in range(int(inputs["d_count"]))]
            run = parity_run(loss, g_init, d_init, inputs["lr"], inputs["hr"])
            return {"logs": run["logs"], **{f"w{i}": w for i, w in enumerate(run["weights"])}}

    @check("parity_ensemble")
    def _():
        g_init = [inputs[f"g{i}"] for i in range(int(inputs["g_count"]))]
        d_init = [inputs[f"d{i}"] for i in range(int(inputs["d_count"]))]
        run = parity_run("wgan-gp", g_init, d_init, inputs["lr"], inputs["hr"], ensemble=True)
        return {"logs": run["logs"], **{f"w{i}": w for i, w in enumerate(run["weights"])}}

    @check("texture")
    def _():
        from hsr_keras.models import networks, sampling
        from hsr_keras.training.config import PRESETS

        config = PRESETS["demo"].replace(**TINY_NETWORKS, noise="texture", noise_stddev=0.5)
        generator = networks.build_generator(**config.generator_kwargs(SCALE, 55.0, 25.0))
        gan = SuperResolutionGAN(generator, None, data_std=25.0)
        gan.compile(keras.optimizers.Adam(1e-2), loss="content", ensemble_size=3, loss_weights={"crps": 1.0})
        scales = [np.array(layer.scale.value) for layer in sampling.noise_layers(generator)]
        history = gan.fit(inputs["lr"][0], inputs["hr"][0], batch_size=BATCH, epochs=2, verbose=0).history
        lr = inputs["lr"][0][:2]
        draws = [np.asarray(sampling.seeded_call(generator, lr, seed)) for seed in (1, 1, 2)]
        moved = [
            not np.allclose(a, np.array(layer.scale.value))
            for a, layer in zip(scales, sampling.noise_layers(generator))
        ]
        return {
            "crps": np.array(history["crps_loss"]),
            "moved": np.array(moved),
            "same_seed": np.array(np.array_equal(draws[0], draws[1])),
            "other_seed": np.array(np.abs(draws[0] - draws[2]).mean()),
        }

    @check("networks")
    def _():
        generator, critic = project_networks()
        generator.set_weights([inputs[f"n_g{i}"] for i in range(len(generator.weights))])
        critic.set_weights([inputs[f"n_d{i}"] for i in range(len(critic.weights))])
        lr, hr = inputs["lr"][0], inputs["hr"][0]
        return {"hr": generator.predict(lr, verbose=0), "score": critic.predict(hr, verbose=0)}

    @check("closed_form")
    def _():
        gan = SuperResolutionGAN(tiny_generator(batch_norm=False), linear_critic(0.05), data_std=25.0, seed=1)
        gan.compile(keras.optimizers.Adam(0.0), keras.optimizers.Adam(0.0))
        lr, hr = inputs["lr"][0], inputs["hr"][0]
        logs = gan.train_on_batch(lr, hr, return_dict=True)
        fake = gan.generator.predict(lr, verbose=0)
        return {**{name: np.array(float(logs[name])) for name in LOG_NAMES}, "fake": fake}

    @check("bfloat16")
    def _():
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        gan = SuperResolutionGAN(tiny_generator(), tiny_critic(), data_std=25.0, seed=1)
        gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
        lr, hr = inputs["lr"].reshape(-1, *inputs["lr"].shape[2:]), inputs["hr"].reshape(-1, *inputs["hr"].shape[2:])
        before = [w.copy() for w in gan.generator.get_weights()]
        history = gan.fit(lr, hr, batch_size=BATCH, epochs=1, verbose=0).history
        moved = [not np.allclose(a, b) for a, b in zip(before, gan.generator.get_weights())]
        return {
            "history": np.array([history[name][-1] for name in sorted(history)]),
            "moved": np.array(any(moved)),
            "compute_dtype": np.array(str(gan.generator.layers[3].compute_dtype)),
            "output_dtype": np.array(str(gan.generator(lr[:1]).dtype)),
        }

    @check("rng")
    def _():
        lr, hr = inputs["lr"][0], inputs["hr"][0]
        runs = []
        for _ in range(2):
            keras.utils.set_random_seed(0)
            gan = SuperResolutionGAN(tiny_generator(), tiny_critic(), data_std=25.0, seed=7)
            gan.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05))
            before = np.array(gan.seed_generator.state.value)
            in_state = any(v is gan.seed_generator.state for v in gan.non_trainable_variables)
            penalties = [float(gan.train_on_batch(lr, hr, return_dict=True)["gradient_penalty"]) for _ in range(2)]
            runs.append((before, np.array(gan.seed_generator.state.value), penalties, gan.critic.get_weights()))
        (before, after, penalties, weights), (_, after_again, penalties_again, weights_again) = runs
        return {
            "in_state": np.array(in_state),
            "before": before,
            "after": after,
            "after_again": after_again,
            "penalties": np.array(penalties),
            "penalties_again": np.array(penalties_again),
            "same_weights": np.array(all(np.array_equal(a, b) for a, b in zip(weights, weights_again))),
        }

    @check("fit")
    def _():
        import tempfile

        from hsr_keras.training import trainer
        from hsr_keras.training.config import PRESETS

        data = tiny_in_memory_data()
        config = PRESETS["demo"].replace(
            architecture="srcnn", loss="content", batch_size=4, epochs=1, plot_every=1, loss_weights={"lattice": 0.0}
        )
        with tempfile.TemporaryDirectory() as out:
            result = trainer.train(config, data, out, verbose=0)
            written = sorted(p.name for p in Path(out).iterdir())
        history = result["history"]
        return {
            "keys": np.array(sorted(history)),
            "values": np.array([history[key][-1] for key in sorted(history)]),
            "written": np.array(written),
        }

    np.savez(folder / "results.npz", **results)
    (folder / "errors.json").write_text(json.dumps(errors))


# -- the TensorFlow side and the tests ----------------------------------------------------------


@pytest.fixture(scope="module")
def jax_results(tmp_path_factory):
    """Run `jax_worker` once; a function returning one check's results (failing with its traceback)."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install hsr-keras[jax])")
    folder = tmp_path_factory.mktemp("jax")
    keras.utils.set_random_seed(0)
    g_init, d_init = tiny_generator().get_weights(), tiny_critic().get_weights()
    generator, critic = project_networks()
    lr, hr = make_batches()
    np.savez(
        folder / "inputs.npz",
        lr=lr,
        hr=hr,
        g_count=len(g_init),
        d_count=len(d_init),
        **{f"g{i}": w for i, w in enumerate(g_init)},
        **{f"d{i}": w for i, w in enumerate(d_init)},
        **{f"n_g{i}": w for i, w in enumerate(generator.get_weights())},
        **{f"n_d{i}": w for i, w in enumerate(critic.get_weights())},
    )
    code = f"""
import sys

class NoTensorFlow:  # `import tensorflow` fails as on a machine without it
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, NoTensorFlow())
sys.path.insert(0, {str(Path(__file__).parent)!r})
import test_jax_backend
test_jax_backend.jax_worker({str(folder)!r})
"""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not (folder / "results.npz").exists():
        pytest.fail(f"the JAX worker failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    results = dict(np.load(folder / "results.npz"))
    errors = json.loads((folder / "errors.json").read_text())

    def get(name):
        if name in errors:
            pytest.fail(f"JAX check {name!r} failed:\n{errors[name]}")
        prefix = f"{name}/"
        return {key[len(prefix) :]: value for key, value in results.items() if key.startswith(prefix)}

    get.inputs = {"g_init": g_init, "d_init": d_init, "lr": lr, "hr": hr, "networks": (generator, critic)}
    return get


def test_imports_and_runs_without_tensorflow(jax_results):
    got = jax_results("no_tensorflow")
    assert str(got["backend"]) == "jax"
    assert not bool(got["tensorflow_loaded"])
    assert got["hr"].shape == (1, 8, 16, 16, 1) and np.isfinite(got["hr"]).all()
    assert got["score"].shape == (1, 1) and np.isfinite(got["score"]).all()


def test_networks_match_between_backends(jax_results):
    """The project's generator and critic (per-frame Conv2D, time folded into the batch) with the same
    weights give the same outputs under JAX (jit-compiled predict) and TensorFlow."""
    got = jax_results("networks")
    generator, critic = jax_results.inputs["networks"]
    lr, hr = jax_results.inputs["lr"][0], jax_results.inputs["hr"][0]
    np.testing.assert_allclose(got["hr"], generator.predict(lr, verbose=0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got["score"], critic.predict(hr, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss", ["wgan-gp", "gan"])
def test_jax_step_matches_tensorflow_step(jax_results, loss):
    inputs = jax_results.inputs
    expected = parity_run(loss, inputs["g_init"], inputs["d_init"], inputs["lr"], inputs["hr"])
    got = jax_results(f"parity_{loss}")
    np.testing.assert_allclose(got["logs"], expected["logs"], rtol=1e-4, atol=1e-6)
    initial = inputs["g_init"] + inputs["d_init"]
    for i, (start, weight) in enumerate(zip(initial, expected["weights"])):
        # atol 5e-6: the lattice loss's log ratios of float32 means carry ~2e-6 of rounding into the first kernel
        np.testing.assert_allclose(got[f"w{i}"], weight, rtol=1e-4, atol=5e-6, err_msg=f"weight {i}")
        # The updates themselves, so a small gradient error cannot hide behind a large weight.
        np.testing.assert_allclose(got[f"w{i}"] - start, weight - start, rtol=1e-3, atol=1e-6, err_msg=f"update {i}")
    assert any(not np.allclose(a, b) for a, b in zip(initial, expected["weights"]))


def test_jax_ensemble_step_matches_tensorflow_step(jax_results):
    """Two members per sequence, the crps and spectral terms: the same numbers under both backends."""
    inputs = jax_results.inputs
    expected = parity_run("wgan-gp", inputs["g_init"], inputs["d_init"], inputs["lr"], inputs["hr"], ensemble=True)
    got = jax_results("parity_ensemble")
    np.testing.assert_allclose(got["logs"], expected["logs"], rtol=1e-4, atol=1e-6)
    initial = inputs["g_init"] + inputs["d_init"]
    for i, (start, weight) in enumerate(zip(initial, expected["weights"])):
        np.testing.assert_allclose(got[f"w{i}"] - start, weight - start, rtol=1e-3, atol=1e-6, err_msg=f"update {i}")


def test_jax_trains_a_texture_generator_on_the_crps_and_samples_it_by_seed(jax_results):
    got = jax_results("texture")
    assert np.isfinite(got["crps"]).all()
    assert got["moved"].all()  # every noise strength learns
    assert bool(got["same_seed"]) and float(got["other_seed"]) > 0.1


def test_jax_penalty_matches_closed_form_for_linear_critic(jax_results):
    # D(x) = sum(w * x) has gradient w everywhere: the penalty is (||w|| - 1)^2 whatever the
    # (random) interpolates, as in test_wgan's TensorFlow version of this test.
    got = jax_results("closed_form")
    c, hr = 0.05, jax_results.inputs["hr"][0]
    norm = c * np.sqrt(T * H * W)
    # The penalty squares ||w|| - 1 (0.13 here), which multiplies the float32 error of the summed
    # norm (about 2e-6 relative over 32768 terms) by ~17: compare the implied norm (||w|| > 1).
    np.testing.assert_allclose(1.0 + np.sqrt(got["gradient_penalty"]), norm, rtol=1e-5)
    gap = c * (hr.reshape(BATCH, -1).sum(1) - got["fake"].reshape(BATCH, -1).sum(1))
    np.testing.assert_allclose(got["critic_gap"], gap.mean(), rtol=1e-4)
    np.testing.assert_allclose(got["d_loss"], -gap.mean() + 10.0 * (norm - 1.0) ** 2, rtol=1e-4)


def test_jax_mixed_bfloat16_fit_is_finite(jax_results):
    got = jax_results("bfloat16")
    assert np.isfinite(got["history"]).all()
    assert bool(got["moved"])
    assert str(got["compute_dtype"]) == "bfloat16"
    assert str(got["output_dtype"]) == "float32"


def test_jax_interpolation_seed_is_threaded_and_deterministic(jax_results):
    got = jax_results("rng")
    assert bool(got["in_state"])  # the seed generator's state is part of the step's state
    assert not np.array_equal(got["before"], got["after"])  # ... and advances with every step
    np.testing.assert_array_equal(got["after"], got["after_again"])  # same seed, same run
    np.testing.assert_array_equal(got["penalties"], got["penalties_again"])
    assert bool(got["same_weights"])


def test_fit_train_on_in_memory_data_under_jax(jax_results):
    got = jax_results("fit")
    history = dict(zip(got["keys"].tolist(), got["values"]))
    assert {"content_loss", "val_mse", "val_psnr", "val_ssim"} <= set(history)
    assert all(np.isfinite(v) for v in history.values())
    assert {"config.json", "run.json", "generator.keras", "history.csv", "samples"} <= set(got["written"].tolist())
    assert "logs" not in got["written"].tolist()  # no TensorFlow: no TensorBoard callback


def test_fit_train_on_in_memory_data_under_tensorflow(tmp_path):
    from hsr_keras.training import trainer
    from hsr_keras.training.config import PRESETS

    data = tiny_in_memory_data()
    # 8 days in batches of 3: the last batch is short.
    config = PRESETS["demo"].replace(
        architecture="srcnn", loss="content", batch_size=3, epochs=1, plot_every=1, loss_weights={"lattice": 0.0}
    )
    result = trainer.train(config, data, tmp_path, verbose=0)
    history = result["history"]
    assert all(np.isfinite(values[-1]) for values in history.values())
    assert {"generator.keras", "history.csv", "logs", "samples"} <= {p.name for p in tmp_path.iterdir()}
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["data"] == "in memory" and run["code"]["git_commit"] == code_version()["git_commit"] is not None
