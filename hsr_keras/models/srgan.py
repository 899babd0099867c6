"""SRGAN baseline of the paper's Table 3: an SRResNet generator and its discriminator.

Both networks follow the conventions of `hsr_keras.models.networks`: they take relative humidity in
%RH as `[batch, time, H, W, 1]` with time, height and width unspecified
(`keras.Input((None, None, None, 1))`), standardise it inside the graph with the manifest's
mean and std, apply every convolution per frame (`FrameConv2D`: time folded into the batch,
so the time axis is only carried along) and compute their outputs in float32 under a mixed
precision policy.

They are trained by `hsr_keras.training.trainer.train` with `Config(architecture="srgan", loss="gan")`:
the generator's loss is the config's L1 content loss (in units of the data's std) plus
the adversarial term's weight (1e-3, SRGAN's) times the non-saturating GAN loss. SRGAN's VGG
perceptual loss does not apply here: VGG features are defined for RGB photographs, not for
a one-channel humidity field, and no pretrained network can be downloaded; the pixel-wise
L1 loss takes its place (SRGAN's own "SRGAN-MSE" variant uses a pixel loss too).

The discriminator uses batch normalisation, as SRGAN's does: that is fine for a plain GAN
(no per-sample gradient penalty), but it must not be trained with `loss="wgan-gp"`.

Reference:
    Ledig et al. (2017), "Photo-realistic single image super-resolution using a generative
    adversarial network", CVPR (Fig. 4: generator and discriminator).
"""

import math

import keras

from hsr_keras.layers import FrameConv2D, PixelShuffle, Standardize, StrideUpsampling
from hsr_keras.layers.checks import check_bool, check_int, check_scale


def _conv(filters, kernel_size, name, strides=1, dtype=None):
    return FrameConv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        dtype=dtype,
        name=name,
    )


def _prelu(name):
    # One slope per channel, shared over time, height and width (so any T, H, W work).
    return keras.layers.PReLU(shared_axes=[1, 2, 3], name=name)


# Over 80 lines: the builder layout of `networks.build_generator` (arguments, layers, graph).
def build_srgan_generator(
    scale=8,
    filters=64,
    num_res_blocks=16,
    global_skip=False,
    skip_interpolation="bilinear",
    mean=0.0,
    std=1.0,
    name="srgan_generator",
):
    """SRResNet, SRGAN's generator: LR %RH `[B, T, h, w, 1]` to HR `[B, T, s*h, s*w, 1]`.

    Standardize -> 9x9 conv(`filters`) + PReLU -> `num_res_blocks` residual blocks
    [3x3 conv, BN, PReLU, 3x3 conv, BN, + input] -> 3x3 conv + BN -> long skip (+ the
    output of the first conv) -> log2(scale) sub-pixel stages [3x3 conv to
    `4 * filters`, PixelShuffle(2), PReLU] -> 9x9 conv to one channel (float32) ->
    [+ the LR input upsampled by `StrideUpsampling`, with `global_skip`] -> inverse
    Standardize. Every convolution acts on each frame alone; the output is float32 %RH,
    not clipped.

    Args:
        scale: int, one of 2, 4, 8, 16. The upsampling factor. Defaults to `8`.
        filters: int. Channels of every convolution but the last. Defaults to `64`
            (SRGAN's).
        num_res_blocks: int. Residual blocks. Defaults to `16` (SRGAN's).
        global_skip: bool. Add the LR input upsampled with LR point k on HR cell
            `scale * k` (normalised units), so the network learns a residual over
            aligned interpolation, as the paper generator's option of the same name.
            Defaults to `False` (SRGAN).
        skip_interpolation: "bilinear", "bicubic" or "nearest", the global skip's
            upsampling. Defaults to `"bilinear"`.
        mean: float. Data mean (%RH) from the manifest. Defaults to `0.0`.
        std: float. Data std (%RH) from the manifest. Defaults to `1.0`.
        name: str. The model name. Defaults to `"srgan_generator"`.

    Returns:
        A functional `keras.Model`.

    Example:
    ```python
    generator = build_srgan_generator(scale=8, filters=16, num_res_blocks=2, mean=55, std=25)
    generator(np.full((1, 8, 8, 8, 1), 60.0, "float32")).shape  # (1, 8, 64, 64, 1)
    ```

    Reference:
        Ledig et al. (2017), "Photo-realistic single image super-resolution using a
        generative adversarial network", CVPR, Fig. 4 (top).
    """
    check_scale(scale)
    check_int("filters", filters, 1)
    check_int("num_res_blocks", num_res_blocks, 0)
    check_bool("global_skip", global_skip)

    # Layers.
    standardize = Standardize(mean, std, dtype="float32", name="standardize")
    head_conv, head_act = _conv(filters, 9, "head_conv"), _prelu("head_prelu")
    blocks = [
        (
            _conv(filters, 3, f"res_block_{i}_conv1"),
            keras.layers.BatchNormalization(name=f"res_block_{i}_bn1"),
            _prelu(f"res_block_{i}_prelu"),
            _conv(filters, 3, f"res_block_{i}_conv2"),
            keras.layers.BatchNormalization(name=f"res_block_{i}_bn2"),
            keras.layers.Add(name=f"res_block_{i}_add"),
        )
        for i in range(num_res_blocks)
    ]
    trunk_conv = _conv(filters, 3, "trunk_conv")
    trunk_bn = keras.layers.BatchNormalization(name="trunk_bn")
    long_skip = keras.layers.Add(name="long_skip")
    upsample_stages = [
        (
            _conv(4 * filters, 3, f"upsample_{i}_conv"),
            PixelShuffle(2, name=f"upsample_{i}_shuffle"),
            _prelu(f"upsample_{i}_prelu"),
        )
        for i in range(int(math.log2(scale)))
    ]
    output_conv = _conv(1, 9, "output_conv", dtype="float32")
    if global_skip:
        skip_upsample = StrideUpsampling(scale, skip_interpolation, dtype="float32", name="skip_upsample")
        skip_add = keras.layers.Add(dtype="float32", name="skip_add")
    destandardize = Standardize(mean, std, invert=True, dtype="float32", name="destandardize")

    # Graph.
    inputs = keras.Input((None, None, None, 1), name="lr")
    normalised = standardize(inputs)
    head = head_act(head_conv(normalised))
    x = head
    for conv1, bn1, act, conv2, bn2, add in blocks:
        x = add([x, bn2(conv2(act(bn1(conv1(x)))))])
    x = long_skip([head, trunk_bn(trunk_conv(x))])
    for conv, shuffle, act in upsample_stages:
        x = act(shuffle(conv(x)))
    x = output_conv(x)
    if global_skip:
        x = skip_add([x, skip_upsample(normalised)])
    outputs = destandardize(x)
    return keras.Model(inputs, outputs, name=name)


def build_srgan_discriminator(
    filters=64,
    num_stages=4,
    dense_units=None,
    mean=0.0,
    std=1.0,
    name="srgan_discriminator",
):
    """SRGAN's discriminator: HR %RH `[B, T, H, W, 1]` to a logit `[B, 1]`.

    Standardize -> 3x3 conv(`filters`) + LeakyReLU(0.2) -> 3x3 stride-2 conv + BN +
    LeakyReLU -> then `num_stages - 1` times [3x3 conv + BN + LeakyReLU, 3x3 stride-2
    conv + BN + LeakyReLU] with the channels doubling at each stage (64, 128, 256, 512
    in SRGAN) -> global average over T, H, W -> Dense(`dense_units`) + LeakyReLU ->
    Dense(1) in float32, a logit (the "gan" loss applies the sigmoid inside its
    cross-entropy). SRGAN flattens the last feature map into its dense layer, which
    fixes the input size; the global average keeps the network fully convolutional,
    so it runs on any T, H and W.

    Batch normalisation is SRGAN's choice and suits the plain GAN loss; the WGAN-GP
    gradient penalty is per sample, so do not train this network with `loss="wgan-gp"`.

    Args:
        filters: int. Channels of the first stage. Defaults to `64` (SRGAN's).
        num_stages: int >= 1. Stride-2 stages (each halves H and W). Defaults to `4`.
        dense_units: int. Units of the hidden dense layer. Defaults to `None`:
            `16 * filters` (1024 for SRGAN's 64).
        mean: float. Data mean (%RH) from the manifest. Defaults to `0.0`.
        std: float. Data std (%RH) from the manifest. Defaults to `1.0`.
        name: str. The model name. Defaults to `"srgan_discriminator"`.

    Returns:
        A functional `keras.Model`.

    Reference:
        Ledig et al. (2017), "Photo-realistic single image super-resolution using a
        generative adversarial network", CVPR, Fig. 4 (bottom).
    """
    check_int("filters", filters, 1)
    check_int("num_stages", num_stages, 1)
    if dense_units is None:
        dense_units = 16 * filters
    check_int("dense_units", dense_units, 1)

    def leaky_relu(layer_name):
        return keras.layers.LeakyReLU(negative_slope=0.2, name=layer_name)

    # Layers: (conv, batch norm or None, activation) in order.
    standardize = Standardize(mean, std, dtype="float32", name="standardize")
    units = [(_conv(filters, 3, "conv_0"), None, leaky_relu("act_0"))]
    for stage in range(num_stages):
        channels = filters * 2**stage
        strides = [2] if stage == 0 else [1, 2]
        for stride in strides:
            index = len(units)
            units.append(
                (
                    _conv(channels, 3, f"conv_{index}", strides=stride),
                    keras.layers.BatchNormalization(name=f"bn_{index}"),
                    leaky_relu(f"act_{index}"),
                )
            )
    pool = keras.layers.GlobalAveragePooling3D(name="global_pool")
    hidden = keras.layers.Dense(dense_units, name="dense")
    hidden_act = leaky_relu("dense_act")
    logit = keras.layers.Dense(1, dtype="float32", name="logit")

    # Graph.
    inputs = keras.Input((None, None, None, 1), name="hr")
    x = standardize(inputs)
    for conv, norm, act in units:
        x = conv(x)
        if norm is not None:
            x = norm(x)
        x = act(x)
    outputs = logit(hidden_act(hidden(pool(x))))
    return keras.Model(inputs, outputs, name=name)
