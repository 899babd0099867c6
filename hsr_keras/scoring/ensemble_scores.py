"""Scores of an ensemble of predictions (numpy): the fair CRPS and the spread of its members.

`evaluate --samples N` draws N predictions per model with its noise on; these score the draws
against the truth, the metric card of `hsr_keras.scoring.metrics` scores their mean.
"""

import numpy as np


def _ensemble_prepare(members, true):
    members = np.asarray(members, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if members.ndim == 6 and members.shape[-1] == 1:
        members = members[..., 0]
    if true.ndim == 5 and true.shape[-1] == 1:
        true = true[..., 0]
    if members.ndim != 5 or true.ndim != 4 or members.shape[1:] != true.shape:
        raise ValueError(
            "`members` must be shaped [M, days, T, H, W] and `true` [days, T, H, W]. "
            f"Received: members.shape={members.shape}, true.shape={true.shape}"
        )
    if members.shape[0] < 1:
        raise ValueError("`members` needs at least one member. Received: M=0")
    return members, true


def crps_ensemble(members, true):
    """Fair (unbiased) ensemble CRPS per day (numpy).

    Per point, `mean_m |x_m - y| - sum_{m, m'} |x_m - x_m'| / (2 M (M - 1))` (Ferro 2014's
    fair estimator; for `M = 1` the second term is 0 and CRPS is the absolute error), then the
    mean over the `T x H x W` points of a day. The pair sum is computed from the sorted
    members in `O(M log M)` per point.

    Args:
        members: `[M, days, T, H, W]` (or `[..., 1]`), %RH.
        true: `[days, T, H, W]` (or `[..., 1]`), %RH.

    Returns:
        `[days]` float64 array in %RH.
    """
    members, true = _ensemble_prepare(members, true)
    m = members.shape[0]
    crps = np.abs(members - true[None]).mean(axis=0)
    if m > 1:
        ordered = np.sort(members, axis=0)
        coef = (2.0 * np.arange(m) - m + 1).reshape((m,) + (1,) * true.ndim)
        pair_sum = 2.0 * (coef * ordered).sum(axis=0)  # sum over ordered pairs |x_m - x_m'|
        crps = crps - pair_sum / (2.0 * m * (m - 1))
    return crps.mean(axis=(1, 2, 3))


def ensemble_spread(members, true=None, ddof=1):
    """Ensemble spread per day (numpy): mean over `T x H x W` points of the member std.

    Args:
        members: `[M, days, T, H, W]` (or `[..., 1]`).
        true: optional, only used to check shapes.
        ddof: delta degrees of freedom of the std. Defaults to 1 (the sample std); a
            single member has spread 0.

    Returns:
        `[days]` float64 array in %RH.
    """
    if true is None:
        members = np.asarray(members, dtype=np.float64)
        if members.ndim == 6 and members.shape[-1] == 1:
            members = members[..., 0]
        if members.ndim != 5:
            raise ValueError(f"`members` must be shaped [M, days, T, H, W]. Received: members.shape={members.shape}")
    else:
        members, _ = _ensemble_prepare(members, true)
    if members.shape[0] <= ddof:
        return np.zeros(members.shape[1])
    return members.std(axis=0, ddof=ddof).mean(axis=(1, 2, 3))
