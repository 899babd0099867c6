"""Tests of `hsr_keras.serving.tiling`: blended tiles reproduce a pointwise model, weights sum to one, fine grids."""

import numpy as np
from test_export import SCALE, make_manifest

from hsr_keras.serving import tiling
from hsr_keras.serving.saved_model import model_info


def test_tiles_blend_to_one_for_a_pointwise_model():
    def pointwise(x):  # every HR cell depends only on its own LR point: tiling must not matter
        return np.repeat(np.repeat(x * 1.5 + 3.0, SCALE, axis=2), SCALE, axis=3)

    lr = np.random.default_rng(0).uniform(0, 140, (3, 23, 37)).astype("float32")
    expected = pointwise(lr[None, ..., None])[0, ..., 0]
    for tile, overlap, wrap in ((5, 2, False), (8, 4, False), (8, 0, False), (7, 6, True), (64, 3, True)):
        got = tiling.predict_field(pointwise, lr, SCALE, tile=tile, overlap=overlap, batch_size=3, wrap=wrap)
        np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=f"tile {tile}, overlap {overlap}")


def test_blend_weights_drop_tile_edges_and_sum_to_one():
    # Two 16-point tiles overlapping by 4 LR points: [0, 16) and [12, 28).
    left = tiling.ramp(16 * SCALE, SCALE, 4, left=False, right=True)
    right = tiling.ramp(16 * SCALE, SCALE, 4, left=True, right=False)
    margin = tiling.blend_margin(4) * SCALE
    assert margin == SCALE
    np.testing.assert_allclose(left[-4 * SCALE :] + right[: 4 * SCALE], 1.0)
    assert (left[-margin:] == 0).all() and (right[:margin] == 0).all()
    assert (left[: 12 * SCALE] == 1).all() and (right[4 * SCALE :] == 1).all()


def test_fine_coords_for_block_means():
    lr = 30.875 + 2.0 * np.arange(3)  # block centres of a 0.25 deg grid starting at 30.0
    offset = model_info(make_manifest(degradation="block_mean"))["grid"]["hr_offset_cells"]
    np.testing.assert_allclose(tiling.fine_coords(lr, SCALE, offset), 30.0 + 0.25 * np.arange(24))
    np.testing.assert_allclose(tiling.fine_coords(lr, SCALE), 30.875 + 0.25 * np.arange(24))
