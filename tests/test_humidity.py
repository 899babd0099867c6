"""Relative humidity from t and q (ERA5's own `r` on the real sample, the branches of the formula) and from 2 m T and Td."""

import math

import numpy as np
import pytest
import xarray as xr

from tfrecords_builder.contract.era5.humidity import (
    T0_K,
    TICE_K,
    implausibility,
    relative_humidity,
    relative_humidity_2m,
    saturation_vapour_pressure,
    vapour_pressure,
    water_fraction,
)


def test_matches_era5_r_on_the_real_sample(real_era5):
    """Measured on this file: MAE 0.256 %RH, median 0.04 %RH, correlation 0.9999 (all points
    below -40 C, so this checks the ice branch; the water branch alone gives an MAE of 14.8)."""
    with xr.open_dataset(real_era5) as ds:
        pressure = ds["level"].values.astype(np.float64)[None, :, None, None] * 100.0
        derived = relative_humidity(ds["t"].values, ds["q"].values, pressure)
        error = np.abs(derived - ds["r"].values)
    assert derived.dtype == np.float64
    assert error.mean() < 0.3
    assert np.median(error) < 0.1


def _tetens(t, a3, a4):
    return 611.21 * math.exp(a3 * (t - 273.16) / (t - a4))


@pytest.mark.parametrize(
    "t, expected",
    [
        (293.15, _tetens(293.15, 17.502, 32.19)),  # 20 C: water alone
        (T0_K, 611.21),  # triple point: both formulas give a1
        (233.15, _tetens(233.15, 22.587, -0.7)),  # -40 C: ice alone
        (TICE_K, _tetens(TICE_K, 22.587, -0.7)),  # -23 C: still ice alone
    ],
)
def test_pure_phases_by_hand(t, expected):
    assert saturation_vapour_pressure(t) == pytest.approx(expected, rel=1e-12)


def test_mixed_phase_by_hand():
    """-11.5 C is halfway between Tice and T0, so water has weight 0.25."""
    t = (TICE_K + T0_K) / 2
    expected = 0.25 * _tetens(t, 17.502, 32.19) + 0.75 * _tetens(t, 22.587, -0.7)
    assert water_fraction(t) == pytest.approx(0.25)
    assert saturation_vapour_pressure(t) == pytest.approx(expected, rel=1e-12)
    # between the two pure curves (ice is below water in this range)
    assert _tetens(t, 22.587, -0.7) < saturation_vapour_pressure(t) < _tetens(t, 17.502, 32.19)


@pytest.mark.parametrize("edge", [TICE_K, T0_K])
def test_continuous_at_minus_23_and_0_celsius(edge):
    below, at, above = saturation_vapour_pressure([edge - 1e-6, edge, edge + 1e-6])
    assert below == pytest.approx(at, rel=1e-6)
    assert above == pytest.approx(at, rel=1e-6)


def test_vapour_pressure_and_rh_by_hand():
    """q = 0.01 kg/kg at 1000 hPa: e = 1e5 * 0.01 / (0.621981 + 0.378019 * 0.01)."""
    e = 1e5 * 0.01 / (0.621981 + 0.378019 * 0.01)
    assert vapour_pressure(0.01, 1e5) == pytest.approx(e, rel=1e-12)
    assert relative_humidity(293.15, 0.01, 1e5) == pytest.approx(100 * e / _tetens(293.15, 17.502, 32.19), rel=1e-12)


def test_broadcasts_float32_input_to_float64():
    t = np.full((2, 3, 4, 5), 230.0, dtype=np.float32)
    q = np.full((2, 3, 4, 5), 1e-4, dtype=np.float32)
    pressure = np.array([200.0, 250.0, 300.0])[None, :, None, None] * 100.0
    r = relative_humidity(t, q, pressure)
    assert r.shape == (2, 3, 4, 5) and r.dtype == np.float64
    assert r[0, 0, 0, 0] < r[0, 1, 0, 0] < r[0, 2, 0, 0]  # more pressure, more vapour, same t


# 2 m relative humidity from 2 m temperature and dewpoint. The numbers were worked out by hand
# from the Tetens curves (a1 = 611.21 Pa; water a3 17.502, a4 32.19 K; ice a3 22.587, a4 -0.7 K)
# and agree with textbook tables (e_w(30 C) = 42.4 hPa, e_w(20 C) = 23.4 hPa, e_i(-30 C) = 38 Pa).


@pytest.mark.parametrize("t", [233.15, 255.0, 263.16, 273.16, 303.15])
def test_2m_dewpoint_equal_to_temperature_is_saturation(t):
    assert relative_humidity_2m(t, t) == pytest.approx(100.0, rel=1e-12)


def test_2m_warm_case_over_water():
    """T = 30 C, Td = 20 C: e_w(Td) = 2335.84 Pa, e_w(T) = 4241.07 Pa, so 55.077 %."""
    assert relative_humidity_2m(303.15, 293.15) == pytest.approx(55.0765, abs=1e-3)


def test_2m_cold_case_over_ice():
    """T = -30 C, Td = -35 C: both below -23 C, ice alone: 22.302 / 37.929 Pa, so 58.801 %."""
    assert relative_humidity_2m(243.15, 238.15) == pytest.approx(58.8006, abs=1e-3)


def test_2m_mixed_phase_case():
    """T = 263.16 K (water weight (13/23)^2 = 0.31947), Td = 253.16 K (weight (3/23)^2 = 0.017013).

    e(T) = 0.31947 x 286.483 + 0.68053 x 259.672 = 268.237 Pa; e(Td) = 0.017013 x 125.378 +
    0.982987 x 103.126 = 103.505 Pa; 100 x 103.505 / 268.237 = 38.587 %. Over water alone
    (Metview's convention) the same pair gives 100 x 125.378 / 286.483 = 43.765 %.
    """
    assert relative_humidity_2m(263.16, 253.16) == pytest.approx(38.587, abs=2e-3)
    assert relative_humidity_2m(263.16, 253.16, phase="water") == pytest.approx(43.765, abs=2e-3)
    with pytest.raises(ValueError, match="phase must be one of"):
        relative_humidity_2m(263.16, 253.16, phase="steam")


def test_2m_dewpoint_above_temperature_is_kept_above_100():
    """ERA5's Td can exceed T a little: 0.1 K at 20 C gives 100.62 %, not clipped; NaN stays NaN."""
    r = relative_humidity_2m(np.array([293.15, np.nan, 293.15]), np.array([293.25, 290.0, np.nan]))
    assert r[0] == pytest.approx(100.621, abs=1e-3)
    assert np.isnan(r[1:]).all()


def test_2m_swapped_inputs_are_caught_as_implausible():
    """T and Td swapped on a humid-to-dry field: most values far above 130 % fail the plausibility check."""
    t = np.linspace(280.0, 300.0, 100)
    td = t - 15.0
    assert implausibility(relative_humidity_2m(t, td)) is None
    assert "outside" in implausibility(relative_humidity_2m(td, t))
