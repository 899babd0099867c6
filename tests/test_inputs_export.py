"""Exporting a generator with extra inputs (issue 21): named signature inputs with units, served in a fresh process."""

import json

import numpy as np
import pytest
from test_export import fresh_python, show_signature
from tiny_runs import SCALE, H, T, W, make_inputs_build, write_build, write_config

from hsr_keras import export
from hsr_keras.models.model_files import ASSET_NAME, load_generator
from hsr_keras.training import trainer
from hsr_keras.training.config import load_config
from tfrecords_builder.contract.inputs import time_features
from tfrecords_builder.contract.manifest import read_manifest

INPUTS = ["lr", "predictors", "static", "time"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A model trained one epoch on a build with predictors, time and static fields, exported: (version, run, build)."""
    root = tmp_path_factory.mktemp("inputs_export")
    build = make_inputs_build(root / "build")
    config = load_config(write_config(root / "tiny.json", epochs=1), preset="demo")
    trainer.train(config, build, root / "run", verbose=0)
    out = root / "saved_models"
    assert export.main([str(root / "run"), "--manifest", str(build), "--out", str(out), "--quiet"]) == 0
    return out / "hsr" / "1", root / "run", build


def serving_inputs(seed=0, batch=2, steps=T):
    rng = np.random.default_rng(seed)
    h, w = H // SCALE, W // SCALE
    return {
        "lr": rng.uniform(0, 110, (batch, steps, h, w, 1)).astype("float32"),
        "predictors": np.stack(
            [rng.normal(240, 8, (batch, steps, h, w)), rng.normal(4e-4, 2e-4, (batch, steps, h, w))], -1
        ).astype("float32"),
        "time": (1561939200 + 10800 * np.arange(batch * steps, dtype="int64")).reshape(batch, steps),
        "static": np.stack([rng.uniform(0, 2000, (batch, H, W)), rng.uniform(0, 1, (batch, H, W))], -1).astype(
            "float32"
        ),
    }


def test_the_signatures_name_each_input_and_serve_in_a_fresh_process(exported, tmp_path):
    path, run, _ = exported
    inputs = serving_inputs()
    np.savez(tmp_path / "inputs.npz", **inputs)
    out = fresh_python(
        f"""
        import json
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load({str(path)!r})
        signature = loaded.signatures["serving_default"]
        args, kwargs = signature.structured_input_signature
        inputs = dict(np.load("inputs.npz"))
        hr = signature(**{{name: tf.constant(value) for name, value in inputs.items()}})["hr"].numpy()
        np.save("hr.npy", hr)
        print(json.dumps({{name: [spec.dtype.name, spec.shape.as_list()] for name, spec in kwargs.items()}}))
        """,
        cwd=tmp_path,
    )
    specs = json.loads(out.strip().splitlines()[-1])
    assert specs == {
        "lr": ["float32", [None, None, None, None, 1]],
        "predictors": ["float32", [None, None, None, None, 2]],
        "time": ["int64", [None, None]],
        "static": ["float32", [None, None, None, 2]],
    }
    generator = load_generator(run / "generator.keras")
    feed = {**inputs, "time_features": time_features(inputs["time"])}
    del feed["time"]
    expected = np.asarray(generator(feed, training=False))
    np.testing.assert_allclose(np.load(tmp_path / "hr.npy"), expected, atol=1e-4)


def test_saved_model_cli_lists_the_named_inputs(exported, tmp_path):
    path, _, _ = exported
    for signature in ("serving_default", "sample"):
        inputs = show_signature(path, signature, tmp_path).split("output(s):")[0]
        for name in INPUTS:
            assert f"inputs['{name}'] tensor_info:" in inputs, (signature, name)
        assert "dtype: DT_INT64" in inputs.split("inputs['time']")[1]


def test_the_asset_states_each_inputs_units(exported):
    path, _, _ = exported
    info = json.loads((path / "assets" / ASSET_NAME).read_text())
    inputs = info["signature"]["inputs"]
    assert sorted(inputs) == INPUTS
    assert inputs["time"]["units"] == "seconds since 1970-01-01T00:00:00 UTC" and inputs["time"]["dtype"] == "int64"
    assert inputs["predictors"]["channels"] == [
        {"name": "t@300", "units": "K"},
        {"name": "q@300", "units": "kg kg**-1"},
    ]
    assert inputs["static"]["channels"] == [{"name": "orography", "units": "m"}, {"name": "lsm", "units": "1"}]
    assert sorted(info["sample_signature"]["inputs"]) == sorted([*INPUTS, "seed", "members"])


def test_a_model_exported_with_another_builds_manifest_is_refused(exported, tmp_path, capsys):
    _, run, _ = exported
    plain = write_build(tmp_path / "plain")
    argv = [str(run), "--manifest", str(plain), "--out", str(tmp_path / "out"), "--quiet"]
    assert export.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "takes the inputs lr, predictors, time_features, static, but the build" in err[0]
    assert not (tmp_path / "out" / "hsr").exists() or not any((tmp_path / "out" / "hsr").iterdir())
    assert read_manifest(plain)["schema_version"] == 2


def test_evaluation_scores_a_model_with_extras_and_its_export_beside_bicubic(exported):
    from hsr_keras.evaluation import engine
    from hsr_keras.training.data import load_extras, load_split

    path, run, build = exported
    manifest = read_manifest(build)
    methods = [
        engine.load_model_method("model", run / "generator.keras"),
        engine.load_model_method("export", path),
        *engine.baseline_methods(["bicubic"], manifest),
    ]
    result = engine.evaluate_methods(manifest, "val", methods, batch_size=3, map_days=0)
    lr, hr, _ = load_split(manifest, "val")
    generator = load_generator(run / "generator.keras")
    pred = np.asarray(generator({"lr": lr[..., None], **load_extras(manifest, "val")}, training=False))[..., 0]
    scores = result["methods"]
    np.testing.assert_allclose(scores["model"]["mse"], np.mean((pred - hr) ** 2), rtol=1e-4)
    np.testing.assert_allclose(scores["export"]["mse"], scores["model"]["mse"], rtol=1e-4)
    assert scores["Bicubic (aligned)"]["mse"] != scores["model"]["mse"]


def test_evaluating_a_model_on_a_build_without_its_inputs_is_one_line(exported, tmp_path):
    from hsr_keras.evaluation import engine

    path, run, _ = exported
    plain = read_manifest(write_build(tmp_path / "plain"))
    for name, model in (("model", run / "generator.keras"), ("export", path)):
        with pytest.raises(engine.EvaluationError) as err:
            engine.evaluate_methods(plain, "val", [engine.load_model_method(name, model)], map_days=0)
        message = str(err.value)
        assert len(message.splitlines()) == 1 and "has no predictors, time, static: evaluate it on a build" in message


def test_fits_comparison_with_bicubic_runs_for_a_model_with_extras(exported):
    from hsr_keras.evaluation import engine

    _, run, build = exported
    report = engine.compare_with_bicubic(run / "generator.keras", build, "val", batch_size=2)
    assert report["days"] == 4 and set(report["methods"]) == {engine.COMPARISON_MODEL, engine.COMPARISON_REFERENCE}
