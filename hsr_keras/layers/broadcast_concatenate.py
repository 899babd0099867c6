"""BroadcastConcatenate: channels of a lower-rank input laid beside those of a field."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hsr_keras")
class BroadcastConcatenate(keras.layers.Layer):
    """Concatenate `[x, y]` on the channel axis after repeating `y` over the axes it lacks.

    `y` gets a new axis at each of `expand_axes` (positions in `x`'s shape) and is broadcast to
    `x`'s shape but for the channels: fields constant in time (static fields `[B, H, W, S]`
    beside `[B, T, H, W, C]`: `expand_axes=(1,)`) or constant in space (time features
    `[B, T, 4]` beside `[B, T, h, w, C]`: `expand_axes=(2, 3)`).

    Args:
        expand_axes: tuple of ints. The axes of `x` that `y` lacks, in increasing order.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name`.

    Example:
    ```python
    field = np.zeros((2, 3, 8, 8, 5), "float32")  # [B, T, H, W, C]
    static = np.ones((2, 8, 8, 2), "float32")  # [B, H, W, S]
    BroadcastConcatenate(expand_axes=(1,))([field, static]).shape  # (2, 3, 8, 8, 7)
    ```
    """

    def __init__(self, expand_axes, **kwargs):
        super().__init__(**kwargs)
        axes = tuple(expand_axes) if isinstance(expand_axes, (list, tuple)) else None
        if not axes or not all(isinstance(a, int) and a > 0 for a in axes) or list(axes) != sorted(set(axes)):
            raise ValueError(f"`expand_axes` must be increasing positive integers. Received: expand_axes={expand_axes}")
        self.expand_axes = axes

    def call(self, inputs):
        x, y = inputs
        y = ops.cast(y, x.dtype)
        for axis in self.expand_axes:
            y = ops.expand_dims(y, axis)
        shape = ops.shape(x)
        y = ops.broadcast_to(y, (*shape[:-1], ops.shape(y)[-1]))
        return ops.concatenate([x, y], axis=-1)

    def compute_output_shape(self, input_shape):
        x, y = input_shape
        channels = None if x[-1] is None or y[-1] is None else x[-1] + y[-1]
        return (*x[:-1], channels)

    def get_config(self):
        config = super().get_config()
        config.update({"expand_axes": list(self.expand_axes)})
        return config
