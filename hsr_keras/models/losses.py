"""Adversarial and content losses, written once in `keras.ops` and shared by every train step.

Each function returns per-sample values of shape [batch]; the train step reduces them
(over the global batch when training is distributed).
"""

import keras
from keras import ops

from hsr_keras.choices import ADVERSARIAL_LOSSES
from hsr_keras.scoring import metrics


def _per_sample_mean(x):
    """Mean over every axis but the first (the batch)."""
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=1)


def content_l1(pred, true, std=1.0):
    """L1 distance in units of the training data's standard deviation (paper: L1 beats L2, [42])."""
    pred = ops.cast(pred, "float32")
    true = ops.cast(true, "float32")
    return _per_sample_mean(ops.abs(pred - true)) / std


def lattice_loss(pred, true, epsilon=0.01, *, scale):
    """Mean squared log ratio of pred's roughness to the truth's at each position in an LR cell, per sample.

    The lattice: texture whose strength depends on the position in the LR cell (smooth where the
    LR values are kept, or a sub-pixel upsampling's own texture per position; see
    `metrics.phase_roughness`). Matching each position's mean roughness to the truth's, not the
    values point by point, lets the texture differ from the truth's in detail but not in where
    it is nor in how strong it is. Log ratios are unit-free and their gradient fades as the
    statistics meet (an absolute difference's sign-sized gradient swamped the content loss).
    `epsilon` (%RH) bounds the gradient where a position is smooth, e.g. inside the blocks of a
    freshly ICNR-initialised generator without a global skip.
    """
    pred_phases = metrics.phase_roughness(ops.cast(pred, "float32"), scale)
    true_phases = metrics.phase_roughness(ops.cast(true, "float32"), scale)
    return ops.mean(ops.square(ops.log((pred_phases + epsilon) / (true_phases + epsilon))), axis=(1, 2))


def critic_loss(real_score, fake_score, loss="wgan-gp"):
    """Critic/discriminator loss without the penalty.

    wgan-gp: D(G(z)) - D(x) (paper eq. 6). gan: the discriminator's cross-entropy of the
    minimax game (paper eq. 5) on logits.
    """
    real_score = ops.cast(ops.reshape(real_score, (-1,)), "float32")
    fake_score = ops.cast(ops.reshape(fake_score, (-1,)), "float32")
    if loss == "wgan-gp":
        return fake_score - real_score
    if loss == "gan":
        return ops.softplus(-real_score) + ops.softplus(fake_score)
    raise ValueError(f"loss must be one of {ADVERSARIAL_LOSSES}. Received: loss={loss}")


def generator_adversarial_loss(fake_score, loss="wgan-gp"):
    """Generator's adversarial term.

    wgan-gp: -D(G(z)). gan: the non-saturating form -log D(G(z)), which Goodfellow et al.
    recommend over the saturating log(1 - D(G(z))) of the minimax objective.
    """
    fake_score = ops.cast(ops.reshape(fake_score, (-1,)), "float32")
    if loss == "wgan-gp":
        return -fake_score
    if loss == "gan":
        return ops.softplus(-fake_score)
    raise ValueError(f"loss must be one of {ADVERSARIAL_LOSSES}. Received: loss={loss}")


def gradient_penalty(grads, epsilon=1e-12):
    """(||grad D(x_hat)||_2 - 1)^2 per sample, the norm over all non-batch axes.

    The epsilon inside the square root keeps the norm's gradient finite at zero gradient.
    """
    grads = ops.cast(grads, "float32")
    squares = ops.reshape(ops.square(grads), (ops.shape(grads)[0], -1))
    norm = ops.sqrt(ops.sum(squares, axis=1) + epsilon)
    return ops.square(norm - 1.0)


def interpolate(real, fake, seed_generator):
    """Random points on lines between real and generated samples, eps ~ U[0, 1] per sample."""
    real = ops.cast(real, "float32")
    fake = ops.cast(fake, "float32")
    shape = (ops.shape(real)[0],) + (1,) * (len(real.shape) - 1)
    eps = keras.random.uniform(shape, 0.0, 1.0, seed=seed_generator)
    return eps * real + (1.0 - eps) * fake
