"""Tests for hsr_keras.scoring.ensemble_scores: the fair CRPS and the spread against brute force."""

import numpy as np
import pytest

from hsr_keras.scoring import ensemble_scores as E


def test_crps_single_member_is_mae():
    rng = np.random.default_rng(13)
    pred, true = rng.normal(50, 10, (2, 2, 3, 12, 12))
    np.testing.assert_allclose(E.crps_ensemble(pred[None], true), np.abs(pred - true).mean(axis=(1, 2, 3)), rtol=1e-12)


def test_crps_matches_brute_force():
    rng = np.random.default_rng(14)
    members = rng.normal(50, 10, (5, 2, 3, 4, 4))
    true = rng.normal(50, 10, (2, 3, 4, 4))
    m = members.shape[0]
    skill = np.mean([np.abs(members[i] - true) for i in range(m)], axis=0)
    pairs = sum(np.abs(members[i] - members[j]) for i in range(m) for j in range(m))
    ref = (skill - pairs / (2 * m * (m - 1))).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(E.crps_ensemble(members, true), ref, rtol=1e-12)
    np.testing.assert_allclose(E.crps_ensemble(members[..., None], true[..., None]), ref, rtol=1e-12)
    np.testing.assert_allclose(
        E.ensemble_spread(members, true), members.std(axis=0, ddof=1).mean(axis=(1, 2, 3)), rtol=1e-12
    )
    np.testing.assert_array_equal(E.ensemble_spread(members[:1]), [0.0, 0.0])
    with pytest.raises(ValueError, match="members.shape"):
        E.crps_ensemble(members, true[:, :2])


def test_fair_crps_against_properscoring():
    """properscoring's CRPS is the plain estimator; the fair one differs by (1/(2M^2) - 1/(2M(M-1))) x the pair sum.

    The pair sum comes from properscoring too: the mean over j of CRPS(x_j; x) is S / (2 M^2).
    """
    properscoring = pytest.importorskip("properscoring")
    rng = np.random.default_rng(15)
    m = 6
    members = rng.normal(50, 10, (m, 2, 3, 5, 4))
    true = rng.normal(50, 10, (2, 3, 5, 4))
    forecasts = np.moveaxis(members, 0, -1)  # properscoring: members on the last axis
    plain = properscoring.crps_ensemble(true, forecasts)
    pair_sum = 2 * m**2 * np.mean([properscoring.crps_ensemble(members[j], forecasts) for j in range(m)], axis=0)
    fair = plain + (1 / (2 * m**2) - 1 / (2 * m * (m - 1))) * pair_sum
    np.testing.assert_allclose(E.crps_ensemble(members, true), fair.mean(axis=(1, 2, 3)), rtol=1e-10)
    # One member: both are the absolute error.
    np.testing.assert_allclose(
        E.crps_ensemble(members[:1], true), properscoring.crps_ensemble(true, members[0]).mean(axis=(1, 2, 3))
    )


def test_spread_skill_by_hand():
    # One point, members 0 and 2, truth 3: variance (ddof 1) 2, mean 1, squared error 4.
    members = np.array([0.0, 2.0]).reshape(2, 1, 1, 1, 1)
    true = np.full((1, 1, 1, 1), 3.0)
    assert E.spread_skill_parts(members, true) == (2.0, 4.0, 1)
    assert E.spread_skill_ratio(2.0, 4.0, 2) == pytest.approx(np.sqrt(3 / 2) * np.sqrt(2) / 2)
    # Identical members (interpolation as an ensemble): no spread; an exact mean: undefined.
    assert E.spread_skill_ratio(*E.spread_skill_parts(np.zeros((3, 1, 1, 2, 2)), np.ones((1, 1, 2, 2)))[:2], 3) == 0
    assert np.isnan(E.spread_skill_ratio(0.0, 0.0, 3))
    assert E.spread_skill_parts(members[:1], true) == (0.0, 9.0, 1)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_a_calibrated_ensemble_has_spread_skill_1_and_a_flat_rank_histogram(k):
    """Truth and members drawn from one distribution per point: what the finite-ensemble factor is for."""
    rng = np.random.default_rng(16 + k)
    centre = rng.normal(50, 20, (4, 2, 32, 32))
    scale = rng.uniform(1, 5, (4, 2, 32, 32))
    true = centre + scale * rng.normal(size=centre.shape)
    members = centre + scale * rng.normal(size=(k,) + centre.shape)
    variance, error, points = E.spread_skill_parts(members, true)
    assert points == 4 * 2 * 32 * 32
    assert E.spread_skill_ratio(variance, error, k) == pytest.approx(1.0, abs=0.03)
    # without the sqrt((K + 1) / K) factor it would read sqrt(K / (K + 1)): 0.82 for K = 2
    histogram = E.rank_histogram(members, true)
    assert histogram.sum() == pytest.approx(points) and histogram.shape == (k + 1,)
    assert E.rank_flatness(histogram) < 0.1
    # Members at half the truth's spread: under-dispersive, a U-shaped histogram. Their variance is
    # s^2 / 4, the mean's squared error s^2 (1 + 1 / (4 K)).
    narrow = centre + 0.5 * scale * rng.normal(size=(k,) + centre.shape)
    expected = np.sqrt((k + 1) / k) * 0.5 / np.sqrt(1 + 0.25 / k)
    assert E.spread_skill_ratio(*E.spread_skill_parts(narrow, true)[:2], k) == pytest.approx(expected, abs=0.03)
    shares = E.rank_histogram(narrow, true) / points
    assert min(shares[0], shares[-1]) > 1.15 / (k + 1) > max(shares[1:-1]) and E.rank_flatness(shares) > 0.15


def test_rank_histogram_and_flatness_by_hand():
    members = np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1, 1, 1) * np.ones((3, 1, 1, 1, 4))
    true = np.array([2.5, 0.0, 5.0, 2.0]).reshape(1, 1, 1, 4)
    # 2.5: two members below (rank 2); 0: rank 0; 5: rank 3; 2: one below, one tie, shared by ranks 1 and 2.
    np.testing.assert_array_equal(E.rank_histogram(members, true), [1.0, 0.5, 1.5, 1.0])
    assert E.rank_flatness([1, 1, 1, 1]) == 0.0
    assert E.rank_flatness([1.0, 0.5, 1.5, 1.0]) == pytest.approx(0.5)  # |4 x 1.5/4 - 1|
    assert E.rank_flatness([2, 0, 1, 1]) == pytest.approx(1.0)
    assert E.rank_flatness([5, 0, 0, 5]) == pytest.approx(1.0)  # K + 1 = 4 bins: the outer two hold 2x flat
    assert np.isnan(E.rank_flatness([0, 0, 0]))
    with pytest.raises(ValueError, match="K \\+ 1 >= 2 bins"):
        E.rank_flatness([3.0])
