"""Grid checks and region selection: snapping, regular steps, longitudes across 0/360 and round the globe."""

import numpy as np
import pytest

from tfrecords_builder.contract.era5.grid import grid_spacing, is_global, longitude_selection, region_slice
from tfrecords_builder.contract.errors import BuildError

GLOBE = np.arange(0.0, 360.0, 0.25)  # ARCO-ERA5 and CDS global grids
GLOBE_180 = np.arange(-180.0, 180.0, 0.25)


def lon_values(coords, pieces):
    return np.concatenate([coords[piece] for piece in pieces])


@pytest.mark.parametrize(
    "bounds, first, last, pieces",
    [
        ((100, 120), 100.0, 120.0, 1),
        ((350, 10), 350.0, 370.0, 2),  # across Greenwich, ascending past 360
        ((-10, 10), -10.0, 10.0, 2),
        ((170, -170), 170.0, 190.0, 1),  # across the date line
        ((0, 359.75), 0.0, 359.75, 1),  # the whole globe
        ((-180, 179.75), -180.0, 179.75, 2),
        ((0, 360), 0.0, 359.75, 1),  # 360 is 0 again: each point once
    ],
)
def test_longitudes_of_a_global_grid_wrap_round(bounds, first, last, pieces):
    slices, lon = longitude_selection(GLOBE, bounds, 0.25, "g")
    assert (lon[0], lon[-1], len(slices)) == (first, last, pieces)
    np.testing.assert_allclose(np.diff(lon), 0.25)
    np.testing.assert_array_equal(lon_values(GLOBE, slices) % 360, lon % 360)


@pytest.mark.parametrize("bounds, first, last", [((350, 10), 350.0, 370.0), ((170, -170), 170.0, 190.0)])
def test_a_grid_from_minus_180_serves_bounds_in_0_to_360_and_back(bounds, first, last):
    slices, lon = longitude_selection(GLOBE_180, bounds, 0.25, "g")
    assert (lon[0], lon[-1]) == (first, last)
    np.testing.assert_array_equal(lon_values(GLOBE_180, slices) % 360, lon % 360)


def test_a_regional_grid_holds_a_region_across_0_only_if_it_covers_it():
    europe = np.arange(-20.0, 20.01, 0.25)
    slices, lon = longitude_selection(europe, (350, 10), 0.25, "europe.nc")
    assert slices == [slice(40, 121)] and (lon[0], lon[-1]) == (350.0, 370.0)
    with pytest.raises(
        BuildError, match=r"region longitude 330 to 10 lies outside the grid of europe.nc \(-20 to 20\)"
    ):
        longitude_selection(europe, (330, 10), 0.25, "europe.nc")
    assert not is_global(europe, 0.25) and is_global(GLOBE, 0.25)


def test_a_region_without_wrap_is_the_plain_slice():
    coords = np.arange(110.0, 115.01, 0.25)
    assert longitude_selection(coords, (111.02, 114.76), 0.25, "f")[0] == [
        region_slice(coords, (111, 114.75), 0.25, "longitude", "f")
    ]
    with pytest.raises(BuildError, match="longitude 109 to 112 lies outside the grid"):
        longitude_selection(coords, (109, 112), 0.25, "f")


def test_irregular_and_single_point_axes_are_errors():
    with pytest.raises(BuildError, match="not a regular grid"):
        grid_spacing(np.array([0.0, 0.25, 0.6]), "longitude", "f")
    with pytest.raises(BuildError, match="single latitude point"):
        grid_spacing(np.array([1.0]), "latitude", "f")
