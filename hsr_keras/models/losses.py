"""The losses, written once in `keras.ops` and shared by every train step.

The generator's loss is a weighted sum of the terms in `GENERATOR_TERMS`: to add one, write a
function of `TermInputs` returning per-sample values and give it one line in that dict (its
default weight; a config's `loss_weights` overrides it by name). The critic's loss is the
adversarial loss plus the gradient penalty. Every function returns per-sample values of shape
[batch]; the train step reduces them (over the global batch when training is distributed).
"""

from typing import NamedTuple

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


class TermInputs(NamedTuple):
    """What a generator loss term may use."""

    fake: object  # the generated HR batch, %RH [B, T, H, W, 1]
    hr: object  # the truth, %RH
    lr: object  # the LR input, %RH [B, T, h, w, 1]
    fake_score: object  # the critic's score of `fake` [B, 1]; None when no critic trains
    data_std: float  # the training data's standard deviation, %RH
    loss: str  # the adversarial loss ("wgan-gp", "gan") or "content"


class Term(NamedTuple):
    """A generator loss term: its function, its default weight, and when it applies."""

    function: object  # TermInputs -> per-sample values [B]
    weight: float
    # Computed and logged even at weight 0 (content: the monitor without validation data).
    always: bool = False
    # Uses the critic's score: skipped when the generator trains alone.
    adversarial: bool = False
    # (hr_shape [T, H, W], scale) -> why this data cannot use the term, or None.
    requires: object = None


def content_term(inputs):
    return content_l1(inputs.fake, inputs.hr, inputs.data_std)


def adversarial_term(inputs):
    return generator_adversarial_loss(inputs.fake_score, inputs.loss)


def lattice_term(inputs):
    scale = inputs.hr.shape[2] // inputs.lr.shape[2]  # static: HR and LR heights
    return lattice_loss(inputs.fake, inputs.hr, scale=scale)


def _whole_interior_lr_cells(hr_shape, scale):
    height, width = hr_shape[1:]
    if min(height, width) <= 2 * scale:
        return (
            f"needs HR fields larger than 2 x scale = {2 * scale} cells to compare the positions of whole LR cells; "
            f"this data's are {height} x {width}"
        )
    return None


# The generator's loss terms (logged as `<name>_loss`): name -> Term.
GENERATOR_TERMS = {
    "content": Term(content_term, 1.0, always=True),  # L1 (paper: L1 beats L2, [42])
    "adversarial": Term(adversarial_term, 1e-3, always=True, adversarial=True),
    "lattice": Term(lattice_term, 0.0, requires=_whole_interior_lr_cells),  # texture where the truth has it
}


def term_weights(overrides=None):
    """Every term's weight: its default, or the override of `overrides` ({name: weight}).

    Raises `ValueError` for an unknown name or a negative or non-finite weight.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(GENERATOR_TERMS))
    if unknown:
        raise ValueError(f"unknown loss term(s) {unknown}: the terms are {', '.join(GENERATOR_TERMS)}")
    weights = {name: float(overrides.get(name, term.weight)) for name, term in GENERATOR_TERMS.items()}
    bad = {name: w for name, w in weights.items() if not w >= 0 or w == float("inf")}
    if bad:
        raise ValueError(f"loss weights must be finite and >= 0. Received: {bad}")
    return weights


def generator_loss(inputs, weights):
    """Per-sample generator loss and its logged parts {`<term>_loss`: per-sample values}."""
    total, parts = 0.0, {}
    for name, term in GENERATOR_TERMS.items():
        if (term.adversarial and inputs.fake_score is None) or not (weights[name] or term.always):
            continue
        parts[f"{name}_loss"] = term.function(inputs)
        if weights[name]:
            total = total + weights[name] * parts[f"{name}_loss"]
    return total, parts


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
