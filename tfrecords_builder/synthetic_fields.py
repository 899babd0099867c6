"""How the synthetic ERA5-like relative humidity is made: the field generator behind `synthetic`.

The fields are calibrated against ERA5 `r` at 300 hPa (numbers in DESIGN.md, "Data contract"):
64x64 tiles have a spatial std of about 25 %RH, about 12 % of points above 100 % (ERA5 takes
RH over ice in cold air, so values reach about 140 % and are never clipped at 100), a
radially averaged power spectrum falling as k^-3.5 at tile wavenumbers 2-8 and about k^-5.7
at 8-16 (measured with a Hann window; without one the tile edges leak and flatten the
spectrum to about k^-3), and a mean absolute hourly change of about 2.8 %RH.

How a field is made, and why:

1. A latent Gaussian random field lives on a periodic 60 x 60 degree domain anchored at 0N 0E
   (larger only for boxes over 28 degrees), so overlapping boxes see the same weather. Its
   power spectrum is a broken power law in cycles per degree, giving a 0.25 degree tile the
   measured slopes.
2. Weather evolves by blending independent "key" fields, one per day at 00 UTC, with cubic
   B-spline weights in time normalised to keep the variance exactly 1. An AR(1) update at
   hourly steps would not do: its changes scale with the square root of the step, so it
   either changes too much from hour to hour or keeps the same weather for weeks. The blend
   is smooth in time and decorrelates in about a day (correlation 0.44 after 24 h and 0.06
   after 48 h before advection). Each key is seeded by (seed, level, day), so a frame is a
   pure function of its absolute time: any sub-range, any `interval_hours` and any file
   split give the same values, and no state has to be carried from month to month.
3. Advection translates the field by a phase shift in Fourier space, following a slowly
   varying westerly drift in closed form (a mean plus a few long-period oscillations), so a
   frame is strongly correlated with the previous one shifted downstream.
4. A monotone, bounded map (a scaled logistic, 0 to 145 %) turns the latent field into %RH
   with mean about 56 %, a dry tail down to about 0 and a supersaturated tail to about 143 %.
5. A small diurnal cycle (a few %RH, peaking at 06 local solar time, so moving with
   longitude) is added to the latent field before the map, so the bounds still hold.

Every level has these 300 hPa statistics; levels differ in their realisations only.

With `terrain=True` (`synthetic.synthetic_dataset`, `write_synthetic`) the world also has
orography and a land-sea mask, and humidity depends on them (docs/inputs.md):

6. Terrain: a smooth random field s on the same periodic domain (seeded by the seed alone,
   features about `TERRAIN_WAVELENGTH_DEG` across); land where s > 0, orography
   h = `TERRAIN_HEIGHT_M` * s there and 0 at sea (about half the area is land).
7. Upslope moistening: air carried up a slope by the drift wind V (the wind of step 3) cools
   and moistens, air coming down the lee side warms and dries. The latent field gains
   `UPSLOPE_GAIN` * w / w0, w = V . grad(h) (the forced vertical motion, m/h; w0 its typical
   size), and is rescaled by 1 / sqrt(1 + gain^2), so the %RH statistics stay close to those
   without terrain.
8. Predictors consistent with it: u, v are V in m/s; t is a standard atmosphere at the level
   with a meridional gradient and a diurnal cycle; q is the specific humidity that gives
   exactly r at that t and p (the inverse of ERA5's formula, `humidity`); z is the standard
   atmosphere's geopotential with the hypsometric effect of t's anomaly.

With `surface=True` as well (`synthetic.write_synthetic`) the world is its 2 m layer instead:

9. 2 m relative humidity r2m: the same latent construction (its own key fields, a stronger
   diurnal cycle peaking at 06 local solar time) with the same upslope term, mapped by a
   logistic bounded at `R2M_MAX` to near-surface statistics (mean about 70 %, std about 18 %,
   about 1 % of values a little above 100 %).
10. 2t: a sea-level temperature (`SURFACE_MEAN_K` at 45N, the meridional gradient, a seasonal
   cycle coldest in mid-January and a diurnal cycle peaking at 15 local solar time) minus
   `LAPSE_RATE_K_PER_M` times the orography; 2d: the dewpoint that gives exactly r2m at that
   2t (`humidity.dewpoint`, the inverse of the builder's own `relative_humidity_2m`); sp: the
   hypsometric pressure at the orography's height under a column of mean temperature
   2t + lapse * h / 2 above sea-level pressure `SEA_LEVEL_HPA`.
"""

import datetime

import numpy as np

from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.inputs import STANDARD_GRAVITY

EPOCH = np.datetime64("1900-01-01T00", "h")
"""Time origin of the generator (and of the classic CDS time axis)."""

DOMAIN_DEG = 60.0
"""Side of the periodic latent domain in degrees (360 is a multiple, so 350E and 10W coincide);
boxes wider than about half of it get a larger one."""

BREAK_WAVELENGTH_DEG = 2.0
"""Wavelength of the spectral break: 8 grid cells at 0.25 degrees, tile wavenumber 8 of 64."""

LARGE_SCALE_DEG = 40.0
"""Wavelength above which the spectrum flattens, so the largest scales do not dominate."""

SLOPE_LARGE_SCALES = -3.3
"""Latent spectral slope at wavelengths above the break (measured on %RH tiles: about -3.5)."""

SLOPE_SMALL_SCALES = -5.8
"""Latent spectral slope below the break (measured on %RH tiles: about -5.7)."""

KEY_INTERVAL_HOURS = 24.0
"""Spacing of the independent key fields blended in time (one a day, at 00 UTC)."""

WIND_MEAN_DEG_PER_HOUR = (0.18, 0.0)
"""Mean eastward and northward drift of the humidity patterns (0.18 deg/h: about 4 m/s at 45N).
Patterns move slower than the jet-level wind; this speed gives the target hourly change."""

WIND_WAVES = 3
"""Long-period oscillations added to each wind component."""

WIND_WAVE_AMPLITUDE_DEG_PER_HOUR = 0.08
"""Amplitude of each wind oscillation."""

WIND_PERIOD_RANGE_HOURS = (72.0, 720.0)
"""Periods of the wind oscillations are drawn log-uniformly in this range (3 to 30 days)."""

R_MAX = 145.0
"""Upper bound of the logistic map in %RH (ERA5 300 hPa peaks near 140-145 %)."""

LOGISTIC_GAIN = 1.15
"""Gain of the logistic map on the unit-variance latent field."""

LOGISTIC_OFFSET = -0.55
"""Offset of the logistic map: sets the mean (about 55 %) and the share above 100 %."""

DIURNAL_AMPLITUDE = 0.08
"""Amplitude of the diurnal cycle in latent units (about 3 %RH at mid-range humidity)."""

DIURNAL_PEAK_LOCAL_HOUR = 6.0
"""Local solar hour of the diurnal maximum of relative humidity."""

TERRAIN_WAVELENGTH_DEG = 6.0
"""Size of the mountain ranges: the terrain field's spectrum is a Gaussian of this wavelength."""

TERRAIN_HEIGHT_M = 1200.0
"""Orography per unit of the terrain field above 0 (peaks of 3-4 units reach 4-5 km)."""

UPSLOPE_GAIN = 0.6
"""Weight of the normalised upslope wind in the latent field (its std there is about this)."""

METRES_PER_DEGREE = 111_195.0  # along a meridian (a great circle of the 6371 km sphere)
SEA_LEVEL_HPA, SEA_LEVEL_K, LAPSE_EXPONENT = 1013.25, 288.15, 0.190263  # the ICAO standard atmosphere
TROPOPAUSE_K = 216.65
DRY_AIR_GAS_CONSTANT = 287.05  # J kg-1 K-1
MERIDIONAL_GRADIENT_K_PER_DEG = 0.7
"""Synthetic temperature falls this much per degree northward (from its value at 45N)."""
DIURNAL_T_AMPLITUDE_K = 1.5
"""Diurnal temperature amplitude, peaking at 15 local solar time."""

SURFACE_KEY = 0
"""The 2 m layer's key fields are seeded as level 0 hPa, which no pressure level can be."""
R2M_MAX, R2M_GAIN, R2M_OFFSET = 105.0, 0.9, 0.85
"""The 2 m logistic map: mean about 70 %RH, std about 18 %RH, about 1 % of values in 100-105 %."""
R2M_DIURNAL_AMPLITUDE = 0.3
"""Diurnal cycle of the 2 m latent field (about 10 %RH), moister at dawn (`DIURNAL_PEAK_LOCAL_HOUR`)."""
SURFACE_MEAN_K = 283.0
"""Annual mean sea-level 2 m temperature at 45N."""
SEASONAL_T_AMPLITUDE_K = 12.0
"""Half the summer-winter difference of 2t; coldest on day `SEASONAL_COLDEST_DAY`."""
SEASONAL_COLDEST_DAY = 16
DIURNAL_2T_AMPLITUDE_K = 5.0
"""Diurnal amplitude of 2t, peaking at 15 local solar time."""
LAPSE_RATE_K_PER_M = 0.0065
"""2t falls 6.5 K per km of orography (the standard atmosphere's lapse rate)."""


# ----------------------------------------------------------------------------- input checks


def _to_day(value, name):
    """A date-like value as numpy datetime64[D]; a time of day is dropped (days start at 00 UTC)."""
    try:
        if isinstance(value, datetime.datetime):
            value = value.date()
        day = np.datetime64(value).astype("datetime64[D]")
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be a date like '2019-01-31'. Received: {name}={value!r}") from err
    if np.isnat(day):
        raise InputError(f"{name} must be a date like '2019-01-31'. Received: {name}={value!r}")
    return day


def time_axis(start, end, interval_hours):
    """All steps from 00 UTC of `start` to the last step of `end`, every `interval_hours`."""
    first, last = _to_day(start, "start"), _to_day(end, "end")
    if last < first:
        raise InputError(f"end must not be before start. Received: start={first}, end={last}")
    if isinstance(interval_hours, bool) or int(interval_hours) != interval_hours or interval_hours < 1:
        raise InputError(f"interval_hours must be a positive whole number. Received: interval_hours={interval_hours}")
    stop = (last + np.timedelta64(1, "D")).astype("datetime64[h]")
    return np.arange(first.astype("datetime64[h]"), stop, np.timedelta64(int(interval_hours), "h"))


def _axis(bounds, resolution, name, limit, descending):
    """Grid points from bounds[0] to bounds[1] every `resolution`, both ends included."""
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name}_bounds must be two numbers (min, max). Received: {bounds!r}") from err
    if not low < high:
        raise InputError(f"{name}_bounds must be (min, max) with min < max. Received: {name}_bounds={bounds}")
    if low < -limit or high > limit:
        raise InputError(f"{name}_bounds must lie within +-{limit}. Received: {name}_bounds={bounds}")
    steps = (high - low) / resolution
    if abs(steps - round(steps)) > 1e-6:
        raise InputError(
            f"{name}_bounds must be a whole number of grid steps apart, so both are on the grid. "
            f"Received: {name}_bounds={bounds}, resolution={resolution}"
        )
    count = int(round(steps)) + 1
    values = np.round(low + resolution * np.arange(count), 6)
    return values[::-1] if descending else values


def _check_levels(levels):
    """Pressure levels as a sorted tuple of distinct positive ints (hPa)."""
    levels = (levels,) if np.isscalar(levels) else tuple(levels)
    if not levels or any(isinstance(p, bool) or int(p) != p or not 0 < p <= 1100 for p in levels):
        raise InputError(f"levels must be pressure levels in hPa (whole numbers 1-1100). Received: levels={levels}")
    return tuple(sorted({int(p) for p in levels}))


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer. Received: seed={seed!r}")
    return int(seed)


# ----------------------------------------------------------------------------- the generator


def _fft_size(n):
    """The smallest size >= n whose prime factors are 2, 3 and 5 (fast FFTs)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


class Generator:
    """Frames of synthetic %RH on one grid, as a pure function of absolute time.

    Holds a small cache of key fields (Fourier coefficients), so walking forward in time, as
    `synthetic.write_synthetic` does month by month, draws each key field once.
    """

    def __init__(self, lat, lon, resolution, levels, seed):
        self.lat, self.lon, self.levels, self.seed = lat, lon, levels, seed
        self.resolution = float(resolution)
        extent = max(len(lat), len(lon))
        self.size = _fft_size(max(int(np.ceil(DOMAIN_DEG / self.resolution)), 2 * extent + 16))
        n = self.size
        # Rows of the latent grid are latitudes (ascending), columns longitudes, both mod n.
        self.rows = np.rint(lat / self.resolution).astype(np.int64) % n
        self.cols = np.rint(lon / self.resolution).astype(np.int64) % n
        self.amplitude = self._amplitude()
        self.ky = np.fft.fftfreq(n) * n
        self.kx = np.fft.rfftfreq(n) * n
        self.wind_waves = self._wind_waves()
        self.cache = {}
        self._terrain, self.slope_rms = None, None

    def _amplitude(self):
        """Fourier amplitudes on the rfft grid: a broken power law in cycles per degree, scaled
        so that the latent field has unit variance (white noise times this gives that spectrum)."""
        n, d = self.size, self.resolution
        full = np.hypot(*np.meshgrid(np.fft.fftfreq(n, d), np.fft.fftfreq(n, d), indexing="ij"))
        half = np.hypot(*np.meshgrid(np.fft.fftfreq(n, d), np.fft.rfftfreq(n, d), indexing="ij"))

        def power(k):
            q = np.sqrt(k**2 + (1.0 / LARGE_SCALE_DEG) ** 2) * BREAK_WAVELENGTH_DEG
            return np.where(q <= 1.0, q**SLOPE_LARGE_SCALES, q**SLOPE_SMALL_SCALES)

        return np.sqrt(power(half) / power(full).mean())

    def _wind_waves(self):
        """Amplitudes, periods and phases of the wind oscillations (shared by all levels)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x77696E64]))
        low, high = np.log(WIND_PERIOD_RANGE_HOURS)
        periods = np.exp(rng.uniform(low, high, size=(2, WIND_WAVES)))
        phases = rng.uniform(0, 2 * np.pi, size=(2, WIND_WAVES))
        return periods, phases

    def displacement(self, hours):
        """Eastward and northward displacement in grid cells at `hours` since EPOCH: the closed-form
        integral of the wind, reduced modulo the domain."""
        hours = np.asarray(hours, dtype=np.float64)
        periods, phases = self.wind_waves
        out = []
        for axis in range(2):
            shift = WIND_MEAN_DEG_PER_HOUR[axis] * hours
            for period, phase in zip(periods[axis], phases[axis]):
                shift += (
                    WIND_WAVE_AMPLITUDE_DEG_PER_HOUR
                    * period
                    / (2 * np.pi)
                    * (np.sin(2 * np.pi * hours / period + phase) - np.sin(phase))
                )
            out.append(np.mod(shift / self.resolution, self.size))
        return out

    def key(self, level, index):
        """Key field `index` of a level: Fourier coefficients of white noise shaped by the spectrum,
        seeded by (seed, level, index) so any key can be drawn on its own."""
        if (level, index) not in self.cache:
            entropy = [self.seed, level, int(index) % 2**32]
            noise = np.random.default_rng(np.random.SeedSequence(entropy)).standard_normal((self.size, self.size))
            self.cache[(level, index)] = (np.fft.rfft2(noise) * self.amplitude).astype(np.complex64)
        return self.cache[(level, index)]

    def latent(self, level, hours):
        """Unit-variance latent field [T, lat, lon] at `hours` (ascending) since EPOCH.

        Frame t blends the four key fields around it with cubic B-spline weights (smooth in
        time, compact support), normalised so the variance stays exactly 1, then translates
        the result by the wind displacement.
        """
        hours = np.asarray(hours, dtype=np.float64)
        position = hours / KEY_INTERVAL_HOURS
        interval = np.floor(position).astype(np.int64)
        u = position - interval
        weights = np.stack([(1 - u) ** 3, 3 * u**3 - 6 * u**2 + 4, -3 * u**3 + 3 * u**2 + 3 * u + 1, u**3], axis=1)
        weights = (weights / np.sqrt((weights**2).sum(axis=1, keepdims=True))).astype(np.float32)
        coef = np.empty((len(hours), self.size, self.size // 2 + 1), dtype=np.complex64)
        # Frames of one key interval share their four keys; each frame's sum is taken in the
        # same order whatever else is in the batch, so values do not depend on the batching.
        for j in np.unique(interval):
            part = slice(np.searchsorted(interval, j), np.searchsorted(interval, j, side="right"))
            block = coef[part]
            np.multiply(weights[part, 0, None, None], self.key(level, j - 1), out=block)
            for m in range(1, 4):
                block += weights[part, m, None, None] * self.key(level, j - 1 + m)
        for stale in [k for k in self.cache if k[0] == level and k[1] < interval.min() - 1]:
            del self.cache[stale]
        east, north = self.displacement(hours)
        coef *= np.exp(-2j * np.pi * north[:, None] * self.ky / self.size).astype(np.complex64)[:, :, None]
        coef *= np.exp(-2j * np.pi * east[:, None] * self.kx / self.size).astype(np.complex64)[:, None, :]
        # The inverse 2-D FFT in two passes, keeping only the box's rows in between (a third
        # of the work of a full irfft2 for the default box).
        rows = np.fft.ifft(coef, axis=1)[:, self.rows]
        return np.fft.irfft(rows, n=self.size, axis=2)[:, :, self.cols]

    def wind(self, hours):
        """Eastward and northward drift in degrees per hour at `hours` [T]: the derivative of `displacement`."""
        hours = np.asarray(hours, dtype=np.float64)
        periods, phases = self.wind_waves
        out = []
        for axis in range(2):
            speed = np.full(hours.shape, WIND_MEAN_DEG_PER_HOUR[axis])
            for period, phase in zip(periods[axis], phases[axis]):
                speed += WIND_WAVE_AMPLITUDE_DEG_PER_HOUR * np.cos(2 * np.pi * hours / period + phase)
            out.append(speed)
        return out

    def terrain(self):
        """(orography in m, land fraction 0/1, d(orography)/d(east, north) in m per degree), each [lat, lon].

        A function of the seed and the periodic domain alone, so overlapping boxes share their mountains.
        """
        if self._terrain is None:
            n, d = self.size, self.resolution
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x7465727261]))
            k = np.hypot(*np.meshgrid(np.fft.fftfreq(n, d), np.fft.rfftfreq(n, d), indexing="ij"))
            shape = np.exp(-((k * TERRAIN_WAVELENGTH_DEG) ** 2))
            coef = np.fft.rfft2(rng.standard_normal((n, n))) * shape
            field = np.fft.irfft2(coef, s=(n, n))
            coef /= field.std()
            ky, kx = 2j * np.pi * self.ky[:, None] / (n * d), 2j * np.pi * self.kx[None, :] / (n * d)
            s, ds_north, ds_east = (np.fft.irfft2(c, s=(n, n)) for c in (coef, coef * ky, coef * kx))
            land = s > 0
            slopes = [np.where(land, TERRAIN_HEIGHT_M * ds, 0.0) for ds in (ds_east, ds_north)]
            self.slope_rms = float(np.sqrt(np.mean(slopes[0] ** 2 + slopes[1] ** 2)))  # over the whole domain
            grid = np.ix_(self.rows, self.cols)
            self._terrain = (np.where(land, TERRAIN_HEIGHT_M * s, 0.0)[grid], land[grid].astype(np.float64))
            self._terrain += tuple(slope[grid] for slope in slopes)
        return self._terrain

    def upslope(self, hours):
        """The latent field's terrain term [T, lat, lon]: V . grad(h) in units of its typical size (the mean
        drift times the domain's rms slope, so its rms is about 1 over the domain)."""
        _, _, east_slope, north_slope = self.terrain()
        east, north = self.wind(hours)
        typical = np.hypot(*WIND_MEAN_DEG_PER_HOUR) * self.slope_rms
        return (east[:, None, None] * east_slope + north[:, None, None] * north_slope) / typical

    def frames(self, times, batch=48, terrain=False):
        """%RH float32 [T, level, lat, lon] at datetime64 `times` (ascending); `terrain`: with upslope moistening."""
        hours = (times.astype("datetime64[h]") - EPOCH).astype(np.float64)
        out = np.empty((len(hours), len(self.levels), len(self.lat), len(self.lon)), dtype=np.float32)
        local = (np.mod(hours, 24.0)[:, None] + self.lon[None, :] / 15.0 - DIURNAL_PEAK_LOCAL_HOUR) / 24.0
        diurnal = DIURNAL_AMPLITUDE * np.cos(2 * np.pi * local)[:, None, :]
        for lo in range(0, len(hours), batch):
            part = slice(lo, lo + batch)
            for i, level in enumerate(self.levels):
                g = self.latent(level, hours[part]) + diurnal[part]
                if terrain:
                    g = (g + UPSLOPE_GAIN * self.upslope(hours[part])) / np.sqrt(1.0 + UPSLOPE_GAIN**2)
                out[part, i] = R_MAX / (1.0 + np.exp(-(LOGISTIC_GAIN * g + LOGISTIC_OFFSET)))
        return out

    def surface_frames(self, times, batch=48, terrain=True):
        """2 m %RH float32 [T, lat, lon] at datetime64 `times` (ascending); `terrain`: with upslope moistening."""
        hours = (times.astype("datetime64[h]") - EPOCH).astype(np.float64)
        out = np.empty((len(hours), len(self.lat), len(self.lon)), dtype=np.float32)
        local = (np.mod(hours, 24.0)[:, None] + self.lon[None, :] / 15.0 - DIURNAL_PEAK_LOCAL_HOUR) / 24.0
        diurnal = R2M_DIURNAL_AMPLITUDE * np.cos(2 * np.pi * local)[:, None, :]
        for lo in range(0, len(hours), batch):
            part = slice(lo, lo + batch)
            g = self.latent(SURFACE_KEY, hours[part]) + diurnal[part]
            if terrain:
                g = (g + UPSLOPE_GAIN * self.upslope(hours[part])) / np.sqrt(1.0 + UPSLOPE_GAIN**2)
            out[part] = R2M_MAX / (1.0 + np.exp(-(R2M_GAIN * g + R2M_OFFSET)))
        return out

    def surface(self, times, r2m):
        """{t2m, d2m (K), sp (Pa)}: float32 [T, lat, lon] consistent with 2 m %RH `r2m` (`surface_frames`)."""
        from tfrecords_builder.contract.era5.humidity import dewpoint

        hours = (times.astype("datetime64[h]") - EPOCH).astype(np.float64)
        day = (times.astype("datetime64[D]") - times.astype("datetime64[Y]")).astype(np.float64)
        local = (np.mod(hours, 24.0)[:, None] + self.lon[None, :] / 15.0 - 15.0) / 24.0
        season = -SEASONAL_T_AMPLITUDE_K * np.cos(2 * np.pi * (day - SEASONAL_COLDEST_DAY) / 365.25)
        sea_level = (
            SURFACE_MEAN_K
            - MERIDIONAL_GRADIENT_K_PER_DEG * (self.lat[:, None] - 45.0)
            + season[:, None, None]
            + DIURNAL_2T_AMPLITUDE_K * np.cos(2 * np.pi * local)[:, None, :]
        )  # [T, lat, lon]
        height = self.terrain()[0]
        t2m = sea_level - LAPSE_RATE_K_PER_M * height
        column_k = t2m + LAPSE_RATE_K_PER_M * height / 2.0
        sp = SEA_LEVEL_HPA * 100.0 * np.exp(-STANDARD_GRAVITY * height / (DRY_AIR_GAS_CONSTANT * column_k))
        fields = {"t2m": t2m, "d2m": dewpoint(t2m, r2m), "sp": sp}
        return {name: value.astype(np.float32) for name, value in fields.items()}

    def predictors(self, times, r):
        """{t (K), q (kg/kg), u, v (m/s), z (m2 s-2)}: float32 [T, level, lat, lon] consistent with `r` (%RH, `frames`)."""
        from tfrecords_builder.contract.era5.humidity import EPSILON, saturation_vapour_pressure

        hours = (times.astype("datetime64[h]") - EPOCH).astype(np.float64)
        p = np.asarray(self.levels, dtype=np.float64)[None, :, None, None]
        t_std = np.maximum(SEA_LEVEL_K * (p / SEA_LEVEL_HPA) ** LAPSE_EXPONENT, TROPOPAUSE_K)
        local = (np.mod(hours, 24.0)[:, None] + self.lon[None, :] / 15.0 - 15.0) / 24.0
        anomaly = (
            -MERIDIONAL_GRADIENT_K_PER_DEG * (self.lat[:, None] - 45.0)
            + DIURNAL_T_AMPLITUDE_K * np.cos(2 * np.pi * local)[:, None, :]
        )  # [T, lat, lon]
        t = t_std + anomaly[:, None]
        e = np.asarray(r, dtype=np.float64) / 100.0 * saturation_vapour_pressure(t)
        q = EPSILON * e / (p * 100.0 - (1.0 - EPSILON) * e)  # the inverse of `humidity.vapour_pressure`
        height = 44330.8 * (1.0 - (p / SEA_LEVEL_HPA) ** LAPSE_EXPONENT)  # the standard atmosphere's, m
        z = STANDARD_GRAVITY * height + DRY_AIR_GAS_CONSTANT * anomaly[:, None] * np.log(SEA_LEVEL_HPA / p)
        east, north = self.wind(hours)
        shape = (len(hours), len(self.levels), len(self.lat), len(self.lon))
        u = east[:, None, None, None] * METRES_PER_DEGREE * np.cos(np.radians(self.lat))[:, None] / 3600.0
        v = north[:, None, None, None] * METRES_PER_DEGREE / 3600.0
        fields = {"t": t, "q": q, "u": u, "v": v, "z": z}
        return {name: np.broadcast_to(value, shape).astype(np.float32) for name, value in fields.items()}


def make_generator(lat_bounds, lon_bounds, resolution, levels, seed):
    """The `Generator` of a grid, every argument checked first (a `ValueError` names a bad one)."""
    try:
        resolution = float(resolution)
    except (TypeError, ValueError) as err:
        raise InputError(f"resolution must be a number of degrees. Received: resolution={resolution!r}") from err
    if not 0 < resolution <= 10:
        raise InputError(f"resolution must be in (0, 10] degrees. Received: resolution={resolution}")
    lat = _axis(lat_bounds, resolution, "lat", 90.0, descending=True)
    lon = _axis(lon_bounds, resolution, "lon", 360.0, descending=False)
    return Generator(lat, lon, resolution, _check_levels(levels), _check_seed(seed))


def provenance(seed):
    """The `history` and `source` text of every synthetic dataset and file: it says the data are not ERA5."""
    return (
        f"Synthetic ERA5-like relative humidity from tfrecords_builder.synthetic (hsr-keras), seed={seed}. "
        "Not ERA5 data: a latent Gaussian random field with an ERA5-like spectrum, advected and "
        "blended in time, mapped to %RH."
    )
