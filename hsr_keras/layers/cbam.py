"""CBAM: per-frame channel then spatial attention."""

import keras
from keras import ops

from hsr_keras.layers.checks import check_int
from hsr_keras.layers.frame_conv import FrameConv2D


@keras.saving.register_keras_serializable(package="hsr_keras")
class CBAM(keras.layers.Layer):
    """Convolutional block attention module, applied to every frame.

    Channel attention (paper eq. 3): `sigmoid(MLP(avgpool(F)) + MLP(maxpool(F)))`,
    pooling over height and width per frame, with one two-layer MLP
    (`Dense(C // ratio, relu)`, then `Dense(C)`; at least one hidden unit)
    shared by both pooled vectors. Spatial attention (eq. 4):
    `sigmoid(conv([mean over channels; max over channels]))` with a per-frame
    `kernel_size` x `kernel_size` convolution to one channel. The input is
    multiplied by the channel attention, then by the spatial attention.

    Args:
        ratio: int. The reduction ratio of the shared MLP. Defaults to `16`.
        kernel_size: int. The spatial attention kernel size. Defaults to `7`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            such as `name` and `dtype`.

    Example:
    ```python
    x = np.random.rand(2, 8, 8, 8, 128).astype("float32")  # [B, T, H, W, C]
    CBAM(ratio=16, kernel_size=7)(x).shape  # (2, 8, 8, 8, 128)
    ```

    Reference:
    - [Woo, Park, Lee, Kweon (2018), "CBAM: Convolutional block attention
      module", ECCV](https://arxiv.org/abs/1807.06521)
    """

    def __init__(self, ratio=16, kernel_size=7, **kwargs):
        super().__init__(**kwargs)
        check_int("ratio", ratio, 1)
        check_int("kernel_size", kernel_size, 1)
        self.ratio = ratio
        self.kernel_size = kernel_size
        self.input_spec = keras.layers.InputSpec(ndim=5)

        self.spatial_conv = FrameConv2D(
            1,
            kernel_size,
            padding="same",
            activation="sigmoid",
            dtype=self.dtype_policy,
            name="spatial_conv",
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"The channel count must be known. Received: input_shape={input_shape}")
        self.hidden_units = max(1, channels // self.ratio)
        self.mlp_hidden = keras.layers.Dense(
            self.hidden_units, activation="relu", dtype=self.dtype_policy, name="mlp_hidden"
        )
        self.mlp_output = keras.layers.Dense(channels, dtype=self.dtype_policy, name="mlp_output")
        pooled_shape = (input_shape[0], input_shape[1], 1, 1, channels)
        self.mlp_hidden.build(pooled_shape)
        self.mlp_output.build(pooled_shape[:-1] + (self.hidden_units,))
        self.spatial_conv.build(tuple(input_shape[:-1]) + (2,))

    def call(self, inputs):
        avg = ops.mean(inputs, axis=(2, 3), keepdims=True)
        mx = ops.max(inputs, axis=(2, 3), keepdims=True)
        channel = ops.sigmoid(self.mlp_output(self.mlp_hidden(avg)) + self.mlp_output(self.mlp_hidden(mx)))
        x = inputs * channel
        pooled = ops.concatenate(
            [ops.mean(x, axis=-1, keepdims=True), ops.max(x, axis=-1, keepdims=True)],
            axis=-1,
        )
        return x * self.spatial_conv(pooled)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"ratio": self.ratio, "kernel_size": self.kernel_size})
        return config
