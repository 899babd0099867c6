"""The synthetic fields: determinism and realism against ERA5 numbers.

The realism targets are the ERA5 r (300 hPa) numbers in DESIGN.md; every statistic is
computed here independently of the generator, with plain numpy.
"""

import numpy as np
import pytest

from tfrecords_builder.synthetic import synthetic_dataset

SMALL = {"lat_bounds": (40.0, 45.0), "lon_bounds": (110.0, 115.0)}  # 21 x 21


@pytest.fixture(scope="module")
def ten_days():
    """Ten hourly days on the default 81 x 81 box at 300 hPa: the sample for the realism tests."""
    return synthetic_dataset("2019-03-01", "2019-03-10", seed=0)


def tiles(r, step=3):
    """64 x 64 tiles at four offsets (the paper region among them) of every `step`-th frame."""
    return np.stack([r[t, i : i + 64, j : j + 64] for t in range(0, len(r), step) for i in (0, 9, 17) for j in (0, 8)])


def radial_spectrum(tile):
    """Radially averaged power spectrum of a square tile: mean |FFT|^2 over rings of integer
    wavenumber. A Hann window first: without one, the tile's non-periodic edges leak as k^-3
    and hide any steeper fall-off."""
    n = tile.shape[0]
    window = np.outer(np.hanning(n), np.hanning(n))
    power = np.abs(np.fft.fft2((tile - tile.mean()) * window)) ** 2
    k = np.fft.fftfreq(n) * n
    ring = np.rint(np.hypot(k[:, None], k[None, :])).astype(int)
    return np.bincount(ring.ravel(), power.ravel()) / np.bincount(ring.ravel())


def slope(spectrum, k_min, k_max):
    k = np.arange(k_min, k_max + 1)
    return np.polyfit(np.log(k), np.log(spectrum[k]), 1)[0]


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_values_other_seed_other_values():
    a = synthetic_dataset("2019-01-01", "2019-01-01", interval_hours=3, seed=7).r.values
    b = synthetic_dataset("2019-01-01", "2019-01-01", interval_hours=3, seed=7).r.values
    c = synthetic_dataset("2019-01-01", "2019-01-01", interval_hours=3, seed=8).r.values
    np.testing.assert_array_equal(a, b)
    assert abs(np.corrcoef(a.ravel(), c.ravel())[0, 1]) < 0.5


def test_levels_differ_but_each_level_is_deterministic():
    both = synthetic_dataset("2019-01-01", "2019-01-01", levels=(250, 300), interval_hours=6).r
    alone = synthetic_dataset("2019-01-01", "2019-01-01", levels=(300,), interval_hours=6).r
    np.testing.assert_array_equal(both.sel(level=300).values, alone.sel(level=300).values)
    assert abs(np.corrcoef(both.sel(level=250).values.ravel(), both.sel(level=300).values.ravel())[0, 1]) < 0.5


def test_values_depend_only_on_time_not_on_the_request():
    hourly = synthetic_dataset("2019-01-01", "2019-01-03", **SMALL).r
    part = synthetic_dataset("2019-01-02", "2019-01-02", **SMALL).r
    three_hourly = synthetic_dataset("2019-01-01", "2019-01-03", interval_hours=3, **SMALL).r
    np.testing.assert_array_equal(part.values, hourly.sel(time=part.time).values)
    np.testing.assert_array_equal(three_hourly.values, hourly.values[::3])
    # An overlapping box sees the same weather.
    big = synthetic_dataset("2019-01-02", "2019-01-02", interval_hours=6).r
    np.testing.assert_array_equal(
        big.sel(latitude=slice(45.0, 40.0), longitude=slice(110.0, 115.0)).values, part.values[::6]
    )


# ----------------------------------------------------------------------------- realism


def test_value_statistics_match_era5_at_300hpa(ten_days):
    r = ten_days.r.values[:, 0]
    tile_std = tiles(r).std(axis=(1, 2)).mean()
    above = (r > 100).mean()
    assert 15.0 < tile_std < 35.0, tile_std  # ERA5: about 25
    assert 0.05 < above < 0.20, above  # ERA5: 12.7 %, RH over ice, never clipped at 100
    assert r.min() >= 0.0 and 110.0 < r.max() < 150.0, (r.min(), r.max())  # ERA5: up to about 145
    assert 40.0 < r.mean() < 70.0, r.mean()


def test_power_spectrum_slopes_match_era5(ten_days):
    spectrum = np.mean([radial_spectrum(t) for t in tiles(ten_days.r.values[:, 0], step=6)], axis=0)
    large, small = slope(spectrum, 2, 8), slope(spectrum, 8, 16)
    assert -4.0 < large < -3.0, large  # ERA5: -3.5
    assert -6.4 < small < -5.0, small  # ERA5: about -5.7
    assert small < large - 1.0


def test_hourly_change_and_synoptic_evolution(ten_days):
    r = ten_days.r.values[:, 0]
    change = np.abs(np.diff(r, axis=0)).mean()
    assert 1.0 < change < 5.0, change  # ERA5 100-350 hPa: 2.8 %RH

    def corr(lag):
        return np.corrcoef(r[:-lag].ravel(), r[lag:].ravel())[0, 1]

    assert corr(1) > 0.95
    assert corr(48) < 0.3  # days differ


def test_weather_evolves_beyond_translation(ten_days):
    """Pure translation would make each hourly change exactly -u . grad(r) (through any map
    r = f(latent)); a regression on the gradients explains most, not all, of the change."""
    r = ten_days.r.values[:, 0].astype(np.float64)
    explained = []
    for t in range(1, len(r) - 1, 6):
        change = ((r[t + 1] - r[t - 1]) / 2)[2:-2, 2:-2].ravel()
        gy, gx = (g[2:-2, 2:-2].ravel() for g in np.gradient(r[t]))
        design = np.stack([gx, gy, np.ones_like(gx)], axis=1)
        fit = design @ np.linalg.lstsq(design, change, rcond=None)[0]
        explained.append(1 - ((change - fit) ** 2).sum() / ((change - change.mean()) ** 2).sum())
    assert 0.4 < np.mean(explained) < 0.9, explained  # a frozen, translating field gives about 0.97


def test_patterns_are_advected_downstream(ten_days):
    """The frame 6 h later matches the earlier one best when shifted (mostly eastward), not in place."""
    r = ten_days.r.values[:, 0]
    m = 12  # largest shift tried, in cells
    gains, shifts = [], []
    for t in range(0, len(r) - 6, 24):
        before, after = r[t], r[t + 6]
        best, best_shift = -1.0, None
        for dy in range(-m, m + 1):
            for dx in range(-m, m + 1):
                a = before[m : 81 - m, m : 81 - m]
                b = after[m + dy : 81 - m + dy, m + dx : 81 - m + dx]  # rows run south, columns east
                c = np.corrcoef(a.ravel(), b.ravel())[0, 1]
                if c > best:
                    best, best_shift = c, (dy, dx)
        in_place = np.corrcoef(before.ravel(), after.ravel())[0, 1]
        gains.append(best - in_place)
        shifts.append(best_shift)
    assert np.mean(gains) > 0.02, gains
    assert np.mean([dx for _, dx in shifts]) > 1.0, shifts  # westerly drift: patterns move east
    assert sum(s != (0, 0) for s in shifts) >= 0.8 * len(shifts), shifts


def test_diurnal_cycle_peaks_in_the_local_early_morning(ten_days):
    mean = ten_days.r.values[:, 0].mean(axis=(1, 2))
    smooth = np.convolve(mean, np.ones(24) / 24, mode="same")
    anomaly = (mean - smooth)[12:-12]
    hours = ten_days.time.dt.hour.values[12:-12]
    cycle = np.array([anomaly[hours == h].mean() for h in range(24)])
    amplitude = (cycle.max() - cycle.min()) / 2
    assert 1.0 < amplitude < 6.0, cycle  # a few %RH; without a cycle this noise is about 0.4
    # 06 local solar time at the box centre (113E) is about 22:30 UTC.
    assert min(abs(cycle.argmax() - 22.5), 24 - abs(cycle.argmax() - 22.5)) <= 3, cycle.argmax()
