"""Tests for hsr_keras.scoring.spectra: the radial power spectrum and the band power ratios of the metric card."""

import numpy as np
import pytest

from hsr_keras.scoring import spectra as S


def test_spectrum_sine_lands_in_its_bin():
    n = 64
    y, x = np.mgrid[0:n, 0:n]
    for k in (1, 3, 8, 20, 32):
        field = 40.0 + 10.0 * np.cos(2 * np.pi * k * x / n + 0.3)
        wn, power = S.radial_power_spectrum(field)
        np.testing.assert_array_equal(wn, np.arange(1, 33))
        assert np.argmax(power) == k - 1
        assert power[k - 1] > 1e6 * np.delete(power, k - 1).max()
        # ring sums of a pure mode add up to its variance (10^2 / 2, or at the Nyquist
        # wavenumber, where the wave is (-1)^x 10 cos(0.3), 10^2 cos(0.3)^2)
        _, ring = S.radial_power_spectrum(field, reduce="sum")
        variance = 50.0 if k < 32 else 100.0 * np.cos(0.3) ** 2
        np.testing.assert_allclose(ring.sum(), variance, rtol=1e-10)
    # diagonal wave and a non-square frame: k = N sqrt((kx/W)^2 + (ky/H)^2)
    field = np.sin(2 * np.pi * (3 * x / n + 4 * y / n))
    assert np.argmax(S.radial_power_spectrum(field)[1]) == 5 - 1
    yy, xx = np.mgrid[0:32, 0:64]
    field = np.sin(2 * np.pi * 10 * xx / 64)  # 10 cycles over 64 -> 5 per 32 grid lengths
    wn, power = S.radial_power_spectrum(field[None, None])
    assert len(wn) == 16 and np.argmax(power) == 5 - 1


@pytest.mark.parametrize("beta", [3.5, 5.7])
def test_spectrum_power_law_slope(beta):
    n = 128
    rng = np.random.default_rng(11)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n) * n, np.fft.fftfreq(n) * n, indexing="ij"))
    amplitude = np.where(k > 0, k, 1.0) ** (-beta / 2)
    amplitude[0, 0] = 0.0
    spectrum = np.fft.fft2(rng.normal(size=(4, n, n)))
    fields = np.fft.ifft2(spectrum / np.abs(spectrum) * amplitude).real * 1e3 + 50.0
    wn, power = S.radial_power_spectrum(fields)
    sel = (wn >= 2) & (wn <= 32)
    slope = np.polyfit(np.log(wn[sel]), np.log(power[sel]), 1)[0]
    assert abs(slope + beta) < 0.1, slope
    _, ring = S.radial_power_spectrum(fields, reduce="sum")
    slope_sum = np.polyfit(np.log(wn[sel]), np.log(ring[sel]), 1)[0]
    assert abs(slope_sum - (1 - beta)) < 0.1, slope_sum


def test_spectrum_removes_frame_mean():
    field = np.random.default_rng(12).normal(size=(2, 16, 16))
    _, p1 = S.radial_power_spectrum(field)
    _, p2 = S.radial_power_spectrum(field + np.array([100.0, -7.0])[:, None, None])
    np.testing.assert_allclose(p1, p2, rtol=1e-9)


# ------------------------------------------------------------------------- power bands


@pytest.mark.parametrize(
    "n, scale, near, mid, far",
    [
        (64, 8, (4, 10), (11, 20), (21, 32)),  # the demo (the demo's bands, as wavenumbers)
        (32, 4, (4, 10), (11, 16), (21, 16)),  # mid band capped at N / 2, far band empty
        (128, 8, (8, 20), (21, 40), (41, 64)),  # twice the domain: twice the wavenumbers
        (60, 8, (4, 9), (10, 18), (19, 30)),  # k_n = 3.75: [3.75, 9.375], (9.375, 18.75], (18.75, 30]
        (16, 2, (4, 8), (11, 8), (21, 8)),  # 2.5 k_n = 10 is above N / 2 = 8: the mid and far bands are empty
    ],
)
def test_power_bands_scale_with_the_domain(n, scale, near, mid, far):
    assert S.power_bands(n, scale) == {"power_near": near, "power_mid": mid, "power_far": far}


@pytest.mark.parametrize("n, scale", [(1, 8), (64, 0)])
def test_power_bands_reject_bad_sizes(n, scale):
    with pytest.raises(ValueError, match="at least 2 points and a scale >= 1"):
        S.power_bands(n, scale)


def test_band_ratios_of_a_field_with_known_power_in_each_band():
    """A truth of one cosine in each band, a method with given amplitudes: the ratio is the squared amplitude ratio."""
    n = 64
    _, x = np.mgrid[0:n, 0:n]
    waves = {k: np.cos(2 * np.pi * k * x / n) for k in (2, 7, 15, 25)}  # below the bands, near, mid, far
    truth = 50 + 10 * sum(waves.values())
    pred = 50 + 10 * waves[2] + 5 * waves[7] + 30 * waves[15] + 1 * waves[25]  # 1/2, 3 and 1/10 the amplitude
    k, truth_power = S.radial_power_spectrum(truth)
    _, pred_power = S.radial_power_spectrum(pred)
    ratios = S.band_power_ratios(k, pred_power, truth_power, S.power_bands(n, 8))
    assert ratios == pytest.approx({"power_near": 0.25, "power_mid": 9.0, "power_far": 0.01}, rel=1e-9)
    # pred = 2 truth (anomalies): 4 in every band, whatever the field
    rng = np.random.default_rng(5)
    field = rng.normal(size=(3, n, n))
    _, p1 = S.radial_power_spectrum(field)
    _, p2 = S.radial_power_spectrum(2 * field + 7)
    assert S.band_power_ratios(k, p2, p1, S.power_bands(n, 8)) == pytest.approx(
        {"power_near": 4, "power_mid": 4, "power_far": 4}
    )


def test_band_ratios_of_empty_bands_and_bad_shapes():
    k = np.arange(1, 9)
    ratios = S.band_power_ratios(k, np.ones(8), np.zeros(8) + 2, S.power_bands(16, 2))
    assert ratios["power_near"] == 0.5 and np.isnan(ratios["power_mid"]) and np.isnan(ratios["power_far"])
    assert S.band_power_ratios(k, np.ones(8), np.zeros(8), {"b": (1, 8)}) == {"b": np.inf}
    with pytest.raises(ValueError, match="same shape"):
        S.band_power_ratios(k, np.ones(8), np.ones(7), {"b": (1, 8)})
