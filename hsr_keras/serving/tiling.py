"""Super-resolving a field of any size in overlapping tiles, and the fine grid of the result.

A field is cut into tiles of `tile` x `tile` LR points overlapping by `overlap` points, so
memory stays bounded on any region. Where tiles overlap, each drops the outer quarter of the
overlap (at least 1 LR point for overlaps of 2 or more: the cells that see the tile's edge) and
the rest is cross-faded linearly (weights summing to one), so no seams show; a region no larger
than one tile is predicted in one piece, exactly as the model does.
"""

import numpy as np

from tfrecords_builder.contract.errors import InputError

DEFAULT_TILE = 16
DEFAULT_OVERLAP = 4
DEFAULT_BATCH = 8


class TileShapeError(InputError):
    """The model returned tiles of another shape than its input and scale imply (a model of another scale)."""


def fine_coords(lr_coords, scale, offset_cells=0.0):
    """Fine-grid coordinates of an ascending regular LR axis: scale*n points at spacing/scale.

    Fine point `scale*k + j` lies at `lr_coords[k] + (j + offset_cells) * spacing / scale`.
    """
    lr_coords = np.asarray(lr_coords, dtype=np.float64)
    spacing = float(np.median(np.diff(lr_coords))) if lr_coords.size > 1 else 0.0
    fine = spacing / scale
    coords = lr_coords[0] + (np.arange(scale * lr_coords.size) + offset_cells) * fine
    return np.round(coords, 6)


def window_starts(n, tile, overlap):
    """Start indices of windows of `min(tile, n)` points covering `n` points, overlapping by >= `overlap`."""
    if n <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


def blend_margin(overlap):
    """LR points discarded at a tile's inner edges: about a quarter of the overlap (1 for 2 to 5)."""
    return (overlap + 2) // 4


def ramp(length, scale, overlap, left, right):
    """A tile's weights along one axis (HR cells), for inner edges on the `left` and/or `right`.

    At an inner edge the outer `blend_margin(overlap)` LR points get weight 0 (they see the
    tile's edge: zero padding, and an interpolating skip clamped beyond the last LR point),
    then the weight rises linearly to 1 across the rest of the overlap. Two neighbours that
    overlap by `overlap` LR points get weights summing to one everywhere in the overlap.
    """
    weights = np.ones(length)
    if overlap <= 0:
        return weights
    margin = blend_margin(overlap) * scale
    width = (overlap * scale) - 2 * margin
    distance = np.arange(length, dtype=np.float64)  # HR cells from the left edge
    if width > 0:
        up = np.clip((distance - margin + 0.5) / width, 0.0, 1.0)
    else:
        up = (distance >= margin).astype(np.float64)
    if left:
        weights = np.minimum(weights, up)
    if right:
        weights = np.minimum(weights, up[::-1])
    return weights


# Over 40 lines: one loop cuts every input's tiles alike, so they cannot drift apart.
def predict_field(
    run, lr, scale, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP, batch_size=DEFAULT_BATCH, wrap=False, extras=None
):
    """Super-resolve one sequence `lr` [T, h, w] (%RH, latitude ascending) in blended tiles.

    Args:
        run: model function, numpy [B, T, h, w, 1] -> [B, T, s*h, s*w, 1]; with `extras`, of
            the dict {"lr": that, and each extra input's tiles}.
        lr: float32 [T, h, w].
        scale: the model's factor.
        tile: LR points per tile side.
        overlap: LR points shared by neighbouring tiles: `blend_margin(overlap)` dropped at
            each inner edge, the rest cross-faded linearly.
        batch_size: tiles per model call.
        wrap: the longitude axis is a full circle: pad it periodically by `overlap` points.
        extras: the model's extra inputs for the sequence, by signature name: `predictors`
            [T, h, w, P] (LR grid), `time` [T] (seconds since 1970), `static` [s*h, s*w, S]
            (HR grid); each tile gets its part of them.

    Returns:
        float32 [T, s*h, s*w].
    """
    lr = np.asarray(lr, dtype=np.float32)
    extras = dict(extras or {})
    pad = min(overlap, lr.shape[2]) if wrap else 0
    if pad:
        lr = _wrap(lr, pad, 2)
        for name, axis, cells in (("predictors", 2, pad), ("static", 1, scale * pad)):
            if name in extras:
                extras[name] = _wrap(extras[name], cells, axis)
    steps, h, w = lr.shape
    th, tw = min(tile, h), min(tile, w)
    windows = [(i, j) for i in window_starts(h, tile, overlap) for j in window_starts(w, tile, overlap)]
    total = np.zeros((steps, scale * h, scale * w), np.float64)
    weight = np.zeros((scale * h, scale * w), np.float64)
    for first in range(0, len(windows), batch_size):
        chunk = windows[first : first + batch_size]
        batch = np.stack([lr[:, i : i + th, j : j + tw] for i, j in chunk])[..., None]
        if extras:
            batch = {"lr": batch, **_extra_tiles(extras, chunk, th, tw, scale)}
        hr = np.asarray(run(batch))
        expected = (len(chunk), steps, scale * th, scale * tw, 1)
        if hr.shape != expected:
            shape = batch["lr"].shape if extras else batch.shape
            raise TileShapeError(
                f"the model returned shape {hr.shape} for input {shape}; expected {expected}: "
                f"is it a model of scale {scale}?"
            )
        for (i, j), tile_hr in zip(chunk, hr[..., 0]):
            wy = ramp(scale * th, scale, overlap, i > 0, i + th < h)
            wx = ramp(scale * tw, scale, overlap, j > 0, j + tw < w)
            window = np.outer(wy, wx)
            rows, cols = slice(scale * i, scale * (i + th)), slice(scale * j, scale * (j + tw))
            total[:, rows, cols] += window * tile_hr
            weight[rows, cols] += window
    if not (weight > 0).all():  # cannot happen for 0 <= overlap < tile: a bug, not bad input
        raise RuntimeError(f"tiles of {tile} with overlap {overlap} leave cells of a {h}x{w} field uncovered")
    out = (total / weight).astype(np.float32)
    if pad:
        out = out[:, :, scale * pad : -scale * pad]
    return out


def _wrap(array, cells, axis):
    """`array` padded periodically by `cells` on both sides of `axis` (a full longitude circle)."""
    array = np.asarray(array)
    head = np.take(array, range(array.shape[axis] - cells, array.shape[axis]), axis=axis)
    tail = np.take(array, range(cells), axis=axis)
    return np.concatenate([head, array, tail], axis=axis)


def _extra_tiles(extras, chunk, th, tw, scale):
    """The extra inputs of a batch of tiles at LR corners `chunk`, cut as the LR field's tiles are."""
    tiles = {}
    if "predictors" in extras:
        tiles["predictors"] = np.stack([extras["predictors"][:, i : i + th, j : j + tw] for i, j in chunk])
    if "time" in extras:
        tiles["time"] = np.tile(np.asarray(extras["time"], dtype=np.int64), (len(chunk), 1))
    if "static" in extras:
        static = extras["static"]
        rows, cols = scale * th, scale * tw
        tiles["static"] = np.stack(
            [static[scale * i : scale * i + rows, scale * j : scale * j + cols] for i, j in chunk]
        )
    return tiles
