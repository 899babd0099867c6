"""SqueezeExcitation: per-frame channel attention."""

import keras
from keras import ops

from hsr_keras.layers.checks import check_int


@keras.saving.register_keras_serializable(package="hsr_keras")
class SqueezeExcitation(keras.layers.Layer):
    """Squeeze-and-excitation channel attention, applied to every frame.

    Squeeze: the global average of each channel over height and width, per
    frame (paper eq. 1). Excitation: `Dense(C // ratio, relu)` then
    `Dense(C, sigmoid)` (eq. 2; at least one hidden unit). The input is
    multiplied channel-wise by the resulting weights in (0, 1).

    Args:
        ratio: int. The reduction ratio of the hidden layer. Defaults to `16`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            such as `name` and `dtype`.

    Example:
    ```python
    x = np.random.rand(2, 8, 8, 8, 128).astype("float32")  # [B, T, H, W, C]
    SqueezeExcitation(ratio=16)(x).shape  # (2, 8, 8, 8, 128)
    ```

    Reference:
    - [Hu, Shen, Sun (2018), "Squeeze-and-excitation networks", CVPR](
      https://arxiv.org/abs/1709.01507)
    """

    def __init__(self, ratio=16, **kwargs):
        super().__init__(**kwargs)
        check_int("ratio", ratio, 1)
        self.ratio = ratio
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"The channel count must be known. Received: input_shape={input_shape}")
        self.hidden_units = max(1, channels // self.ratio)
        self.squeeze_dense = keras.layers.Dense(
            self.hidden_units,
            activation="relu",
            dtype=self.dtype_policy,
            name="squeeze_dense",
        )
        self.excite_dense = keras.layers.Dense(
            channels, activation="sigmoid", dtype=self.dtype_policy, name="excite_dense"
        )
        pooled_shape = (input_shape[0], input_shape[1], 1, 1, channels)
        self.squeeze_dense.build(pooled_shape)
        self.excite_dense.build(pooled_shape[:-1] + (self.hidden_units,))

    def call(self, inputs):
        z = ops.mean(inputs, axis=(2, 3), keepdims=True)
        s = self.excite_dense(self.squeeze_dense(z))
        return inputs * s

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"ratio": self.ratio})
        return config
