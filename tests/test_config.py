"""hsr_keras.training.config: the values it accepts come from hsr_keras.choices; every field is type-checked."""

import pytest

from hsr_keras.choices import CRITIC_NORMS, INTERPOLATIONS
from hsr_keras.training.config import Config, ConfigError, load_config
from tfrecords_builder.contract.errors import InputError


def test_config_accepts_exactly_the_owners_values():
    for interpolation in INTERPOLATIONS:
        assert Config(skip_interpolation=interpolation).skip_interpolation == interpolation
    for norm in CRITIC_NORMS:
        assert Config(critic_norm=norm).critic_norm == norm
    for field, value in (("skip_interpolation", "lanczos"), ("critic_norm", "batch")):
        with pytest.raises(ValueError, match=f"^{field} must be one of"):
            Config(**{field: value})


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("filters", "eight", "an integer"),
        ("batch_size", "4", "an integer"),
        ("epochs", 1.5, "an integer"),
        ("critic_steps", True, "an integer"),
        ("seed", None, "an integer"),
        ("g_learning_rate", "fast", "a number"),
        ("gp_weight", True, "a number"),
        ("gp_weight", float("nan"), "a number (finite)"),
        ("use_cbam", "no", "true or false"),
        ("use_cbam", 1, "true or false"),
        ("loss", 3, "a string"),
        ("notes", ["a"], "a mapping"),
    ],
)
def test_every_field_is_checked_against_its_type(field, value, expected):
    with pytest.raises(ConfigError) as info:
        Config(**{field: value})
    assert str(info.value) == f"{field} must be {expected}. Received: {field}={value!r}"
    assert info.value.field == field and isinstance(info.value, InputError)


def test_numbers_convert_where_the_type_allows():
    config = Config(g_learning_rate="1e-4", warmup_epochs=2, notes={"a": 1})
    assert config.g_learning_rate == 1e-4 and isinstance(config.warmup_epochs, float)
    assert config.notes == {"a": 1}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"critic_steps": 0}, "critic_steps must be >= 1. Received: critic_steps=0"),
        ({"d_learning_rate": 0.0}, "d_learning_rate must be > 0. Received: d_learning_rate=0.0"),
        ({"beta_2": 1.0}, "beta_2 must be in [0, 1). Received: beta_2=1.0"),
        ({"seed": -1}, "seed must be in 0 .. 2**32 - 1. Received: seed=-1"),
        ({"plot_every": 0}, "plot_every must be >= 1. Received: plot_every=0"),
        ({"ensemble_size": 0}, "ensemble_size must be >= 1. Received: ensemble_size=0"),
        ({"noise": "style"}, "noise must be one of ('stem', 'texture'). Received: noise='style'"),
    ],
)
def test_range_errors_name_the_field_only(changes, message):
    with pytest.raises(ConfigError) as info:
        Config(**changes)
    assert str(info.value) == message  # not every field of the config


def test_a_file_error_names_the_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"filters": "eight"}')
    with pytest.raises(ConfigError, match=f"^config file {path}: filters must be an integer"):
        load_config(path)
    # An override that is wrong is not the file's fault.
    with pytest.raises(ConfigError, match="^epochs must be >= 1"):
        load_config(None, epochs=0)
    path.write_text('{"filterz": 3}')
    with pytest.raises(ConfigError, match=r"unknown config field\(s\) \['filterz'\] in config file"):
        load_config(path)
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match="preset must be one of"):
        load_config(preset="huge")


def test_save_is_atomic_and_round_trips(tmp_path):
    config = Config(filters=8, notes={"why": "test"})
    config.save(tmp_path / "config.json")
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    assert load_config(tmp_path / "config.json") == config


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"pretrain_epochs": -1}, "pretrain_epochs must be >= 0. Received: pretrain_epochs=-1"),
        ({"pretrain_epochs": 1.5}, "pretrain_epochs must be an integer. Received: pretrain_epochs=1.5"),
        (
            {"epochs": 4, "pretrain_epochs": 4},
            "pretrain_epochs must be < epochs (4): the fine-tuning needs at least one epoch. Received: pretrain_epochs=4",
        ),
        ({"epochs": 1, "pretrain_epochs": 2}, "pretrain_epochs must be < epochs (1)"),
    ],
)
def test_pretrain_epochs_leave_the_fine_tuning_at_least_one_epoch(changes, message):
    with pytest.raises(ConfigError) as info:
        Config(**changes)
    assert str(info.value).startswith(message) and info.value.field == "pretrain_epochs"
    assert Config(epochs=4, pretrain_epochs=3).pretrain_epochs == 3 and Config().pretrain_epochs == 0


def test_a_pretrain_epochs_error_names_the_file_it_came_from(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 10\npretrain_epochs: 6\n")
    assert load_config(path).pretrain_epochs == 6
    with pytest.raises(ConfigError, match=f"^config file {path}: pretrain_epochs must be < epochs \\(5\\)"):
        load_config(path, epochs=5)  # the override shortens the run below the file's pre-training


def test_the_scale_of_an_earlier_config_file_is_dropped_with_a_note(tmp_path, caplog):
    # The scale is the data's (its manifest's): a config cannot hold it, and config.json files
    # saved by earlier versions, which do, still load.
    path = tmp_path / "config.json"
    path.write_text('{"scale": 4, "filters": 8}')
    with caplog.at_level("INFO", logger="hsr_keras.training.config"):
        config = load_config(path, preset="demo")
    assert config.filters == 8 and not hasattr(config, "scale")
    assert "scale is not used" in caplog.text and str(path) in caplog.text
    with pytest.raises(TypeError):
        Config(scale=4)


def test_loss_weights_of_earlier_versions_move_into_loss_weights(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"content_weight": 2.0, "lattice_weight": 0.1, "loss_weights": {"lattice": 0.2}}')
    config = load_config(path, preset="paper")
    assert config.loss_weights == {"content": 2.0, "lattice": 0.2}  # the explicit entry wins
    assert config.value("content_weight") == 2.0 and config.value("adversarial_weight") is None
    assert config.replace(adversarial_weight=0.01).loss_weights == {"content": 2.0, "lattice": 0.2, "adversarial": 0.01}
    for bad, message in (({"lattice": -1}, "loss_weights.lattice must be finite and >= 0"), ({"x": "1"}, "maps term")):
        with pytest.raises(ConfigError, match=message):
            Config(loss_weights=bad)


@pytest.mark.parametrize(
    "changes, field, message",
    [
        (
            {"ensemble_size": 1, "loss_weights": {"crps": 1.0}},
            "ensemble_size",
            "ensemble_size must be >= 2 for the crps",
        ),
        ({"noise": "texture", "noise_stddev": 0.0}, "noise_stddev", "must be > 0 with noise='texture'"),
        ({"noise": "texture", "architecture": "srcnn"}, "noise", "architecture='srcnn' has no noise layers"),
    ],
)
def test_ensemble_fields_are_checked_together(changes, field, message):
    with pytest.raises(ConfigError, match=message) as info:
        Config(**changes)
    assert info.value.field == field and "\n" not in str(info.value)


def test_an_ensemble_config_file_loads_and_its_crps_weight_may_be_a_field(tmp_path):
    path = tmp_path / "ensemble.yaml"
    path.write_text("ensemble_size: 4\nnoise: texture\ncrps_weight: 1\nloss_weights: {content: 0}\n")
    config = load_config(path, preset="demo")
    assert (config.ensemble_size, config.noise) == (4, "texture")
    assert config.loss_weights == {"crps": 1.0, "content": 0.0}  # a file's loss_weights replace the preset's
    path.write_text("ensemble_size: 0\n")
    with pytest.raises(ConfigError, match=f"config file {path}: ensemble_size must be >= 1"):
        load_config(path, preset="demo")
