"""StrideUpsampling: fixed upsampling that respects where stride-sampled LR points sit."""

import keras
from keras import ops

from hsr_keras.choices import INTERPOLATIONS
from hsr_keras.layers.checks import check_int


@keras.saving.register_keras_serializable(package="hsr_keras")
class StrideUpsampling(keras.layers.Layer):
    """Upsample every frame by `scale`, with LR point k on HR cell `scale * k`.

    A stride-sampled LR grid (the paper's degradation) holds the HR values at cells
    0, s, 2s, ...; an image resize assumes pixel centres and shifts the field by
    (s - 1) / 2 cells. This layer interpolates between the true positions, separably
    along H and W, with taps beyond the edges clamped to the edge points (as
    `hsr_keras.scoring.interpolation.upsample_aligned` does): "bicubic" is Keys' cubic
    convolution (a = -0.5), "bilinear" is linear between neighbouring LR points, and
    "nearest" repeats LR point k over cells s*k .. s*k + s - 1. It has no weights and
    runs at any T, H and W; the generator adds it as a global skip so the network
    learns a residual over aligned interpolation.

    Args:
        scale: int >= 2. Defaults to `8`.
        interpolation: "bicubic", "bilinear" or "nearest". Defaults to `"bilinear"`.

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
        check_int("scale", scale, 2)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` must be one of {INTERPOLATIONS}. Received: interpolation={interpolation}"
            )
        self.scale = scale
        self.interpolation = interpolation
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def _taps(self, t):
        """{LR offset: weight as a function of the fractional position t in [0, 1)}."""
        if self.interpolation == "nearest":
            return {0: ops.ones_like(t)}
        if self.interpolation == "bilinear":
            return {0: 1.0 - t, 1: t}
        t2, t3 = t * t, t * t * t
        return {
            -1: -0.5 * t3 + t2 - 0.5 * t,
            0: 1.5 * t3 - 2.5 * t2 + 1.0,
            1: -1.5 * t3 + 2.0 * t2 + 0.5 * t,
            2: 0.5 * t3 - 0.5 * t2,
        }

    @staticmethod
    def _shifted(x, offset, axis):
        """x[clip(i + offset)] along `axis`, for offset in -1..2 (edge points repeated)."""

        def take(start, stop):
            return x[(slice(None),) * axis + (slice(start, stop),)]

        if offset == 0:
            return x
        if offset == -1:
            return ops.concatenate([take(None, 1), take(None, -1)], axis=axis)
        shifted = ops.concatenate([take(1, None), take(-1, None)], axis=axis)
        return shifted if offset == 1 else StrideUpsampling._shifted(shifted, 1, axis)

    def _along(self, x, axis):
        s = self.scale
        n = ops.shape(x)[axis]
        shape = [1] * 5
        shape[axis] = -1
        t = ops.reshape(ops.cast(ops.arange(n * s) % s, x.dtype) / s, shape)
        out = 0.0
        for offset, weight in self._taps(t).items():
            out = out + ops.repeat(self._shifted(x, offset, axis), s, axis=axis) * weight
        return out

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
