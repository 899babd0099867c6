"""The metric card: one implementation of every reported metric.

Training (inside a `tf.function` training step), evaluation (numpy arrays streamed day by
day) and the benchmarks all call the functions in this module, so a number in a table means
the same thing wherever it was computed.

Conventions
-----------
* Inputs `pred` and `true` are float arrays (numpy arrays or backend tensors) shaped
  `[days, T, H, W]` in physical units (%RH); a trailing channel axis of size 1
  (`[days, T, H, W, 1]`) is accepted and squeezed. The two shapes must match
  (`ValueError` naming both otherwise).
* Every per-day function returns a `[days]` vector (a backend tensor; call
  `keras.ops.convert_to_numpy` at the call site), so an evaluation can stream days and average
  them; each docstring says what is averaged over what.
* float16/bfloat16/integer inputs are computed in float32; float64 inputs stay float64.
* `data_range` (default `PEAK` = 100 %RH) is the peak used by PSNR and SSIM. ERA5 relative
  humidity exceeds 100 % over ice; the data range is a fixed constant of the card, not the
  range of a field.

The functions `mse`, `mae`, `bias`, `psnr`, `psnr_from_mse`, `ssim`, `acc`, `tcc`,
`tcc_counts`, `roughness`, `phase_roughness`, `lattice_parts`, `lattice` and `lattice_spread`
use `keras.ops` only and run on any Keras backend, eagerly or inside a graph. `MetricAccumulator` streams them over days (numpy
state). The card's spectral entries come from `hsr_keras.scoring.spectra`, its ensemble entries from
`hsr_keras.scoring.ensemble_scores`.

Reference:
    Li, Wang, Wang, Han (2024), section 4.3 (eqs. 8-13); Wang, Bovik, Sheikh, Simoncelli
    (2004), "Image quality assessment: from error visibility to structural similarity".
"""

import math

import keras
import numpy as np
from keras import ops

PEAK = 100.0
"""Data range of relative humidity in %RH, used as the PSNR peak and the SSIM data range."""

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

METRIC_CARD = {
    "mse": {
        "description": "mean squared error over every point of every frame, averaged over days",
        "higher_is_better": False,
        "units": "%RH^2",
    },
    "mae": {
        "description": "mean absolute error over every point of every frame, averaged over days",
        "higher_is_better": False,
        "units": "%RH",
    },
    "bias": {
        "description": "mean of pred - true over every point of every frame, averaged over days (best is 0)",
        "higher_is_better": None,
        "units": "%RH",
    },
    "psnr": {
        "description": "paper style: per-frame PSNR with peak 100 %RH, averaged over frames, "
        "then days (inf if any frame is reproduced exactly)",
        "higher_is_better": True,
        "units": "dB",
    },
    "psnr_pooled": {
        "description": "PSNR (peak 100 %RH) of the MSE pooled over every point of the split",
        "higher_is_better": True,
        "units": "dB",
    },
    "ssim": {
        "description": "SSIM (Wang et al. 2004; Gaussian window 11, sigma 1.5, K1 0.01, "
        "K2 0.03, data range 100 %RH), valid-region mean per frame, averaged over frames, "
        "then days",
        "higher_is_better": True,
        "units": "1",
    },
    "acc": {
        "description": "paper eq. 12: per-frame spatial Pearson correlation of pred and true, "
        "averaged over the non-constant frames of a day, then over days",
        "higher_is_better": True,
        "units": "1",
    },
    "acc_anomaly": {
        "description": "as acc, on anomalies from the training climatology (pred - clim, true - clim)",
        "higher_is_better": True,
        "units": "1",
    },
    "tcc": {
        "description": "paper eq. 13: per-point correlation over the T steps of a day, "
        "averaged over points with non-constant series, then over days",
        "higher_is_better": True,
        "units": "1",
    },
    "tcc_excluded_points": {
        "description": "number of (day, point) series left out of tcc because pred or true "
        "is constant over the day, summed over days",
        "higher_is_better": None,
        "units": "points",
    },
    "lattice": {
        "description": "mean roughness |x - mean of its 4 neighbours| at the LR sample points (rows and "
        "columns multiples of the scale, the points a 'stride' build keeps) over the mean roughness at "
        "the other interior points, per day, averaged over days (days without roughness skipped); "
        "about 1 without a lattice, below 1 for the dotted lattice of a generator that reproduces the "
        "LR values and adds texture only between them; compare with lattice_truth. Left out for "
        "'block_mean' builds, which keep no HR point",
        "higher_is_better": None,
        "units": "1",
    },
    "lattice_truth": {
        "description": "lattice of the truth over the same days: the value a method should match (not exactly 1)",
        "higher_is_better": None,
        "units": "1",
    },
    "lattice_spread": {
        "description": "coefficient of variation, over the scale x scale positions in an LR cell, of the mean "
        "roughness at each position, per day, averaged over days: near 0 without a lattice, large where "
        "the sub-pixel upsampling gives positions their own texture (a lattice anywhere in the cell, which "
        "lattice, at the sample points only, can miss); compare with lattice_spread_truth. Left out for "
        "'block_mean' builds as lattice is",
        "higher_is_better": None,
        "units": "1",
    },
    "lattice_spread_truth": {
        "description": "lattice_spread of the truth over the same days (sampling noise: the floor a method can reach)",
        "higher_is_better": None,
        "units": "1",
    },
    "power_near": {
        "description": "the method's radially averaged power summed over wavenumbers [k_n, 2.5 k_n] over the "
        "truth's, k_n = N / (2 scale) the LR grid's Nyquist wavenumber, N = min(H, W), capped at N / 2 "
        "(hsr_keras.scoring.spectra.power_bands; 4-10 cycles per frame for 64-point frames at scale 8), over "
        "every frame of the split; 1: the truth's variance at scales the LR grid does not resolve, below 1: "
        "missing texture",
        "higher_is_better": None,
        "units": "1",
    },
    "power_mid": {
        "description": "as power_near, over wavenumbers (2.5 k_n, 5 k_n] (11-20 for 64-point frames at scale 8; "
        "in earlier versions this band was called power_far)",
        "higher_is_better": None,
        "units": "1",
    },
    "power_far": {
        "description": "as power_near, over wavenumbers (5 k_n, N / 2] (21-32 for 64-point frames at scale 8: "
        "wavelengths of 2 to 3 HR cells)",
        "higher_is_better": None,
        "units": "1",
    },
    "crps": {
        "description": "fair (unbiased) ensemble CRPS (Ferro 2014), mean over points, averaged over days; "
        "equals the MAE for one member or identical members",
        "higher_is_better": False,
        "units": "%RH",
    },
    "spread": {
        "description": "ensemble standard deviation (ddof 1), mean over points, averaged over days",
        "higher_is_better": None,
        "units": "%RH",
    },
    "spread_skill": {
        "description": "sqrt((K+1)/K) x sqrt(mean over every point of the split of the members' variance, ddof 1) "
        "/ RMSE of the ensemble mean over the same points (Fortin et al. 2014); 1: calibrated, below 1: "
        "under-dispersive, 0: no spread",
        "higher_is_better": None,
        "units": "1",
    },
    "rank_flatness": {
        "description": "max over the K+1 bins of the rank histogram (the truth's rank among the K members at "
        "every point of the split; ties share their bins) of |(K+1) x the bin's share - 1|: 0 flat, 0.2 every "
        "bin within 20 % of flat, K all points in the outer bins",
        "higher_is_better": False,
        "units": "1",
    },
    "rank_histogram": {
        "description": "each rank's share of the points, ranks 0 (truth below every member) to K",
        "higher_is_better": None,
        "units": "1",
    },
    "members": {
        "description": "ensemble size K the ensemble scores were computed with",
        "higher_is_better": None,
        "units": "members",
    },
    "member_power_near": {
        "description": "as power_near, for the mean spectrum of the members (every member's frames) rather than "
        "the ensemble mean's",
        "higher_is_better": None,
        "units": "1",
    },
    "member_power_mid": {
        "description": "as power_mid, for the members' mean spectrum",
        "higher_is_better": None,
        "units": "1",
    },
    "member_power_far": {
        "description": "as power_far, for the members' mean spectrum",
        "higher_is_better": None,
        "units": "1",
    },
    "member_lattice": {
        "description": "lattice of each member per day, averaged over members and days; compare with lattice_truth",
        "higher_is_better": None,
        "units": "1",
    },
    "days": {
        "description": "number of days the averages are taken over",
        "higher_is_better": None,
        "units": "days",
    },
}
"""Name -> description, `higher_is_better` (True, False or None where neither) and units."""


# ----------------------------------------------------------------------------- helpers


def _shape_tuple(x):
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError) as err:  # tf.TensorShape of unknown rank
        raise ValueError(f"Metrics need inputs of known rank. Received shape {shape}") from err


def _as_float(x):
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) not in ("float32", "float64"):
        x = ops.cast(x, "float32")
    return x


def _squeeze_channel(x, shape, name):
    if len(shape) == 5 and shape[-1] in (1, None):
        return ops.squeeze(x, axis=-1), shape[:-1]
    if len(shape) != 4:
        raise ValueError(
            f"`{name}` must be shaped [days, T, H, W] (or [days, T, H, W, 1]). Received: {name}.shape={shape}"
        )
    return x, shape


def _prepare(pred, true):
    """Squeezes a trailing channel axis of 1, checks shapes, casts to a common float."""
    pred_shape, true_shape = _shape_tuple(pred), _shape_tuple(true)
    pred = _as_float(pred)
    true = _as_float(true)
    p, ps = _squeeze_channel(pred, pred_shape, "pred")
    t, ts = _squeeze_channel(true, true_shape, "true")
    if any(a is not None and b is not None and a != b for a, b in zip(ps, ts)):
        raise ValueError(
            f"`pred` and `true` must have the same shape. Received: pred.shape={pred_shape}, true.shape={true_shape}"
        )
    if keras.backend.standardize_dtype(p.dtype) != keras.backend.standardize_dtype(t.dtype):
        p = ops.cast(p, "float64")
        t = ops.cast(t, "float64")
    return p, t


def _correlation(a, b, axis):
    """Pearson correlation of `a` and `b` along `axis` (eq. 12/13 form).

    Returns `(r, valid)`: `valid` is False where `a` or `b` is constant along `axis`
    (max == min, or a variance product that underflows to 0); `r` is 0 there.
    """
    da = a - ops.mean(a, axis=axis, keepdims=True)
    db = b - ops.mean(b, axis=axis, keepdims=True)
    cov = ops.mean(da * db, axis=axis)
    var = ops.mean(da * da, axis=axis) * ops.mean(db * db, axis=axis)
    valid = ops.logical_and(
        ops.logical_and(ops.max(a, axis=axis) > ops.min(a, axis=axis), ops.max(b, axis=axis) > ops.min(b, axis=axis)),
        var > 0,
    )
    safe = ops.where(valid, var, ops.ones_like(var))
    r = ops.where(valid, ops.clip(cov / ops.sqrt(safe), -1.0, 1.0), ops.zeros_like(var))
    return r, valid


def _to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _masked_mean(values, valid, axis):
    """Mean of `values` where `valid`, along `axis`; NaN where nothing is valid (0 / 0)."""
    w = ops.cast(valid, values.dtype)
    return ops.sum(values * w, axis=axis) / ops.sum(w, axis=axis)


# ---------------------------------------------------------------------- per-day metrics


def mse(pred, true):
    """Mean squared error per day.

    Args:
        pred: predictions, `[days, T, H, W]` (or `[..., 1]`), %RH.
        true: ground truth, same shape.

    Returns:
        `[days]` tensor: mean of `(pred - true)^2` over every point of every frame of a day.
    """
    pred, true = _prepare(pred, true)
    return ops.mean(ops.square(pred - true), axis=(1, 2, 3))


def mae(pred, true):
    """Mean absolute error per day: `[days]`, mean of `|pred - true|` over `T, H, W`."""
    pred, true = _prepare(pred, true)
    return ops.mean(ops.abs(pred - true), axis=(1, 2, 3))


def bias(pred, true):
    """Mean error (`pred - true`) per day: `[days]`, mean over `T, H, W`."""
    pred, true = _prepare(pred, true)
    return ops.mean(pred - true, axis=(1, 2, 3))


def psnr_from_mse(mse_value, data_range=PEAK):
    """PSNR in dB of a mean squared error: `10 log10(data_range^2 / mse)`.

    Used for the pooled PSNR of a split (the PSNR of the MSE pooled over all its points).
    An MSE of 0 gives `+inf`. Works on scalars, arrays and tensors (returns a tensor).
    """
    mse_value = _as_float(mse_value)
    return 10.0 * ops.log10(ops.cast(data_range, mse_value.dtype) ** 2 / mse_value)


def psnr(pred, true, data_range=PEAK):
    """Paper-style PSNR per day (eq. 10).

    For every frame, `10 log10(data_range^2 / mse_frame)` with `mse_frame` the mean over the
    `H x W` points; these are averaged over the `T` frames of a day. A frame reproduced
    exactly has `mse_frame = 0` and PSNR `+inf`, so its day is `+inf`: the caller caps or
    reports it (`MetricAccumulator` reports the plain mean, i.e. inf). For the PSNR of the
    pooled MSE use `psnr_from_mse`.

    Returns:
        `[days]` tensor in dB.
    """
    pred, true = _prepare(pred, true)
    frame_mse = ops.mean(ops.square(pred - true), axis=(2, 3))
    return ops.mean(psnr_from_mse(frame_mse, data_range), axis=1)


def _gaussian_window(size=SSIM_WINDOW, sigma=SSIM_SIGMA):
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def ssim(pred, true, data_range=PEAK):
    """SSIM per day (Wang et al. 2004; paper eq. 11).

    Per frame: local means, variances and covariance from an 11-tap separable Gaussian window
    (sigma 1.5, population statistics), `C1 = (0.01 data_range)^2`, `C2 = (0.03 data_range)^2`,
    the SSIM map on the valid region (`H - 10` by `W - 10`: no padding) and its mean; this
    matches `skimage.metrics.structural_similarity(a, b, data_range=100,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`. Frame values are
    averaged over the `T` frames of a day. Identical frames give 1, including constant ones.

    Raises:
        ValueError: if a frame is smaller than 11 x 11 (when H and W are known).

    Returns:
        `[days]` tensor.
    """
    pred, true = _prepare(pred, true)
    shape = _shape_tuple(pred)
    if any(d is not None and d < SSIM_WINDOW for d in shape[2:]):
        raise ValueError(
            f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} points. "
            f"Received: frames of {shape[2]}x{shape[3]}"
        )
    dtype = pred.dtype
    dyn = ops.shape(pred)
    days, steps, height, width = dyn[0], dyn[1], dyn[2], dyn[3]
    # Shift both fields by the same per-frame constant: variances and covariance do not change,
    # and E[x^2] - E[x]^2 loses far less precision in float32 around 0 than around 50 %RH.
    shift = 0.5 * (ops.mean(pred, axis=(2, 3), keepdims=True) + ops.mean(true, axis=(2, 3), keepdims=True))
    x = pred - shift
    y = true - shift
    maps = ops.stack([x, y, x * x, y * y, x * y], axis=2)  # [days, T, 5, H, W]
    maps = ops.reshape(maps, (-1, height, width, 1))
    g = ops.cast(_gaussian_window(), dtype)
    maps = ops.conv(maps, ops.reshape(g, (SSIM_WINDOW, 1, 1, 1)), padding="valid")
    maps = ops.conv(maps, ops.reshape(g, (1, SSIM_WINDOW, 1, 1)), padding="valid")
    maps = ops.reshape(maps, (days, steps, 5, height - (SSIM_WINDOW - 1), width - (SSIM_WINDOW - 1)))
    ux, uy, uxx, uyy, uxy = (maps[:, :, i] for i in range(5))
    vx = uxx - ux * ux
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    ux = ux + shift
    uy = uy + shift
    c1 = ops.cast((SSIM_K1 * data_range) ** 2, dtype)
    c2 = ops.cast((SSIM_K2 * data_range) ** 2, dtype)
    smap = ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return ops.mean(smap, axis=(1, 2, 3))


def _anomalies(pred, true, climatology):
    shape = _shape_tuple(climatology)
    clim = _as_float(climatology)
    if shape and shape[-1] == 1 and _shape_tuple(pred)[-1] != 1:
        clim = ops.squeeze(clim, axis=-1)  # a trailing channel axis
    clim = ops.cast(clim, pred.dtype)
    return pred - clim, true - clim


def acc(pred, true, climatology=None):
    """Spatial correlation per day (paper eq. 12), optionally of anomalies.

    For every frame, the Pearson correlation of `pred` and `true` over the `H x W` points
    (each field minus its own spatial mean), averaged over the `T` frames of a day. With
    `climatology` (`[T, H, W]`, or anything broadcastable to `[days, T, H, W]`, in %RH) the
    anomalies `pred - clim` and `true - clim` are correlated the same way: the
    meteorological anomaly correlation coefficient.

    A frame where either field (or anomaly) is spatially constant has no correlation: it is
    left out of its day's average, and a day whose frames are all constant is NaN.

    Returns:
        `[days]` tensor in [-1, 1] (or NaN).
    """
    pred, true = _prepare(pred, true)
    if climatology is not None:
        pred, true = _anomalies(pred, true, climatology)
    r, valid = _correlation(pred, true, axis=(2, 3))
    return _masked_mean(r, valid, axis=1)


def _tcc_parts(pred, true):
    pred, true = _prepare(pred, true)
    r, valid = _correlation(pred, true, axis=1)  # [days, H, W]
    value = _masked_mean(r, valid, axis=(1, 2))
    excluded = ops.sum(ops.cast(ops.logical_not(valid), "int32"), axis=(1, 2))
    return value, excluded


def tcc(pred, true):
    """Temporal correlation per day (paper eq. 13).

    For every grid point, the Pearson correlation of `pred` and `true` over the `T` steps of
    the day; these are averaged over the points. A point whose series is constant over the
    day in `pred` or in `true` has no correlation and is left out (count them with
    `tcc_counts`); a day with no usable point is NaN.

    Returns:
        `[days]` tensor in [-1, 1] (or NaN).
    """
    return _tcc_parts(pred, true)[0]


def tcc_counts(pred, true):
    """Number of grid points left out of `tcc`, per day.

    Returns:
        `[days]` int32 tensor: points whose `T`-step series is constant in `pred` or `true`.
    """
    return _tcc_parts(pred, true)[1]


# --------------------------------------------------------------------------- lattice


def roughness(field):
    """|x - mean of its 4 neighbours| at the interior points of `[..., H, W]` fields: `[..., H-2, W-2]`."""
    neighbours = (field[..., :-2, 1:-1] + field[..., 2:, 1:-1] + field[..., 1:-1, :-2] + field[..., 1:-1, 2:]) / 4
    difference = field[..., 1:-1, 1:-1] - neighbours
    # |d| as d * sign(d): the same value, and a gradient of 0 at d = 0 on every backend (the
    # lattice loss differentiates it; JAX's abs has gradient 1 there, TensorFlow's 0).
    return difference * ops.sign(difference)


def phase_roughness(field, scale):
    """Per day, the mean roughness at each of the `scale x scale` positions in an LR cell: `[days, s, s]`.

    Position (0, 0) holds the LR sample points of a "stride" build (rows and columns multiple of
    `scale`). The truth's texture does not know where the LR grid is, so its positions are alike;
    a generator that keeps the LR values, or whose sub-pixel upsampling gives each position its
    own texture, is rougher at some positions than at others: a lattice on the map. Measured
    over the whole LR cells whose points are all interior (rows and columns `scale` onwards).
    `field` is `[days, T, H, W]` (or `[..., 1]`).
    """
    shape = _shape_tuple(field)
    x, shape = _squeeze_channel(_as_float(field), shape, "field")
    height, width = shape[-2:]
    if height is None or width is None or min(height, width) <= 2 * scale:
        raise ValueError(f"lattice needs fields larger than 2 x scale = {2 * scale} points. Received: shape={shape}")
    rows, cols = (height - 1) // scale - 1, (width - 1) // scale - 1
    rough = roughness(x)[..., scale - 1 : scale - 1 + rows * scale, scale - 1 : scale - 1 + cols * scale]
    rough = ops.reshape(rough, (-1, shape[1], rows, scale, cols, scale))
    return ops.mean(rough, axis=(1, 2, 4))


def lattice_parts(field, scale):
    """Per day, the mean roughness at the LR sample points and at the other positions: two `[days]` vectors."""
    phases = phase_roughness(field, scale)
    at_samples = phases[:, 0, 0]
    away = (ops.sum(phases, axis=(1, 2)) - at_samples) / (scale * scale - 1)
    return at_samples, away


def lattice_spread(field, scale):
    """Per day: the coefficient of variation of `phase_roughness` over the positions, `[days]`.

    Near 0 for the truth (sampling noise only), large where the positions differ in texture: the
    lattice wherever it is in the LR cell, not only at the sample points `lattice` looks at.
    """
    phases = ops.reshape(phase_roughness(field, scale), (-1, scale * scale))
    return ops.std(phases, axis=1) / ops.mean(phases, axis=1)


def lattice(field, scale):
    """Per day: mean roughness at the LR sample points over that at the other points, `[days]`.

    About 1 for a field without a lattice (the truth), below 1 where the sample points are
    smoother than their surroundings (the dotted lattice), NaN for a field without roughness.
    """
    at_samples, away = lattice_parts(field, scale)
    return at_samples / away


# ----------------------------------------------------------------------- accumulator


class MetricAccumulator:
    """Streams batches of days and averages the metric card over them (numpy state).

    Each `update(pred, true)` computes the per-day metrics with this module's functions and
    adds them to running sums, so memory does not grow with the number of days.

    `result()` returns a dict of Python numbers:

    * `mse`, `mae`, `bias`, `psnr` (paper style), `ssim`: means of the per-day values over all
      days. `psnr` is inf if any frame was reproduced exactly.
    * `psnr_pooled`: `psnr_from_mse` of the squared error pooled over every point of every day
      (equal to `psnr_from_mse(mse)` when all days have the same size).
    * `acc`, `acc_anomaly` (only with a climatology), `tcc`: means over the days where the
      value is defined (NaN days, see `acc`/`tcc`, are skipped); NaN if there is none.
    * `tcc_excluded_points`: total number of (day, point) series left out of `tcc`.
    * `lattice`, `lattice_truth`, `lattice_spread`, `lattice_spread_truth` (only with a
      `scale`): means over the days where defined of `lattice` and `lattice_spread` of pred and
      of true, the truth's values over the same days being the reference a method's is read against.
    * `days`: number of days seen.

    Args:
        climatology: optional `[T, H, W]` array (%RH) for `acc_anomaly`. Defaults to None.
        data_range: peak for PSNR and SSIM. Defaults to `PEAK` (100 %RH).
        scale: the LR grid's stride in HR cells, for `lattice`: only for builds whose LR values
            are HR points at rows and columns multiple of it ("stride" degradation). Defaults
            to None (no lattice).

    Example:

    ```python
    acc = MetricAccumulator(climatology=clim)
    for pred, true in batches:
        acc.update(pred, true)
    table_row = acc.result()
    ```
    """

    _MEAN_KEYS = ("mse", "mae", "bias", "psnr", "ssim")
    _NAN_KEYS = ("acc", "acc_anomaly", "tcc", "lattice", "lattice_truth", "lattice_spread", "lattice_spread_truth")

    def __init__(self, climatology=None, data_range=PEAK, scale=None):
        if scale is not None and (int(scale) != scale or scale < 2):
            raise ValueError(f"`scale` must be an integer >= 2 or None. Received: scale={scale!r}")
        self.climatology = None if climatology is None else np.asarray(climatology)
        self.data_range = float(data_range)
        self.scale = None if scale is None else int(scale)
        self.reset()

    def reset(self):
        """Forgets every batch seen so far."""
        self._sums = {key: 0.0 for key in self._MEAN_KEYS + self._NAN_KEYS}
        self._defined = {key: 0 for key in self._NAN_KEYS}
        self._squared_error = 0.0
        self._points = 0
        self._excluded = 0
        self._days = 0
        self._anomaly = self.climatology is not None

    def update(self, pred, true, climatology=None):
        """Adds a batch of days; `pred`, `true` shaped `[days, T, H, W]` (or `[..., 1]`).

        `climatology` (e.g. `[days, T, H, W]`, one per record of a patch build) replaces the
        accumulator's own for this batch.
        """
        climatology = self.climatology if climatology is None else np.asarray(climatology)
        pred = keras.ops.convert_to_numpy(pred) if not isinstance(pred, np.ndarray) else pred
        true = keras.ops.convert_to_numpy(true) if not isinstance(true, np.ndarray) else true
        p, _ = _prepare(pred, true)  # shape checks
        days, steps, height, width = _shape_tuple(p)
        if days == 0:
            return
        values = {
            "mse": _to_numpy(mse(pred, true)),
            "mae": _to_numpy(mae(pred, true)),
            "bias": _to_numpy(bias(pred, true)),
            "psnr": _to_numpy(psnr(pred, true, data_range=self.data_range)),
            "ssim": _to_numpy(ssim(pred, true, data_range=self.data_range)),
            "acc": _to_numpy(acc(pred, true)),
        }
        if climatology is not None:
            self._anomaly = True
            values["acc_anomaly"] = _to_numpy(acc(pred, true, climatology=climatology))
        tcc_value, excluded = _tcc_parts(pred, true)
        values["tcc"] = _to_numpy(tcc_value)
        if self.scale is not None:
            for name, fn in (("lattice", lattice), ("lattice_spread", lattice_spread)):
                values[name] = _to_numpy(fn(pred, self.scale))
                values[f"{name}_truth"] = _to_numpy(fn(true, self.scale))
        for key in self._MEAN_KEYS:
            self._sums[key] += float(values[key].sum())
        for key in self._NAN_KEYS:
            if key in values:
                finite = ~np.isnan(values[key])
                self._sums[key] += float(values[key][finite].sum())
                self._defined[key] += int(finite.sum())
        points_per_day = steps * height * width
        self._squared_error += float(values["mse"].sum()) * points_per_day
        self._points += days * points_per_day
        self._excluded += int(np.sum(ops.convert_to_numpy(excluded)))
        self._days += days

    def result(self):
        """Returns the dict of averages described in the class docstring."""
        if self._days == 0:
            raise ValueError("MetricAccumulator.result() called before any day was added.")
        out = {key: self._sums[key] / self._days for key in self._MEAN_KEYS}
        pooled = self._squared_error / self._points
        out["psnr_pooled"] = float(ops.convert_to_numpy(psnr_from_mse(np.float64(pooled), self.data_range)))
        keys = [key for key in self._NAN_KEYS if key != "acc_anomaly" or self._anomaly]
        if self.scale is None:
            keys = [key for key in keys if not key.startswith("lattice")]
        for key in keys:
            n = self._defined[key]
            out[key] = self._sums[key] / n if n else math.nan
        out["tcc_excluded_points"] = self._excluded
        out["days"] = self._days
        return out
