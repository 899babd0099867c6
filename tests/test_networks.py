"""Tests of hsr_keras.models.networks: shapes, arguments, ablations, saving, precision, FLOPs."""

import os

import keras
import numpy as np
import pytest
from layer_testing import frame_convs_as_conv3d

from hsr_keras.layers import ConvGRU, FrameConv2D, ResidualBlock
from hsr_keras.models.networks import build_critic, build_generator, build_networks, build_srcnn, count_flops
from hsr_keras.scoring.interpolation import upsample_strided

TINY_GENERATOR = dict(filters=8, num_res_blocks=1, upsample_filters=4, num_post_blocks=1, se_ratio=4)
TINY_CRITIC = dict(filters=8, num_res_blocks=1, num_post_blocks=1)


def rh(shape, seed=0):
    """Random relative humidity in %RH."""
    return np.random.default_rng(seed).uniform(0, 140, size=shape).astype("float32")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def layer_types(model):
    """Class names of the model's layers and of the sub-layers of its residual blocks."""
    names = {type(layer).__name__ for layer in model.layers}
    for layer in model.layers:
        if isinstance(layer, ResidualBlock):
            names |= {type(sub).__name__ for sub in (layer.cbam, layer.projection) if sub}
    return names


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("scale", [2, 4, 8, 16])
def test_generator_shapes(scale):
    model = build_generator(scale=scale, mean=50.0, std=25.0, **TINY_GENERATOR)
    assert model.input.shape == (None, None, None, None, 1)
    assert model.output.shape == (None, None, None, None, 1)
    for shape in [(1, 1, 3, 4, 1), (2, 8, 4, 4, 1), (1, 8, 5, 2, 1)]:
        b, t, h, w, _ = shape
        expected = (b, t, scale * h, scale * w, 1)
        assert tuple(model.compute_output_spec(keras.KerasTensor(shape)).shape) == expected
        y = numpy(model(rh(shape), training=False))
        assert y.shape == expected and np.all(np.isfinite(y))


def test_critic_shapes():
    model = build_critic(mean=50.0, std=25.0, **TINY_CRITIC)
    assert model.output.shape == (None, 1)
    for shape in [(1, 1, 8, 8, 1), (2, 8, 16, 12, 1), (1, 8, 64, 64, 1), (2, 1, 5, 3, 1)]:
        y = numpy(model(rh(shape)))
        assert y.shape == (shape[0], 1) and np.all(np.isfinite(y))


@pytest.mark.parametrize("scale", [2, 4, 8, 16])
def test_srcnn_shapes(scale):
    model = build_srcnn(scale=scale, filters=(8, 4), mean=50.0, std=25.0)
    for shape in [(1, 1, 3, 2, 1), (2, 8, 4, 4, 1)]:
        b, t, h, w, _ = shape
        y = numpy(model(rh(shape)))
        assert y.shape == (b, t, scale * h, scale * w, 1)


def test_srcnn_convolves_the_aligned_bicubic_field():
    """With every convolution a pass-through, SRCNN is aligned bicubic interpolation."""
    model = build_srcnn(scale=8, filters=(1, 1), kernel_sizes=(9, 5, 5))
    for name in ("conv1", "conv2", "conv3"):
        kernel, bias = model.get_layer(name).get_weights()
        centre = np.zeros_like(kernel)
        centre[kernel.shape[0] // 2, kernel.shape[1] // 2, 0, 0] = 1.0
        model.get_layer(name).set_weights([centre, np.zeros_like(bias)])
    # A smooth positive field: bicubic overshoot stays above 0, so the ReLUs pass it.
    y, x = np.meshgrid(np.arange(6.0), np.arange(5.0), indexing="ij")
    lr = (50 + 10 * np.sin(y / 2) + 5 * np.cos(x / 3)).astype("float32")[None, None, :, :, None]
    expected = upsample_strided(lr[..., 0], 8, "bicubic")[..., None]
    np.testing.assert_allclose(numpy(model(lr)), expected, atol=1e-4)


def test_critic_downsamples_twice():
    model = build_critic(**TINY_CRITIC)
    convs = [layer for layer in model.layers if isinstance(layer, FrameConv2D)]
    assert [conv.strides for conv in convs] == [(1, 1), (2, 2), (2, 2)]
    assert isinstance(model.get_layer("conv_gru"), ConvGRU)
    assert model.get_layer("score").activation is keras.activations.linear
    assert all(layer.norm == "layer" for layer in model.layers if isinstance(layer, ResidualBlock))


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scale": 3}, "scale"),
        ({"scale": 32}, "scale"),
        ({"scale": True}, "scale"),
        ({"filters": 7}, "filters"),
        ({"num_res_blocks": -1}, "num_res_blocks"),
        ({"upsample_filters": 0}, "upsample_filters"),
        ({"noise_stddev": -0.1}, "noise_stddev"),
        ({"noise": "style"}, "noise"),
        ({"noise": "texture", "noise_stddev": 0.0}, "noise_stddev"),
        ({"use_cbam": 1}, "use_cbam"),
        ({"std": 0.0}, "std"),
    ],
)
def test_generator_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=f"Received: {match}"):
        build_generator(**kwargs)


def test_critic_bad_arguments():
    with pytest.raises(ValueError, match="per sample"):
        build_critic(norm="batch")
    with pytest.raises(ValueError, match="Received: norm"):
        build_critic(norm="group")
    with pytest.raises(ValueError, match="Received: filters"):
        build_critic(filters=0)


def test_srcnn_bad_arguments():
    with pytest.raises(ValueError, match="Received: scale"):
        build_srcnn(scale=3)
    with pytest.raises(ValueError, match="Received: filters"):
        build_srcnn(filters=(64,))
    with pytest.raises(ValueError, match="Received: kernel_sizes"):
        build_srcnn(kernel_sizes=(9, 5))


def test_build_networks_follows_the_architecture_and_the_loss():
    from hsr_keras.training.config import PRESETS

    tiny = PRESETS["demo"].replace(
        filters=4, num_res_blocks=1, upsample_filters=4, num_post_blocks=0, se_ratio=2, critic_filters=4
    )
    lr = np.zeros((1, 2, 3, 3, 1), "float32")
    generator, critic = build_networks(tiny, 4, 55.0, 25.0)
    assert (generator.name, critic.name) == ("generator", "critic")
    assert generator(lr).shape == (1, 2, 12, 12, 1)  # the scale given, not a config's
    generator, critic = build_networks(tiny.replace(architecture="srcnn", loss="content"), 2, 55.0, 25.0)
    assert generator.name == "srcnn" and critic is None and generator(lr).shape == (1, 2, 6, 6, 1)
    generator, critic = build_networks(tiny.replace(architecture="srgan", loss="gan"), 4, 55.0, 25.0)
    assert (generator.name, critic.name) == ("srgan_generator", "srgan_discriminator")


# ----------------------------------------------------------------------------- ablations


def test_generator_ablation_switches_change_layers():
    full = build_generator(**TINY_GENERATOR)
    assert {
        "MultiKernelStem",
        "GaussianNoise",
        "SqueezeExcitation",
        "ResidualBlock",
        "ConvGRU",
        "PixelShuffle",
        "CBAM",
        "FrameConv2D",
    } <= layer_types(full)
    assert "StrideUpsampling" not in layer_types(full)

    no_cbam = build_generator(use_cbam=False, **TINY_GENERATOR)
    assert "CBAM" not in layer_types(no_cbam)
    assert no_cbam.count_params() < full.count_params()

    no_resnet = build_generator(use_residual=False, **TINY_GENERATOR)
    blocks = [layer for layer in no_resnet.layers if isinstance(layer, ResidualBlock)]
    assert blocks and all(not b.use_residual and b.projection is None for b in blocks)
    # The 8 -> 4 post block loses its 1x1 projection (8 * 4 + 4 parameters).
    assert full.count_params() - no_resnet.count_params() == 8 * 4 + 4

    no_noise = build_generator(noise_stddev=0, **TINY_GENERATOR)
    assert "GaussianNoise" not in layer_types(no_noise)

    skip = build_generator(global_skip=True, **TINY_GENERATOR)
    assert {"StrideUpsampling", "Add"} <= layer_types(skip)


def test_critic_ablation_switches_change_layers():
    full = build_critic(**TINY_CRITIC)
    assert "CBAM" in layer_types(full)
    assert "CBAM" not in layer_types(build_critic(use_cbam=False, **TINY_CRITIC))
    plain = build_critic(norm="none", use_residual=False, **TINY_CRITIC)
    assert all(b.norm == "none" and not b.use_residual for b in plain.layers if isinstance(b, ResidualBlock))


# ----------------------------------------------------------------------------- behaviour


def test_generator_saved_and_reloaded_gives_identical_outputs(tmp_path):
    model = build_generator(scale=4, mean=50.0, std=25.0, global_skip=True, **TINY_GENERATOR)
    # Move every weight, batch-norm statistics included, away from its initial value.
    rng = np.random.default_rng(1)
    for weight in model.weights:
        value = numpy(weight) + 0.1 * rng.normal(size=weight.shape)
        if "moving_variance" in weight.path:
            value = np.abs(value)
        weight.assign(value.astype("float32"))
    path = os.path.join(tmp_path, "generator.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    for shape in [(2, 8, 3, 4, 1), (1, 1, 5, 6, 1)]:
        x = rh(shape, seed=3)
        np.testing.assert_array_equal(numpy(reloaded(x, training=False)), numpy(model(x, training=False)))
    assert reloaded.get_layer("destandardize").get_config()["mean"] == 50.0


def test_critic_saved_and_reloaded_gives_identical_outputs(tmp_path):
    model = build_critic(mean=50.0, std=25.0, **TINY_CRITIC)
    path = os.path.join(tmp_path, "critic.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    x = rh((2, 8, 16, 16, 1))
    np.testing.assert_array_equal(numpy(reloaded(x)), numpy(model(x)))


def test_generator_noise_only_in_training():
    model = build_generator(scale=2, noise_stddev=0.5, **TINY_GENERATOR)
    x = rh((1, 2, 3, 3, 1))
    np.testing.assert_array_equal(numpy(model(x)), numpy(model(x)))
    assert not np.array_equal(numpy(model(x, training=True)), numpy(model(x, training=True)))


def test_texture_noise_is_injected_at_every_stage_and_samples_in_inference():
    from hsr_keras.models import sampling

    model = build_generator(scale=4, noise="texture", noise_stddev=0.3, mean=50.0, std=25.0, **TINY_GENERATOR)
    names = [layer.name for layer in sampling.noise_layers(model)]
    assert names == ["stem_noise", "res_block_0_noise", "post_block_0_noise", "upsample_0_noise", "upsample_1_noise"]
    assert "noise" not in [layer.name for layer in model.layers]  # no training-only stem noise beside it
    # The LR stages start at noise_stddev; the upsampling stages at 0 (StyleGAN's start), learned from there.
    assert [float(numpy(layer.scale).max()) for layer in sampling.noise_layers(model)] == pytest.approx(
        [0.3] * 3 + [0] * 2
    )
    # The stem noise's order is unchanged: the paper's generator has no NoiseInjection at all.
    assert sampling.noise_layers(build_generator(scale=4, **TINY_GENERATOR)) == []
    x = rh((2, 2, 3, 3, 1))
    one, two = (numpy(sampling.seeded_call(model, x, seed)) for seed in (1, 2))
    np.testing.assert_array_equal(one, numpy(sampling.seeded_call(model, x, 1)))  # same seed, same member
    assert np.abs(one - two).mean() > 0.1  # two seeds, two members (%RH)
    assert not np.allclose(numpy(model(x)), numpy(model(x)))  # inference mode draws too


def test_texture_generator_saved_and_reloaded_draws_the_same_members(tmp_path):
    from hsr_keras.models import sampling

    model = build_generator(scale=4, noise="texture", mean=50.0, std=25.0, global_skip=True, **TINY_GENERATOR)
    for layer in sampling.noise_layers(model):  # every stage's noise on, so every stage's draw is checked
        layer.scale.assign(np.linspace(0.1, 0.9, layer.scale.shape[0]).astype("float32"))
    model.save(tmp_path / "generator.keras")
    reloaded = keras.saving.load_model(tmp_path / "generator.keras")
    x = rh((1, 2, 3, 4, 1), seed=3)
    np.testing.assert_array_equal(numpy(sampling.seeded_call(reloaded, x, 5)), numpy(sampling.seeded_call(model, x, 5)))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_outputs_are_float32(policy):
    keras.mixed_precision.set_global_policy(policy)
    compute = policy.split("_")[1]
    generator = build_generator(scale=4, mean=50.0, std=25.0, **TINY_GENERATOR)
    critic = build_critic(mean=50.0, std=25.0, **TINY_CRITIC)
    srcnn = build_srcnn(scale=4, filters=(8, 4), mean=50.0, std=25.0)
    texture = build_generator(scale=4, noise="texture", mean=50.0, std=25.0, **TINY_GENERATOR)
    assert generator.get_layer("stem").compute_dtype == compute
    assert texture.get_layer("upsample_1_noise").compute_dtype == compute
    models = [(generator, (2, 8, 3, 4, 1)), (critic, (2, 8, 16, 16, 1)), (srcnn, (1, 2, 3, 4, 1))]
    for model, shape in models + [(texture, (2, 8, 3, 4, 1))]:
        assert model.output.dtype == "float32"
        y = model(rh(shape))
        assert keras.backend.standardize_dtype(y.dtype) == "float32"
        assert np.all(np.isfinite(numpy(y)))


@pytest.mark.parametrize("scale", [2, 8])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_global_skip_with_zero_last_conv_returns_aligned_upsampling(scale, interpolation):
    model = build_generator(
        scale=scale, global_skip=True, skip_interpolation=interpolation, mean=50.0, std=25.0, **TINY_GENERATOR
    )
    conv = model.get_layer("output_conv")
    conv.set_weights([np.zeros_like(w) for w in conv.get_weights()])
    x = rh((2, 3, 4, 5, 1))
    y = numpy(model(x))
    if interpolation == "nearest":
        expected = np.repeat(np.repeat(x, scale, axis=2), scale, axis=3)
    else:  # independent: interpolation matrices from the LR points' positions
        expected = upsample_strided(x[..., 0], scale, "bilinear")[..., None]
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-4)
    # Stride-sampling alignment: HR cell scale*k holds the LR value k.
    np.testing.assert_allclose(y[:, :, ::scale, ::scale], x, atol=1e-4)


@pytest.mark.parametrize("network", ["generator", "critic", "srcnn"])
def test_networks_equal_their_conv3d_form(network):
    """The per-frame convolutions as Conv2D (time folded into the batch) change no output."""
    # No noise, so training mode (batch statistics) is deterministic too.
    generator = dict(TINY_GENERATOR, noise_stddev=0.0)
    model, shape = {
        "generator": (
            lambda: build_generator(scale=4, mean=50.0, std=25.0, global_skip=True, **generator),
            (2, 3, 4, 5, 1),
        ),
        "critic": (lambda: build_critic(mean=50.0, std=25.0, **TINY_CRITIC), (2, 3, 16, 12, 1)),
        "srcnn": (lambda: build_srcnn(scale=4, filters=(8, 4), mean=50.0, std=25.0), (2, 3, 4, 5, 1)),
    }[network]
    model = model()
    x = rh(shape, seed=4)
    for training in (False, True):
        new = numpy(model(x, training=training))
        with frame_convs_as_conv3d():
            old = numpy(model(x, training=training))
        np.testing.assert_allclose(new, old, rtol=1e-6, atol=1e-6 * np.abs(old).max())


# ----------------------------------------------------------------------------- FLOPs


def test_count_flops_hand_count_plain_layers():
    inputs = keras.Input((None, None, None, 1))
    x = keras.layers.Conv3D(4, (1, 3, 3), padding="same")(inputs)
    x = FrameConv2D(6, 2, strides=2)(x)  # per frame, as the networks' convolutions
    x = ConvGRU(3, kernel_size=3)(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)
    # One sample, T=2, 6x8.
    conv1 = (2 * 6 * 8 * 4) * (3 * 3 * 1)  # output elements x kernel volume x in-channels
    conv2 = (2 * 3 * 4 * 6) * (2 * 2 * 4)  # valid 2x2 stride 2 -> 3x4
    gru = 2 * 3 * 4 * (3 * 3 * 6 * 9 + 3 * 3 * 3 * 9)  # per step: input conv + recurrent convs
    dense = (2 * 3 * 4) * 3 * 5
    assert count_flops(model, (2, 6, 8, 1)) == 2 * (conv1 + conv2 + gru + dense) == 47232


def test_count_flops_hand_count_composite_layers():
    from hsr_keras.layers import MultiKernelStem, SqueezeExcitation

    inputs = keras.Input((None, None, None, 1))
    x = MultiKernelStem(4, kernel_sizes=(2, 3))(inputs)
    x = SqueezeExcitation(ratio=2)(x)
    outputs = ResidualBlock(6, norm="batch")(x)
    model = keras.Model(inputs, outputs)
    px = 2 * 4 * 4  # T=2, 4x4
    stem = px * 2 * (2 * 2 * 1) + px * 2 * (3 * 3 * 1)
    se = 2 * (4 * 2 + 2 * 4)  # per frame: Dense(4 -> 2), Dense(2 -> 4)
    conv1, conv2, projection = px * 6 * 9 * 4, px * 6 * 9 * 6, px * 6 * 4
    cbam = 2 * 2 * (6 * 1 + 1 * 6) + px * 7 * 7 * 2  # shared MLP twice per frame, 7x7 conv
    expected = 2 * (stem + se + conv1 + conv2 + projection + cbam)
    assert count_flops(model, (2, 4, 4, 1)) == expected


def test_count_flops_scales_with_frames_and_area():
    model = build_generator(scale=4, **TINY_GENERATOR)
    one = count_flops(model, (1, 4, 4, 1))
    assert one > 0
    assert count_flops(model, (8, 4, 4, 1)) == 8 * one
    critic = build_critic(**TINY_CRITIC)
    score = 2 * 8 * 1  # Dense(8 -> 1) after the global average: once per sample
    two, one = count_flops(critic, (2, 16, 16, 1)), count_flops(critic, (1, 16, 16, 1))
    assert two - score == 2 * (one - score)
    with pytest.raises(ValueError, match="input_shape"):
        count_flops(model, (1, 8, 4, 4, 1))
