"""FrameConv2D: a 2-D convolution applied to every frame of [batch, time, H, W, C]."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hsr_keras")
class FrameConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` on each frame, time folded into the batch.

    Reshapes `[B, T, H, W, C]` to `[B * T, H, W, C]`, convolves, and reshapes back, so the
    result equals a `Conv3D` with kernel `(1, k, k)` and strides `(1, s, s)` whose kernel[0]
    is this layer's kernel. It exists for speed: 2-D convolutions have the tuned paths
    (cuDNN's, oneDNN's, Eigen's in XLA:CPU), while a 3-D convolution whose kernel spans one
    frame is often lowered to a slower generic one; on 2 CPU cores under JAX a strided
    (1, 3, 3) Conv3D's forward and backward took 22x the time of this layer
    (benchmarks/RESULTS.md). Batch, time, height and width may all be unknown.

    Args: those of `keras.layers.Conv2D` (channels-last only).

    Example:
    ```python
    x = np.random.rand(2, 8, 16, 16, 4).astype("float32")  # [B, T, H, W, C]
    FrameConv2D(32, 3, strides=2, padding="same")(x).shape  # (2, 8, 8, 8, 32)
    ```
    """

    def __init__(self, filters, kernel_size, **kwargs):
        kwargs.setdefault("data_format", "channels_last")
        if kwargs["data_format"] != "channels_last":
            raise ValueError(f"FrameConv2D is channels-last only. Received: data_format={kwargs['data_format']}")
        super().__init__(filters, kernel_size, **kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        super().build(input_shape)
        self.input_spec = keras.layers.InputSpec(ndim=5, axes={-1: input_shape[-1]})

    def call(self, inputs):
        shape = ops.shape(inputs)
        frames = ops.reshape(inputs, (-1, shape[2], shape[3], shape[4]))
        outputs = super().call(frames)
        out = ops.shape(outputs)
        return ops.reshape(outputs, (shape[0], shape[1], out[1], out[2], out[3]))

    def compute_output_shape(self, input_shape):
        frame = super().compute_output_shape((None,) + tuple(input_shape[2:]))
        return tuple(input_shape[:2]) + tuple(frame[1:])

    def get_config(self):
        # Lists, not tuples, as every hsr_keras layer's config: equal to its JSON round trip.
        return {key: list(value) if isinstance(value, tuple) else value for key, value in super().get_config().items()}
