"""Regular latitude-longitude grids: their checks and the points of a region, across 0/360 too.

Latitude is an interval of the grid. Longitude is a circle: a region may run across the
Greenwich or the date-line meridian (`--lon 350 10`) or around the whole globe, and a grid
in -180..180 serves a region given in 0..360 and back. The region's longitudes always ascend
from its western bound (350, ..., 359.75, 360, ..., 370), so steps stay constant and block
means stay correct; take them modulo 360 for a map.
"""

import numpy as np

from tfrecords_builder.contract.errors import BuildError

# A grid is regular when every step is within this fraction of the median step.
GRID_TOLERANCE = 1e-3
# Region bounds snap to grid points that lie within this fraction of a grid step outside them.
SNAP_TOLERANCE = 0.1
FULL_CIRCLE = 360.0


def grid_spacing(coords, axis, name):
    """The constant step of an ascending axis; a `BuildError` when the axis is not a regular grid."""
    if coords.size < 2:
        raise BuildError(f"{name} has a single {axis} point; a grid needs at least two")
    steps = np.diff(coords)
    spacing = float(np.median(steps))
    if spacing <= 0 or np.max(np.abs(steps - spacing)) > GRID_TOLERANCE * spacing:
        raise BuildError(
            f"{axis} of {name} is not a regular grid (steps from {steps.min():g} to {steps.max():g} degrees)"
        )
    return spacing


def region_slice(coords, bounds, spacing, axis, name):
    """Index slice of the grid points inside inclusive `bounds`, snapping bounds to nearby points."""
    lo, hi = bounds
    tol = SNAP_TOLERANCE * spacing
    if lo < coords[0] - tol or hi > coords[-1] + tol:
        raise BuildError(
            f"region {axis} {lo:g} to {hi:g} lies outside the grid of {name} ({coords[0]:g} to {coords[-1]:g})"
        )
    inside = np.flatnonzero((coords >= lo - tol) & (coords <= hi + tol))
    if inside.size == 0:
        raise BuildError(f"region {axis} {lo:g} to {hi:g} holds no grid point of {name}")
    return slice(int(inside[0]), int(inside[-1]) + 1)


def is_global(coords, spacing):
    """Whether an ascending longitude axis closes the circle (its last step leads back to its first point)."""
    return abs(len(coords) * spacing - FULL_CIRCLE) <= SNAP_TOLERANCE * spacing


def longitude_selection(coords, bounds, spacing, name):
    """(index slices into `coords`, the region's ascending longitudes) for bounds (west, east) in degrees east.

    West above east runs across 0/360 (350, 10: 20 degrees). One slice, unless the region
    crosses the grid's own seam; then two, read one after the other.
    """
    west, east = bounds
    width = east - west if east >= west else east - west + FULL_CIRCLE
    tol = SNAP_TOLERANCE * spacing
    for shift in (0.0, -FULL_CIRCLE, FULL_CIRCLE):  # the region as it is, or a turn away, inside the grid
        start = west + shift
        if start >= coords[0] - tol and start + width <= coords[-1] + tol:
            piece = region_slice(coords, (start, start + width), spacing, "longitude", name)
            return [piece], coords[piece] - shift
    if not is_global(coords, spacing) or width > FULL_CIRCLE:
        raise BuildError(
            f"region longitude {west:g} to {east:g} lies outside the grid of {name} ({coords[0]:g} to {coords[-1]:g})"
        )
    turns = np.floor((west - coords[0] + tol) / FULL_CIRCLE)  # west, moved into the grid's first turn
    start = west - turns * FULL_CIRCLE
    unrolled = np.concatenate([coords, coords + FULL_CIRCLE])
    piece = region_slice(unrolled, (start, start + width), spacing, "longitude", name)
    n = len(coords)
    first, stop = piece.start, min(piece.stop, piece.start + n)  # no point twice round a whole circle
    if first >= n:  # west lay between the grid's last point and its first point a turn later
        first, stop = first - n, stop - n
    pieces = [slice(first, min(stop, n)), slice(0, stop - n)] if stop > n else [slice(first, stop)]
    return pieces, unrolled[first:stop] + turns * FULL_CIRCLE
