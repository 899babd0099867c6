"""Networks with a build's extra inputs (issue 21): named inputs, where each enters, saving; without extras, as before."""

import json

import keras
import numpy as np
import pytest

from hsr_keras.layers import BroadcastConcatenate, Standardize
from hsr_keras.models.networks import build_critic, build_generator, build_networks, extra_input_kwargs
from hsr_keras.training.config import Config

TINY = dict(scale=4, filters=8, num_res_blocks=1, upsample_filters=4, num_post_blocks=1, se_ratio=4, global_skip=True)
EXTRAS = dict(
    predictor_mean=[250.0, 0.004],
    predictor_std=[10.0, 0.002],
    time_features=True,
    static_mean=[500.0, 0.5],
    static_std=[300.0, 0.4],
)


def inputs(seed=0, batch=2, steps=3, h=4, scale=4):
    rng = np.random.default_rng(seed)
    return {
        "lr": rng.uniform(0, 100, (batch, steps, h, h, 1)).astype("float32"),
        "predictors": np.stack(
            [rng.normal(250, 10, (batch, steps, h, h)), rng.normal(0.004, 0.002, (batch, steps, h, h))], -1
        ).astype("float32"),
        "time_features": rng.uniform(-1, 1, (batch, steps, 4)).astype("float32"),
        "static": np.stack(
            [rng.uniform(0, 2000, (batch, h * scale, h * scale)), rng.uniform(0, 1, (batch, h * scale, h * scale))], -1
        ).astype("float32"),
    }


def test_a_generator_without_extras_is_todays():
    # Pinned from the commit before issue 21 (same seed, same input): same layers, weights and numbers.
    generator = build_generator(**TINY)
    lr = np.random.default_rng(1).uniform(0, 100, (2, 3, 4, 4, 1)).astype("float32")
    out = np.asarray(generator(lr, training=False))
    assert [layer.name for layer in generator.layers][:3] == ["lr", "standardize", "stem"]
    assert len(generator.layers) == 18 and generator.count_params() == 6723
    assert [i.name for i in generator.inputs] == ["lr"]
    np.testing.assert_allclose(out.sum(), 77768.078125, rtol=1e-6)
    critic = build_critic(filters=8, num_res_blocks=1, num_post_blocks=1)
    assert critic.count_params() == 7353
    np.testing.assert_allclose(np.asarray(critic(out)).sum(), 1.7281591892242432, rtol=1e-5)


def test_standardize_per_channel_matches_numpy_and_scalar_configs_stay_scalar():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 4, 2)).astype("float32") * [10.0, 0.002] + [250.0, 0.004]
    layer = Standardize([250.0, 0.004], [10.0, 0.002])
    np.testing.assert_allclose(np.asarray(layer(x)), (x - [250.0, 0.004]) / [10.0, 0.002], rtol=1e-5, atol=1e-5)
    back = Standardize.from_config(Standardize([250.0, 0.004], [10.0, 0.002], invert=True).get_config())
    np.testing.assert_allclose(np.asarray(back(layer(x))), x, rtol=1e-5)
    assert Standardize(50.0, 25.0).get_config()["mean"] == 50.0  # a float, as old .keras files hold
    with pytest.raises(ValueError, match="one value per channel"):
        Standardize([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        Standardize([1.0, 2.0], [1.0, 0.0])


def test_broadcast_concatenate_repeats_over_the_missing_axes():
    field = np.arange(2 * 3 * 4 * 4 * 1, dtype="float32").reshape(2, 3, 4, 4, 1)
    static = np.random.default_rng(0).normal(size=(2, 4, 4, 2)).astype("float32")
    times = np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32")
    out = np.asarray(BroadcastConcatenate((1,))([field, static]))
    np.testing.assert_array_equal(out[..., :1], field)
    np.testing.assert_array_equal(out[:, 2, ..., 1:], static)
    out = np.asarray(BroadcastConcatenate((2, 3))([field, times]))
    np.testing.assert_array_equal(out[:, :, 3, 1, 1:], times)
    layer = BroadcastConcatenate((2, 3))
    assert layer.compute_output_shape([(None, None, 4, 4, 1), (None, None, 4)]) == (None, None, 4, 4, 5)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert revived.expand_axes == (2, 3) and json.loads(json.dumps(revived.get_config())) == layer.get_config()
    with pytest.raises(ValueError, match="expand_axes"):
        BroadcastConcatenate((3, 2))


def test_the_generator_names_its_inputs_and_uses_each():
    generator = build_generator(**TINY, **EXTRAS)
    assert sorted(i.name for i in generator.inputs) == ["lr", "predictors", "static", "time_features"]
    x = inputs()
    out = np.asarray(generator(x, training=False))
    assert out.shape == (2, 3, 16, 16, 1)
    for name in ("predictors", "time_features", "static"):
        changed = dict(x, **{name: x[name] + np.float32(1.0) * np.std(x[name])})
        assert not np.allclose(np.asarray(generator(changed, training=False)), out), name
    # Static enters at HR too: beside the upsampled features, before a 3x3 convolution.
    concat = generator.get_layer("static_hr_concat")
    assert [t.shape[2] for t in concat.input] == [None, None]
    assert generator.get_layer("static_conv").input.shape[-1] == TINY["upsample_filters"] + 2


def test_the_critic_sees_the_static_fields_beside_the_hr_field():
    critic = build_critic(filters=8, num_res_blocks=1, num_post_blocks=0, static_mean=[500.0], static_std=[300.0])
    assert sorted(i.name for i in critic.inputs) == ["hr", "static"]
    hr = np.random.default_rng(0).uniform(0, 100, (2, 3, 16, 16, 1)).astype("float32")
    static = np.random.default_rng(1).uniform(0, 2000, (2, 16, 16, 1)).astype("float32")
    score = np.asarray(critic({"hr": hr, "static": static}))
    assert score.shape == (2, 1)
    assert not np.allclose(np.asarray(critic({"hr": hr, "static": static[::-1]})), score)


def test_a_generator_with_extras_saves_and_reloads(tmp_path):
    generator = build_generator(**TINY, **EXTRAS)
    generator.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras")
    x = inputs(seed=3)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(generator(x)), atol=1e-5)


def test_extra_input_kwargs_read_the_manifest():
    manifest = {
        "predictors": [{"name": "t@300", "mean": 250.0, "std": 10.0}, {"name": "q@300", "mean": 0.004, "std": 0.002}],
        "time_encoding": True,
        "static": {
            "channels": [{"name": "orography", "mean": 500.0, "std": 300.0}, {"name": "lsm", "mean": 0.5, "std": 0.4}]
        },
    }
    assert extra_input_kwargs(manifest) == EXTRAS
    assert extra_input_kwargs({"stats": {}}) == {}


def test_only_the_paper_networks_take_extras():
    generator, critic = build_networks(Config(**{k: v for k, v in TINY.items() if k != "scale"}), 4, 50.0, 25.0, EXTRAS)
    assert "static" in [i.name for i in critic.inputs]
    with pytest.raises(ValueError, match="architecture 'srcnn' takes the LR field only"):
        build_networks(Config(architecture="srcnn", loss="content"), 4, 50.0, 25.0, EXTRAS)
