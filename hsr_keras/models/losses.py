"""The losses, written once in `keras.ops` and shared by every train step.

The generator's loss is a weighted sum of the terms in `GENERATOR_TERMS`: to add one, write a
function of `TermInputs` returning per-sample values and give it one line in that dict (its
default weight; a config's `loss_weights` overrides it by name). The critic's loss is the
adversarial loss plus the gradient penalty. Every function returns per-sample values of shape
[batch]; the train step reduces them (over the global batch when training is distributed).

A generator update may draw K members per LR sequence (`ensemble_size`): `TermInputs.members`
holds them all, `TermInputs.fake` is their mean (the one member when K = 1). The content loss
scores the mean (Harris et al. 2022), the adversarial, lattice and spectral terms each member,
and the crps term the K members together.
"""

from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from hsr_keras.choices import ADVERSARIAL_LOSSES
from hsr_keras.scoring import metrics, spectra

CRPS_ALPHA = 0.95
"""The almost-fair CRPS's weight of the fair estimator (Lang et al. 2024, AIFS-CRPS): see `crps_loss`."""


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


def as_members(members):
    """K members as a list of `[B, ...]` tensors, from a sequence of them or a `[K, B, ...]` array."""
    if isinstance(members, (list, tuple)):
        return list(members)
    return [members[k] for k in range(members.shape[0])]


def member_mean(members):
    """The members' mean `[B, ...]`; the member itself when K = 1 (bit for bit, the paper's step)."""
    members = as_members(members)
    if len(members) == 1:
        return members[0]
    return ops.mean(ops.stack([ops.cast(m, "float32") for m in members]), axis=0)


def per_member(function, members, *args, **kwargs):
    """`function(member, *args)` (per-sample values [B]) averaged over the K members: [B]."""
    values = [function(member, *args, **kwargs) for member in as_members(members)]
    return values[0] if len(values) == 1 else ops.mean(ops.stack(values), axis=0)


def crps_loss(members, true, std=1.0, alpha=CRPS_ALPHA):
    """Almost-fair CRPS of K members, per sample, in units of `std` (AIFS-CRPS's training loss).

    Per point, `mean_k |x_k - y| - c * sum_{j,k} |x_j - x_k|` with
    `c = alpha / (2 K (K - 1)) + (1 - alpha) / (2 K^2)`: `alpha = 1` is the fair CRPS (Ferro 2014,
    `hsr_keras.scoring.ensemble_scores.crps_ensemble`), `alpha = 0` the plain ensemble CRPS;
    Lang et al. 2024 train on `alpha = 0.95`, which keeps the fair estimator's calibration and
    removes its degenerate minima (the fair CRPS does not penalise one member drifting away as
    long as the others cover the truth). Then the mean over every point of a sample.
    `|d|` is taken as `d * sign(d)` (as `metrics.roughness`), so the gradient is the same on
    every backend where two members agree.

    Args:
        members: `[K, B, T, H, W, 1]` (or a sequence of K `[B, T, H, W, 1]`), K >= 2, %RH.
        true: `[B, T, H, W, 1]`, %RH.
        std: the training data's standard deviation (%RH). Defaults to `1.0`.
        alpha: weight of the fair estimator. Defaults to `CRPS_ALPHA` (0.95).

    Returns:
        `[B]` float32.

    Reference:
        Lang et al. (2024), "AIFS-CRPS: ensemble forecasting using a model trained with a loss
        function based on the continuous ranked probability score", arXiv:2412.15832, eq. 4;
        Ferro (2014), QJRMS 140, 1917-1923.
    """
    members = [ops.cast(m, "float32") for m in as_members(members)]
    k = len(members)
    if k < 2:
        raise ValueError(f"The crps loss needs at least 2 members. Received: K={k}")
    true = ops.cast(true, "float32")

    def absolute(d):
        return d * ops.sign(d)

    skill = ops.mean(ops.stack([absolute(m - true) for m in members]), axis=0)
    pairs = 0.0
    for i in range(k):
        for j in range(i + 1, k):
            pairs = pairs + absolute(members[i] - members[j])
    coefficient = alpha / (2.0 * k * (k - 1)) + (1.0 - alpha) / (2.0 * k * k)
    return _per_sample_mean(skill - 2.0 * coefficient * pairs) / std


def band_weights(height, width, scale):
    """`{band: [H, W] float32}`: the weight of each FFT mode in a band's power, as `spectra.band_power_ratios` sums it.

    A mode of radial wavenumber k (`spectra.radial_power_spectrum`'s rounding) in a band of
    `spectra.power_bands` weighs `1 / n_k`, `n_k` the modes of its ring: the weighted sum of a
    frame's mode powers is the band's sum of ring-mean powers. Bands without modes are left out.
    """
    n = min(height, width)
    ky = np.fft.fftfreq(height)[:, None]
    kx = np.fft.fftfreq(width)[None, :]
    k = np.rint(n * np.sqrt(kx**2 + ky**2)).astype(np.int64)
    counts = np.bincount(k.reshape(-1), minlength=n // 2 + 1)
    weights = {}
    for name, (first, last) in spectra.power_bands(n, scale).items():
        inside = (k >= first) & (k <= last)
        if inside.any():
            weights[name] = np.where(inside, 1.0 / np.maximum(counts[np.minimum(k, len(counts) - 1)], 1), 0.0)
    return {name: w.astype("float32") for name, w in weights.items()}


def band_power(fields, weights):
    """Per sample, each band's power of `[B, T, H, W, 1]` fields (frame means removed), averaged over frames: `{band: [B]}`."""
    x = ops.cast(fields, "float32")[..., 0]
    height, width = x.shape[-2:]
    x = x - ops.mean(x, axis=(2, 3), keepdims=True)
    real, imag = ops.fft2((x, ops.zeros_like(x)))
    power = (ops.square(real) + ops.square(imag)) / float(height * width) ** 2
    return {name: ops.mean(ops.sum(power * w, axis=(2, 3)), axis=1) for name, w in weights.items()}


def spectral_loss(pred, true, scale, std=1.0, epsilon=1e-6):
    """Mean over the power bands of the squared log ratio of pred's band power to the truth's, per sample.

    The bands are the metric card's (`spectra.power_bands`: near, mid and far, above the LR
    grid's Nyquist wavenumber, where interpolation and an L1-trained generator lack power), the
    power that of `spectra.radial_power_spectrum` averaged over the frames of a sample, both
    fields in units of `std`; `epsilon` (in those units squared) bounds the gradient where a band
    is empty. Like `lattice_loss`, it matches a statistic of the texture, not its values.
    """
    height, width = true.shape[2:4]
    weights = band_weights(height, width, scale)
    pred_power = band_power(ops.cast(pred, "float32") / std, weights)
    true_power = band_power(ops.cast(true, "float32") / std, weights)
    terms = [ops.square(ops.log((pred_power[b] + epsilon) / (true_power[b] + epsilon))) for b in weights]
    return ops.mean(ops.stack(terms), axis=0)


class TermInputs(NamedTuple):
    """What a generator loss term may use."""

    members: object  # the generated HR members, %RH: a tuple of K [B, T, H, W, 1] (K = ensemble_size, often 1)
    hr: object  # the truth, %RH [B, T, H, W, 1]
    lr: object  # the LR input, %RH [B, T, h, w, 1]
    member_scores: object  # the critic's score of every member [K * B, 1], member-major; None without a critic
    data_std: float  # the training data's standard deviation, %RH
    loss: str  # the adversarial loss ("wgan-gp", "gan") or "content"

    @property
    def fake(self):
        """The members' mean [B, T, H, W, 1] (the one member when K = 1)."""
        return member_mean(self.members)

    @property
    def fake_score(self):
        """The critic's scores of the members, [K * B, 1]; None when no critic trains."""
        return self.member_scores

    @property
    def scale(self):
        return self.hr.shape[2] // self.lr.shape[2]  # static: HR and LR heights


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
    # The fewest members per LR sequence (config ensemble_size) the term is defined for.
    min_members: int = 1


def content_term(inputs):
    return content_l1(inputs.fake, inputs.hr, inputs.data_std)


def adversarial_term(inputs):
    per_score = generator_adversarial_loss(inputs.member_scores, inputs.loss)  # [K * B], member-major
    k = len(inputs.members)
    return per_score if k == 1 else ops.mean(ops.reshape(per_score, (k, -1)), axis=0)


def lattice_term(inputs):
    return per_member(lattice_loss, inputs.members, inputs.hr, scale=inputs.scale)


def crps_term(inputs):
    return crps_loss(inputs.members, inputs.hr, inputs.data_std)


def spectral_term(inputs):
    return per_member(spectral_loss, inputs.members, inputs.hr, inputs.scale, inputs.data_std)


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
    "content": Term(content_term, 1.0, always=True),  # L1 of the members' mean (paper: L1 beats L2, [42])
    "adversarial": Term(adversarial_term, 1e-3, always=True, adversarial=True),  # each member's
    "lattice": Term(lattice_term, 0.0, requires=_whole_interior_lr_cells),  # texture where the truth has it
    "crps": Term(crps_term, 0.0, min_members=2),  # almost-fair CRPS of the members (AIFS-CRPS)
    "spectral": Term(spectral_term, 0.0),  # each member's power per band, as the truth's
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


def interpolate(real, fake, seed_generator, replica=0, replicas=1):
    """Random points on lines between real and generated samples, eps ~ U[0, 1] per sample.

    Under a distribution strategy each of `replicas` replicas holds one part of the global
    batch: the weights are drawn for the whole global batch (replicas x this part, the same
    draw on every replica) and replica `replica` takes its own part, so that every sample gets
    the weight it gets in a one-device step on the global batch.
    """
    real = ops.cast(real, "float32")
    fake = ops.cast(fake, "float32")
    batch = ops.shape(real)[0]
    ones = (1,) * (len(real.shape) - 1)
    eps = keras.random.uniform((batch * replicas,) + ones, 0.0, 1.0, seed=seed_generator)
    if replicas > 1:
        eps = ops.slice(eps, (replica * batch,) + (0,) * len(ones), (batch,) + ones)
    return eps * real + (1.0 - eps) * fake
