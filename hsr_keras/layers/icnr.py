"""ICNR: a sub-pixel convolution's kernel initialised so every output position starts alike."""

import keras
from keras import ops

from hsr_keras.layers.checks import check_int


@keras.saving.register_keras_serializable(package="hsr_keras")
class ICNR(keras.initializers.Initializer):
    """Draws a kernel for `channels / scale**2` outputs and repeats it for every sub-pixel position.

    A convolution followed by `PixelShuffle(scale)` gives each of the `scale x scale` output
    positions its own channels. Initialised independently, the positions start with different
    texture, a checkerboard the training must then undo (Aitken et al. 2017); with ICNR the
    layer starts as a convolution followed by nearest-neighbour upsampling. The repeat follows
    `PixelShuffle`'s ordering: output channel `(i * scale + j) * C + c` is channel `c` of
    position `(i, j)`.

    Args:
        scale: int, at least 2. The `PixelShuffle` factor that follows the convolution.
        initializer: the initializer of the drawn kernel. Defaults to `"glorot_uniform"`,
            Keras' default for convolutions.

    Reference:
        Aitken et al. (2017), "Checkerboard artifact free sub-pixel convolution: a note on
        sub-pixel convolution, resize convolution and convolution resize", arXiv:1707.02937.
    """

    def __init__(self, scale=2, initializer="glorot_uniform"):
        check_int("scale", scale, 2)
        self.scale = scale
        self.initializer = keras.initializers.get(initializer)

    def __call__(self, shape, dtype=None):
        positions = self.scale**2
        if shape[-1] % positions:
            raise ValueError(f"ICNR needs output channels divisible by scale**2={positions}. Received: shape={shape}")
        drawn = self.initializer((*shape[:-1], shape[-1] // positions), dtype=dtype)
        return ops.tile(drawn, (1,) * (len(shape) - 1) + (positions,))

    def get_config(self):
        return {"scale": self.scale, "initializer": keras.initializers.serialize(self.initializer)}
