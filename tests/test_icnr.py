"""ICNR: every sub-pixel position of a freshly initialised upsampling starts alike."""

import keras
import numpy as np
import pytest

from hsr_keras.layers import ICNR, FrameConv2D, PixelShuffle
from hsr_keras.models.networks import build_generator


def test_the_kernel_repeats_one_draw_for_every_position_in_pixel_shuffle_order():
    kernel = np.asarray(ICNR(2, initializer=keras.initializers.RandomNormal(seed=1))((3, 3, 5, 12)))
    channels = 3  # 12 outputs = 4 positions x 3 channels
    for position in range(1, 4):
        np.testing.assert_array_equal(
            kernel[..., position * channels : (position + 1) * channels], kernel[..., :channels]
        )
    assert np.std(kernel[..., :channels]) > 0


def test_a_convolution_then_pixel_shuffle_starts_as_nearest_neighbour_upsampling():
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 6, 4)).astype("float32")
    conv = FrameConv2D(4 * 3, 3, padding="same", kernel_initializer=ICNR(2))  # biases start at 0, alike
    out = np.asarray(PixelShuffle(2)(conv(x)))
    first = out[:, :, ::2, ::2]  # position (0, 0) of every LR cell
    np.testing.assert_allclose(out, np.repeat(np.repeat(first, 2, axis=2), 2, axis=3), rtol=1e-6, atol=1e-6)


def test_a_generator_with_icnr_saves_and_loads(tmp_path):
    generator = build_generator(scale=4, filters=8, num_res_blocks=1, upsample_filters=8, num_post_blocks=0, icnr=True)
    kernel = np.asarray(generator.get_layer("upsample_0_conv").kernel)
    np.testing.assert_array_equal(kernel[..., 8:16], kernel[..., :8])
    generator.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras")
    x = np.random.default_rng(1).uniform(0, 100, (1, 2, 4, 4, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), generator.predict(x, verbose=0), rtol=1e-5)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="divisible by scale"):
        ICNR(2)((3, 3, 5, 6))
    with pytest.raises(ValueError, match="scale"):
        ICNR(1)
    with pytest.raises(ValueError, match="icnr"):
        build_generator(scale=4, filters=8, icnr="yes")
