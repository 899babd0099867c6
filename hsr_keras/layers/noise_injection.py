"""NoiseInjection: per-point Gaussian noise with a learned strength per channel, on in training and inference."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hsr_keras")
class NoiseInjection(keras.layers.Layer):
    """Adds `scale[c] * n(b, t, y, x)` to every channel `c`: one fresh N(0, 1) map per frame, learned strengths.

    StyleGAN's noise inputs: a single-channel map of standard normal noise, drawn anew for every
    sample and frame on every call, broadcast over the channels with a learned per-channel
    strength. Unlike `keras.layers.GaussianNoise`, the noise is added in inference mode too, so
    a generator built with these layers is a sampler: each call draws a new ensemble member, and
    batch normalisation keeps its moving statistics. Placed after the blocks and the upsampling
    stages of a generator, the noise enters where the texture is made (per LR cell in the
    residual blocks and the ConvGRU's inputs, per HR cell after the last sub-pixel stage).

    The draws come from the layer's `seed_generator`; a caller that wants given members (the
    `sample` signature of an export, a test) binds its state with `keras.StatelessScope`.
    Computed in the layer's compute dtype; the strengths are float32 weights.

    Args:
        initial_scale: float >= 0. Initial strength of every channel, in the units of the
            layer's input (normalised units in the generator). 0 starts with the noise off,
            which a loss whose gradient needs member differences (the fair CRPS) cannot
            switch on. Defaults to `0.1`.
        seed: int or None. Seed of the draws. Defaults to None.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name`.

    Example:
    ```python
    x = np.zeros((2, 8, 8, 8, 16), "float32")  # [B, T, H, W, C]
    a, b = NoiseInjection(0.5)(x), NoiseInjection(0.5)(x)  # two different draws
    ```

    Reference:
    - Karras, Laine, Aila (2019), "A style-based generator architecture for generative
      adversarial networks", CVPR, section 3.2 (noise inputs).
    - Leinonen, Nerini, Berne (2021), "Stochastic super-resolution for downscaling time-evolving
      atmospheric fields with a generative adversarial network", IEEE TGRS.
    """

    def __init__(self, initial_scale=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(initial_scale, bool) or not isinstance(initial_scale, (int, float)) or not initial_scale >= 0:
            raise ValueError(f"`initial_scale` must be a number >= 0. Received: initial_scale={initial_scale}")
        self.initial_scale = float(initial_scale)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"The channel count must be known. Received: input_shape={input_shape}")
        self.scale = self.add_weight(
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.initial_scale),
            name="scale",
            autocast=False,
        )

    def call(self, inputs):
        shape = tuple(ops.shape(inputs)[:-1]) + (1,)
        noise = keras.random.normal(shape, dtype="float32", seed=self.seed_generator)
        return inputs + ops.cast(noise * self.scale, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"initial_scale": self.initial_scale, "seed": self.seed})
        return config
