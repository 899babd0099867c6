"""MultiKernelStem: parallel per-frame convolutions of several kernel sizes."""

import keras

from hsr_keras.layers.checks import check_int
from hsr_keras.layers.frame_conv import FrameConv2D


@keras.saving.register_keras_serializable(package="hsr_keras")
class MultiKernelStem(keras.layers.Layer):
    """Parallel per-frame convolutions with different kernel sizes, concatenated.

    Each kernel size `k` gets a per-frame `FrameConv2D` with kernel `(k, k)`
    ("same" padding, so time stays its own axis and H, W are kept) and
    `filters // len(kernel_sizes)` output channels. The outputs are
    concatenated along channels (in the order of `kernel_sizes`) to `filters`
    channels and passed through a ReLU. Even kernel sizes use the "same"
    padding convention of TensorFlow and JAX (one extra row/column of zeros
    after, none before).

    Args:
        filters: int. The number of output channels; must be divisible by
            `len(kernel_sizes)`. Defaults to `128`.
        kernel_sizes: tuple of ints. The spatial kernel sizes of the parallel
            branches. Defaults to `(2, 3)` (the paper's 2x2 and 3x3).
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            such as `name` and `dtype`.

    Example:
    ```python
    x = np.random.rand(2, 8, 8, 8, 1).astype("float32")  # [B, T, H, W, C]
    MultiKernelStem(filters=128, kernel_sizes=(2, 3))(x).shape  # (2, 8, 8, 8, 128)
    ```

    Reference:
    - Li, Wang, Wang, Han (2024), "Super-Resolution Reconstruction of Humidity
      Fields based on Wasserstein Generative Adversarial Network with Gradient
      Penalty", section 4.1 and Fig. 3.
    """

    def __init__(self, filters=128, kernel_sizes=(2, 3), **kwargs):
        super().__init__(**kwargs)
        check_int("filters", filters, 1)
        if (
            not isinstance(kernel_sizes, (list, tuple))
            or not kernel_sizes
            or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in kernel_sizes)
        ):
            raise ValueError(
                f"`kernel_sizes` must be a non-empty tuple of positive integers. Received: kernel_sizes={kernel_sizes}"
            )
        if filters % len(kernel_sizes):
            raise ValueError(
                "`filters` must be divisible by the number of kernel sizes. "
                f"Received: filters={filters}, kernel_sizes={kernel_sizes}"
            )
        self.filters = filters
        self.kernel_sizes = tuple(kernel_sizes)
        self.input_spec = keras.layers.InputSpec(ndim=5)

        branch_filters = filters // len(self.kernel_sizes)
        self.convs = [
            FrameConv2D(
                branch_filters,
                k,
                padding="same",
                dtype=self.dtype_policy,
                name=f"conv_{i}_{k}x{k}",
            )
            for i, k in enumerate(self.kernel_sizes)
        ]
        self.concatenate = keras.layers.Concatenate(axis=-1, dtype=self.dtype_policy, name="concatenate")
        self.relu = keras.layers.ReLU(dtype=self.dtype_policy, name="relu")

    def build(self, input_shape):
        for conv in self.convs:
            conv.build(input_shape)

    def call(self, inputs):
        branches = [conv(inputs) for conv in self.convs]
        x = branches[0] if len(branches) == 1 else self.concatenate(branches)
        return self.relu(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "kernel_sizes": list(self.kernel_sizes)})
        return config
