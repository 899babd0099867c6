"""Tests of `hsr_keras.models.model_files`: resolving model arguments, loading generators, export assets."""

import json

import keras
import pytest

from hsr_keras.models import model_files
from hsr_keras.models.model_files import KERAS, SAVED_MODEL, ModelFileError


def test_resolve_every_model_argument(tmp_path):
    fit = tmp_path / "fit"
    fit.mkdir()
    (fit / "generator.keras").write_bytes(b"")
    assert model_files.resolve(fit) == (KERAS, fit / "generator.keras")
    assert model_files.resolve(fit / "generator.keras") == (KERAS, fit / "generator.keras")
    base = tmp_path / "saved_models" / "hsr"
    for version in ("1", "3", "7", "latest"):
        (base / version).mkdir(parents=True)
    for version in ("1", "3"):
        (base / version / "saved_model.pb").write_bytes(b"")
    assert model_files.existing_versions(base) == [1, 3, 7]
    assert model_files.resolve(base) == (SAVED_MODEL, base / "3")  # the highest version holding a SavedModel
    assert model_files.resolve(base / "1") == (SAVED_MODEL, base / "1")
    (tmp_path / "model.h5").write_text("")
    cases = [
        (tmp_path / "missing.keras", {}, "no such model file"),
        (tmp_path / "model.h5", {}, "is not a Keras model file (.keras)"),
        (base / "7", {}, "without generator.keras and holds neither a SavedModel"),
        (base / "1", {"saved_model": False}, "is a folder without generator.keras: give a generator .keras"),
    ]
    for path, kwargs, message in cases:
        with pytest.raises(ModelFileError) as err:
            model_files.resolve(path, **kwargs)
        assert message in str(err.value) and len(str(err.value).splitlines()) == 1, (path, err.value)


def test_load_generator_checks_it_is_one(tmp_path):
    from hsr_keras.models.networks import build_srcnn

    build_srcnn(scale=4, filters=(2, 2), kernel_sizes=(3, 3, 3)).save(tmp_path / "srcnn.keras")
    assert model_files.load_generator(tmp_path / "srcnn.keras").inputs[0].shape[-1] == 1
    inputs = keras.Input((4, 4, 1))
    keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs)).save(tmp_path / "image.keras")
    with pytest.raises(ModelFileError, match=r"is not a generator: expected an input \[batch, time, h, w, 1\]"):
        model_files.load_generator(tmp_path / "image.keras")
    # Named inputs: `lr` and those of the data contract only.
    lr, wind = keras.Input((None, None, None, 1), name="lr"), keras.Input((None, None, None, 1), name="wind")
    keras.Model({"lr": lr, "wind": wind}, keras.layers.Add()([lr, wind])).save(tmp_path / "named.keras")
    with pytest.raises(ModelFileError, match="extra inputs named predictors, time_features, static"):
        model_files.load_generator(tmp_path / "named.keras")
    (tmp_path / "broken.keras").write_text("not a zip")
    with pytest.raises(ModelFileError, match="cannot load the generator .*: not a .keras file"):
        model_files.load_generator(tmp_path / "broken.keras")
    whole = (tmp_path / "srcnn.keras").read_bytes()
    (tmp_path / "truncated.keras").write_bytes(whole[: len(whole) // 2])  # a copy cut short
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        model_files.load_generator(tmp_path / "truncated.keras")


def test_fit_config_and_export_info(tmp_path):
    (tmp_path / "generator.keras").write_bytes(b"")
    assert model_files.fit_config(tmp_path / "generator.keras") is None
    (tmp_path / "config.json").write_text(json.dumps({"filters": 8}))
    assert model_files.fit_config(tmp_path / "generator.keras") == {"filters": 8}
    assert model_files.fit_config(tmp_path) == {"filters": 8}
    with pytest.raises(ModelFileError, match="without a readable assets/hsr_manifest.json"):
        model_files.read_export_info(tmp_path)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / model_files.ASSET_NAME).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ModelFileError, match="is not an hsr-keras export manifest"):
        model_files.read_export_info(tmp_path)
    (tmp_path / "assets" / model_files.ASSET_NAME).write_text(json.dumps({"format": model_files.FORMAT, "scale": 8}))
    assert model_files.read_export_info(tmp_path)["scale"] == 8


def test_manifest_lookup_in_demo_fit_layout(tmp_path):
    fit = tmp_path / "runs" / "demo"
    (fit / "data" / "tfrecords").mkdir(parents=True)
    (fit / "generator.keras").write_bytes(b"")
    (fit / "data" / "tfrecords" / "manifest.json").write_text("{}")
    assert model_files.find_manifest(fit / "generator.keras") == fit / "data" / "tfrecords" / "manifest.json"
    other = tmp_path / "build"
    other.mkdir()
    (other / "manifest.json").write_text("{}")
    (fit / "data" / "tfrecords" / "manifest.json").unlink()
    (fit / "run.json").write_text(json.dumps({"data": str(other)}))  # what fit records
    assert model_files.find_manifest(fit / "generator.keras") == other / "manifest.json"
