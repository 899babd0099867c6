"""ConvGRUCell and ConvGRU: a convolutional GRU over the time axis."""

import keras
from keras import ops

from hsr_keras.layers.checks import check_bool, check_int


@keras.saving.register_keras_serializable(package="hsr_keras")
class ConvGRUCell(keras.layers.Layer):
    """Convolutional GRU cell for one time step of `[batch, H, W, channels]`.

    With `*` a 2-D "same" convolution and `x` the input, `h` the state:

        z  = sigmoid(W_z * x + U_z * h + b_z)
        r  = sigmoid(W_r * x + U_r * h + b_r)
        h~ = tanh(W_h * x + U_h * (r . h) + b_h)
        h' = (1 - z) . h + z . h~

    `kernel` holds `[W_z, W_r, W_h]` and `recurrent_kernel` `[U_z, U_r, U_h]`
    along their last axis, `bias` holds `[b_z, b_r, b_h]`. `call(inputs,
    states)` returns `h', [h']`. The state has shape `[batch, H, W, filters]`,
    which a plain `keras.layers.RNN` cannot make from `state_size` alone: use
    the cell through `ConvGRU`, which makes the zero state from the input.

    Args:
        filters: int. The number of state (and output) channels.
        kernel_size: int. The spatial size of the input and recurrent kernels.
            Defaults to `3`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            such as `name` and `dtype`.

    Example:
    ```python
    cell = ConvGRUCell(16)
    x = np.random.rand(2, 8, 8, 4).astype("float32")  # [B, H, W, C]
    h = np.zeros((2, 8, 8, 16), "float32")
    out, [h] = cell(x, [h])  # out is h, shape (2, 8, 8, 16)
    ```

    Reference:
    - [Siam, Valipour, Jagersand, Ray (2017), "Convolutional gated recurrent
      networks for video segmentation", ICIP](https://arxiv.org/abs/1611.05435)
    - [Ballas, Yao, Pal, Courville (2016), "Delving deeper into convolutional
      networks for learning video representations", ICLR](
      https://arxiv.org/abs/1511.06432)
    """

    def __init__(self, filters, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        check_int("filters", filters)
        check_int("kernel_size", kernel_size)
        self.filters = filters
        self.kernel_size = kernel_size
        self.state_size = filters
        self.output_size = filters
        self.inputs_projected = False

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"The channel count must be known. Received: input_shape={input_shape}")
        k, f = self.kernel_size, self.filters
        self.kernel = self.add_weight(shape=(k, k, channels, 3 * f), initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(k, k, f, 3 * f), initializer="orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(3 * f,), initializer="zeros", name="bias")

    def project_inputs(self, inputs):
        """`W * x + b` of the three gates for inputs `[..., H, W, C]` (leading axes folded into one).

        The part of a step that does not depend on the state: `ConvGRU` computes it for every
        frame at once, before its loop over time.
        """
        shape = ops.shape(inputs)
        frames = ops.reshape(inputs, (-1, shape[-3], shape[-2], shape[-1]))
        x = ops.conv(frames, self.kernel, padding="same") + self.bias
        return ops.reshape(x, tuple(shape[:-1]) + (3 * self.filters,))

    def call(self, inputs, states):
        """One step; `inputs` are frames `[B, H, W, C]`, or their `project_inputs` when
        `inputs_projected` (as `ConvGRU` sets it)."""
        h = states[0] if isinstance(states, (list, tuple)) else states
        f = self.filters
        x = inputs if self.inputs_projected else self.project_inputs(inputs)
        x_z, x_r, x_h = x[..., :f], x[..., f : 2 * f], x[..., 2 * f :]
        recurrent_kernel = ops.convert_to_tensor(self.recurrent_kernel)
        h_zr = ops.conv(h, recurrent_kernel[..., : 2 * f], padding="same")
        z = ops.sigmoid(x_z + h_zr[..., :f])
        r = ops.sigmoid(x_r + h_zr[..., f:])
        candidate = ops.tanh(x_h + ops.conv(r * h, recurrent_kernel[..., 2 * f :], padding="same"))
        h = (1 - z) * h + z * candidate
        return h, [h]

    def compute_output_shape(self, input_shape, states_shape=None):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "kernel_size": self.kernel_size})
        return config


@keras.saving.register_keras_serializable(package="hsr_keras")
class ConvGRU(keras.layers.RNN):
    """Convolutional GRU over the time axis of `[batch, time, H, W, channels]`.

    A small `keras.layers.RNN` subclass around `ConvGRUCell`: when no initial
    state is given it makes a zero state of shape `[batch, H, W, filters]`
    from the input (the base class would make `[batch, filters]`), so it runs
    at any time length and any height and width, including ones unknown when
    the model is built. It rebuilds its cell from its own config, so it
    reloads from `.keras` files.

    Args:
        filters: int. The number of state (and output) channels.
        kernel_size: int. The spatial size of the cell's kernels. Defaults to `3`.
        return_sequences: bool. Whether to return the state at every step
            (`[B, T, H, W, filters]`) or only the last (`[B, H, W, filters]`).
            Defaults to `True`.
        go_backwards: bool. Whether to run over time in reverse (the output
            sequence is then in reverse order too). Defaults to `False`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            such as `name` and `dtype`.

    Example:
    ```python
    x = np.random.rand(2, 8, 8, 8, 16).astype("float32")  # [B, T, H, W, C]
    ConvGRU(32)(x).shape  # (2, 8, 8, 8, 32)
    ConvGRU(32, return_sequences=False)(x).shape  # (2, 8, 8, 32)
    ```

    Reference:
    - [Siam, Valipour, Jagersand, Ray (2017), "Convolutional gated recurrent
      networks for video segmentation", ICIP](https://arxiv.org/abs/1611.05435)
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        return_sequences=True,
        go_backwards=False,
        **kwargs,
    ):
        check_int("filters", filters)
        check_int("kernel_size", kernel_size)
        check_bool("return_sequences", return_sequences)
        check_bool("go_backwards", go_backwards)
        cell = ConvGRUCell(filters, kernel_size, dtype=kwargs.get("dtype"), name="conv_gru_cell")
        # The loop over time gets the input convolutions of all frames, computed at once in `call`.
        cell.inputs_projected = True
        super().__init__(
            cell,
            return_sequences=return_sequences,
            go_backwards=go_backwards,
            **kwargs,
        )
        self.filters = filters
        self.kernel_size = kernel_size
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if initial_state is None:
            shape = ops.shape(sequences)
            initial_state = ops.zeros(
                (shape[0], shape[2], shape[3], self.filters),
                dtype=self.cell.compute_dtype,
            )
        projected = self.cell.project_inputs(sequences)
        return super().call(projected, initial_state=initial_state, mask=mask, training=training)

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, time, height, width = sequences_shape[:4]
        if self.return_sequences:
            return (batch, time, height, width, self.filters)
        return (batch, height, width, self.filters)

    def get_config(self):
        config = super().get_config()
        # The base class stores the cell and options this layer does not offer.
        for key in ("cell", "return_state", "stateful", "unroll", "zero_output_for_mask"):
            config.pop(key, None)
        config.update({"filters": self.filters, "kernel_size": self.kernel_size})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
