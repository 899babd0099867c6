"""hsr_keras.losses: the formulas against numpy, and the penalty's gradient where the critic's is zero."""

import numpy as np
import pytest
import tensorflow as tf

from hsr_keras import losses


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
