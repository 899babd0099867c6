"""hsr_keras.models.losses: the formulas against numpy, and the penalty's gradient where the critic's is zero."""

import numpy as np
import pytest
import tensorflow as tf

from hsr_keras.models import losses


def test_loss_formulas_match_numpy():
    real = np.array([1.0, -2.0, 0.5], "float32")
    fake = np.array([0.3, 4.0, -1.0], "float32")
    np.testing.assert_allclose(losses.critic_loss(real, fake, "wgan-gp"), fake - real, rtol=1e-6)
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    np.testing.assert_allclose(losses.critic_loss(real, fake, "gan"), softplus(-real) + softplus(fake), rtol=1e-6)
    np.testing.assert_allclose(losses.generator_adversarial_loss(fake, "wgan-gp"), -fake, rtol=1e-6)
    np.testing.assert_allclose(losses.generator_adversarial_loss(fake, "gan"), softplus(-fake), rtol=1e-6)
    pred = np.arange(24, dtype="float32").reshape(2, 3, 4)
    true = pred[::-1] * 0.5
    expected = np.abs(pred - true).reshape(2, -1).mean(axis=1) / 4.0
    np.testing.assert_allclose(losses.content_l1(pred, true, 4.0), expected, rtol=1e-6)
    grads = np.random.default_rng(0).normal(size=(3, 2, 5)).astype("float32")
    norms = np.sqrt((grads.reshape(3, -1) ** 2).sum(axis=1))
    np.testing.assert_allclose(losses.gradient_penalty(grads), (norms - 1) ** 2, rtol=1e-5)
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.critic_loss(real, fake, "hinge")


def test_penalty_gradient_is_finite_at_zero_gradient():
    grads = tf.zeros((2, 3))
    with tf.GradientTape() as tape:
        tape.watch(grads)
        penalty = tf.reduce_sum(losses.gradient_penalty(grads))
    assert np.all(np.isfinite(tape.gradient(penalty, grads).numpy()))
    np.testing.assert_allclose(penalty.numpy(), 2.0, rtol=1e-5)


def test_lattice_loss_matches_the_roughness_of_pred_and_true_at_each_position_in_an_lr_cell():
    rng = np.random.default_rng(5)
    true = rng.normal(50, 5, (3, 2, 20, 20, 1)).astype("float32")
    pred = true.copy()
    pred[:, :, ::4, ::4] = 50.0  # flat at the sample points: a lattice
    pred += rng.normal(0, 1, pred.shape).astype("float32")
    # roughness per position of the interior LR cells (rows and columns 4 to 15), by hand
    rough = {}
    for name, f in (("pred", pred[..., 0]), ("true", true[..., 0])):
        r = np.abs(
            f[..., 1:-1, 1:-1] - (f[..., :-2, 1:-1] + f[..., 2:, 1:-1] + f[..., 1:-1, :-2] + f[..., 1:-1, 2:]) / 4
        )
        cells = r[..., 3:15, 3:15].reshape(3, 2, 3, 4, 3, 4)
        rough[name] = cells.mean(axis=(1, 2, 4))
    expected = (np.log(rough["pred"] / rough["true"]) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(losses.lattice_loss(pred, true, 0.0, scale=4), expected, rtol=1e-4)
    np.testing.assert_allclose(losses.lattice_loss(true, true, scale=4), 0.0, atol=1e-7)
    np.testing.assert_allclose(losses.lattice_loss(2 * true, true, 0.0, scale=4), np.log(2) ** 2, rtol=1e-5)


def test_lattice_loss_pulls_the_sample_points_towards_the_truths_roughness():
    rng = np.random.default_rng(6)
    true = tf.constant(rng.normal(50, 5, (2, 1, 24, 24, 1)).astype("float32"))
    smooth = tf.Variable(tf.fill(true.shape, 50.0) + tf.constant(rng.normal(0, 0.01, true.shape).astype("float32")))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(losses.lattice_loss(smooth, true, scale=8))
    grads = tape.gradient(loss, smooth).numpy()
    assert np.all(np.isfinite(grads)) and np.abs(grads[:, :, 8, 8]).max() > 0  # the sample points get a gradient
