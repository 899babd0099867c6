"""Patches over a domain: where they lie, what is dropped, and the errors for sizes that do not fit."""

import numpy as np
import pytest

from tfrecords_builder.contract.errors import BuildError
from tfrecords_builder.contract.patches import one_patch, patch_grid


def test_patches_tile_the_domain_from_the_south_west_and_drop_what_does_not_fill_one():
    grid = patch_grid(721, 1440, 8, 64)  # the globe at 0.25 degrees
    assert (len(grid.rows), len(grid.cols), grid.count) == (11, 22, 242)
    assert (grid.dropped_rows, grid.dropped_cols) == (721 - 704, 1440 - 1408)
    assert grid.origin(0) == (0, 0) and grid.origin(1) == (0, 64) and grid.origin(22) == (64, 0)


def test_cut_gives_each_patch_in_index_order_and_corners_are_their_first_cells():
    field = np.arange(2 * 20 * 36, dtype=np.float32).reshape(2, 20, 36)
    grid = patch_grid(20, 36, 4, 8, 12)
    assert (grid.rows, grid.cols, grid.dropped_rows, grid.dropped_cols) == ([0, 12], [0, 12, 24], 0, 4)
    patches = grid.cut(field)
    assert len(patches) == 6 and all(p.shape == (2, 8, 8) for p in patches)
    np.testing.assert_array_equal(patches[4], field[:, 12:20, 12:20])
    lat, lon = np.arange(20) * 0.25 - 5, np.arange(36) * 0.25 + 350
    assert grid.corners(lat, lon)[4] == [-2.0, 353.0]
    described = grid.describe(lat, lon)
    assert described["size"] == [8, 8] and described["stride"] == [12, 12] and described["count"] == 6
    assert (described["rows"], described["cols"], described["dropped_cols"]) == (2, 3, 4)


def test_no_patch_size_is_the_whole_domain_which_the_scale_must_divide():
    assert patch_grid(16, 24, 8) == one_patch(16, 24)
    assert one_patch(16, 24).count == 1 and one_patch(16, 24).cut(np.zeros((1, 16, 24)))[0].shape == (1, 16, 24)
    with pytest.raises(BuildError, match="15x16 grid points, not divisible by scale 8"):
        patch_grid(15, 16, 8)


@pytest.mark.parametrize(
    "size, stride, message",
    [
        (60, None, "patch size 60 is not a positive multiple of the scale 8"),
        (64, 36, "patch stride 36 is not a positive multiple of the scale 8"),
        (128, None, "a patch of 128x128 grid points is larger than the domain of 100x200"),
    ],
)
def test_patch_sizes_that_do_not_fit_are_errors(size, stride, message):
    with pytest.raises(BuildError, match=message):
        patch_grid(100, 200, 8, size, stride)


def test_patch_coords_cut_the_domain_grid_and_bands_name_the_centre_latitude():
    from tfrecords_builder.contract.patches import latitude_band, patch_coords

    lat = [20 + 0.25 * i for i in range(64)]
    lon = [350 + 0.25 * i for i in range(96)]  # across 0/360: longitudes keep ascending past 360
    manifest = {
        "scale": 8,
        "patches": {"size": [32, 32], "stride": [32, 32], "cols": 3},
        "grid": {"lat": lat, "lon": lon, "lr_lat": lat[::8], "lr_lon": lon[::8]},
    }
    coords = patch_coords(manifest, 4)  # patch row 1, column 1
    assert coords["lat"] == lat[32:64] and coords["lon"] == lon[32:64]
    assert coords["lr_lat"] == lat[32:64:8] and coords["lr_lon"] == lon[32:64:8]
    assert [latitude_band(x) for x in (-89.9, -45, -0.1, 0, 29.9, 30, 75, 90)] == [
        "90S-60S", "60S-30S", "30S-0", "0-30N", "0-30N", "30N-60N", "60N-90N", "60N-90N",
    ]  # fmt: skip
