"""Relative humidity from temperature and specific humidity, as ERA5 (the IFS) defines it.

ERA5's own `r` on pressure levels is a diagnostic of the model's `t` and `q`, computed with a
mixed-phase Tetens formula (IFS documentation, Part IV, "Physical processes"; the constants
are those of ECMWF's Metview `saturation_vapour_pressure`). Users who download `t` and `q`
instead of `r` get the same field from this module, to within the rounding of the files.

    e_sat(T) = a1 exp(a3 (T - T0) / (T - a4))         over water or over ice
    alpha    = ((T - Tice) / (T0 - Tice))^2            between Tice and T0; 1 above, 0 below
    e_sat    = alpha e_sat,water + (1 - alpha) e_sat,ice
    e        = p q / (eps + (1 - eps) q)               the vapour pressure in moist air
    r        = 100 e / e_sat                           in %; above 100 % in cold air, as in ERA5

Near the surface ERA5 gives no relative humidity, but 2 m temperature `2t` and 2 m dewpoint
`2d` (single-level fields). `relative_humidity_2m` derives the 2 m relative humidity `r2m`
from them with the same saturation formula:

    r2m      = 100 e_sat(Td) / e_sat(T)                in %, e_sat mixed over water and ice as above

Phase convention: mixed, as for `r`, so that a 2 m target and a pressure-level target are
relative humidity in the same sense (over ice below -23 C, over water above 0 C) and the
model sees one definition of humidity. ECMWF's Metview function `relative_humidity_from_dewpoint`
takes saturation over water alone (`phase="water"` here gives its numbers); the two agree at
and above 0 C (the usual 2 m case) and differ in frost: at T = -10 C, Td = -20 C, mixed gives
38.6 % and water 43.8 %. Reference: IFS documentation CY45R1, Part IV "Physical processes",
p. 116 (the mixed-phase saturation), as Metview's `saturation_vapour_pressure` (phase "mixed")
implements it.

ERA5's dewpoint is sometimes a little above its temperature (supersaturation and rounding):
r2m is then above 100 % and kept, as `r` above 100 % is; an input whose Td lies far above T
(e.g. the two swapped) fails the plausibility check below like any other wrong field.

Whatever its source, a field that cannot be relative humidity is caught by `implausibility`
(too many values outside -1..130 %, or a constant field) before it is used.

Example:

    r = relative_humidity(ds["t"], ds["q"], 300 * 100.0)   # 300 hPa in Pa
    r2m = relative_humidity_2m(ds["t2m"], ds["d2m"])         # K and K
"""

import numpy as np

A1_PA = 611.21
"""Saturation vapour pressure at the triple point (Pa), the same over water and ice."""

T0_K = 273.16
"""Triple point of water: at and above it saturation is over water alone."""

TICE_K = 250.16
"""-23 C: at and below it saturation is over ice alone; between TICE_K and T0_K it is mixed."""

WATER_A3, WATER_A4_K = 17.502, 32.19
"""Tetens' constants over liquid water (Buck 1981, as in the IFS)."""

ICE_A3, ICE_A4_K = 22.587, -0.7
"""Tetens' constants over ice (Alduchov and Eskridge 1996, as in the IFS)."""

EPSILON = 0.621981
"""Rd / Rv, the ratio of the gas constants of dry air and water vapour (287.0597 / 461.5250)."""


def _tetens(t, a3, a4):
    return A1_PA * np.exp(a3 * (t - T0_K) / (t - a4))


def water_fraction(t):
    """Weight of saturation over water in the mixed phase: 0 at and below -23 C, 1 at and
    above 0 C, and ((T - Tice) / (T0 - Tice))^2 between, so e_sat is continuous at both ends."""
    t = np.asarray(t, dtype=np.float64)
    return np.clip((t - TICE_K) / (T0_K - TICE_K), 0.0, 1.0) ** 2


PHASES = ("mixed", "water", "ice")
"""Saturation over: water and ice mixed by `water_fraction` (the IFS's, the default), water alone, ice alone."""


def saturation_vapour_pressure(t, phase="mixed"):
    """Saturation vapour pressure (Pa) at temperature `t` (K), mixed over water and ice as in the IFS.

    `phase` "water" or "ice" takes one curve at every temperature (Metview's `phase` argument).
    """
    t = np.asarray(t, dtype=np.float64)
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}. Received: phase={phase!r}")
    if phase != "mixed":
        return _tetens(t, *((WATER_A3, WATER_A4_K) if phase == "water" else (ICE_A3, ICE_A4_K)))
    alpha = water_fraction(t)
    return alpha * _tetens(t, WATER_A3, WATER_A4_K) + (1.0 - alpha) * _tetens(t, ICE_A3, ICE_A4_K)


def vapour_pressure(q, pressure_pa):
    """Partial pressure of water vapour (Pa) from specific humidity `q` (kg/kg) at pressure `pressure_pa`."""
    q = np.asarray(q, dtype=np.float64)
    return np.asarray(pressure_pa, dtype=np.float64) * q / (EPSILON + (1.0 - EPSILON) * q)


def relative_humidity(t, q, pressure_pa):
    """Relative humidity in % (float64), ERA5's `r`, from `t` (K), `q` (kg/kg) and pressure (Pa).

    The three broadcast against each other like numpy arrays: pass a pressure per level shaped
    to line up with the level axis, e.g. `levels_hpa[:, None, None] * 100.0` for (level, lat, lon).
    Values are not clipped: ERA5 keeps supersaturation with respect to ice (up to about 140 %).
    """
    return 100.0 * vapour_pressure(q, pressure_pa) / saturation_vapour_pressure(t)


def relative_humidity_2m(t, td, phase="mixed"):
    """2 m relative humidity in % (float64), `r2m`, from 2 m temperature `t` and dewpoint `td` (both K).

    100 e_sat(td) / e_sat(t) with the mixed-phase `saturation_vapour_pressure` (see the module
    docstring for why; `phase="water"` gives Metview's `relative_humidity_from_dewpoint` x 100).
    Not clipped: a dewpoint above the temperature gives more than 100 %, as ERA5 has. NaN in
    either gives NaN there.
    """
    return 100.0 * saturation_vapour_pressure(td, phase) / saturation_vapour_pressure(t, phase)


DEWPOINT_BRACKET_K = (150.0, 350.0)
"""The dewpoint search interval (K): wider than any dewpoint on Earth, narrow enough for `_tetens` (above a4)."""

DEWPOINT_BISECTIONS = 40
"""Halvings of DEWPOINT_BRACKET_K: 200 K / 2^40 is 2e-10 K, far below float32's 2e-5 K at 250 K."""


def dewpoint(t, r2m, phase="mixed"):
    """The dewpoint (K, float64) that gives 2 m relative humidity `r2m` (%, > 0) at temperature `t` (K).

    The inverse of `relative_humidity_2m`: it solves e_sat(td) = r2m / 100 * e_sat(t) with the same
    `saturation_vapour_pressure`, by vectorised bisection (e_sat rises with temperature, and the mixed
    curve has a kink at T0 that bisection, unlike Newton, does not mind). r2m above 100 % gives td above t.
    """
    target = np.asarray(r2m, dtype=np.float64) / 100.0 * saturation_vapour_pressure(t, phase)
    low = np.full(target.shape, DEWPOINT_BRACKET_K[0])
    high = np.full(target.shape, DEWPOINT_BRACKET_K[1])
    for _ in range(DEWPOINT_BISECTIONS):
        middle = 0.5 * (low + high)
        below = saturation_vapour_pressure(middle, phase) < target
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    return 0.5 * (low + high)


PLAUSIBLE_PERCENT = (-1.0, 130.0)
"""Relative humidity (%) outside this band is a sign of wrong units or a broken input, not of weather.

A sanity band, never a clip: ERA5's own r spans about -0.5 to 145 % (over ice in cold air)."""

IMPLAUSIBLE_SHARE = 0.1
"""A field is implausible when more than this share of its values lies outside PLAUSIBLE_PERCENT.

Wrong units put nearly every value outside; real ERA5 days put a few thousandths above 130 %,
and synthetic ones (`tfrecords_builder.synthetic`, calibrated on ERA5) up to 3 % of a region."""


def implausibility(values):
    """Why `values` (%, NaN ignored) cannot be a field of relative humidity, or None when they can.

    Too many values outside `PLAUSIBLE_PERCENT` (levels in Pa taken as hPa make relative
    humidity 100x too large), or one value everywhere.
    """
    values = np.asarray(values)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    low, high = PLAUSIBLE_PERCENT
    outside = np.count_nonzero((finite < low) | (finite > high)) / finite.size
    if outside > IMPLAUSIBLE_SHARE:
        return f"{outside:.1%} of its values lie outside {low:g}..{high:g} %RH (mean {float(finite.mean()):.4g} %)"
    if finite.size > 1 and finite.min() == finite.max():
        return f"it is constant ({float(finite.min()):g} % everywhere)"
    return None
