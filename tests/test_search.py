"""hsr_keras.training.search: the search space and the hyper-model that builds and trains a trial."""

import dataclasses
import math

import keras
import keras_tuner
import numpy as np
import pytest

from hsr_keras.training import search, search_space
from hsr_keras.training.config import LOSS_WEIGHT_FIELDS, PRESETS, load_config
from tfrecords_builder.contract.manifest import read_manifest


def test_the_ensemble_preset_searches_from_its_own_values():
    base = load_config(preset="ensemble")
    space = search.start_values(search_space.search_space(base), base)
    assert "gp_weight" not in space and "critic_steps" not in space  # a content-family loss: no critic
    assert (space["ensemble_size"].default, space["crps_weight"].default) == (4, 1.0)
    assert space["noise_stddev"].default == 1.0 and base.noise == "texture"


def test_search_space_suits_both_presets():
    for preset in ("demo", "paper"):
        base = PRESETS[preset]
        space = search.start_values(search_space.search_space(base), base)
        assert list(space) == [
            "g_learning_rate", "d_learning_rate", "content_weight", "adversarial_weight",
            "critic_steps", "gp_weight", "filters", "num_res_blocks", "noise_stddev",
            "ensemble_size", "crps_weight", "spectral_weight",
        ]  # fmt: skip
        weights = {"content_weight": 1.0, "adversarial_weight": 1e-3}  # the terms' defaults
        weights.update(crps_weight=base.loss_weights.get("crps", 0.0), spectral_weight=0.0)
        for name, param in space.items():  # the preset's own values lie in the space and start the search
            assert param.default == weights.get(name, base.value(name)), name
        assert space["g_learning_rate"].log and space["adversarial_weight"].log
        assert (space["critic_steps"].low, space["critic_steps"].high) == (1, 5)
        assert base.filters in space["filters"].values
        assert all(f % 2 == 0 for f in space["filters"].values)  # the stem splits filters in two
    assert PRESETS["paper"].filters * 2 in search_space.search_space(PRESETS["paper"])["filters"].values
    small = search_space.search_space(PRESETS["demo"], "small")
    assert list(small) == list(search_space.SMALL_SPACE) and small["critic_steps"].high == 2
    assert list(search_space.search_space(PRESETS["demo"], "gp_weight, filters")) == ["gp_weight", "filters"]
    with pytest.raises(ValueError, match="--space must be"):
        search_space.search_space(PRESETS["demo"], "filters,learning_rate")
    # Parameters a base does not use are not searched.
    content = PRESETS["demo"].replace(loss="content")
    assert list(search_space.search_space(content)) == [
        "g_learning_rate", "filters", "num_res_blocks", "noise_stddev", "ensemble_size", "crps_weight", "spectral_weight"
    ]  # fmt: skip
    assert "gp_weight" not in search_space.search_space(PRESETS["demo"].replace(loss="gan"))
    with pytest.raises(ValueError, match="does not use"):
        search_space.search_space(content, "critic_steps")


def test_build_uses_the_hp_values_and_the_seed(search_build, search_base_file):
    base = load_config(search_base_file, preset="demo", epochs=2)
    hypermodel = search.GANHyperModel(base, read_manifest(search_build), space="full")
    fixed = {
        "g_learning_rate": 2e-4,
        "d_learning_rate": 5e-4,
        "content_weight": 1.5,
        "adversarial_weight": 0.02,
        "critic_steps": 3,
        "gp_weight": 7.0,
        "filters": 8,
        "num_res_blocks": 2,
        "noise_stddev": 0.25,
        "ensemble_size": 2,
        "crps_weight": 0.5,
        "spectral_weight": 0.1,
    }
    hp = keras_tuner.HyperParameters()
    hp.values.update(fixed)
    gan = hypermodel.build(hp)
    config = hypermodel.config_for(hp)
    assert {name: config.value(name) for name in fixed} == fixed
    weights = {"content": 1.5, "adversarial": 0.02, "crps": 0.5, "spectral": 0.1}
    assert config.loss_weights == {**base.loss_weights, **weights}
    fields = {name: getattr(base, name) for name in fixed if name not in LOSS_WEIGHT_FIELDS}
    assert dataclasses.replace(config, **fields, loss_weights=base.loss_weights) == base  # nothing else changed
    assert (gan.critic_steps, gan.loss_weights["content"], gan.loss_weights["adversarial"], gan.gp_weight) == (
        3,
        1.5,
        0.02,
        7.0,
    )
    assert (gan.ensemble_size, gan.loss_weights["crps"], gan.loss_weights["spectral"]) == (2, 0.5, 0.1)
    assert gan.generator.get_layer("stem").filters == 8
    assert sum(layer.name.startswith("res_block_") for layer in gan.generator.layers) == 2
    assert gan.generator.get_layer("noise").stddev == 0.25
    for optimizer, rate in ((gan.g_optimizer, 2e-4), (gan.d_optimizer, 5e-4)):
        assert optimizer.get_config()["learning_rate"]["config"]["learning_rate"] == pytest.approx(rate)
    # The seed in the config fixes the initial weights: a trial is rebuilt exactly.
    weights = [w.copy() for w in gan.get_weights()]
    keras.utils.set_random_seed(99)
    again = hypermodel.build(hp)
    assert all(np.array_equal(a, b) for a, b in zip(weights, again.get_weights()))
    other = search.GANHyperModel(base.replace(seed=4), read_manifest(search_build), space="full").build(hp)
    assert not np.array_equal(weights[0], other.get_weights()[0])


def test_a_trial_with_one_member_trains_without_the_crps_term(search_build):
    base = PRESETS["demo"].replace(ensemble_size=2, loss_weights={"crps": 1.0})
    hypermodel = search.GANHyperModel(base, read_manifest(search_build), space="ensemble_size,crps_weight")
    assert hypermodel.config_for({"ensemble_size": 4, "crps_weight": 0.5}).loss_weights["crps"] == 0.5
    one = hypermodel.config_for({"ensemble_size": 1, "crps_weight": 0.5})
    assert (one.ensemble_size, one.loss_weights["crps"]) == (1, 0.0)
    assert hypermodel.config_for({"ensemble_size": 1}).loss_weights["crps"] == 0.0


def test_non_finite_objective_values():
    objective = keras_tuner.Objective("val_psnr", "max")
    history = keras.callbacks.History()
    history.history = {"val_psnr": [10.0, math.nan, 12.0]}
    search.scrub_non_finite(history, objective)
    assert history.history["val_psnr"] == [10.0, -math.inf, 12.0]
    history.history = {"val_psnr": [math.nan]}
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="diverged"):
        search.scrub_non_finite(history, objective)
