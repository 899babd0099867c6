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


# ----------------------------------------------------------------------------- ensembles


def test_crps_loss_is_the_fair_crps_and_properscorings_crps_at_its_two_ends():
    """alpha = 1: Ferro's fair CRPS (the metric card's); alpha = 0: the plain ensemble CRPS of properscoring."""
    properscoring = pytest.importorskip("properscoring")
    from hsr_keras.scoring.ensemble_scores import crps_ensemble

    rng = np.random.default_rng(21)
    members = rng.normal(50, 10, (4, 2, 3, 6, 5, 1)).astype("float32")
    true = rng.normal(50, 10, (2, 3, 6, 5, 1)).astype("float32")
    fair = crps_ensemble(members, true)  # [days]
    np.testing.assert_allclose(losses.crps_loss(members, true, 1.0, alpha=1.0), fair, rtol=1e-5)
    np.testing.assert_allclose(losses.crps_loss(members, true, 4.0, alpha=1.0), fair / 4.0, rtol=1e-5)
    plain = properscoring.crps_ensemble(true[..., 0], np.moveaxis(members[..., 0], 0, -1)).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(losses.crps_loss(members, true, alpha=0.0), plain, rtol=1e-5)
    # AIFS-CRPS's almost fair CRPS (Lang et al. 2024, eq. 4) from its own definition, by hand
    k, eps = 4, (1 - 0.95) / 4
    total = sum(
        np.abs(members[j] - true) + np.abs(members[i] - true) - (1 - eps) * np.abs(members[j] - members[i])
        for j in range(k)
        for i in range(k)
        if i != j
    ) / (2 * k * (k - 1))
    np.testing.assert_allclose(losses.crps_loss(members, true), total.reshape(2, -1).mean(axis=1), rtol=1e-5)
    # A sequence of members is the same as their stack; one member is refused.
    np.testing.assert_allclose(losses.crps_loss(list(members), true), losses.crps_loss(members, true), rtol=1e-6)
    with pytest.raises(ValueError, match="at least 2 members"):
        losses.crps_loss(members[:1], true)


def test_crps_loss_parts_members_that_start_alike():
    """The spread term's gradient pushes two members apart where they start close (|d| as d * sign(d))."""
    rng = np.random.default_rng(22)
    true = tf.constant(rng.normal(50, 10, (1, 1, 4, 4, 1)).astype("float32"))
    base = rng.normal(50, 10, (1, 1, 4, 4, 1)).astype("float32")
    members = tf.Variable(np.stack([base, base + 0.01]))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(losses.crps_loss(members, true, alpha=1.0))
    grad = tape.gradient(loss, members).numpy()
    # d loss / d x_1 - d loss / d x_0 where both are on the same side of the truth: the pair term's -2c
    same_side = np.sign(base - true.numpy()) == np.sign(base + 0.01 - true.numpy())
    assert np.all((grad[1] - grad[0])[same_side] < 0)


def test_spectral_loss_matches_the_band_power_of_the_metric_card():
    from hsr_keras.scoring import spectra

    rng = np.random.default_rng(23)
    true = rng.normal(50, 10, (2, 3, 32, 32, 1)).astype("float32")
    pred = true + rng.normal(0, 5, true.shape).astype("float32")
    weights = losses.band_weights(32, 32, 4)
    assert spectra.power_bands(32, 4)["power_far"] == (21, 16)  # empty: left out of the weights
    assert set(weights) == {"power_near", "power_mid"}
    got = {b: np.asarray(v) for b, v in losses.band_power(pred, weights).items()}
    for day in range(2):
        k, power = spectra.radial_power_spectrum(pred[day, ..., 0])
        for band, (first, last) in spectra.power_bands(32, 4).items():
            if band in got:
                np.testing.assert_allclose(got[band][day], power[(k >= first) & (k <= last)].sum(), rtol=1e-4)
    np.testing.assert_allclose(losses.spectral_loss(true, true, scale=4), 0.0, atol=1e-8)
    # Twice the field has four times the power in every band: log(4)^2 per band, whatever the std.
    twice = 2 * true - 50  # the frame mean does not count
    np.testing.assert_allclose(losses.spectral_loss(twice, true, 4, 25.0, epsilon=0.0), np.log(4) ** 2, rtol=1e-4)


def test_the_crps_term_needs_two_members():
    assert losses.GENERATOR_TERMS["crps"].min_members == 2
    assert losses.GENERATOR_TERMS["content"].min_members == losses.GENERATOR_TERMS["spectral"].min_members == 1
