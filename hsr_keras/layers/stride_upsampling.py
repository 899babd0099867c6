"""StrideUpsampling: fixed upsampling that respects where stride-sampled LR points sit."""

import keras
from keras import ops

INTERPOLATIONS = ("nearest", "bilinear")


@keras.saving.register_keras_serializable(package="hsr_keras")
class StrideUpsampling(keras.layers.Layer):
    """Upsample every frame by `scale`, with LR point k on HR cell `scale * k`.

    A stride-sampled LR grid (the paper's degradation) holds the HR values at cells
    0, s, 2s, ...; an image resize assumes pixel centres and shifts the field by
    (s - 1) / 2 cells. This layer interpolates between the true positions: "bilinear"
    is linear between neighbouring LR points along each axis (constant beyond the last
    point, like `hsr_keras.interpolation.upsample_aligned` with clamped taps); "nearest"
    repeats LR point k over cells s*k .. s*k + s - 1. It has no weights and runs at
    any T, H and W; the generator adds it as a global skip so the network learns a
    residual over aligned interpolation.

    Args:
        scale: int >= 2. Defaults to `8`.
        interpolation: "bilinear" or "nearest". Defaults to `"bilinear"`.

    Example:
    ```python
    x = np.random.rand(2, 8, 8, 8, 1).astype("float32")
    StrideUpsampling(8)(x).shape  # (2, 8, 64, 64, 1)
    ```

    Reference:
    - Kim et al. (2016), "Accurate image super-resolution using very deep
      convolutional networks" (residual learning over an interpolated input).
    """

    def __init__(self, scale=8, interpolation="bilinear", **kwargs):
        super().__init__(**kwargs)
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
            raise ValueError(f"`scale` must be an integer >= 2. Received: scale={scale}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"`interpolation` must be one of {INTERPOLATIONS}. Received: interpolation={interpolation}")
        self.scale = scale
        self.interpolation = interpolation
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def _along(self, x, axis):
        s = self.scale
        repeated = ops.repeat(x, s, axis=axis)
        if self.interpolation == "nearest":
            return repeated
        n = ops.shape(x)[axis]
        following = ops.concatenate([x[(slice(None),) * axis + (slice(1, None),)],
                                     x[(slice(None),) * axis + (slice(-1, None),)]], axis=axis)
        following = ops.repeat(following, s, axis=axis)
        weight = ops.cast(ops.arange(n * s) % s, x.dtype) / s
        shape = [1] * 5
        shape[axis] = -1
        weight = ops.reshape(weight, shape)
        return repeated * (1.0 - weight) + following * weight

    def call(self, inputs):
        return self._along(self._along(inputs, 2), 3)

    def compute_output_shape(self, input_shape):
        batch, time, height, width, channels = input_shape
        s = self.scale
        return (batch, time, None if height is None else height * s, None if width is None else width * s, channels)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "interpolation": self.interpolation})
        return config
