"""Tests of hsr_keras.layers: shapes, configs, weights, fit, and values against numpy."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_testing import frame_convs_as_conv3d, run_layer_test

from hsr_keras.layers import (
    CBAM,
    ConvGRU,
    ConvGRUCell,
    FrameConv2D,
    MultiKernelStem,
    NoiseInjection,
    PixelShuffle,
    ResidualBlock,
    SqueezeExcitation,
    Standardize,
    StrideUpsampling,
)
from hsr_keras.scoring.interpolation import upsample_strided

# Two spatial sizes, T=1 and T=8.
SHAPES = [(2, 1, 5, 6), (1, 8, 4, 3)]


def shapes(channels):
    return [s + (channels,) for s in SHAPES]


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_conv_same(x, kernel, bias=None):
    """2-D "same" convolution (TF/JAX padding) over axes -3, -2 of `x`; kernel [kh, kw, C, O]."""
    kh, kw = kernel.shape[:2]
    height, width = x.shape[-3], x.shape[-2]
    pad = [(0, 0)] * (x.ndim - 3) + [((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)]
    padded = np.pad(x, pad)
    out = np.zeros(x.shape[:-1] + (kernel.shape[-1],), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            out += padded[..., i : i + height, j : j + width, :] @ kernel[i, j]
    return out if bias is None else out + bias


def weights(layer):
    return [keras.ops.convert_to_numpy(w).astype(np.float64) for w in layer.weights]


# ----------------------------------------------------------------------------- NoiseInjection


def test_noise_injection_layer():
    # One trainable strength per channel; the seed generator's state is a variable, not a weight.
    run_layer_test(NoiseInjection, {"initial_scale": 0.3, "seed": 5}, shapes(4), shapes(4), 1, 0, 4, run_saving=False)
    layer = NoiseInjection(0.3)
    layer.build((1, 1, 2, 2, 4))
    assert any(v is layer.seed_generator.state for v in layer.non_trainable_variables)


def test_noise_injection_adds_one_map_scaled_per_channel_in_inference_too():
    layer = NoiseInjection(1.0, seed=2)
    x = np.zeros((4, 3, 16, 16, 3), "float32")
    layer.build(x.shape)
    layer.scale.assign([1.0, -2.0, 0.0])
    y = np.asarray(layer(x, training=False))  # no training=True needed
    np.testing.assert_allclose(y[..., 1], -2.0 * y[..., 0], rtol=1e-6)  # one map, broadcast over channels
    np.testing.assert_array_equal(y[..., 2], 0.0)
    assert abs(y[..., 0].mean()) < 0.05 and abs(y[..., 0].std() - 1.0) < 0.05  # N(0, 1), 12288 draws
    assert not np.allclose(y[0, 0, ..., 0], y[1, 0, ..., 0]) and not np.allclose(y[0, 0, ..., 0], y[0, 1, ..., 0])
    again = np.asarray(layer(x))
    assert not np.allclose(again, y)  # a new draw on every call
    x1 = np.full((1, 1, 4, 4, 3), 7.0, "float32")
    np.testing.assert_allclose(np.asarray(layer(x1))[..., 2], 7.0)  # added to the input


def test_noise_injection_strength_is_learned_from_the_gradient():
    layer = NoiseInjection(0.5, seed=1)
    x = tf.zeros((2, 1, 8, 8, 2))
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = tf.reduce_mean(tf.square(y))  # the noise only hurts: its strength should shrink
    (grad,) = tape.gradient(loss, [layer.scale])
    assert np.all(grad.numpy() > 0)


def test_noise_injection_saves_and_draws_the_same_member_from_the_same_seed(tmp_path):
    from hsr_keras.models import sampling

    inputs = keras.Input((None, None, None, 2))
    model = keras.Model(inputs, NoiseInjection(0.4, seed=3, name="noise")(inputs))
    model.get_layer("noise").scale.assign([0.4, 1.5])
    model.save(tmp_path / "noise.keras")
    loaded = keras.saving.load_model(tmp_path / "noise.keras")
    assert isinstance(loaded.get_layer("noise"), NoiseInjection)
    np.testing.assert_array_equal(np.asarray(loaded.get_layer("noise").scale), np.float32([0.4, 1.5]))
    x = np.zeros((1, 2, 5, 5, 2), "float32")
    a, b = (np.asarray(sampling.seeded_call(m, x, seed=11)) for m in (model, loaded))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, np.asarray(sampling.seeded_call(model, x, seed=12)))


def test_noise_injection_bad_arguments():
    for value in (-0.1, "0.1", True):
        with pytest.raises(ValueError, match="initial_scale"):
            NoiseInjection(value)


# ----------------------------------------------------------------------------- FrameConv2D


def test_frame_conv2d_layer():
    run_layer_test(
        FrameConv2D,
        {"filters": 4, "kernel_size": (3, 3), "strides": (2, 2), "padding": "same"},
        shapes(3),
        [s[:2] + (-(-s[2] // 2), -(-s[3] // 2), 4) for s in SHAPES],
        expected_num_trainable_weights=2,
        expected_num_params=9 * 3 * 4 + 4,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 1},
        {"kernel_size": 2, "padding": "same"},
        {"kernel_size": 3, "padding": "same", "activation": "relu"},
        {"kernel_size": 3, "strides": 2, "padding": "same"},
        {"kernel_size": 3, "strides": 2, "padding": "valid", "use_bias": False},
        {"kernel_size": 7, "padding": "same", "activation": "sigmoid"},
    ],
)
def test_frame_conv2d_equals_the_per_frame_conv3d(kwargs):
    """Conv2D with time folded into the batch == Conv3D with kernel (1, k, k) and kernel[0] the same."""
    layer = FrameConv2D(5, **kwargs)
    rng = np.random.default_rng(10)
    for shape in [(2, 1, 7, 6, 3), (1, 8, 5, 9, 3), (3, 4, 8, 8, 3)]:
        x = rng.normal(size=shape).astype("float32")
        new = keras.ops.convert_to_numpy(layer(x))
        with frame_convs_as_conv3d():
            old = keras.ops.convert_to_numpy(layer(x))
        assert new.shape == old.shape
        np.testing.assert_allclose(new, old, rtol=1e-6, atol=1e-6)


def test_frame_conv2d_bad_arguments():
    with pytest.raises(ValueError, match="channels-last"):
        FrameConv2D(4, 3, data_format="channels_first")
    with pytest.raises(ValueError, match="ndim=5"):
        FrameConv2D(4, 3)(np.zeros((1, 4, 4, 2), "float32"))


@pytest.mark.parametrize(
    "make, channels",
    [
        (lambda: MultiKernelStem(filters=6, kernel_sizes=(2, 3)), 2),
        (lambda: CBAM(ratio=4, kernel_size=7), 8),
        (lambda: ResidualBlock(8, norm="batch"), 4),
        (lambda: ResidualBlock(8, norm="layer"), 8),
        (lambda: ResidualBlock(6, norm="none", use_cbam=False), 4),
    ],
)
def test_layers_with_frame_convs_equal_their_conv3d_form(make, channels):
    """Each layer whose per-frame convolutions became FrameConv2D gives the Conv3D outputs."""
    layer = make()
    x = np.random.default_rng(11).normal(size=(2, 3, 6, 5, channels)).astype("float32")
    for training in (False, True):
        new = keras.ops.convert_to_numpy(layer(x, training=training))
        with frame_convs_as_conv3d():
            old = keras.ops.convert_to_numpy(layer(x, training=training))
        np.testing.assert_allclose(new, old, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- Standardize


def test_standardize_layer():
    run_layer_test(
        Standardize,
        {"mean": 50.0, "std": 25.0, "invert": True},
        shapes(1),
        shapes(1),
        expected_num_trainable_weights=0,
        expected_num_params=0,
    )


def test_standardize_values_exact():
    x = np.array([0.0, 25.0, 50.0, 100.0, 137.5], "float32").reshape(1, 1, 1, 5, 1)
    z = keras.ops.convert_to_numpy(Standardize(mean=50.0, std=25.0)(x))
    np.testing.assert_array_equal(z.ravel(), [-2.0, -1.0, 0.0, 2.0, 3.5])
    back = keras.ops.convert_to_numpy(Standardize(mean=50.0, std=25.0, invert=True)(z))
    np.testing.assert_array_equal(back, x)


@pytest.mark.parametrize(
    "kwargs",
    [{"std": 0.0}, {"std": -1.0}, {"std": float("inf")}, {"mean": float("nan")}, {"mean": "a"}],
)
def test_standardize_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Received"):
        Standardize(**kwargs)


# ----------------------------------------------------------------------------- PixelShuffle


def test_pixel_shuffle_layer():
    run_layer_test(
        PixelShuffle,
        {"scale": 2},
        shapes(12),
        [s[:2] + (2 * s[2], 2 * s[3], 3) for s in SHAPES],
        expected_num_trainable_weights=0,
    )


@pytest.mark.parametrize("scale", [2, 3])
def test_pixel_shuffle_matches_tf_depth_to_space(scale):
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 5, 2 * scale * scale)).astype("float32")
    y = keras.ops.convert_to_numpy(PixelShuffle(scale)(x))
    expected = np.stack([tf.nn.depth_to_space(x[:, t], scale).numpy() for t in range(x.shape[1])], axis=1)
    np.testing.assert_array_equal(y, expected)


def test_pixel_shuffle_bad_arguments():
    for scale in (1, 0, 2.0, True):
        with pytest.raises(ValueError, match="Received: scale"):
            PixelShuffle(scale)
    with pytest.raises(ValueError, match="divisible"):
        PixelShuffle(2)(np.zeros((1, 1, 2, 2, 6), "float32"))


# ----------------------------------------------------------------------------- StrideUpsampling


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic"])
def test_stride_upsampling_layer(interpolation):
    run_layer_test(
        StrideUpsampling,
        {"scale": 2, "interpolation": interpolation},
        shapes(3),
        [s[:2] + (2 * s[2], 2 * s[3], 3) for s in SHAPES],
        expected_num_trainable_weights=0,
    )


@pytest.mark.parametrize("scale", [2, 8])
def test_stride_upsampling_matches_aligned_interpolation(scale):
    x = np.random.default_rng(2).uniform(0, 100, size=(2, 3, 4, 5, 1)).astype("float32")
    for method in ("bilinear", "bicubic"):
        y = keras.ops.convert_to_numpy(StrideUpsampling(scale, method)(x))
        np.testing.assert_allclose(y[..., 0], upsample_strided(x[..., 0], scale, method), atol=1e-3)
    # a single LR point along an axis is repeated
    y = keras.ops.convert_to_numpy(StrideUpsampling(scale, "bicubic")(x[:, :, :1, :1]))
    np.testing.assert_allclose(y, np.broadcast_to(x[:, :, :1, :1], y.shape), atol=1e-4)
    nearest = keras.ops.convert_to_numpy(StrideUpsampling(scale, "nearest")(x))
    np.testing.assert_array_equal(nearest, np.repeat(np.repeat(x, scale, axis=2), scale, axis=3))


def test_stride_upsampling_bad_arguments():
    with pytest.raises(ValueError, match="Received: scale"):
        StrideUpsampling(1)
    with pytest.raises(ValueError, match="Received: interpolation"):
        StrideUpsampling(2, "lanczos")


# ----------------------------------------------------------------------------- MultiKernelStem


def test_multi_kernel_stem_layer():
    # Two branches of 4 filters: 2x2 (4 * (4 + 1)) and 3x3 (4 * (9 + 1)) weights.
    run_layer_test(
        MultiKernelStem,
        {"filters": 8, "kernel_sizes": (2, 3)},
        shapes(1),
        shapes(8),
        expected_num_trainable_weights=4,
        expected_num_params=4 * 5 + 4 * 10,
    )


def test_multi_kernel_stem_values():
    layer = MultiKernelStem(filters=6, kernel_sizes=(2, 3))
    x = np.random.default_rng(2).normal(size=(2, 3, 5, 4, 2)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    k2, b2, k3, b3 = weights(layer)
    expected = np.maximum(np.concatenate([np_conv_same(x, k2, b2), np_conv_same(x, k3, b3)], axis=-1), 0)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_multi_kernel_stem_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        MultiKernelStem(filters=9, kernel_sizes=(2, 3))
    with pytest.raises(ValueError, match="Received: kernel_sizes"):
        MultiKernelStem(filters=8, kernel_sizes=())
    with pytest.raises(ValueError, match="Received: filters"):
        MultiKernelStem(filters=0)


# ----------------------------------------------------------------------------- SqueezeExcitation


def test_squeeze_excitation_layer():
    # ratio 4 on 8 channels: Dense(8 -> 2) and Dense(2 -> 8) with biases.
    run_layer_test(
        SqueezeExcitation,
        {"ratio": 4},
        shapes(8),
        shapes(8),
        expected_num_trainable_weights=4,
        expected_num_params=(8 * 2 + 2) + (2 * 8 + 8),
    )


def test_squeeze_excitation_values():
    layer = SqueezeExcitation(ratio=4)
    x = np.random.default_rng(3).normal(size=(2, 3, 5, 4, 8)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    w1, b1, w2, b2 = weights(layer)
    z = x.mean(axis=(2, 3))  # eq. (1), per frame
    s = np_sigmoid(np.maximum(z @ w1 + b1, 0) @ w2 + b2)  # eq. (2)
    np.testing.assert_allclose(y, x * s[:, :, None, None, :], rtol=1e-5, atol=1e-6)


def test_squeeze_excitation_bad_arguments():
    with pytest.raises(ValueError, match="Received: ratio"):
        SqueezeExcitation(ratio=0)


# ----------------------------------------------------------------------------- CBAM


def test_cbam_layer():
    # Shared MLP 8 -> 2 -> 8, spatial conv 7x7x2 -> 1, all with biases.
    run_layer_test(
        CBAM,
        {"ratio": 4, "kernel_size": 7},
        shapes(8),
        shapes(8),
        expected_num_trainable_weights=6,
        expected_num_params=(8 * 2 + 2) + (2 * 8 + 8) + (7 * 7 * 2 + 1),
    )


def test_cbam_values():
    layer = CBAM(ratio=4, kernel_size=3)
    x = np.random.default_rng(4).normal(size=(2, 3, 5, 4, 8)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    conv_k, conv_b = weights(layer.spatial_conv)
    w0, b0 = weights(layer.mlp_hidden)
    w1, b1 = weights(layer.mlp_output)

    def mlp(v):
        return np.maximum(v @ w0 + b0, 0) @ w1 + b1

    channel = np_sigmoid(mlp(x.mean(axis=(2, 3))) + mlp(x.max(axis=(2, 3))))  # eq. (3)
    f = x * channel[:, :, None, None, :]
    pooled = np.concatenate([f.mean(-1, keepdims=True), f.max(-1, keepdims=True)], -1)
    spatial = np_sigmoid(np_conv_same(pooled, conv_k, conv_b))  # eq. (4)
    np.testing.assert_allclose(y, f * spatial, rtol=1e-5, atol=1e-6)


def test_cbam_bad_arguments():
    with pytest.raises(ValueError, match="Received: ratio"):
        CBAM(ratio=-1)
    with pytest.raises(ValueError, match="Received: kernel_size"):
        CBAM(kernel_size=0)


# ----------------------------------------------------------------------------- ResidualBlock


def cbam_params(channels, ratio=16, kernel_size=7):
    hidden = max(1, channels // ratio)
    return (channels * hidden + hidden) + (hidden * channels + channels) + (kernel_size * kernel_size * 2 + 1)


def test_residual_block_layer_batch_norm_projection():
    # 4 -> 8 channels: conv1 (no bias), BN, conv2 (no bias), BN, CBAM, 1x1 projection.
    run_layer_test(
        ResidualBlock,
        {"filters": 8, "kernel_size": 3, "norm": "batch", "use_cbam": True, "use_residual": True},
        shapes(4),
        shapes(8),
        expected_num_trainable_weights=1 + 2 + 1 + 2 + 6 + 2,
        expected_num_non_trainable_weights=4,
        expected_num_params=9 * 4 * 8 + 4 * 8 + 9 * 8 * 8 + 4 * 8 + cbam_params(8) + (4 * 8 + 8),
    )


def test_residual_block_layer_norm_identity_skip():
    # 8 -> 8 channels: no projection; frame layer norms have gamma and beta of shape (C,).
    run_layer_test(
        ResidualBlock,
        {"filters": 8, "norm": "layer"},
        shapes(8),
        shapes(8),
        expected_num_trainable_weights=1 + 2 + 1 + 2 + 6,
        expected_num_params=9 * 8 * 8 + 2 * 8 + 9 * 8 * 8 + 2 * 8 + cbam_params(8),
    )


def test_residual_block_ablations_no_norm():
    run_layer_test(
        ResidualBlock,
        {"filters": 6, "norm": "none", "use_cbam": False, "use_residual": False},
        shapes(4),
        shapes(6),
        expected_num_trainable_weights=4,
        expected_num_params=(9 * 4 * 6 + 6) + (9 * 6 * 6 + 6),
        run_saving=False,
    )


@pytest.mark.parametrize("use_residual", [True, False])
def test_residual_block_values(use_residual):
    layer = ResidualBlock(6, norm="none", use_cbam=False, use_residual=use_residual)
    x = np.random.default_rng(5).normal(size=(2, 3, 5, 4, 4)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    k1, b1 = weights(layer.conv1)
    k2, b2 = weights(layer.conv2)
    branch = np_conv_same(np.maximum(np_conv_same(x, k1, b1), 0), k2, b2)
    if use_residual:
        kp, bp = weights(layer.projection)
        branch = branch + x @ kp[0, 0] + bp
    else:
        assert layer.projection is None
    np.testing.assert_allclose(y, np.maximum(branch, 0), rtol=1e-5, atol=1e-5)


def test_residual_block_layer_norm_is_per_frame():
    layer = ResidualBlock(8, norm="layer")
    x = np.random.default_rng(6).normal(size=(3, 4, 5, 6, 8)).astype("float32")
    x = x * np.arange(1, 5, dtype="float32")[None, :, None, None, None] + 7.0
    layer.build(x.shape)
    y = keras.ops.convert_to_numpy(layer.norm1(x))  # gamma 1, beta 0 at init
    np.testing.assert_allclose(y.mean(axis=(2, 3, 4)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(2, 3, 4)), 1.0, atol=1e-2)
    # Per sample, even in training mode (batch norm would fail this): changing one
    # sample leaves the others' outputs unchanged.
    x2 = x.copy()
    x2[0] *= 10
    y2 = keras.ops.convert_to_numpy(layer(x2, training=True))
    y1 = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(y2[1:], y1[1:], rtol=1e-5, atol=1e-5)


def test_residual_block_bad_arguments():
    with pytest.raises(ValueError, match="Received: norm"):
        ResidualBlock(8, norm="group")
    with pytest.raises(ValueError, match="Received: filters"):
        ResidualBlock(0)
    with pytest.raises(ValueError, match="Received: use_cbam"):
        ResidualBlock(8, use_cbam="yes")


# ----------------------------------------------------------------------------- ConvGRU


def np_gru_step(x, h, kernel, recurrent_kernel, bias):
    f = h.shape[-1]
    xc = np_conv_same(x, kernel, bias)
    z = np_sigmoid(xc[..., :f] + np_conv_same(h, recurrent_kernel[..., :f]))
    r = np_sigmoid(xc[..., f : 2 * f] + np_conv_same(h, recurrent_kernel[..., f : 2 * f]))
    candidate = np.tanh(xc[..., 2 * f :] + np_conv_same(r * h, recurrent_kernel[..., 2 * f :]))
    return (1 - z) * h + z * candidate


def test_conv_gru_cell_one_step_matches_numpy():
    rng = np.random.default_rng(7)
    cell = ConvGRUCell(5, kernel_size=3)
    x = rng.normal(size=(2, 6, 4, 3)).astype("float32")
    h = rng.normal(size=(2, 6, 4, 5)).astype("float32")
    cell.build(x.shape)
    cell.bias.assign(rng.normal(size=(15,)).astype("float32"))
    out, states = cell(x, [h])
    out = keras.ops.convert_to_numpy(out)
    np.testing.assert_array_equal(out, keras.ops.convert_to_numpy(states[0]))
    assert [tuple(w.shape) for w in cell.weights] == [(3, 3, 3, 15), (3, 3, 5, 15), (15,)]
    expected = np_gru_step(x, h, *weights(cell))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_conv_gru_layer():
    run_layer_test(
        ConvGRU,
        {"filters": 6, "kernel_size": 3, "return_sequences": True, "go_backwards": False},
        shapes(4),
        shapes(6),
        expected_num_trainable_weights=3,
        expected_num_params=9 * 4 * 18 + 9 * 6 * 18 + 18,
    )


def test_conv_gru_last_output_layer():
    run_layer_test(
        ConvGRU,
        {"filters": 6, "kernel_size": 1, "return_sequences": False},
        shapes(4),
        [s[:1] + s[2:] + (6,) for s in SHAPES],
        expected_num_trainable_weights=3,
        expected_num_params=4 * 18 + 6 * 18 + 18,
        run_saving=False,
    )


@pytest.mark.parametrize("go_backwards", [False, True])
def test_conv_gru_sequence_matches_numpy(go_backwards):
    rng = np.random.default_rng(8)
    layer = ConvGRU(4, kernel_size=3, go_backwards=go_backwards)
    x = rng.normal(size=(2, 5, 4, 3, 2)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    params = weights(layer.cell)
    h = np.zeros((2, 4, 3, 4))
    steps = range(4, -1, -1) if go_backwards else range(5)
    expected = []
    for t in steps:
        h = np_gru_step(x[:, t], h, *params)
        expected.append(h)
    np.testing.assert_allclose(y, np.stack(expected, axis=1), rtol=1e-5, atol=1e-5)
    last = keras.ops.convert_to_numpy(ConvGRU(4, return_sequences=False)(x))
    assert last.shape == (2, 4, 3, 4)


def test_conv_gru_projected_inputs_equal_step_by_step_cell():
    """ConvGRU convolves every frame's inputs before its loop: the same as the cell step by step."""
    layer = ConvGRU(5, kernel_size=3)
    x = np.random.default_rng(12).normal(size=(2, 4, 6, 5, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    cell = layer.cell
    cell.inputs_projected = False  # the cell alone, as any RNN would step it
    h = np.zeros((2, 6, 5, 5), "float32")
    steps = []
    for t in range(x.shape[1]):
        h, _ = cell(x[:, t], [h])
        steps.append(keras.ops.convert_to_numpy(h))
    np.testing.assert_allclose(y, np.stack(steps, axis=1), rtol=1e-6, atol=1e-6)


def test_conv_gru_bad_arguments():
    with pytest.raises(ValueError, match="Received: filters"):
        ConvGRU(0)
    with pytest.raises(ValueError, match="Received: kernel_size"):
        ConvGRUCell(4, kernel_size=0)
    with pytest.raises(ValueError, match="Received: return_sequences"):
        ConvGRU(4, return_sequences=None)


# ----------------------------------------------------------------------------- mixed precision


LAYERS = {
    "FrameConv2D": (lambda: FrameConv2D(8, 3, padding="same"), 4),
    "Standardize": (lambda: Standardize(50.0, 25.0), 1),
    "PixelShuffle": (lambda: PixelShuffle(2), 8),
    "MultiKernelStem": (lambda: MultiKernelStem(8), 1),
    "SqueezeExcitation": (lambda: SqueezeExcitation(4), 8),
    "CBAM": (lambda: CBAM(4), 8),
    "ResidualBlock-batch": (lambda: ResidualBlock(8, norm="batch"), 4),
    "ResidualBlock-layer": (lambda: ResidualBlock(8, norm="layer"), 4),
    "ConvGRU": (lambda: ConvGRU(8), 4),
    "NoiseInjection": (lambda: NoiseInjection(0.5), 4),
}


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_under_mixed_precision(policy, name):
    keras.mixed_precision.set_global_policy(policy)
    make, channels = LAYERS[name]
    layer = make()
    x = np.random.default_rng(9).normal(size=(2, 3, 4, 5, channels)).astype("float32")
    y = layer(x, training=True) if name.startswith("ResidualBlock") else layer(x)
    compute_dtype = policy.split("_")[1]
    assert keras.backend.standardize_dtype(y.dtype) == compute_dtype
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))))
