"""ResidualBlock: conv-norm-ReLU-conv-norm, CBAM, skip, ReLU (paper Fig. 5a)."""

import keras
from keras import ops

from hsr_keras.choices import NORMS
from hsr_keras.layers.cbam import CBAM
from hsr_keras.layers.checks import check_bool, check_int
from hsr_keras.layers.frame_conv import FrameConv2D


class _FrameLayerNormalization(keras.layers.Layer):
    """Layer normalisation of each frame over (H, W, C), per-channel scale and shift.

    `keras.layers.LayerNormalization(axis=(2, 3, 4))` would make its scale and
    shift the shape of (H, W, C), which must then be known; here they have
    shape (C,), so the layer runs at any H and W. Statistics are per sample
    and per frame (no coupling across the batch). Computed in float32.
    """

    def __init__(self, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma", autocast=False)
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta", autocast=False)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        mean, variance = ops.moments(x, axes=(2, 3, 4), keepdims=True)
        x = (x - mean) * ops.rsqrt(variance + self.epsilon) * self.gamma + self.beta
        return ops.cast(x, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package="hsr_keras")
class ResidualBlock(keras.layers.Layer):
    """Residual block with CBAM at its end, applied to every frame.

    `conv -> norm -> ReLU -> conv -> norm -> CBAM`, plus the skip connection,
    then ReLU. Convolutions are per-frame `FrameConv2D`s with kernel `(k, k)` and
    "same" padding, so time stays its own axis. When the input channel count differs
    from `filters`, the skip goes through a per-frame 1x1 convolution.

    Normalisation: `"batch"` is batch normalisation (the paper's generator);
    `"layer"` normalises each frame of each sample over (H, W, C) with a
    per-channel scale and shift, which does not couple the samples of a batch
    and is what a WGAN-GP critic needs (its gradient penalty is per sample);
    `"none"` leaves the convolutions un-normalised (they then have biases).

    Args:
        filters: int. The number of output channels.
        kernel_size: int. The spatial kernel size of both convolutions.
            Defaults to `3`.
        norm: one of `"batch"`, `"layer"`, `"none"`. Defaults to `"batch"`.
        use_cbam: bool. Whether to end the block with CBAM (the paper's Table 2
            ablation switch). Defaults to `True`.
        use_residual: bool. Whether to add the skip connection (`False` is the
            paper's "without ResNet" ablation). Defaults to `True`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            such as `name` and `dtype`.

    Example:
    ```python
    x = np.random.rand(2, 8, 8, 8, 64).astype("float32")  # [B, T, H, W, C]
    ResidualBlock(128, norm="layer")(x).shape  # (2, 8, 8, 8, 128)
    ```

    Reference:
    - [He, Zhang, Ren, Sun (2016), "Deep residual learning for image
      recognition", CVPR](https://arxiv.org/abs/1512.03385)
    - Li, Wang, Wang, Han (2024), "Super-Resolution Reconstruction of Humidity
      Fields based on Wasserstein Generative Adversarial Network with Gradient
      Penalty", Fig. 5(a) and Table 2.
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        norm="batch",
        use_cbam=True,
        use_residual=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_int("filters", filters, 1)
        check_int("kernel_size", kernel_size, 1)
        if norm not in NORMS:
            raise ValueError(f"`norm` must be one of {NORMS}. Received: norm={norm!r}")
        check_bool("use_cbam", use_cbam)
        check_bool("use_residual", use_residual)
        self.filters = filters
        self.kernel_size = kernel_size
        self.norm = norm
        self.use_cbam = use_cbam
        self.use_residual = use_residual
        self.input_spec = keras.layers.InputSpec(ndim=5)

        self.conv1 = FrameConv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=norm == "none",
            dtype=self.dtype_policy,
            name="conv1",
        )
        self.norm1 = self._make_norm("norm1")
        self.relu1 = keras.layers.ReLU(dtype=self.dtype_policy, name="relu1")
        self.conv2 = FrameConv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=norm == "none",
            dtype=self.dtype_policy,
            name="conv2",
        )
        self.norm2 = self._make_norm("norm2")
        self.cbam = CBAM(dtype=self.dtype_policy, name="cbam") if use_cbam else None
        self.projection = None  # made in build() when the channel count changes
        self.add = keras.layers.Add(dtype=self.dtype_policy, name="add")
        self.relu_out = keras.layers.ReLU(dtype=self.dtype_policy, name="relu_out")

    def _make_norm(self, name):
        if self.norm == "batch":
            return keras.layers.BatchNormalization(dtype=self.dtype_policy, name=name)
        if self.norm == "layer":
            return _FrameLayerNormalization(dtype=self.dtype_policy, name=name)
        return None

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"The channel count must be known. Received: input_shape={input_shape}")
        output_shape = tuple(input_shape[:-1]) + (self.filters,)
        self.conv1.build(input_shape)
        self.conv2.build(output_shape)
        for layer in (self.norm1, self.norm2, self.cbam):
            if layer is not None:
                layer.build(output_shape)
        if self.use_residual and input_shape[-1] != self.filters:
            self.projection = FrameConv2D(self.filters, 1, dtype=self.dtype_policy, name="projection")
            self.projection.build(input_shape)

    def call(self, inputs, training=None):
        x = self.conv1(inputs)
        if self.norm1 is not None:
            x = self.norm1(x, training=training)
        x = self.relu1(x)
        x = self.conv2(x)
        if self.norm2 is not None:
            x = self.norm2(x, training=training)
        if self.cbam is not None:
            x = self.cbam(x)
        if self.use_residual:
            skip = inputs if self.projection is None else self.projection(inputs)
            x = self.add([x, skip])
        return self.relu_out(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "norm": self.norm,
                "use_cbam": self.use_cbam,
                "use_residual": self.use_residual,
            }
        )
        return config
