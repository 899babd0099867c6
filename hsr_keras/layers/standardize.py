"""Standardize: physical units in, normalised units out (or back)."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hsr_keras")
class Standardize(keras.layers.Layer):
    """Affine normalisation with constants stored in the layer's config.

    Computes `(x - mean) / std`, or `x * std + mean` when `invert=True`. `mean` and `std`
    are numbers, or lists with one value per channel (the last axis), for stacks of
    variables in different units (predictors, static fields). The
    constants come from the training-split statistics in the data manifest, so
    a network that starts with `Standardize(mean, std)` and ends with
    `Standardize(mean, std, invert=True)` takes and returns physical units
    (%RH), and a saved model carries its own normalisation.

    Args:
        mean: float, or a list of floats (one per channel). The mean
            subtracted (or added back when inverting). Defaults to `0.0`.
        std: float, or a list of positive floats (one per channel, as many as
            `mean`). The standard deviation divided by (or multiplied by when
            inverting). Defaults to `1.0`.
        invert: bool. Whether to apply the inverse transform `x * std + mean`.
            Defaults to `False`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            such as `name` and `dtype`.

    Example:
    ```python
    x = np.full((1, 8, 8, 8, 1), 75.0, "float32")  # [B, T, H, W, C] in %RH
    z = Standardize(mean=50.0, std=25.0)(x)  # all ones
    Standardize(mean=50.0, std=25.0, invert=True)(z)  # back to 75.0
    ```

    Reference:
    - Li, Wang, Wang, Han (2024), "Super-Resolution Reconstruction of Humidity
      Fields based on Wasserstein Generative Adversarial Network with Gradient
      Penalty", section 3 (the ERA5 data); normalising inside the graph is this
      project's choice, so a SavedModel takes and returns %RH.
    """

    def __init__(self, mean=0.0, std=1.0, invert=False, **kwargs):
        super().__init__(**kwargs)
        per_channel = isinstance(mean, (list, tuple)) or isinstance(std, (list, tuple))
        try:
            means = [float(v) for v in mean] if per_channel else [float(mean)]
            stds = [float(v) for v in std] if per_channel else [float(std)]
        except (TypeError, ValueError) as err:
            raise ValueError(f"`mean` and `std` must be numbers. Received: mean={mean}, std={std}") from err
        if len(means) != len(stds) or not means:
            raise ValueError(f"`mean` and `std` must have one value per channel each. Received: mean={mean}, std={std}")
        if not all(math.isfinite(v) for v in means):
            raise ValueError(f"`mean` must be finite. Received: mean={mean}")
        if not all(math.isfinite(v) and v > 0 for v in stds):
            raise ValueError(f"`std` must be a positive finite number. Received: std={std}")
        # Scalars stay scalars, so the config of a single-variable layer is as before.
        mean, std = (means, stds) if per_channel else (means[0], stds[0])
        if not isinstance(invert, bool):
            raise ValueError(f"`invert` must be a bool. Received: invert={invert}")
        self.mean = mean
        self.std = std
        self.invert = invert

    def call(self, inputs):
        mean = ops.cast(self.mean, inputs.dtype)
        std = ops.cast(self.std, inputs.dtype)
        if self.invert:
            return inputs * std + mean
        return (inputs - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mean": self.mean, "std": self.std, "invert": self.invert})
        return config
