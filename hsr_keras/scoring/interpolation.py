"""Interpolation baselines: bilinear, bicubic and Lanczos-3 upsampling by separable matrices.

Two placements of the low-resolution (LR) samples are offered, and they differ by 3.5 HR
cells on the paper's grids:

* **Aligned** (`upsample_aligned`, `upsample_strided`): interpolate from the LR points' true
  coordinates onto the HR grid. The paper's LR field is the HR field sampled with stride 8,
  so LR sample `j` sits on HR cell `8 j`; the interpolated value on those cells equals the LR
  value exactly. Use these baselines to measure a model against.
* **Naive** (`upsample_resize`): what an image resize (`tf.image.resize`, PIL) does. It
  assumes each LR value is the average over a block of `scale` HR pixels and places it at
  the block centre: HR index `i` reads LR position `(i + 0.5) / scale - 0.5`. On a
  stride-sampled grid this shifts the field by `(scale - 1) / 2` HR cells (3.5 for 8x). It
  is kept to reproduce "interpolation" rows computed that way (as the paper's Table 3 seems
  to be), not as a fair baseline.

Kernels (`METHODS`): "bilinear" (triangle, 2 taps), "bicubic" (Keys cubic convolution with
`a = -0.5`, 4 taps; reproduces polynomials up to degree 2) and "lanczos" (Lanczos-3,
`sinc(x) sinc(x / 3)`, 6 taps, rows renormalised to sum to 1; it reproduces constants but
not exactly linear ramps: between samples it deviates from a ramp by up to about 2 % of the
LR spacing times the slope).

Edges: `interpolation_matrix` (and so the aligned functions) clamps kernel taps that fall
outside the source grid to the nearest edge sample (edge replication). Points outside the
range of LR coordinates, such as HR cells 57-63 beyond the last LR point 56 of a 64-point
stride-8 grid, are therefore extrapolated from replicated edge values (constant for
bilinear). `upsample_resize` instead drops out-of-range taps and renormalises the rest, as
`tf.image.resize` does (for bilinear the two rules agree).

Everything here is numpy; the matrices are small (`[H, h]`, `[W, w]`) and applied with
`einsum`.
"""

import numpy as np

METHODS = ("bilinear", "bicubic", "lanczos")

_RADIUS = {"bilinear": 1, "bicubic": 2, "lanczos": 3}
_SNAP = 1e-9  # positions this close to a source index are put on it


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")


def _kernel(method, x):
    x = np.abs(x)
    if method == "bilinear":
        return np.maximum(1.0 - x, 0.0)
    if method == "bicubic":
        a = -0.5
        return np.where(
            x <= 1.0,
            ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
            np.where(x < 2.0, ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a, 0.0),
        )
    # np.sinc is ~1e-17, not 0, at non-zero integers: make LR points reproduce exactly
    on_sample = x == np.rint(x)
    return np.where(on_sample, (x == 0).astype(np.float64), np.where(x < 3.0, np.sinc(x) * np.sinc(x / 3.0), 0.0))


def _matrix(positions, n, method, edge):
    """Weights `[len(positions), n]` sampling a length-`n` signal at fractional indices."""
    _check_method(method)
    positions = np.asarray(positions, dtype=np.float64)
    nearest = np.rint(positions)
    positions = np.where(np.abs(positions - nearest) < _SNAP, nearest, positions)
    radius = _RADIUS[method]
    base = np.floor(positions).astype(np.int64)
    taps = base[:, None] + np.arange(1 - radius, radius + 1)[None, :]
    weights = _kernel(method, positions[:, None] - taps)
    if edge == "replicate":
        taps = np.clip(taps, 0, n - 1)
    else:  # "renormalize": out-of-range taps get no weight
        outside = (taps < 0) | (taps > n - 1)
        weights = np.where(outside, 0.0, weights)
        taps = np.clip(taps, 0, n - 1)
    rows = np.broadcast_to(np.arange(len(positions))[:, None], taps.shape)
    matrix = np.zeros((len(positions), n))
    np.add.at(matrix, (rows, taps), weights)
    return matrix / matrix.sum(axis=1, keepdims=True)


def interpolation_matrix(src_coords, dst_coords, method):
    """Interpolation weights from a regular 1-D source grid to arbitrary destinations.

    Args:
        src_coords: regularly spaced source coordinates (ascending or descending, e.g.
            ERA5's descending latitudes), length `n`.
        dst_coords: destination coordinates, length `m`, in the same units.
        method: one of `METHODS`.

    Returns:
        float64 array `[m, n]`; `matrix @ values` interpolates values given on the source
        grid. Rows sum to 1. Taps outside the source grid are clamped to the edge samples
        (edge replication), which also extrapolates destinations beyond the source range.

    Raises:
        ValueError: for an unknown method, an irregular or repeated source grid.
    """
    _check_method(method)
    src = np.asarray(src_coords, dtype=np.float64).ravel()
    dst = np.asarray(dst_coords, dtype=np.float64).ravel()
    if src.size == 0:
        raise ValueError("`src_coords` is empty.")
    if src.size == 1:
        return np.ones((dst.size, 1))
    step = (src[-1] - src[0]) / (src.size - 1)
    if step == 0 or np.max(np.abs(np.diff(src) - step)) > 1e-6 * abs(step):
        raise ValueError(
            "`src_coords` must be a regular grid (constant, non-zero spacing). "
            f"Received spacings from {np.diff(src).min()} to {np.diff(src).max()}"
        )
    return _matrix((dst - src[0]) / step, src.size, method, "replicate")


def _apply(lr, rows, cols):
    lr = np.asarray(lr)
    out_dtype = np.float64 if lr.dtype == np.float64 else np.float32
    out = np.einsum("Hh,...hw,Ww->...HW", rows, lr.astype(np.float64), cols, optimize=True)
    return out.astype(out_dtype, copy=False)


def _check_lr(lr):
    lr = np.asarray(lr)
    if lr.ndim < 2:
        raise ValueError(f"`lr` must be shaped [..., h, w]. Received: lr.shape={lr.shape}")
    return lr


def upsample_aligned(lr, lr_lat, lr_lon, hr_lat, hr_lon, method="bicubic"):
    """Interpolates LR fields from their true coordinates onto the HR grid.

    Args:
        lr: array `[..., h, w]` (e.g. `[days, T, h, w]`).
        lr_lat, lr_lon: coordinates of the LR rows (length `h`) and columns (`w`), regular.
        hr_lat, hr_lon: coordinates of the HR rows (`H`) and columns (`W`).
        method: one of `METHODS`. Defaults to "bicubic".

    Returns:
        array `[..., H, W]` (float64 for float64 input, float32 otherwise). Where an HR point
        coincides with an LR point the LR value is returned exactly; HR points beyond the LR
        range are extrapolated from replicated edge samples.
    """
    lr = _check_lr(lr)
    if lr.shape[-2:] != (np.size(lr_lat), np.size(lr_lon)):
        raise ValueError(
            "`lr` must be shaped [..., len(lr_lat), len(lr_lon)]. "
            f"Received: lr.shape={lr.shape}, len(lr_lat)={np.size(lr_lat)}, "
            f"len(lr_lon)={np.size(lr_lon)}"
        )
    rows = interpolation_matrix(lr_lat, hr_lat, method)
    cols = interpolation_matrix(lr_lon, hr_lon, method)
    return _apply(lr, rows, cols)


def upsample_strided(lr, scale, method="bicubic"):
    """Aligned upsampling of a stride-sampled LR grid, without coordinates.

    LR sample `j` is taken to sit on HR cell `j * scale` (the paper's LR = HR[::8, ::8]);
    the output has `h * scale` rows and `w * scale` columns, the last `scale - 1` of each
    extrapolated by edge replication. Same as `upsample_aligned` with `lr_lat = hr_lat[::scale]`.

    Args:
        lr: array `[..., h, w]`.
        scale: integer upsampling factor (8 in the paper).
        method: one of `METHODS`. Defaults to "bicubic".
    """
    lr = _check_lr(lr)
    scale = _check_scale(scale)
    h, w = lr.shape[-2:]
    rows = _matrix(np.arange(h * scale) / scale, h, method, "replicate")
    cols = _matrix(np.arange(w * scale) / scale, w, method, "replicate")
    return _apply(lr, rows, cols)


def _check_scale(scale):
    if int(scale) != scale or scale < 1:
        raise ValueError(f"`scale` must be a positive integer. Received: scale={scale}")
    return int(scale)


def upsample_resize(lr, scale, method="bicubic"):
    """Naive image-resize upsampling (pixel-centre convention), as `tf.image.resize` does.

    HR index `i` reads LR position `(i + 0.5) / scale - 0.5` (in LR index units); taps outside
    the LR grid are dropped and the remaining weights renormalised. This matches
    `tf.image.resize(..., method="bilinear" | "bicubic" | "lanczos3", antialias=False)`. On a
    stride-sampled grid it misplaces the field by `(scale - 1) / 2` HR cells; prefer
    `upsample_aligned` / `upsample_strided` as baselines.

    Args:
        lr: array `[..., h, w]`.
        scale: integer upsampling factor.
        method: one of `METHODS`. Defaults to "bicubic".

    Returns:
        array `[..., h * scale, w * scale]`.
    """
    lr = _check_lr(lr)
    scale = _check_scale(scale)
    _check_method(method)
    h, w = lr.shape[-2:]
    rows = _matrix((np.arange(h * scale) + 0.5) / scale - 0.5, h, method, "renormalize")
    cols = _matrix((np.arange(w * scale) + 0.5) / scale - 0.5, w, method, "renormalize")
    return _apply(lr, rows, cols)
