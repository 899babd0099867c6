"""Scores of an ensemble of predictions (numpy): how well K members describe the truth's uncertainty.

`evaluate --samples N` draws N predictions per model with its noise on; these score the draws
against the truth, the metric card of `hsr_keras.scoring.metrics` scores their mean:

* `crps_ensemble`: the fair CRPS (Ferro 2014), per day;
* `ensemble_spread`: the mean member standard deviation, per day;
* `spread_skill_parts` and `spread_skill_ratio`: the spread-skill ratio with the finite-ensemble
  correction (Fortin et al. 2014), pooled over every point;
* `rank_histogram` and `rank_flatness`: where the truth falls among the sorted members
  (Hamill 2001), and how far the histogram is from flat in one number.

Every function takes `members` `[K, days, T, H, W]` and `true` `[days, T, H, W]` (a trailing
channel axis of 1 is accepted), in %RH.
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


def spread_skill_parts(members, true):
    """The sums the spread-skill ratio pools: `(sum of the member variances, sum of the mean's squared errors, points)`.

    Per point, the variance of the K members with `ddof=1` (0 for one member) and the squared
    error of their mean; each summed over every point of every day, so that batches add up.
    """
    members, true = _ensemble_prepare(members, true)
    variance = members.var(axis=0, ddof=1) if members.shape[0] > 1 else np.zeros_like(true)
    error = members.mean(axis=0) - true
    return float(variance.sum()), float(np.square(error).sum()), int(true.size)


def spread_skill_ratio(variance_sum, squared_error_sum, k):
    """`sqrt((K + 1) / K) * sqrt(mean variance) / RMSE of the mean`, from `spread_skill_parts`' sums.

    1 for a calibrated ensemble: for members and truth drawn from one distribution, the mean's
    squared error is `(K + 1) / K` times the members' variance on average (Fortin et al. 2014,
    eq. 5), so the factor makes the ratio independent of K. The mean variance (not the mean
    standard deviation) is what that identity holds for. Below 1: under-dispersive (the truth
    falls outside the members more often than it should), above 1: over-dispersive. 0 for one
    member or identical members (interpolation as an ensemble), NaN when the mean is exact.

    Reference:
        Fortin, Abaza, Anctil, Turcotte (2014), "Why should ensemble spread match the RMSE of
        the ensemble mean?", J. Hydrometeorology 15, 1708-1713.
    """
    if squared_error_sum <= 0:
        return float("nan")
    return float(np.sqrt((k + 1.0) / k) * np.sqrt(variance_sum / squared_error_sum))


def rank_histogram(members, true):
    """Where the truth falls among the K members: `[K + 1]` counts over every point (Talagrand diagram).

    At each point the truth's rank is the number of members below it, 0 to K. Where members
    equal the truth (ties: identical members, a field reproduced exactly) the rank is uniform over
    the tied positions and the point's count is shared among them (`1 / (ties + 1)` each), the
    expected histogram of random tie-breaking (Hamill 2001), without the randomness.

    Returns:
        float64 `[K + 1]` counts summing to the number of points.

    Reference:
        Hamill (2001), "Interpretation of rank histograms for verifying ensemble forecasts",
        Mon. Wea. Rev. 129, 550-560.
    """
    members, true = _ensemble_prepare(members, true)
    below = (members < true[None]).sum(axis=0)
    ties = (members == true[None]).sum(axis=0)
    share = 1.0 / (ties + 1.0)
    counts = np.zeros(members.shape[0] + 1)
    for rank in range(members.shape[0] + 1):
        counts[rank] = float(np.sum(np.where((below <= rank) & (rank <= below + ties), share, 0.0)))
    return counts


def rank_flatness(histogram):
    """The largest relative departure of a rank histogram's bins from flat: `max_i |(K + 1) p_i - 1|`.

    `p_i` is bin `i`'s share of the points. 0 for a flat histogram (a calibrated ensemble); 0.2
    means some bin holds 20 % more or less than `1 / (K + 1)` of the points; K for a U shape with
    every point in the outer bins (no spread); NaN for an empty histogram.
    """
    histogram = np.asarray(histogram, dtype=np.float64)
    total = histogram.sum()
    if histogram.ndim != 1 or histogram.size < 2:
        raise ValueError(f"`histogram` must hold K + 1 >= 2 bins. Received: shape={histogram.shape}")
    if total <= 0:
        return float("nan")
    return float(np.max(np.abs(histogram.size * histogram / total - 1.0)))
