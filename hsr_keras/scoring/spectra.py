"""Power spectra of HR fields, and how much of the truth's small-scale variance a method keeps (numpy).

`radial_power_spectrum` is the radially averaged spectrum of `evaluate`'s spectra figure;
`power_bands` and `band_power_ratios` reduce a method's spectrum to three numbers of the metric
card (`power_near`, `power_mid`, `power_far`): its power over the truth's in three bands of
wavenumbers at and above the LR grid's Nyquist wavenumber, where the LR fields hold no
information and every variance a method has there is its own texture (interpolation keeps too
little). For the demo's 64-point frames at scale 8 the bands are wavenumbers 4-10, 11-20 and
21-32 cycles per frame (wavelengths of 16-6.4, 5.8-3.2 and 3.0-2 HR cells).
"""

import math

import numpy as np

BAND_EDGES = {"power_near": 2.5, "power_mid": 5.0, "power_far": math.inf}
"""Band name -> its upper edge in multiples of the LR grid's Nyquist wavenumber `k_n`: the first band
starts at `k_n`, each next one above the previous one's edge, the last one runs to `N // 2` (see
`power_bands`). Before the mid band existed (earlier versions) `power_far` named what is
now `power_mid`, (2.5 k_n, 5 k_n]."""


def radial_power_spectrum(field, reduce="mean"):
    """Radially averaged power spectrum of `[..., H, W]` fields (numpy).

    Each `H x W` frame has its mean removed; its power `|FFT|^2 / (H W)^2` (normalised so
    that the power summed over all wavenumbers is the frame's variance) is averaged over the
    leading axes and then binned by the integer-rounded radial wavenumber
    `k = N sqrt((kx / W)^2 + (ky / H)^2)`, `N = min(H, W)`, with `kx`, `ky` in cycles per
    domain (`k` in cycles per `N` grid lengths; for square frames, cycles per domain).

    Args:
        field: array `[..., H, W]`.
        reduce: `"mean"` (default; the mean power over the modes of each ring, as pysteps'
            RAPSD: a field with isotropic spectral density `k^-b` gives slope `-b`) or
            `"sum"` (the power summed over each ring, the "energy spectrum" convention,
            one power of `k` flatter: slope `1 - b`).

    Returns:
        `(wavenumbers, power)`: int array `1 .. N // 2` and float64 array of the same length.
    """
    field = np.asarray(field, dtype=np.float64)
    if field.ndim < 2:
        raise ValueError(f"`field` must be shaped [..., H, W]. Received: shape={field.shape}")
    if reduce not in ("mean", "sum"):
        raise ValueError(f"`reduce` must be 'mean' or 'sum'. Received: reduce={reduce!r}")
    height, width = field.shape[-2:]
    n = min(height, width)
    if n < 2:
        raise ValueError(f"Frames must be at least 2x2. Received: shape={field.shape}")
    frames = field.reshape(-1, height, width)
    frames = frames - frames.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(frames)) ** 2).mean(axis=0) / float(height * width) ** 2
    ky = np.fft.fftfreq(height)[:, None]  # cycles per sample
    kx = np.fft.fftfreq(width)[None, :]
    k = np.rint(n * np.sqrt(kx**2 + ky**2)).astype(np.int64)
    kmax = n // 2
    inside = (k >= 1) & (k <= kmax)
    sums = np.bincount(k[inside], weights=power[inside], minlength=kmax + 1)[1:]
    if reduce == "sum":
        return np.arange(1, kmax + 1), sums
    counts = np.bincount(k[inside], minlength=kmax + 1)[1:]
    return np.arange(1, kmax + 1), sums / np.maximum(counts, 1)


def power_bands(n, scale):
    """The integer wavenumbers of each band of `BAND_EDGES` for frames of `N = n` points and an LR `scale`.

    `k_n = N / (2 scale)` is the LR grid's Nyquist wavenumber (in `radial_power_spectrum`'s
    cycles per `N` grid lengths). "power_near" is `[k_n, 2.5 k_n]`, "power_mid" `(2.5 k_n, 5 k_n]`,
    "power_far" `(5 k_n, N // 2]`, all capped at `N // 2`, the highest wavenumber of the spectrum:
    for the demo's 64-point frames at scale 8, 4-10, 11-20 and 21-32.

    Returns:
        {name: (first, last)} inclusive ints; `first > last` for a band above `N // 2` (empty).
    """
    if int(n) < 2 or int(scale) < 1:
        raise ValueError(
            f"power bands need frames of at least 2 points and a scale >= 1. Received: n={n}, scale={scale}"
        )
    nyquist = n / (2.0 * scale)
    bands, first = {}, int(np.ceil(nyquist))
    for name, edge in BAND_EDGES.items():
        last = n // 2 if math.isinf(edge) else int(np.floor(edge * nyquist))
        bands[name] = (first, min(last, n // 2))
        first = last + 1
    return bands


def band_power_ratios(wavenumbers, power, truth, bands):
    """Per band, the power of a spectrum summed over the band's wavenumbers over the truth's sum.

    Args:
        wavenumbers: the spectrum's wavenumbers (`radial_power_spectrum`'s first output).
        power, truth: a method's and the truth's spectra on those wavenumbers.
        bands: {name: (first, last)} inclusive, as `power_bands` returns.

    Returns:
        {name: ratio}: 1 where the method has the truth's variance at those scales, below 1
        where it lacks texture; NaN for an empty band (or no power in either), inf where only
        the truth has none.
    """
    k = np.asarray(wavenumbers)
    power = np.asarray(power, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if not k.shape == power.shape == truth.shape:
        raise ValueError(
            "`wavenumbers`, `power` and `truth` must have the same shape. "
            f"Received: {k.shape}, {power.shape}, {truth.shape}"
        )
    ratios = {}
    for name, (first, last) in bands.items():
        inside = (k >= first) & (k <= last)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios[name] = float(power[inside].sum() / truth[inside].sum()) if inside.any() else float("nan")
    return ratios
