"""Tests of hsr_keras.models.srgan: the SRGAN generator and discriminator."""

import keras
import numpy as np
import pytest
from layer_testing import frame_convs_as_conv3d

from hsr_keras.layers import FrameConv2D
from hsr_keras.models.srgan import build_srgan_discriminator, build_srgan_generator

TINY = dict(filters=8, num_res_blocks=2, mean=50.0, std=25.0)


def rh(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 140, size=shape).astype("float32")


@pytest.mark.parametrize("steps", [1, 8])
@pytest.mark.parametrize("scale", [4, 8])
def test_generator_shapes(steps, scale):
    model = build_srgan_generator(scale=scale, **TINY)
    assert model.input.shape == (None, None, None, None, 1)
    for h, w in [(4, 4), (3, 5)]:
        y = keras.ops.convert_to_numpy(model(rh((2, steps, h, w, 1)), training=False))
        assert y.shape == (2, steps, scale * h, scale * w, 1)
        assert y.dtype == np.float32 and np.all(np.isfinite(y))


@pytest.mark.parametrize("steps", [1, 8])
def test_discriminator_shapes(steps):
    model = build_srgan_discriminator(filters=4, num_stages=3, mean=50.0, std=25.0)
    for size in (16, 20):
        score = keras.ops.convert_to_numpy(model(rh((3, steps, size, size, 1)), training=False))
        assert score.shape == (3, 1) and score.dtype == np.float32


def test_architecture():
    gen = build_srgan_generator(scale=8, filters=8, num_res_blocks=3)
    names = [layer.name for layer in gen.layers]
    assert sum(n.startswith("res_block_") and n.endswith("_add") for n in names) == 3
    assert "long_skip" in names
    assert sum(n.endswith("_shuffle") for n in names) == 3  # three x2 sub-pixel stages
    assert any(isinstance(layer, keras.layers.PReLU) for layer in gen.layers)
    disc = build_srgan_discriminator(filters=4, num_stages=4)
    convs = [layer for layer in disc.layers if isinstance(layer, FrameConv2D)]
    assert [c.filters for c in convs] == [4, 4, 8, 8, 16, 16, 32, 32]
    assert [c.strides[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in disc.layers) == 7
    assert disc.get_layer("dense").units == 64  # 16 * filters


def test_global_skip_is_aligned_interpolation_plus_the_network():
    """With its output convolution zeroed, the generator returns the aligned skip upsampling."""
    from hsr_keras.scoring.interpolation import upsample_strided

    model = build_srgan_generator(scale=4, global_skip=True, **TINY)
    conv = model.get_layer("output_conv")
    conv.set_weights([np.zeros_like(w) for w in conv.get_weights()])
    x = rh((1, 2, 4, 5, 1))
    y = keras.ops.convert_to_numpy(model(x, training=False))[..., 0]
    np.testing.assert_allclose(y, upsample_strided(x[..., 0], 4, "bilinear"), atol=1e-3)


def test_networks_equal_their_conv3d_form():
    """The per-frame convolutions as Conv2D (time folded into the batch) change no output."""
    for model, x in (
        (build_srgan_generator(scale=4, global_skip=True, **TINY), rh((2, 3, 4, 5, 1))),
        (build_srgan_discriminator(filters=4, num_stages=2, mean=50.0, std=25.0), rh((2, 3, 16, 12, 1))),
    ):
        for training in (False, True):
            new = keras.ops.convert_to_numpy(model(x, training=training))
            with frame_convs_as_conv3d():
                old = keras.ops.convert_to_numpy(model(x, training=training))
            np.testing.assert_allclose(new, old, rtol=1e-6, atol=1e-6 * np.abs(old).max())


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        build_srgan_generator(scale=3)
    with pytest.raises(ValueError, match="filters"):
        build_srgan_generator(filters=0)
    with pytest.raises(ValueError, match="num_stages"):
        build_srgan_discriminator(num_stages=0)


def test_save_and_reload(tmp_path):
    x = rh((1, 8, 4, 4, 1))
    for model in (
        build_srgan_generator(scale=4, **TINY),
        build_srgan_discriminator(filters=4, num_stages=2, mean=50.0, std=25.0),
    ):
        inputs = x if model.name.endswith("generator") else rh((1, 8, 16, 16, 1))
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        reloaded = keras.saving.load_model(path, compile=False)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(reloaded(inputs, training=False)),
            keras.ops.convert_to_numpy(model(inputs, training=False)),
            rtol=1e-5,
            atol=1e-4,
        )


def test_trains_with_the_gan_loss(tmp_path):
    """One fit step of the SRGAN pair through the project's GAN model moves both networks."""
    from hsr_keras.models.wgan import SuperResolutionGAN

    gen = build_srgan_generator(scale=4, **TINY)
    disc = build_srgan_discriminator(filters=4, num_stages=2, mean=50.0, std=25.0)
    gan = SuperResolutionGAN(gen, disc, data_std=25.0, seed=0)
    gan.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3), loss="gan")
    before = [w.copy() for w in (gen.get_weights()[0], disc.get_weights()[0])]
    history = gan.fit(rh((4, 2, 4, 4, 1)), rh((4, 2, 16, 16, 1), 1), batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["g_loss"][-1]) and np.isfinite(history.history["d_loss"][-1])
    assert not np.allclose(before[0], gen.get_weights()[0])
    assert not np.allclose(before[1], disc.get_weights()[0])
