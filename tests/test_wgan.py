"""The adversarial training model on tiny models: penalty, updates, metrics, precision, distribution."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsr_keras.models import losses
from hsr_keras.models.wgan import SuperResolutionGAN

T, H, W, SCALE = 2, 16, 16, 4


def tiny_generator():
    inputs = keras.Input((None, None, None, 1))
    x = keras.layers.UpSampling3D((1, SCALE, SCALE))(inputs)
    x = keras.layers.Conv3D(4, (1, 3, 3), padding="same", activation="relu")(x)
    outputs = keras.layers.Conv3D(1, (1, 1, 1), dtype="float32")(x)
    return keras.Model(inputs, outputs)


def tiny_critic():
    inputs = keras.Input((None, None, None, 1))
    x = keras.layers.Conv3D(4, (1, 3, 3), strides=(1, 2, 2), activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling3D()(x)
    outputs = keras.layers.Dense(1, dtype="float32")(x)
    return keras.Model(inputs, outputs)


def linear_critic(weight):
    inputs = keras.Input((T, H, W, 1))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(weight))(x)
    return keras.Model(inputs, outputs)


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    lr = rng.uniform(0, 100, (n, T, H // SCALE, W // SCALE, 1)).astype("float32")
    hr = rng.uniform(0, 100, (n, T, H, W, 1)).astype("float32")
    return lr, hr


def compiled(generator, critic, lr=1e-3, **kwargs):
    gan = SuperResolutionGAN(generator, critic, data_std=25.0, seed=1)
    gan.compile(g_optimizer=keras.optimizers.Adam(lr), d_optimizer=keras.optimizers.Adam(lr), **kwargs)
    return gan


def test_train_step_penalty_matches_closed_form_for_linear_critic():
    # D(x) = sum(w * x) has gradient w everywhere, so the penalty is (||w|| - 1)^2 whatever
    # the interpolates are; with zero learning rates nothing moves between the updates.
    c = 0.05
    gan = compiled(tiny_generator(), linear_critic(c), lr=0.0)
    lr, hr = batch()
    logs = gan.train_on_batch(lr, hr, return_dict=True)
    norm = c * math.sqrt(T * H * W)
    np.testing.assert_allclose(logs["gradient_penalty"], (norm - 1.0) ** 2, rtol=1e-5)
    fake = gan.generator.predict(lr, verbose=0)
    gap = c * (hr.reshape(4, -1).sum(1) - fake.reshape(4, -1).sum(1))
    np.testing.assert_allclose(logs["critic_gap"], gap.mean(), rtol=1e-4)
    np.testing.assert_allclose(logs["d_loss"], -gap.mean() + 10.0 * (norm - 1.0) ** 2, rtol=1e-4)


def test_compile_rejects_bad_arguments():
    gan = SuperResolutionGAN(tiny_generator(), tiny_critic())
    opt = keras.optimizers.Adam
    with pytest.raises(ValueError, match="loss must be one of"):
        gan.compile(opt(), opt(), loss="hinge")
    with pytest.raises(ValueError, match="critic_steps"):
        gan.compile(opt(), opt(), critic_steps=0)
    with pytest.raises(ValueError, match="gp_weight=-1"):
        gan.compile(opt(), opt(), gp_weight=-1)
    with pytest.raises(ValueError, match="'lattice': -0.5"):
        gan.compile(opt(), opt(), loss_weights={"lattice": -0.5})
    with pytest.raises(ValueError, match=r"unknown loss term\(s\) \['texture'\]: the terms are content, adversarial"):
        gan.compile(opt(), opt(), loss_weights={"texture": 1.0})
    with pytest.raises(ValueError, match="data_std"):
        SuperResolutionGAN(tiny_generator(), tiny_critic(), data_std=0)


@pytest.mark.parametrize("loss", ["wgan-gp", "gan"])
def test_both_networks_learn_and_validation_reports_metrics(loss):
    gan = compiled(tiny_generator(), tiny_critic(), loss=loss, critic_steps=2)
    lr, hr = batch(8)
    g_before = [w.numpy().copy() for w in gan.generator.trainable_weights]
    d_before = [w.numpy().copy() for w in gan.critic.trainable_weights]
    history = gan.fit(lr, hr, batch_size=4, epochs=2, validation_data=(lr, hr), verbose=0).history
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(g_before, gan.generator.trainable_weights))
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(d_before, gan.critic.trainable_weights))
    assert int(gan.d_optimizer.iterations.numpy()) == 2 * 2 * 2  # critic_steps x steps x epochs
    assert int(gan.g_optimizer.iterations.numpy()) == 2 * 2
    for key in ("d_loss", "g_loss", "content_loss", "val_mse", "val_psnr", "val_ssim", "val_content_loss"):
        assert np.isfinite(history[key][-1]), key
    if loss == "gan":
        assert history["gradient_penalty"][-1] == 0.0
    pred = gan.generator.predict(lr, verbose=0)
    np.testing.assert_allclose(history["val_mse"][-1], np.mean((pred - hr) ** 2), rtol=1e-4)


def test_the_lattice_loss_is_weighed_into_the_generator_loss():
    gan = compiled(tiny_generator(), tiny_critic(), lr=0.0, loss_weights={"lattice": 2.0})
    lr, hr = batch()
    logs = gan.train_on_batch(lr, hr, return_dict=True)
    fake = gan.generator.predict(lr, verbose=0)
    np.testing.assert_allclose(logs["lattice_loss"], np.mean(losses.lattice_loss(fake, hr, scale=SCALE)), rtol=1e-5)
    total = logs["content_loss"] + 1e-3 * logs["adversarial_loss"] + 2.0 * logs["lattice_loss"]
    np.testing.assert_allclose(logs["g_loss"], total, rtol=1e-5)
    assert "lattice_loss" not in compiled(tiny_generator(), tiny_critic()).train_on_batch(lr, hr, return_dict=True)


def test_a_new_loss_term_is_one_function_and_one_line(monkeypatch):
    """The table is the one place a generator loss term is added: it is computed, weighed, logged and trained."""

    def mean_humidity(inputs):  # a dummy term: the generated field's mean, in %RH
        return keras.ops.mean(keras.ops.reshape(keras.ops.cast(inputs.fake, "float32"), (inputs.fake.shape[0], -1)), 1)

    monkeypatch.setitem(losses.GENERATOR_TERMS, "mean", losses.Term(mean_humidity, 0.5))
    gan = compiled(tiny_generator(), tiny_critic(), lr=0.0)
    lr, hr = batch()
    logs = gan.train_on_batch(lr, hr, return_dict=True)
    fake = gan.generator.predict(lr, verbose=0)
    np.testing.assert_allclose(logs["mean_loss"], fake.mean(), rtol=1e-5)
    total = logs["content_loss"] + 1e-3 * logs["adversarial_loss"] + 0.5 * logs["mean_loss"]
    np.testing.assert_allclose(logs["g_loss"], total, rtol=1e-5)
    # Its weight is the config's when the config names it; a step with a learning rate moves the mean down.
    gan = compiled(tiny_generator(), tiny_critic(), lr=1e-2, loss_weights={"mean": 5.0, "content": 0.0})
    before = gan.generator.predict(lr, verbose=0).mean()
    gan.train_on_batch(lr, hr)
    assert gan.generator.predict(lr, verbose=0).mean() < before


def test_content_loss_trains_the_generator_alone():
    gan = SuperResolutionGAN(tiny_generator(), None, data_std=25.0)
    gan.compile(g_optimizer=keras.optimizers.Adam(1e-2), loss="content")
    lr, hr = batch(8)
    history = gan.fit(lr, hr, batch_size=4, epochs=3, validation_data=(lr, hr), verbose=0).history
    assert set(history) == {"g_loss", "content_loss", "val_content_loss", "val_mse", "val_psnr", "val_ssim"}
    assert history["content_loss"][-1] < history["content_loss"][0]
    assert gan.d_optimizer is None
    with pytest.raises(ValueError, match="needs a critic"):
        SuperResolutionGAN(tiny_generator(), None).compile(keras.optimizers.Adam(), loss="wgan-gp")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("ensemble", [False, True])
def test_mixed_precision_trains_on_cpu(policy, ensemble):
    keras.mixed_precision.set_global_policy(policy)
    if ensemble:  # noise in float16/bfloat16, two members, the crps and spectral terms
        kwargs = dict(ensemble_size=2, loss_weights={"crps": 1.0, "spectral": 0.1})
        gan = compiled(noisy_generator(), tiny_critic(), **kwargs)
    else:
        gan = compiled(tiny_generator(), tiny_critic())
    scaled = isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (policy == "mixed_float16")
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer) == scaled
    lr, hr = batch(8)
    before = [w.numpy().copy() for w in gan.generator.trainable_weights]
    history = gan.fit(lr, hr, batch_size=4, epochs=2, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values())
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, gan.generator.trainable_weights))
    assert gan.generator(lr).dtype == "float32"


@pytest.mark.parametrize("ensemble, loss", [(False, "gan"), (True, "gan"), (False, "wgan-gp")])
def test_mirrored_strategy_equals_single_device_step(ensemble, loss):
    # One step on the global batch split over two replicas must give the same weights as one
    # step on one device: with the GAN loss; with two members per sequence (alike: the
    # generator has no noise) and the crps and spectral terms too; and with the WGAN-GP, whose
    # interpolation weights each replica takes from one draw for the global batch.
    assert len(tf.config.list_logical_devices("CPU")) >= 2
    extra = dict(ensemble_size=2, loss_weights={"crps": 0.5, "spectral": 0.1}) if ensemble else {}
    lr, hr = batch(4)
    generator, critic = tiny_generator(), tiny_critic()
    g_init, d_init = generator.get_weights(), critic.get_weights()

    def one_step(strategy):
        with strategy.scope():
            g, d = tiny_generator(), tiny_critic()
            g.set_weights(g_init)
            d.set_weights(d_init)
            gan = SuperResolutionGAN(g, d, data_std=25.0, seed=5)
            gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), loss=loss, **extra)
        ds = tf.data.Dataset.from_tensor_slices((lr, hr)).batch(4)
        gan.fit(ds, epochs=1, verbose=0, shuffle=False)
        return gan.generator.get_weights() + gan.critic.get_weights()

    # Reduction through one device: no collective ops, whose instance keys would collide
    # with another MirroredStrategy later in the same test process.
    mirrored = tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )
    single = one_step(tf.distribute.get_strategy())
    distributed = one_step(mirrored)
    assert mirrored.num_replicas_in_sync == 2
    for a, b in zip(single, distributed):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- ensembles


def noisy_generator(scale=0.5):
    """The tiny generator with NoiseInjection before its last convolution: a sampler in every mode."""
    from hsr_keras.layers import NoiseInjection

    inputs = keras.Input((None, None, None, 1))
    x = keras.layers.UpSampling3D((1, SCALE, SCALE))(inputs)
    x = keras.layers.Conv3D(4, (1, 3, 3), padding="same", activation="relu")(x)
    x = NoiseInjection(scale, seed=3, name="noise")(x)
    outputs = keras.layers.Conv3D(1, (1, 1, 1), dtype="float32")(x)
    return keras.Model(inputs, outputs)


def test_an_ensemble_step_scores_the_mean_of_k_members_and_their_crps():
    """The generator update draws K members in one call on the batch repeated K times (member-major)."""
    from hsr_keras.scoring.ensemble_scores import crps_ensemble

    gan = SuperResolutionGAN(noisy_generator(), None, data_std=25.0)
    weights = {"crps": 2.0, "spectral": 0.5}
    gan.compile(keras.optimizers.SGD(0.0), loss="content", ensemble_size=3, loss_weights=weights)
    lr, hr = batch()
    state = gan.generator.get_layer("noise").seed_generator.state
    before = np.asarray(state.value)
    logs = gan.train_on_batch(lr, hr, return_dict=True)
    # The same draws again: the noise layer's state as the step found it.
    with keras.StatelessScope(state_mapping=[(state, before)]):
        fake = np.asarray(gan.generator(np.concatenate([lr] * 3), training=True))
    members = fake.reshape(3, 4, *fake.shape[1:])
    assert not np.allclose(members[0], members[1])
    mean = members.mean(axis=0)
    np.testing.assert_allclose(logs["content_loss"], np.abs(mean - hr).mean() / 25.0, rtol=1e-5)
    crps = np.mean(losses.crps_loss(members, hr, 25.0))  # AIFS's almost fair CRPS, checked in test_losses
    np.testing.assert_allclose(logs["crps_loss"], crps, rtol=1e-5)
    assert crps < np.mean(crps_ensemble(members, hr)) / 25.0 + 1e-3  # close to the fair CRPS, below the L1
    spectral = np.mean([losses.spectral_loss(m, hr, SCALE, 25.0) for m in members])
    np.testing.assert_allclose(logs["spectral_loss"], spectral, rtol=1e-4)
    total = logs["content_loss"] + 2.0 * logs["crps_loss"] + 0.5 * logs["spectral_loss"]
    np.testing.assert_allclose(logs["g_loss"], total, rtol=1e-5)
    # Validation scores the members' mean and adds their fair CRPS in %RH.
    val = gan.evaluate(lr, hr, return_dict=True, verbose=0)
    assert set(val) == {"content_loss", "mse", "psnr", "ssim", "crps"}


def test_each_member_meets_the_critic():
    """The adversarial term averages -D over the K members; the critic gap compares the truth with their mean score."""
    c = 0.05
    gan = compiled(noisy_generator(), linear_critic(c), lr=0.0, ensemble_size=2)
    lr, hr = batch()
    state = gan.generator.get_layer("noise").seed_generator.state
    before = np.asarray(state.value)
    logs = gan.train_on_batch(lr, hr, return_dict=True)
    # The critic step drew one member per sequence first; the generator step drew with the next state.
    with keras.StatelessScope(state_mapping=[(state, before + np.array([0, 1], before.dtype))]):
        fake = np.asarray(gan.generator(np.concatenate([lr, lr]), training=True))
    scores = c * fake.reshape(8, -1).sum(axis=1)
    np.testing.assert_allclose(logs["adversarial_loss"], -scores.mean(), rtol=1e-4)
    gap = c * hr.reshape(4, -1).sum(axis=1) - scores.reshape(2, 4).mean(axis=0)
    np.testing.assert_allclose(logs["critic_gap"], gap.mean(), rtol=1e-4)


def test_ensemble_size_and_the_crps_term_are_checked():
    opt = keras.optimizers.Adam
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="ensemble_size must be an integer >= 1"):
            SuperResolutionGAN(tiny_generator(), tiny_critic()).compile(opt(), opt(), ensemble_size=bad)
    with pytest.raises(ValueError, match="the crps loss term needs ensemble_size >= 2"):
        SuperResolutionGAN(tiny_generator(), tiny_critic()).compile(opt(), opt(), loss_weights={"crps": 1.0})


# The paper preset's first two steps on fixed data and seed, measured with the code before
# the code before ensembles existed (commit 2343cd0, this machine): the K = 1 step must give the same numbers.
PAPER_STEPS = [
    {"adversarial_loss": -0.2767462730407715, "content_loss": 1.009207010269165, "d_loss": 9.950016021728516},
    {"adversarial_loss": 0.05727126821875572, "content_loss": 1.0063914060592651, "d_loss": 9.69559383392334},
]
PAPER_PREDICTION_SUM = 225019.81437683105


@pytest.mark.slow
def test_the_paper_preset_trains_as_before():
    from hsr_keras.training.config import PRESETS
    from hsr_keras.training.trainer import build_gan

    keras.utils.set_random_seed(0)
    manifest = {"scale": 8, "hr_shape": [2, 32, 32], "stats": {"mean": 55.0, "std": 25.0}}
    gan = build_gan(PRESETS["paper"], manifest, steps_per_epoch=4)
    rng = np.random.default_rng(0)
    lr = rng.uniform(0, 100, (2, 2, 4, 4, 1)).astype("float32")
    hr = rng.uniform(0, 100, (2, 2, 32, 32, 1)).astype("float32")
    for expected in PAPER_STEPS:
        logs = gan.train_on_batch(lr, hr, return_dict=True)
        for name, value in expected.items():
            np.testing.assert_allclose(float(logs[name]), value, rtol=1e-6, err_msg=name)
    pred = np.asarray(gan.generator(lr, training=False)).astype("float64")
    np.testing.assert_allclose(pred.sum(), PAPER_PREDICTION_SUM, rtol=1e-7)
