"""Tests for hsr_keras.scoring.metrics: every metric against an independent computation."""

import math

import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity
from tiny_build import planted_lattice

from hsr_keras.scoring import metrics as M


def np_(x):
    return np.asarray(ops.convert_to_numpy(x))


def smooth_fields(shape, seed=0, sigma=3.0, noise=15.0):
    """A smooth %RH-like truth and a perturbed prediction, float64."""
    rng = np.random.default_rng(seed)
    sig = (0,) * (len(shape) - 2) + (sigma, sigma)
    true = gaussian_filter(rng.normal(size=shape), sig) * 250.0 + 60.0
    pred = true + gaussian_filter(rng.normal(size=shape), sig[:-2] + (1.0, 1.0)) * noise
    return pred, true


def sk_ssim(a, b):
    return structural_similarity(a, b, data_range=100.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


# ------------------------------------------------------------------ MSE / MAE / bias


def test_mse_mae_bias_match_numpy():
    rng = np.random.default_rng(1)
    pred = rng.uniform(0, 120, (3, 8, 16, 20))
    true = rng.uniform(0, 120, (3, 8, 16, 20))
    np.testing.assert_allclose(np_(M.mse(pred, true)), ((pred - true) ** 2).mean(axis=(1, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(np_(M.mae(pred, true)), np.abs(pred - true).mean(axis=(1, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(np_(M.bias(pred, true)), (pred - true).mean(axis=(1, 2, 3)), rtol=1e-10)
    # trailing channel axis of 1 is squeezed, float32 is computed in float32
    out = M.mse(pred[..., None].astype(np.float32), true[..., None].astype(np.float32))
    assert np_(out).dtype == np.float32 and np_(out).shape == (3,)
    np.testing.assert_allclose(np_(out), ((pred - true) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    # half precision (mixed_float16 outputs) is computed in float32; mixed dtypes in float64
    assert np_(M.mae(pred.astype(np.float16), true.astype(np.float16))).dtype == np.float32
    assert np_(M.mae(pred.astype(np.float32), true)).dtype == np.float64


@pytest.mark.parametrize("fn", [M.mse, M.mae, M.bias, M.psnr, M.ssim, M.acc, M.tcc, M.tcc_counts])
def test_mismatched_shapes_raise(fn):
    with pytest.raises(ValueError, match=r"\(2, 8, 16, 16\).*\(2, 8, 16, 24\)"):
        fn(np.zeros((2, 8, 16, 16)), np.zeros((2, 8, 16, 24)))
    with pytest.raises(ValueError, match="days, T, H, W"):
        fn(np.zeros((8, 16, 16)), np.zeros((8, 16, 16)))


# ------------------------------------------------------------------------------ PSNR


def test_psnr_hand_computed():
    true = np.full((2, 2, 12, 12), 50.0)
    pred = true + 10.0  # MSE 100 -> 10 log10(100^2 / 100) = 20 dB
    np.testing.assert_allclose(np_(M.psnr(pred, true)), [20.0, 20.0], rtol=1e-12)
    pred2 = true.copy()
    pred2[:, 0] += 10.0  # 20 dB
    pred2[:, 1] += 1.0  # 40 dB -> paper style mean 30 dB (pooled MSE 50.5 would give 23.0)
    np.testing.assert_allclose(np_(M.psnr(pred2, true)), [30.0, 30.0], rtol=1e-12)
    np.testing.assert_allclose(np_(M.psnr_from_mse(100.0)), 20.0, rtol=1e-6)
    np.testing.assert_allclose(np_(M.psnr_from_mse(50.5)), 10 * math.log10(1e4 / 50.5), rtol=1e-6)
    # explicit data range
    np.testing.assert_allclose(np_(M.psnr(true + 1.0, true, data_range=10.0)), [20.0, 20.0])
    np.testing.assert_allclose(np_(M.psnr_from_mse(1.0, data_range=10.0)), 20.0, rtol=1e-6)


def test_psnr_identical_is_inf():
    x = np.random.default_rng(2).uniform(0, 100, (2, 3, 12, 12))
    assert np.all(np.isposinf(np_(M.psnr(x, x))))
    assert np.isposinf(np_(M.psnr_from_mse(0.0)))
    y = x.copy()
    y[1, 0] += 1.0  # day 1 has two identical frames -> still inf
    y[0] += 1.0
    out = np_(M.psnr(y, x))
    assert np.isfinite(out[0]) and np.isposinf(out[1])


# ------------------------------------------------------------------------------ SSIM


@pytest.mark.parametrize("hw", [(11, 11), (16, 16), (24, 40), (64, 64), (37, 13)])
def test_ssim_matches_skimage(hw):
    pred, true = smooth_fields((2, 3) + hw, seed=hw[0] + hw[1])
    ref = np.array([[sk_ssim(pred[d, t], true[d, t]) for t in range(3)] for d in range(2)])
    np.testing.assert_allclose(np_(M.ssim(pred, true)), ref.mean(axis=1), atol=1e-10)
    out32 = np_(M.ssim(pred.astype(np.float32), true.astype(np.float32)))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ref.mean(axis=1), atol=1e-5)


def test_ssim_data_range_and_channel_axis():
    pred, true = smooth_fields((1, 2, 20, 20), seed=5)
    ref = np.mean(
        [
            structural_similarity(
                pred[0, t], true[0, t], data_range=150.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
            )
            for t in range(2)
        ]
    )
    np.testing.assert_allclose(np_(M.ssim(pred[..., None], true[..., None], data_range=150.0)), [ref], atol=1e-10)


def test_ssim_identical_and_constant_fields():
    pred, _ = smooth_fields((2, 2, 20, 24), seed=3)
    np.testing.assert_allclose(np_(M.ssim(pred, pred)), [1.0, 1.0], atol=1e-12)
    const_a = np.full((1, 1, 16, 16), 40.0)
    const_b = np.full((1, 1, 16, 16), 70.0)
    np.testing.assert_allclose(np_(M.ssim(const_a, const_a)), [1.0], atol=1e-12)
    np.testing.assert_allclose(np_(M.ssim(const_a, const_b)), [sk_ssim(const_a[0, 0], const_b[0, 0])], atol=1e-12)
    np.testing.assert_allclose(
        np_(M.ssim(pred[:1, :1, :16, :16], const_b)), [sk_ssim(pred[0, 0, :16, :16], const_b[0, 0])], atol=1e-10
    )


@pytest.mark.parametrize("hw", [(10, 20), (20, 10), (8, 8)])
def test_ssim_small_frames_raise(hw):
    with pytest.raises(ValueError, match="11x11"):
        M.ssim(np.zeros((1, 1) + hw), np.zeros((1, 1) + hw))


# ------------------------------------------------------------------------------- ACC


def corr(a, b):
    return np.corrcoef(a.ravel(), b.ravel())[0, 1]


def test_acc_matches_corrcoef():
    pred, true = smooth_fields((3, 8, 16, 20), seed=4, noise=60.0)
    ref = np.array([[corr(pred[d, t], true[d, t]) for t in range(8)] for d in range(3)])
    np.testing.assert_allclose(np_(M.acc(pred, true)), ref.mean(axis=1), atol=1e-12)


def test_acc_anomaly_with_climatology():
    pred, true = smooth_fields((2, 4, 16, 16), seed=6, noise=40.0)
    clim = smooth_fields((4, 16, 16), seed=7)[1]
    ref = np.array([[corr(pred[d, t] - clim[t], true[d, t] - clim[t]) for t in range(4)] for d in range(2)])
    np.testing.assert_allclose(np_(M.acc(pred, true, climatology=clim)), ref.mean(axis=1), atol=1e-12)
    # a trailing channel axis on the climatology is accepted, and the result differs from ACC
    np.testing.assert_allclose(np_(M.acc(pred, true, climatology=clim[..., None])), ref.mean(axis=1), atol=1e-12)
    assert not np.allclose(np_(M.acc(pred, true)), ref.mean(axis=1))


def test_acc_excludes_constant_frames():
    pred, true = smooth_fields((3, 4, 16, 16), seed=8, noise=50.0)
    pred[0, 1] = 55.0  # constant prediction frame
    true[0, 2] = 30.0  # constant truth frame
    pred[2] = 42.0  # every frame of day 2 constant
    ref0 = np.mean([corr(pred[0, t], true[0, t]) for t in (0, 3)])
    ref1 = np.mean([corr(pred[1, t], true[1, t]) for t in range(4)])
    out = np_(M.acc(pred, true))
    np.testing.assert_allclose(out[:2], [ref0, ref1], atol=1e-12)
    assert np.isnan(out[2])
    # the constant check is exact even in float32 (mean of a constant is not always exact)
    out32 = np_(M.acc(pred.astype(np.float32) + np.float32(0.1), true.astype(np.float32)))
    np.testing.assert_allclose(out32[:2], [ref0, ref1], atol=1e-5)
    assert np.isnan(out32[2])


# ------------------------------------------------------------------------------- TCC


def test_tcc_matches_corrcoef_and_counts_constant_series():
    rng = np.random.default_rng(9)
    true = rng.uniform(0, 120, (3, 8, 6, 7))
    pred = true + rng.normal(0, 30, true.shape)
    pred[0, :, 1, 2] = 50.0  # constant prediction series
    true[0, :, 3, 4] = 80.0  # constant truth series
    true[1, :, 0, 0] = 80.0
    pred[2] = 10.0  # all constant: NaN day
    out = np_(M.tcc(pred, true))
    counts = np_(M.tcc_counts(pred, true))
    for d in range(2):
        values = [
            corr(pred[d, :, i, j], true[d, :, i, j])
            for i in range(6)
            for j in range(7)
            if np.ptp(pred[d, :, i, j]) > 0 and np.ptp(true[d, :, i, j]) > 0
        ]
        np.testing.assert_allclose(out[d], np.mean(values), atol=1e-12)
    assert np.isnan(out[2])
    np.testing.assert_array_equal(counts, [2, 1, 42])
    assert counts.dtype == np.int32


# -------------------------------------------------------------------- accumulator


def test_accumulator_equals_metrics_on_concatenated_data():
    pred, true = smooth_fields((7, 8, 16, 16), seed=15, noise=40.0)
    clim = smooth_fields((8, 16, 16), seed=16)[1]
    true[3, :, 2, 2] = 77.0  # one excluded TCC point
    pred[5] = 33.0  # ACC and TCC undefined for day 5
    accumulator = M.MetricAccumulator(climatology=clim)
    for start, stop in ((0, 2), (2, 3), (3, 7)):
        accumulator.update(pred[start:stop].astype(np.float32), true[start:stop].astype(np.float32))
    got = accumulator.result()
    p32, t32 = pred.astype(np.float32), true.astype(np.float32)
    expected = {
        "mse": np_(M.mse(p32, t32)).mean(),
        "mae": np_(M.mae(p32, t32)).mean(),
        "bias": np_(M.bias(p32, t32)).mean(),
        "psnr": np_(M.psnr(p32, t32)).mean(),
        "ssim": np_(M.ssim(p32, t32)).mean(),
        "acc": np.nanmean(np_(M.acc(p32, t32))),
        "acc_anomaly": np.nanmean(np_(M.acc(p32, t32, climatology=clim))),
        "tcc": np.nanmean(np_(M.tcc(p32, t32))),
    }
    assert set(got) == set(expected) | {"psnr_pooled", "tcc_excluded_points", "days"}
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(got["psnr_pooled"], 10 * np.log10(1e4 / ((pred - true) ** 2).mean()), rtol=1e-5)
    np.testing.assert_allclose(got["psnr_pooled"], np_(M.psnr_from_mse(got["mse"])), rtol=1e-6)
    assert got["tcc_excluded_points"] == 1 + 256 and got["days"] == 7
    assert set(got) <= set(M.METRIC_CARD)
    assert not any(key.startswith("lattice") for key in got)  # no scale, no lattice
    for entry in M.METRIC_CARD.values():
        assert set(entry) == {"description", "higher_is_better", "units"}


def test_accumulator_without_climatology_and_empty():
    accumulator = M.MetricAccumulator()
    with pytest.raises(ValueError):
        accumulator.result()
    pred, true = smooth_fields((2, 4, 12, 12), seed=17)
    accumulator.update(tf.constant(pred[..., None]), true)
    got = accumulator.result()
    assert "acc_anomaly" not in got and got["days"] == 2
    with pytest.raises(ValueError, match="same shape"):
        accumulator.update(pred, true[:, :3])


# ---------------------------------------------------------------------- graph mode


@pytest.mark.parametrize("static", [True, False])
def test_metrics_in_tf_function(static):
    pred, true = smooth_fields((2, 8, 16, 20), seed=18, noise=40.0)
    pred, true = pred.astype(np.float32), true.astype(np.float32)
    clim = true.mean(axis=0)
    shape = pred.shape if static else (None, None, None, None)
    spec = tf.TensorSpec(shape, tf.float32)

    @tf.function(input_signature=[spec, spec])
    def all_metrics(p, t):
        return {
            "mse": M.mse(p, t),
            "mae": M.mae(p, t),
            "bias": M.bias(p, t),
            "psnr": M.psnr(p, t),
            "ssim": M.ssim(p, t),
            "acc": M.acc(p, t),
            "acc_anomaly": M.acc(p, t, climatology=clim),
            "tcc": M.tcc(p, t),
            "tcc_counts": M.tcc_counts(p, t),
            "psnr_pooled": M.psnr_from_mse(tf.reduce_mean(M.mse(p, t))),
        }

    graph = all_metrics(tf.constant(pred), tf.constant(true))
    eager = {
        "mse": M.mse(pred, true),
        "mae": M.mae(pred, true),
        "bias": M.bias(pred, true),
        "psnr": M.psnr(pred, true),
        "ssim": M.ssim(pred, true),
        "acc": M.acc(pred, true),
        "acc_anomaly": M.acc(pred, true, climatology=clim),
        "tcc": M.tcc(pred, true),
        "tcc_counts": M.tcc_counts(pred, true),
        "psnr_pooled": M.psnr_from_mse(np_(M.mse(pred, true)).mean()),
    }
    for key, value in eager.items():
        np.testing.assert_allclose(graph[key].numpy(), np_(value), rtol=1e-5, atol=1e-6, err_msg=key)


def _phase_roughness_by_loops(field, scale):
    """[days, s, s]: mean roughness at each position of the whole interior LR cells, point by point."""
    days, steps, height, width = field.shape
    rows, cols = range(scale, scale * ((height - 1) // scale)), range(scale, scale * ((width - 1) // scale))
    out = np.zeros((days, scale, scale))
    for d in range(days):
        sums, counts = np.zeros((scale, scale)), np.zeros((scale, scale))
        for t in range(steps):
            f = field[d, t]
            for i in rows:
                for j in cols:
                    sums[i % scale, j % scale] += abs(
                        f[i, j] - (f[i - 1, j] + f[i + 1, j] + f[i, j - 1] + f[i, j + 1]) / 4
                    )
                    counts[i % scale, j % scale] += 1
        out[d] = sums / counts
    return out


def _lattice_parts_by_loops(field, scale):
    phases = _phase_roughness_by_loops(field, scale)
    return phases[:, 0, 0], (phases.sum(axis=(1, 2)) - phases[:, 0, 0]) / (scale * scale - 1)


def test_lattice_parts_match_a_point_by_point_computation():
    field = np.random.default_rng(3).normal(size=(2, 3, 19, 26))
    at, away = M.lattice_parts(field[..., None], 4)  # a channel axis is accepted
    expected_at, expected_away = _lattice_parts_by_loops(field, 4)
    np.testing.assert_allclose(np.asarray(at), expected_at, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(away), expected_away, rtol=1e-6)
    phases = _phase_roughness_by_loops(field, 4)
    np.testing.assert_allclose(np.asarray(M.phase_roughness(field, 4)), phases, rtol=1e-6)
    spread = phases.reshape(2, -1).std(axis=1) / phases.reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(np.asarray(M.lattice_spread(field, 4)), spread, rtol=1e-5)


def test_lattice_spread_sees_texture_that_depends_on_the_position_in_the_lr_cell():
    # Extra noise on one column of every LR cell (not the sample points): a lattice `lattice` misses.
    noise = np.random.default_rng(8).normal(size=(2, 4, 128, 128))
    field = 50 + 3 * noise
    striped = field.copy()
    striped[..., :, 5::8] += 3 * np.random.default_rng(9).normal(size=striped[..., :, 5::8].shape)
    assert np.all(np.asarray(M.lattice_spread(field, 8)) < 0.04)
    assert np.all(np.asarray(M.lattice_spread(striped, 8)) > 0.1)
    np.testing.assert_allclose(np.asarray(M.lattice(striped, 8)), 1.0, atol=0.1)


def test_lattice_is_about_one_without_a_lattice_and_small_with_a_planted_one():
    # Smooth sinusoids plus white noise: every point equally rough, whatever its phase.
    y, x = np.mgrid[0:128, 0:128]
    noise = np.random.default_rng(4).normal(size=(2, 4, 128, 128))
    field = 50 + 10 * np.sin(x / 9.0)[None, None] * np.cos(y / 13.0)[None, None] + 3 * noise
    np.testing.assert_allclose(np.asarray(M.lattice(field, 8)), 1.0, atol=0.06)
    ratio = np.asarray(M.lattice(planted_lattice(field, 8), 8))
    assert np.all(ratio < 0.5), ratio
    np.testing.assert_allclose(np.asarray(M.lattice(field[:, :, 1:, 1:], 8)), 1.0, atol=0.06)  # other phase


def test_lattice_needs_fields_larger_than_the_scale():
    with pytest.raises(ValueError, match="larger than 2 x scale"):
        M.lattice(np.zeros((1, 1, 16, 30)), 8)
    with pytest.raises(ValueError, match=r"\[days, T, H, W\]"):
        M.lattice(np.zeros((30, 30)), 8)


def _lattice_by_loops(field, scale):
    at, away = _lattice_parts_by_loops(field, scale)
    with np.errstate(invalid="ignore"):
        return at / away


def test_accumulator_lattice_is_the_mean_of_per_day_lattices_with_the_truths_beside_it():
    y, x = np.mgrid[0:48, 0:56]
    noise = np.random.default_rng(6).normal(size=(5, 3, 48, 56))
    true = 50 + 10 * np.sin(x / 5.0) * np.cos(y / 7.0) + 3 * noise
    pred = true + np.random.default_rng(7).normal(size=true.shape)
    pred[1:3] = planted_lattice(pred[1:3], 8)  # a dotted lattice on two of five days
    pred[4] = 40.0  # a day without roughness: no lattice, skipped
    accumulator = M.MetricAccumulator(scale=8)
    for start, stop in ((0, 2), (2, 5)):
        accumulator.update(pred[start:stop], true[start:stop])
    got = accumulator.result()
    per_day = _lattice_by_loops(pred, 8)
    assert np.isnan(per_day[4]) and np.all(per_day[1:3] < 0.6) and np.all(np.abs(per_day[[0, 3]] - 1) < 0.15)
    np.testing.assert_allclose(got["lattice"], per_day[:4].mean(), rtol=1e-9)
    np.testing.assert_allclose(got["lattice_truth"], _lattice_by_loops(true, 8).mean(), rtol=1e-9)
    phases = _phase_roughness_by_loops(pred[:4], 8).reshape(4, -1)
    np.testing.assert_allclose(got["lattice_spread"], np.mean(phases.std(axis=1) / phases.mean(axis=1)), rtol=1e-6)
    assert got["lattice_spread"] > got["lattice_spread_truth"]
    assert got["lattice"] < got["lattice_truth"] - 0.1  # the planted lattice shows against the truth's
    # the same fields without the lattice score like the truth; the truth's own value is not exactly 1
    clean = M.MetricAccumulator(scale=8)
    clean.update(true + np.random.default_rng(7).normal(size=true.shape), true)
    assert abs(clean.result()["lattice"] - clean.result()["lattice_truth"]) < 0.05
    assert got["lattice_truth"] != 1.0


@pytest.mark.parametrize("scale", [1, 0, 2.5, "8"])
def test_accumulator_rejects_a_bad_scale(scale):
    with pytest.raises(ValueError, match="integer >= 2"):
        M.MetricAccumulator(scale=scale)
