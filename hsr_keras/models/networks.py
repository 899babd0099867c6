"""Generator, critic and SRCNN baseline as functional Keras models, the choice among them
by a config's architecture, and a FLOP count.

All networks take and return relative humidity in %RH as `[batch, time, H, W, 1]`
with time, height and width unspecified (`keras.Input((None, None, None, 1))`);
normalisation with the manifest's mean and std happens inside the graph. The paper's
generator and critic take a build's extra inputs too (`tfrecords_builder.contract.inputs`):
then they are called on a dict of named inputs (`lr` or `hr`, `predictors`, `time_features`,
`static`), and without them on the one tensor, as before.
Per-frame convolutions are `FrameConv2D`: a `Conv2D` with time folded into the batch.
"""

import math

import keras

from hsr_keras.choices import CRITIC_NORMS, NOISES
from hsr_keras.layers import (
    ICNR,
    BroadcastConcatenate,
    ConvGRU,
    FrameConv2D,
    MultiKernelStem,
    NoiseInjection,
    PixelShuffle,
    ResidualBlock,
    SqueezeExcitation,
    Standardize,
    StrideUpsampling,
)
from hsr_keras.layers.cbam import CBAM
from hsr_keras.layers.checks import check_bool, check_int, check_scale
from hsr_keras.models import srgan
from tfrecords_builder.contract.inputs import TIME_FEATURES, static_channels


# Over 80 lines: a keras-hub style builder (the documented arguments, the layers, then the graph,
# top to bottom), which KerasTuner and the config drive argument by argument.
def build_generator(
    scale=8,
    filters=128,
    num_res_blocks=4,
    upsample_filters=256,
    num_post_blocks=2,
    noise_stddev=0.1,
    se_ratio=16,
    use_cbam=True,
    use_residual=True,
    global_skip=False,
    skip_interpolation="bilinear",
    icnr=False,
    noise="stem",
    mean=0.0,
    std=1.0,
    predictor_mean=None,
    predictor_std=None,
    time_features=False,
    static_mean=None,
    static_std=None,
    name="generator",
):
    """The paper's generator (Fig. 3): LR %RH `[B, T, h, w, 1]` to HR `[B, T, s*h, s*w, 1]`.

    Standardize -> MultiKernelStem(2x2, 3x3 to `filters`) -> GaussianNoise
    (training only) -> SqueezeExcitation -> `num_res_blocks` ResidualBlocks
    (batch norm, CBAM) -> ConvGRU over time -> `num_post_blocks` ResidualBlocks
    expanding to `upsample_filters` -> log2(scale) stages of [3x3 conv to
    `4 * upsample_filters`, PixelShuffle(2), ReLU] -> 1x1 conv to one channel ->
    inverse Standardize. The last conv, the global skip and the inverse
    Standardize (and the input Standardize) compute in float32 under a mixed
    precision policy, so the output is float32 %RH.

    With `noise="texture"` the Gaussian noise after the stem is replaced by
    `NoiseInjection` layers (a fresh N(0, 1) map per sample and frame, a learned
    strength per channel) after the stem, after every residual block (so the
    ConvGRU sees new noise at every step) and post block, all on the LR grid and
    starting at `noise_stddev`, and after every upsampling stage's PixelShuffle
    (before its ReLU: texture at each resolution up to the HR grid), starting at 0
    as StyleGAN's do (white noise on the HR grid would land in the finest band,
    where the truth has little power; the members' differences must be where the
    LR grid leaves the truth uncertain). They are on in inference mode too:
    every call draws a new member of the generator's ensemble.

    Args:
        scale: int, one of 2, 4, 8, 16. The upsampling factor. Defaults to `8`.
        filters: int. Channels of the stem, blocks and ConvGRU (even, split
            between the 2x2 and 3x3 stem branches). Defaults to `128`.
        num_res_blocks: int. Residual blocks before the ConvGRU. Defaults to `4`.
        upsample_filters: int. Channels of the post blocks and of each
            upsampling stage's output. Defaults to `256`.
        num_post_blocks: int. Residual blocks after the ConvGRU. Defaults to `2`.
        noise_stddev: float. Std of the Gaussian noise added after the stem
            during training, in normalised units; `0` leaves the layer out.
            With `noise="texture"`, the initial strength of the noise layers on
            the LR grid (> 0). Defaults to `0.1`.
        se_ratio: int. Reduction ratio of the SE block. Defaults to `16`.
        use_cbam: bool. CBAM at the end of each residual block (Table 2
            ablation). Defaults to `True`.
        use_residual: bool. Skip connections in the residual blocks (Table 2
            "ResNet" ablation). Defaults to `True`.
        global_skip: bool. Add the LR input upsampled by `StrideUpsampling`
            (LR point k on HR cell `scale * k`), in normalised units before the
            inverse Standardize, so the network learns a residual over aligned
            interpolation. Defaults to `False` (the paper).
        skip_interpolation: "bicubic", "bilinear" or "nearest", the global
            skip's upsampling. Defaults to `"bilinear"`.
        icnr: bool. Initialise the upsampling convolutions with `ICNR`, so every
            sub-pixel position starts alike (no initial checkerboard). Defaults
            to `False`.
        noise: `"stem"` (the paper: Gaussian noise after the stem, in training
            only) or `"texture"` (`NoiseInjection` at every stage, always on).
            Defaults to `"stem"`.
        mean: float. Data mean (%RH) from the manifest. Defaults to `0.0`.
        std: float. Data std (%RH) from the manifest. Defaults to `1.0`.
        predictor_mean: list of floats, one per LR predictor (the manifest's
            `predictors` means), or None for no `predictors` input.
            Defaults to `None`.
        predictor_std: list of floats, as `predictor_mean`. Defaults to `None`.
        time_features: bool. A `time_features` input (`contract.inputs.
            time_features`). Defaults to `False`.
        static_mean: list of floats, one per static channel (the manifest's
            `static` channels), or None for no `static` input. Defaults to `None`.
        static_std: list of floats, as `static_mean`. Defaults to `None`.
        name: str. The model name. Defaults to `"generator"`.

    Returns:
        A functional `keras.Model`.
    """
    check_scale(scale)
    check_int("filters", filters, 2)
    check_int("num_res_blocks", num_res_blocks, 0)
    check_int("upsample_filters", upsample_filters, 1)
    check_int("num_post_blocks", num_post_blocks, 0)
    check_int("se_ratio", se_ratio, 1)
    check_bool("use_cbam", use_cbam)
    check_bool("use_residual", use_residual)
    check_bool("icnr", icnr)
    check_bool("global_skip", global_skip)
    if not (isinstance(noise_stddev, (int, float)) and noise_stddev >= 0):
        raise ValueError(f"`noise_stddev` must be a number >= 0. Received: noise_stddev={noise_stddev}")
    if noise not in NOISES:
        raise ValueError(f"`noise` must be one of {NOISES}. Received: noise={noise!r}")
    if noise == "texture" and not noise_stddev > 0:
        raise ValueError(
            "`noise_stddev` is the initial strength of the texture noise and must be > 0 "
            f"(at 0 members start identical and a fair CRPS cannot part them). Received: noise_stddev={noise_stddev}"
        )
    texture = noise == "texture"
    if filters % 2:
        raise ValueError(
            f"`filters` must be even (it is split between the 2x2 and 3x3 stem branches). Received: filters={filters}"
        )
    block_kwargs = dict(norm="batch", use_cbam=use_cbam, use_residual=use_residual)

    # Layers.
    standardize = Standardize(mean, std, dtype="float32", name="standardize")
    stem = MultiKernelStem(filters, kernel_sizes=(2, 3), name="stem")

    def injection(name, initial_scale=noise_stddev):  # the texture noise after a stage, or nothing
        return NoiseInjection(initial_scale, name=name) if texture else None

    if texture:
        stem_noise = injection("stem_noise")
    else:
        stem_noise = keras.layers.GaussianNoise(noise_stddev, name="noise") if noise_stddev > 0 else None
    squeeze_excitation = SqueezeExcitation(se_ratio, name="squeeze_excitation")
    res_blocks = [
        (ResidualBlock(filters, name=f"res_block_{i}", **block_kwargs), injection(f"res_block_{i}_noise"))
        for i in range(num_res_blocks)
    ]
    conv_gru = ConvGRU(filters, name="conv_gru")
    post_blocks = [
        (ResidualBlock(upsample_filters, name=f"post_block_{i}", **block_kwargs), injection(f"post_block_{i}_noise"))
        for i in range(num_post_blocks)
    ]
    upsample_stages = [
        (
            FrameConv2D(
                4 * upsample_filters,
                3,
                padding="same",
                kernel_initializer=ICNR(2) if icnr else "glorot_uniform",
                name=f"upsample_{i}_conv",
            ),
            PixelShuffle(2, name=f"upsample_{i}_shuffle"),
            injection(f"upsample_{i}_noise", 0.0),
            keras.layers.ReLU(name=f"upsample_{i}_relu"),
        )
        for i in range(int(math.log2(scale)))
    ]
    output_conv = FrameConv2D(1, 1, dtype="float32", name="output_conv")
    if global_skip:
        skip_upsample = StrideUpsampling(scale, skip_interpolation, dtype="float32", name="skip_upsample")
        skip_add = keras.layers.Add(dtype="float32", name="skip_add")
    destandardize = Standardize(mean, std, invert=True, dtype="float32", name="destandardize")
    extras = _extra_layers(
        scale, upsample_filters, predictor_mean, predictor_std, time_features, static_mean, static_std
    )

    # Graph.
    inputs = keras.Input((None, None, None, 1), name="lr")
    normalised = standardize(inputs)
    x = normalised
    if extras:
        inputs, x, static = _extra_inputs(extras, inputs, x)
    x = stem(x)
    if stem_noise is not None:
        x = stem_noise(x)
    x = squeeze_excitation(x)
    for block, block_noise in res_blocks:
        x = block(x)
        if block_noise is not None:
            x = block_noise(x)
    x = conv_gru(x)
    for block, block_noise in post_blocks:
        x = block(x)
        if block_noise is not None:
            x = block_noise(x)
    for conv, shuffle, stage_noise, relu in upsample_stages:
        x = shuffle(conv(x))
        if stage_noise is not None:
            x = stage_noise(x)
        x = relu(x)
    if "static" in extras:
        x = extras["static_conv"](extras["static_hr_concat"]([x, static]))
    x = output_conv(x)
    if global_skip:
        x = skip_add([x, skip_upsample(normalised)])
    outputs = destandardize(x)
    return keras.Model(inputs, outputs, name=name)


def _extra_layers(scale, upsample_filters, predictor_mean, predictor_std, time_features, static_mean, static_std):
    """The generator's layers for its extra inputs, by role ({} without any: the network of the LR field alone)."""
    check_bool("time_features", time_features)
    layers = {}
    if predictor_mean is not None or predictor_std is not None:
        layers["predictors"] = Standardize(
            predictor_mean, predictor_std, dtype="float32", name="standardize_predictors"
        )
    if time_features:
        layers["time_features"] = BroadcastConcatenate((2, 3), name="time_concat")
    if static_mean is not None or static_std is not None:
        layers["static"] = Standardize(static_mean, static_std, dtype="float32", name="standardize_static")
        layers["static_pool"] = keras.layers.AveragePooling2D(scale, padding="same", name="static_pool")
        layers["static_lr_concat"] = BroadcastConcatenate((1,), name="static_lr_concat")
        layers["static_hr_concat"] = BroadcastConcatenate((1,), name="static_hr_concat")
        layers["static_conv"] = FrameConv2D(upsample_filters, 3, padding="same", activation="relu", name="static_conv")
    return layers


def _extra_inputs(layers, lr, normalised):
    """The named inputs of a generator with extras, its stem's input and its standardised static fields (or None)."""
    inputs, static = {"lr": lr}, None
    stack = [normalised]
    if "predictors" in layers:
        channels = len(layers["predictors"].mean)
        inputs["predictors"] = keras.Input((None, None, None, channels), name="predictors")
        stack.append(layers["predictors"](inputs["predictors"]))
    x = keras.layers.Concatenate(name="lr_stack")(stack) if len(stack) > 1 else normalised
    if "time_features" in layers:
        inputs["time_features"] = keras.Input((None, len(TIME_FEATURES)), name="time_features")
        x = layers["time_features"]([x, inputs["time_features"]])
    if "static" in layers:
        inputs["static"] = keras.Input((None, None, len(layers["static"].mean)), name="static")
        static = layers["static"](inputs["static"])
        x = layers["static_lr_concat"]([x, layers["static_pool"](static)])
    return inputs, x, static


def extra_input_kwargs(manifest):
    """`build_generator`'s (and with `static_*` only, `build_critic`'s) extra-input arguments for a build.

    {} for a build without extras; the statistics are the manifest's, in physical units.
    """
    kwargs = {}
    predictors = manifest.get("predictors") or []
    if predictors:
        kwargs["predictor_mean"] = [float(p["mean"]) for p in predictors]
        kwargs["predictor_std"] = [float(p["std"]) for p in predictors]
    if manifest.get("time_encoding"):
        kwargs["time_features"] = True
    channels = static_channels(manifest)
    if channels:
        kwargs["static_mean"] = [float(c["mean"]) for c in channels]
        kwargs["static_std"] = [float(c["std"]) for c in channels]
    return kwargs


# Over 80 lines: the same builder layout as `build_generator`.
def build_critic(
    filters=64,
    num_res_blocks=2,
    num_post_blocks=1,
    norm="layer",
    use_cbam=True,
    use_residual=True,
    mean=0.0,
    std=1.0,
    static_mean=None,
    static_std=None,
    name="critic",
):
    """The WGAN-GP critic (paper Fig. 3): HR %RH `[B, T, H, W, 1]` to a score `[B, 1]`.

    Standardize -> 3x3 conv(`filters`) + LeakyReLU(0.2) -> stride-2 3x3 conv +
    LeakyReLU -> `num_res_blocks` ResidualBlocks -> stride-2 3x3 conv +
    LeakyReLU -> ConvGRU over time -> `num_post_blocks` ResidualBlocks ->
    global average over T, H, W -> Dense(1) in float32 with no activation (an
    unbounded Wasserstein score). The two stride-2 per-frame convolutions
    (`FrameConv2D` kernel 3, strides 2, "same" padding, so any
    H and W work) put the blocks at H/2 and the ConvGRU and post blocks at
    H/4, e.g. 32x32 and 16x16 for a 64x64 field. All convolutions keep
    `filters` channels.

    The critic must not use batch normalisation: the WGAN-GP gradient penalty
    is computed per sample, and batch statistics would couple the samples.
    `norm="layer"` normalises each frame of each sample over (H, W, C).

    With `static_mean`/`static_std` the critic is a model of a dict `{"hr", "static"}`: the
    static fields `[B, H, W, S]` (physical units, standardised per channel) lie beside the HR
    field at every time step, so it can tell whether the detail fits the terrain.

    Args:
        filters: int. Channels of every layer. Defaults to `64`.
        num_res_blocks: int. Residual blocks before the ConvGRU. Defaults to `2`.
        num_post_blocks: int. Residual blocks after the ConvGRU. Defaults to `1`.
        norm: `"layer"` or `"none"`; `"batch"` raises. Defaults to `"layer"`.
        use_cbam: bool. CBAM at the end of each residual block. Defaults to `True`.
        use_residual: bool. Skip connections in the residual blocks.
            Defaults to `True`.
        mean: float. Data mean (%RH) from the manifest. Defaults to `0.0`.
        std: float. Data std (%RH) from the manifest. Defaults to `1.0`.
        static_mean: list of floats, one per static channel, or None for no
            `static` input. Defaults to `None`.
        static_std: list of floats, as `static_mean`. Defaults to `None`.
        name: str. The model name. Defaults to `"critic"`.

    Returns:
        A functional `keras.Model`.
    """
    if norm == "batch":
        raise ValueError(
            "The critic cannot use batch normalisation: the WGAN-GP gradient "
            "penalty is computed per sample and batch statistics couple the "
            "samples of a batch. Use norm='layer' or norm='none'. "
            f"Received: norm={norm!r}"
        )
    if norm not in CRITIC_NORMS:
        raise ValueError(f"`norm` must be one of {CRITIC_NORMS}. Received: norm={norm!r}")
    check_int("filters", filters, 1)
    check_int("num_res_blocks", num_res_blocks, 0)
    check_int("num_post_blocks", num_post_blocks, 0)
    check_bool("use_cbam", use_cbam)
    check_bool("use_residual", use_residual)
    block_kwargs = dict(norm=norm, use_cbam=use_cbam, use_residual=use_residual)

    def conv(strides, name):
        return FrameConv2D(filters, 3, strides=strides, padding="same", name=name)

    def leaky_relu(name):
        return keras.layers.LeakyReLU(negative_slope=0.2, name=name)

    # Layers.
    standardize = Standardize(mean, std, dtype="float32", name="standardize")
    stem_conv, stem_act = conv(1, "stem_conv"), leaky_relu("stem_act")
    down1_conv, down1_act = conv(2, "down1_conv"), leaky_relu("down1_act")
    res_blocks = [ResidualBlock(filters, name=f"res_block_{i}", **block_kwargs) for i in range(num_res_blocks)]
    down2_conv, down2_act = conv(2, "down2_conv"), leaky_relu("down2_act")
    conv_gru = ConvGRU(filters, name="conv_gru")
    post_blocks = [ResidualBlock(filters, name=f"post_block_{i}", **block_kwargs) for i in range(num_post_blocks)]
    pool = keras.layers.GlobalAveragePooling3D(name="global_pool")
    score = keras.layers.Dense(1, dtype="float32", name="score")

    with_static = static_mean is not None or static_std is not None
    if with_static:
        standardize_static = Standardize(static_mean, static_std, dtype="float32", name="standardize_static")
        static_concat = BroadcastConcatenate((1,), name="static_concat")

    # Graph.
    inputs = keras.Input((None, None, None, 1), name="hr")
    x = standardize(inputs)
    if with_static:
        inputs = {"hr": inputs, "static": keras.Input((None, None, len(standardize_static.mean)), name="static")}
        x = static_concat([x, standardize_static(inputs["static"])])
    x = stem_act(stem_conv(x))
    x = down1_act(down1_conv(x))
    for block in res_blocks:
        x = block(x)
    x = down2_act(down2_conv(x))
    x = conv_gru(x)
    for block in post_blocks:
        x = block(x)
    outputs = score(pool(x))
    return keras.Model(inputs, outputs, name=name)


def build_srcnn(
    scale=8,
    filters=(64, 32),
    kernel_sizes=(9, 5, 5),
    mean=0.0,
    std=1.0,
    name="srcnn",
):
    """SRCNN baseline: LR %RH `[B, T, h, w, 1]` to HR `[B, T, s*h, s*w, 1]`.

    As in Dong et al., the LR field is first upsampled by bicubic interpolation
    (inside the model, by `StrideUpsampling`: LR point k on HR cell `scale*k`,
    the alignment of stride sampling), then three per-frame convolutions
    (patch extraction, non-linear mapping, reconstruction; "same" padding;
    ReLU after the first two) map it to the HR field. There is no skip
    connection: the network itself must carry the interpolated field through.
    The last convolution and the inverse Standardize compute in float32.

    Args:
        scale: int, one of 2, 4, 8, 16. The upsampling factor. Defaults to `8`.
        filters: pair of ints. Channels of the first two convolutions.
            Defaults to `(64, 32)`.
        kernel_sizes: three ints. Spatial kernel sizes. Defaults to `(9, 5, 5)`.
        mean: float. Data mean (%RH) from the manifest. Defaults to `0.0`.
        std: float. Data std (%RH) from the manifest. Defaults to `1.0`.
        name: str. The model name. Defaults to `"srcnn"`.

    Returns:
        A functional `keras.Model`.

    Reference:
        Dong, Loy, He, Tang (2016), "Image super-resolution using deep
        convolutional networks", IEEE TPAMI 38(2).
    """
    check_scale(scale)
    if not isinstance(filters, (list, tuple)) or len(filters) != 2:
        raise ValueError(f"`filters` must be two integers. Received: filters={filters}")
    if not isinstance(kernel_sizes, (list, tuple)) or len(kernel_sizes) != 3:
        raise ValueError(f"`kernel_sizes` must be three integers. Received: kernel_sizes={kernel_sizes}")
    for value in filters:
        check_int("filters", value, 1)
    for value in kernel_sizes:
        check_int("kernel_sizes", value, 1)

    # Layers.
    standardize = Standardize(mean, std, dtype="float32", name="standardize")
    upsample = StrideUpsampling(scale, "bicubic", dtype="float32", name="upsample")
    convs = [
        FrameConv2D(n, k, padding="same", activation="relu", name=f"conv{i + 1}")
        for i, (n, k) in enumerate(zip(filters, kernel_sizes[:2]))
    ]
    k = kernel_sizes[2]
    output_conv = FrameConv2D(1, k, padding="same", dtype="float32", name="conv3")
    destandardize = Standardize(mean, std, invert=True, dtype="float32", name="destandardize")

    # Graph.
    inputs = keras.Input((None, None, None, 1), name="lr")
    x = upsample(standardize(inputs))
    for conv in convs:
        x = conv(x)
    outputs = destandardize(output_conv(x))
    return keras.Model(inputs, outputs, name=name)


def build_networks(config, scale, mean, std, extras=None):
    """The generator and critic of `config.architecture` for data of `scale`; no critic for the content loss.

    "paper" is this module's generator and critic, "srcnn" its SRCNN, "srgan" the networks
    of `hsr_keras.models.srgan`. `scale`, `mean` and `std` are the data's, from its manifest;
    `extras` its extra inputs (`extra_input_kwargs`), which only "paper" takes.
    """
    extras = extras or {}
    if extras and config.architecture != "paper":
        raise ValueError(
            f"architecture {config.architecture!r} takes the LR field only, and the data has extra inputs "
            f"({', '.join(sorted(extras))}): use architecture 'paper' or a build without them"
        )
    if config.architecture == "paper":
        generator = build_generator(**config.generator_kwargs(scale, mean, std), **extras)
    elif config.architecture == "srcnn":
        generator = build_srcnn(scale=scale, mean=mean, std=std)
    else:
        generator = srgan.build_srgan_generator(
            scale=scale,
            filters=config.filters,
            num_res_blocks=config.num_res_blocks,
            global_skip=config.global_skip,
            skip_interpolation=config.skip_interpolation,
            mean=mean,
            std=std,
        )
    if config.loss == "content":
        return generator, None
    if config.architecture == "srgan":
        return generator, srgan.build_srgan_discriminator(filters=config.critic_filters, mean=mean, std=std)
    static = {key: value for key, value in extras.items() if key.startswith("static_")}
    return generator, build_critic(**config.critic_kwargs(mean, std), **static)


def count_flops(model, input_shape):
    """Forward FLOPs per sample (2 x multiply-adds) from the layers' shapes.

    Counts convolutions, `FrameConv2D` and `Conv3D` (`2 * output elements * kernel
    volume * input channels / groups`), `Dense` (`2 * positions * inputs * units`) and `ConvGRU`
    (per step, the cell's input and recurrent convolutions:
    `2 * H * W * k*k * 3*filters * (channels + filters)`), including those
    inside `MultiKernelStem`, `SqueezeExcitation`, `CBAM` (its shared MLP
    counted twice, once per pooled vector) and `ResidualBlock`. Biases,
    activations, normalisation, pooling and reshapes are not counted.

    Args:
        model: a functional `keras.Model`, as built by this module.
        input_shape: the shape of one sample, without the batch axis, e.g.
            `(8, 8, 8, 1)` for T=8 frames of 8x8 LR.

    Returns:
        int. The FLOP count for one sample.
    """
    input_shape = tuple(input_shape)
    rank = len(model.inputs[0].shape) - 1
    if len(input_shape) != rank or not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise ValueError(
            f"`input_shape` must be {rank} positive integers (one sample, no batch "
            f"axis). Received: input_shape={input_shape}"
        )
    shapes = {id(model.inputs[0]): (1,) + input_shape}
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = keras.tree.map_structure(lambda t: keras.KerasTensor(shapes[id(t)], dtype=t.dtype), layer.input)
        if not isinstance(inputs, (list, tuple)):
            total += _flops(layer, inputs.shape)
        outputs = layer.compute_output_spec(inputs)
        for tensor, out in zip(keras.tree.flatten(layer.output), keras.tree.flatten(outputs)):
            shapes[id(tensor)] = tuple(out.shape)
    return int(total)


def _flops(layer, input_shape):
    """FLOPs of one layer call on `input_shape` (batch 1); 0 for uncounted layers."""
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv3D)):
        out = layer.compute_output_shape(input_shape)
        kernel_volume = math.prod(layer.kernel_size)
        return 2 * math.prod(out[1:]) * kernel_volume * input_shape[-1] // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return 2 * math.prod(input_shape[1:]) * layer.units
    if isinstance(layer, ConvGRU):
        _, time, height, width, channels = input_shape
        k, f = layer.kernel_size, layer.filters
        return 2 * time * height * width * k * k * 3 * f * (channels + f)
    if isinstance(layer, MultiKernelStem):
        return sum(_flops(conv, input_shape) for conv in layer.convs)
    if isinstance(layer, SqueezeExcitation):
        pooled = tuple(input_shape[:2]) + (1, 1, input_shape[-1])
        hidden = pooled[:-1] + (layer.hidden_units,)
        return _flops(layer.squeeze_dense, pooled) + _flops(layer.excite_dense, hidden)
    if isinstance(layer, CBAM):
        pooled = tuple(input_shape[:2]) + (1, 1, input_shape[-1])
        hidden = pooled[:-1] + (layer.hidden_units,)
        mlp = _flops(layer.mlp_hidden, pooled) + _flops(layer.mlp_output, hidden)
        spatial = tuple(input_shape[:-1]) + (2,)
        return 2 * mlp + _flops(layer.spatial_conv, spatial)
    if isinstance(layer, ResidualBlock):
        out = tuple(input_shape[:-1]) + (layer.filters,)
        flops = _flops(layer.conv1, input_shape) + _flops(layer.conv2, out)
        if layer.projection is not None:
            flops += _flops(layer.projection, input_shape)
        if layer.cbam is not None:
            flops += _flops(layer.cbam, out)
        return flops
    return 0
