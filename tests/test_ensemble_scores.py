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
