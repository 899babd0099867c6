"""Shared checks for hsr_keras layers (in the spirit of keras-hub's `run_layer_test`)."""

import contextlib
import json
import os
import tempfile
import warnings

import keras
import numpy as np

from hsr_keras.layers import FrameConv2D


def _jsonable(value):
    return json.loads(json.dumps(value))


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_shapes,
    expected_output_shapes,
    expected_num_trainable_weights,
    expected_num_non_trainable_weights=0,
    expected_num_params=None,
    run_fit=True,
    run_saving=True,
):
    """Runs the standard checks on a layer taking `[batch, time, H, W, C]`.

    - `get_config` holds every init argument, is JSON-serialisable, and
      survives `from_config` and `keras.saving` (de)serialisation by name;
    - symbolic output shape with time, height and width unknown;
    - for every `(input_shape, expected_output_shape)` pair: symbolic output
      shape, `compute_output_shape`, and the eager output's shape and
      finiteness;
    - the number of trainable and non-trainable weights (and parameters);
    - one `fit` step of a model `Input((None, None, None, C)) -> layer` on the
      first input shape runs, gives a finite loss and moves the weights;
    - that model saved to `.keras` and reloaded gives the same outputs.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict of constructor arguments.
        input_shapes: list of full input shapes (batch included); all with the
            same channel count.
        expected_output_shapes: list of the matching output shapes.
        expected_num_trainable_weights: int.
        expected_num_non_trainable_weights: int. Defaults to `0`.
        expected_num_params: int or `None` (not checked). Defaults to `None`.
        run_fit: bool. Defaults to `True`.
        run_saving: bool. Defaults to `True`.
    """
    assert len(input_shapes) == len(expected_output_shapes)
    rng = np.random.default_rng(0)

    # Config round trip.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    assert config == _jsonable(config), "get_config must be JSON-serialisable"
    for key, value in init_kwargs.items():
        assert key in config, f"init argument {key!r} missing from get_config"
        assert _jsonable(config[key]) == _jsonable(value), key
    assert layer_cls.from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is layer_cls
    assert revived.get_config() == config

    # Symbolic shape with time, height and width unknown.
    channels = input_shapes[0][-1]
    symbolic = keras.Input(batch_shape=(None,) * (len(input_shapes[0]) - 1) + (channels,))
    out = layer(symbolic)
    expected = expected_output_shapes[0]
    assert tuple(out.shape) == (None,) * (len(expected) - 1) + (expected[-1],)

    # Symbolic and eager shapes at each size.
    for input_shape, expected in zip(input_shapes, expected_output_shapes):
        input_shape, expected = tuple(input_shape), tuple(expected)
        assert tuple(layer(keras.KerasTensor(input_shape)).shape) == expected
        assert tuple(layer.compute_output_shape(input_shape)) == expected
        x = rng.normal(size=input_shape).astype("float32")
        y = keras.ops.convert_to_numpy(layer(x))
        assert y.shape == expected, (input_shape, y.shape, expected)
        assert np.all(np.isfinite(y))

    # Weight counts.
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights
    if expected_num_params is not None:
        assert layer.count_params() == expected_num_params

    if not (run_fit or run_saving):
        return
    # A model around a fresh layer, on inputs of unknown time, height and width.
    model = keras.Sequential(
        [keras.Input((None,) * (len(input_shapes[0]) - 2) + (channels,)), layer_cls(**init_kwargs)]
    )
    x = rng.normal(size=input_shapes[0]).astype("float32")
    if run_fit:
        y = rng.normal(size=expected_output_shapes[0]).astype("float32")
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=False)
        before = [w.numpy().copy() for w in model.trainable_weights]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The model does not have any trainable")
            history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        if before:
            after = [w.numpy() for w in model.trainable_weights]
            assert any(not np.array_equal(a, b) for a, b in zip(after, before))
    if run_saving:
        expected_y = keras.ops.convert_to_numpy(model(x, training=False))
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.keras")
            model.save(path)
            reloaded = keras.saving.load_model(path)
        y = keras.ops.convert_to_numpy(reloaded(x, training=False))
        np.testing.assert_allclose(y, expected_y, rtol=1e-6, atol=1e-6)


@contextlib.contextmanager
def frame_convs_as_conv3d():
    """Within the block, every `FrameConv2D` computes as the `Conv3D` it replaced.

    For eager calls. Each call goes through a real `keras.layers.Conv3D` with kernel `(1, k, k)`, strides
    `(1, s, s)`, the same padding, activation and dtype policy, whose weights are the
    FrameConv2D's kernel (with a leading axis of 1) and bias: the networks' per-frame
    convolutions as they were before they became Conv2D, to compare outputs with.
    """
    original = FrameConv2D.call

    def conv3d_call(self, inputs):
        twin = keras.layers.Conv3D(
            self.filters,
            (1,) + tuple(self.kernel_size),
            strides=(1,) + tuple(self.strides),
            padding=self.padding,
            activation=self.activation,
            use_bias=self.use_bias,
            dtype=self.dtype_policy,
        )
        twin.build(inputs.shape)
        kernel, *bias = self.get_weights()
        twin.set_weights([kernel[None], *bias])
        return twin(inputs)

    FrameConv2D.call = conv3d_call
    try:
        yield
    finally:
        FrameConv2D.call = original
