"""Patches: a large domain, up to the whole globe, cut into equal HR squares, one sample each.

`--patch-size 64 --patch-stride 64` lays 64 x 64-cell patches over the selected domain from
its south-west corner, a patch every 64 cells north and east; rows and columns that do not
fill a patch are dropped and counted. A stride larger than the size leaves gaps between the
patches: the manifest and the build's summary say how much of the domain the patches cover.
Patch k is in patch row k // columns (from the south) and patch column k % columns (from the
west); its corner is its first HR cell, south-west.

Without `--patch-size` the whole domain is one patch: the paper's single-region build, whose
records and manifest facts are those of a build before patches existed.

The stride must be a multiple of the scale, so every patch's LR cells lie on one LR grid of
the domain.
"""

from typing import NamedTuple

from tfrecords_builder.contract.errors import BuildError


class PatchGrid(NamedTuple):
    """Where the patches lie in the domain's HR grid; `rows`/`cols` are each patch row's/column's first cell."""

    height: int  # HR cells of a patch, north-south
    width: int  # and west-east
    stride: tuple  # cells from one patch to the next, north-south and west-east
    rows: list
    cols: list
    dropped_rows: int  # domain rows north of the last patch row, and columns east of the last patch column
    dropped_cols: int

    @property
    def count(self):
        return len(self.rows) * len(self.cols)

    def origin(self, index):
        """(first row, first column) of patch `index` in the domain."""
        return self.rows[index // len(self.cols)], self.cols[index % len(self.cols)]

    def cut(self, field):
        """Patch `index`'s part of `field` [..., H, W] for each index in order (views, not copies)."""
        patches = []
        for index in range(self.count):
            row, col = self.origin(index)
            patches.append(field[..., row : row + self.height, col : col + self.width])
        return patches

    def coverage(self):
        """(grid points in some patch, grid points of the domain): fewer when rows or columns are dropped or the stride exceeds the size."""

        def axis(starts, size, stride, dropped):
            return (len(starts) - 1) * min(stride, size) + size, starts[-1] + size + dropped

        rows, height = axis(self.rows, self.height, self.stride[0], self.dropped_rows)
        cols, width = axis(self.cols, self.width, self.stride[1], self.dropped_cols)
        return rows * cols, height * width

    def corners(self, lat, lon):
        """[[lat, lon]] of each patch's first (south-west) HR cell."""
        return [[float(lat[row]), float(lon[col])] for row, col in map(self.origin, range(self.count))]

    def describe(self, lat, lon):
        """The manifest's `patches`: size, stride, patch rows and columns, corners, what they leave out."""
        covered, cells = self.coverage()
        return {
            "size": [self.height, self.width],
            "stride": list(self.stride),
            "rows": len(self.rows),
            "cols": len(self.cols),
            "count": self.count,
            "corners": self.corners(lat, lon),
            "dropped_rows": self.dropped_rows,
            "dropped_cols": self.dropped_cols,
            "dropped_cells": cells - covered,
            "coverage": round(covered / cells, 6),
        }


def _starts(cells, size, stride):
    starts = list(range(0, cells - size + 1, stride))
    return starts, cells - (starts[-1] + size)


def check_divisible(height, width, scale):
    if height % scale or width % scale:
        raise BuildError(
            f"the region is {height}x{width} grid points, not divisible by scale {scale}: "
            "change the latitude/longitude bounds or the scale"
        )


def one_patch(height, width):
    """The whole domain as one patch."""
    return PatchGrid(height, width, (height, width), [0], [0], 0, 0)


def patch_grid(height, width, scale, size=None, stride=None):
    """The `PatchGrid` of a domain of height x width HR cells; a `BuildError` for a size or stride that does not fit.

    `size` None: the whole domain, which the scale must divide. `stride` None: `size`.
    """
    if size is None:
        check_divisible(height, width, scale)
        return one_patch(height, width)
    stride = size if stride is None else stride
    if size < 1 or size % scale:
        raise BuildError(f"patch size {size} is not a positive multiple of the scale {scale}")
    if stride < 1 or stride % scale:
        raise BuildError(f"patch stride {stride} is not a positive multiple of the scale {scale}")
    if size > height or size > width:
        raise BuildError(f"a patch of {size}x{size} grid points is larger than the domain of {height}x{width}")
    rows, dropped_rows = _starts(height, size, stride)
    cols, dropped_cols = _starts(width, size, stride)
    return PatchGrid(size, size, (stride, stride), rows, cols, dropped_rows, dropped_cols)


LATITUDE_BANDS = (-90, -60, -30, 0, 30, 60, 90)
"""Edges of the latitude bands an evaluation of a patch build is broken down by."""


def patch_coords(manifest, index):
    """{"lat", "lon", "lr_lat", "lr_lon"} of patch `index` of a build, cut from its manifest's grid."""
    patches, grid, scale = manifest["patches"], manifest["grid"], int(manifest["scale"])
    height, width = patches["size"]
    row = patches["stride"][0] * (index // patches["cols"])
    col = patches["stride"][1] * (index % patches["cols"])
    return {
        "lat": grid["lat"][row : row + height],
        "lon": grid["lon"][col : col + width],
        "lr_lat": grid["lr_lat"][row // scale : (row + height) // scale],
        "lr_lon": grid["lr_lon"][col // scale : (col + width) // scale],
    }


def latitude_band(lat):
    """The `LATITUDE_BANDS` band holding latitude `lat`, e.g. '30N-60N', '30S-0', '0-30N'."""

    def name(edge):
        return "0" if edge == 0 else f"{abs(edge)}{'N' if edge > 0 else 'S'}"

    for low, high in zip(LATITUDE_BANDS, LATITUDE_BANDS[1:]):
        if lat < high or high == LATITUDE_BANDS[-1]:
            return f"{name(low)}-{name(high)}"
