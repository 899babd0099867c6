"""Tests for hsr_keras.scoring.interpolation: aligned and naive upsampling baselines."""

import numpy as np
import pytest
import tensorflow as tf

from hsr_keras.scoring import interpolation as I

# the paper's grid: 64 x 64 points at 0.25 deg, latitude descending as in ERA5 files
HR_LAT = 52.75 - 0.25 * np.arange(64)
HR_LON = 105.0 + 0.25 * np.arange(64)
LR_LAT, LR_LON = HR_LAT[::8], HR_LON[::8]


def linear(lat, lon):
    return 3.0 * lat[:, None] - 2.0 * lon[None, :] + 400.0


def quadratic(lat, lon):
    return 0.5 * (lat[:, None] - 45.0) ** 2 - 0.3 * (lat[:, None] - 45) * (lon[None, :] - 112) + 0.2 * lon[None, :] ** 2


def keys_cubic(x, a):
    """Keys (1981) cubic convolution kernel, written out independently."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


@pytest.mark.parametrize("field", [linear, quadratic])
def test_aligned_bilinear_and_bicubic_reproduce_polynomials(field):
    lr = field(LR_LAT, LR_LON)
    hr = field(HR_LAT, HR_LON)
    if field is linear:  # bilinear: linear fields, everywhere inside the LR hull (cells 0..56)
        out = I.upsample_aligned(lr, LR_LAT, LR_LON, HR_LAT, HR_LON, "bilinear")
        np.testing.assert_allclose(out[:57, :57], hr[:57, :57], rtol=0, atol=1e-10)
    # bicubic (Keys, a = -0.5) reproduces up to quadratics where its 4 taps are inside the
    # grid: LR positions 1..6, HR cells 8..48
    out = I.upsample_aligned(lr, LR_LAT, LR_LON, HR_LAT, HR_LON, "bicubic")
    np.testing.assert_allclose(out[8:49, 8:49], hr[8:49, 8:49], rtol=0, atol=1e-10)
    assert out.shape == (64, 64) and out.dtype == np.float64


def test_aligned_lanczos_on_a_linear_field():
    """Lanczos-3 is exact at LR points and midpoints, close (not exact) in between.

    Its 6 weights (renormalised) have a non-zero first moment at fractional offsets other than
    0 and 1/2, so a ramp is off by up to ~0.02 LR spacings times the slope.
    """
    lr = linear(LR_LAT, LR_LON)
    hr = linear(HR_LAT, HR_LON)
    out = I.upsample_aligned(lr, LR_LAT, LR_LON, HR_LAT, HR_LON, "lanczos")
    inner = slice(16, 41)  # LR positions 2..5: all 6 taps inside
    err = np.abs(out - hr)[inner, inner]
    exact = np.arange(16, 41) % 4 == 0  # offsets 0 and 1/2
    np.testing.assert_allclose(err[np.ix_(exact, exact)], 0.0, atol=1e-10)
    # slopes per LR spacing: 3 * 2 deg = 6 (lat), 2 * 2 deg = 4 (lon)
    assert err.max() < 0.02 * (6.0 + 4.0)
    assert err.max() > 1e-3  # not exact: documented


@pytest.mark.parametrize("method", I.METHODS)
def test_naive_resize_misplaces_a_linear_field(method):
    lr = linear(LR_LAT, LR_LON)
    hr = linear(HR_LAT, HR_LON)
    out = I.upsample_resize(lr, 8, method)
    assert np.abs(out - hr)[16:41, 16:41].min() > 1.0
    # interior: exactly the field shifted by (8 - 1) / 2 = 3.5 HR cells towards the origin
    if method != "lanczos":
        shifted = linear(HR_LAT + 3.5 * 0.25, HR_LON - 3.5 * 0.25)
        np.testing.assert_allclose(out[16:41, 16:41], shifted[16:41, 16:41], atol=1e-10)


@pytest.mark.parametrize("method", I.METHODS)
def test_aligned_reproduces_lr_values_at_lr_points(method):
    lr = np.random.default_rng(1).uniform(0, 140, (3, 8, 8, 8))
    out = I.upsample_aligned(lr, LR_LAT, LR_LON, HR_LAT, HR_LON, method)
    assert out.shape == (3, 8, 64, 64)
    np.testing.assert_allclose(out[..., ::8, ::8], lr, rtol=1e-14, atol=0)
    np.testing.assert_allclose(I.upsample_strided(lr, 8, method), out, rtol=1e-12, atol=1e-12)
    # float32 in, float32 out
    out32 = I.upsample_aligned(lr.astype(np.float32), LR_LAT, LR_LON, HR_LAT, HR_LON, method)
    assert out32.dtype == np.float32
    np.testing.assert_array_equal(out32[..., ::8, ::8], lr.astype(np.float32))


def test_aligned_bilinear_extrapolates_by_edge_replication():
    lr = np.random.default_rng(2).uniform(0, 100, (8, 8))
    out = I.upsample_aligned(lr, LR_LAT, LR_LON, HR_LAT, HR_LON, "bilinear")
    # HR cells 57..63 lie beyond the last LR point (cell 56): held at the edge value
    np.testing.assert_allclose(out[56:, ::8], np.broadcast_to(lr[-1], (8, 8)), atol=1e-12)
    np.testing.assert_allclose(out[::8, 56:], np.broadcast_to(lr[:, -1:], (8, 8)), atol=1e-12)


@pytest.mark.parametrize("method", I.METHODS)
def test_matrix_rows_sum_to_one(method):
    rng = np.random.default_rng(3)
    cases = [
        (LR_LAT, HR_LAT),
        (LR_LON, HR_LON),
        (np.arange(10) * 0.7 - 3, rng.uniform(-6, 8, 50)),  # includes points outside the grid
        (np.arange(5)[::-1] * 2.0, np.linspace(-1, 9, 41)),
    ]
    for src, dst in cases:
        matrix = I.interpolation_matrix(src, dst, method)
        assert matrix.shape == (len(dst), len(src))
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
    h = 9
    for scale in (2, 8):
        out = I.upsample_resize(np.ones((h, 5)), scale, method)
        np.testing.assert_allclose(out, 1.0, atol=1e-12)


def test_naive_matches_tf_image_resize():
    lr = np.random.default_rng(4).uniform(0, 140, (2, 8, 6)).astype(np.float32)
    images = lr[..., None]
    for method, tf_method in (("bilinear", "bilinear"), ("bicubic", "bicubic"), ("lanczos", "lanczos3")):
        ref = tf.image.resize(images, (64, 48), method=tf_method, antialias=False)
        ours = I.upsample_resize(lr, 8, method)
        assert ours.shape == (2, 64, 48)
        np.testing.assert_allclose(ours, ref.numpy()[..., 0], atol=1e-4, err_msg=method)
    # TF's bicubic reads its weights from a table of 1024 offsets per cell: exact for scales
    # whose offsets are multiples of 1/1024 (2, 4, 8), off by up to ~0.05 %RH for scale 3
    for scale in (2, 4):
        ref = tf.image.resize(images, (8 * scale, 6 * scale), method="bicubic")
        np.testing.assert_allclose(I.upsample_resize(lr, scale, "bicubic"), ref.numpy()[..., 0], atol=1e-4)


def test_tf_bicubic_is_keys_with_a_minus_half():
    impulse = np.zeros((1, 9, 9, 1), np.float32)
    impulse[0, 4, 4, 0] = 1.0
    response = tf.image.resize(impulse, (72, 72), method="bicubic").numpy()[0, 36, :, 0]
    # HR column i reads LR position (i + 0.5) / 8 - 0.5; the impulse sits at LR index 4
    # (row 36 reads LR row 4.0625 -> row weight keys(0.0625))
    positions = (np.arange(72) + 0.5) / 8 - 0.5
    for a, expect_equal in ((-0.5, True), (-0.75, False)):
        kernel = np.array([keys_cubic(p - 4, a) for p in positions]) * keys_cubic(0.0625, a)
        assert np.allclose(response, kernel, atol=1e-6) is expect_equal
    np.testing.assert_allclose(I.upsample_resize(impulse[0, ..., 0], 8, "bicubic")[36], response, atol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="method"):
        I.interpolation_matrix(LR_LAT, HR_LAT, "nearest")
    with pytest.raises(ValueError, match="method"):
        I.upsample_resize(np.zeros((4, 4)), 2, "cubic")
    with pytest.raises(ValueError, match="method"):
        I.upsample_aligned(np.zeros((8, 8)), LR_LAT, LR_LON, HR_LAT, HR_LON, "area")
    with pytest.raises(ValueError, match="regular"):
        I.interpolation_matrix([0.0, 1.0, 3.0], [0.5], "bilinear")
    with pytest.raises(ValueError, match="lr.shape"):
        I.upsample_aligned(np.zeros((8, 7)), LR_LAT, LR_LON, HR_LAT, HR_LON, "bilinear")
    with pytest.raises(ValueError, match="scale"):
        I.upsample_resize(np.zeros((4, 4)), 2.5, "bilinear")
