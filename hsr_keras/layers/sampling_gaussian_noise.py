"""SamplingGaussianNoise: Gaussian noise that stays on in inference mode, to sample a generator."""

import keras


@keras.saving.register_keras_serializable(package="hsr_keras")
class SamplingGaussianNoise(keras.layers.Layer):
    """Adds N(0, stddev) noise on every call, whatever `training` says.

    `keras.layers.GaussianNoise` adds its noise only when called with `training=True`, which
    also switches batch normalisation to batch statistics. The evaluation swaps it for this
    layer to draw an ensemble from a generator called in inference mode (see
    `hsr_keras.evaluation.engine.stochastic_generator`).

    Args:
        stddev: float. Standard deviation of the noise.
        seed: int or None. Seed of the draws. Defaults to None.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name`.
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.stddev = float(stddev)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        noise = keras.random.normal(
            keras.ops.shape(inputs), stddev=self.stddev, dtype=inputs.dtype, seed=self.seed_generator
        )
        return inputs + noise

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"stddev": self.stddev, "seed": self.seed})
        return config
