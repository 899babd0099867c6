"""PixelShuffle: depth-to-space on [batch, time, height, width, channels]."""

import keras
from keras import ops

from hsr_keras.layers.checks import check_int


@keras.saving.register_keras_serializable(package="hsr_keras")
class PixelShuffle(keras.layers.Layer):
    """Sub-pixel rearrangement (depth-to-space) applied to every frame.

    Maps `[B, T, H, W, C * scale**2]` to `[B, T, H * scale, W * scale, C]`
    with the channel ordering of `tf.nn.depth_to_space` (NHWC):
    `out[b, t, h * s + i, w * s + j, c] = in[b, t, h, w, (i * s + j) * C + c]`.
    Time stays its own axis; only reshapes and a transpose are used, so the
    layer has no weights and runs at any T, H and W.

    Args:
        scale: int, at least 2. The upsampling factor along height and width.
            Defaults to `2`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            such as `name` and `dtype`.

    Example:
    ```python
    x = np.random.rand(2, 8, 8, 8, 4 * 16).astype("float32")
    PixelShuffle(scale=2)(x).shape  # (2, 8, 16, 16, 16)
    ```

    Reference:
    - [Shi et al. (2016), "Real-time single image and video super-resolution
      using an efficient sub-pixel convolutional neural network", CVPR](
      https://arxiv.org/abs/1609.05158)
    """

    def __init__(self, scale=2, **kwargs):
        super().__init__(**kwargs)
        check_int("scale", scale, 2)
        self.scale = scale
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % (self.scale**2):
            raise ValueError(
                "The channel count must be known and divisible by "
                f"scale**2={self.scale**2}. Received: input_shape={input_shape}"
            )

    def call(self, inputs):
        s = self.scale
        channels = inputs.shape[-1] // (s * s)
        batch, time, height, width = ops.shape(inputs)[:4]
        x = ops.reshape(inputs, (batch, time, height, width, s, s, channels))
        x = ops.transpose(x, (0, 1, 2, 4, 3, 5, 6))
        return ops.reshape(x, (batch, time, height * s, width * s, channels))

    def compute_output_shape(self, input_shape):
        s = self.scale
        batch, time, height, width, channels = input_shape
        return (
            batch,
            time,
            None if height is None else height * s,
            None if width is None else width * s,
            None if channels is None else channels // (s * s),
        )

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale})
        return config
