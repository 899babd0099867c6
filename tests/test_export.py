"""The SavedModel export, checked the way TF Serving uses it: a fresh process, the signature alone."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hsr_keras import export
from hsr_keras.models.model_files import ASSET_NAME, FORMAT, existing_versions, load_generator
from hsr_keras.serving.saved_model import publish
from tfrecords_builder.contract.schema import SCHEMA_VERSION

SCALE = 8
HR_RES = 0.25
TINY = dict(filters=4, num_res_blocks=1, upsample_filters=4, num_post_blocks=1, se_ratio=2)


def make_manifest(resolution=HR_RES, scale=SCALE, degradation="stride", mean=50.0, std=25.0, levels=(300,)):
    """A manifest as `tfrecords_builder` writes it, for a 64x64 region at `resolution`."""
    n = 64
    lat = [round(37.0 + resolution * i, 6) for i in range(n)]
    lon = [round(105.0 + resolution * i, 6) for i in range(n)]
    if degradation == "stride":
        lr_lat, lr_lon = lat[::scale], lon[::scale]
    else:
        lr_lat = np.round(np.reshape(lat, (-1, scale)).mean(axis=1), 6).tolist()
        lr_lon = np.round(np.reshape(lon, (-1, scale)).mean(axis=1), 6).tolist()
    return {
        "schema_version": SCHEMA_VERSION,
        "created_by": "tests",
        "command": [],
        "variable": "r",
        "units": "%",
        "levels": list(levels),
        "region": {"name": "test", "lat_min": lat[0], "lat_max": lat[-1], "lon_min": lon[0], "lon_max": lon[-1]},
        "steps_per_day": 8,
        "interval_hours": 3,
        "step_hours": list(range(0, 24, 3)),
        "scale": scale,
        "degradation": degradation,
        "hr_shape": [8, n, n],
        "lr_shape": [8, n // scale, n // scale],
        "grid": {"lat": lat, "lon": lon, "lr_lat": lr_lat, "lr_lon": lr_lon, "resolution_deg": resolution},
        "splits": {"train": {"examples": 1}},
        "stats": {"mean": mean, "std": std, "min": 0.0, "max": 140.0, "fraction_above_100": 0.12, "count": 1},
    }


def make_fit_folder(folder, resolution=HR_RES, mean=50.0, std=25.0, seed=0, global_skip=False, **generator):
    """A fit output folder with a tiny random generator, its config.json and the data manifest.

    With `global_skip` the output follows the input field (LR repeated plus a residual), so
    misplaced or misoriented values show. `generator`: more `build_generator` arguments (`noise`).
    """
    import keras

    from hsr_keras.models.networks import build_generator

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    model = build_generator(scale=SCALE, mean=mean, std=std, global_skip=global_skip, **TINY, **generator)
    model.save(folder / "generator.keras")
    (folder / "config.json").write_text(json.dumps({"scale": SCALE, "global_skip": global_skip, **TINY, **generator}))
    (folder / "manifest.json").write_text(json.dumps(make_manifest(resolution, mean=mean, std=std)))
    return folder


def clean_env():
    """Environment of a process that cannot import the project: no PYTHONPATH, quiet TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


# Run first in every fresh process: the project packages cannot be imported even if installed.
BLOCK_PROJECT = textwrap.dedent(
    """
    import sys, importlib.abc
    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("hsr_keras", "tfrecords_builder"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
            return None
    sys.meta_path.insert(0, _Block())
    sys.path = [p for p in sys.path if p not in ("", ".")]
    try:
        import hsr_keras
    except ImportError:
        pass
    else:
        raise SystemExit("hsr_keras is importable in the serving process")
    """
)


def run_clean(argv, cwd):
    """Run `argv` in an environment where hsr_keras cannot be imported; return stdout (fails the test on error)."""
    result = subprocess.run(argv, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def fresh_python(code, cwd):
    """Run `code` in a new interpreter with only TensorFlow; return stdout (fails the test on error)."""
    return run_clean([sys.executable, "-c", BLOCK_PROJECT + textwrap.dedent(code)], cwd)


def saved_model_cli():
    path = Path(sys.executable).parent / "saved_model_cli"
    found = str(path) if path.exists() else shutil.which("saved_model_cli")
    if not found:
        pytest.skip("saved_model_cli (installed with tensorflow) is not on this machine")
    return found


def show_signature(path, signature, cwd):
    """`saved_model_cli show` of one signature, in a process that cannot import hsr_keras: its stdout."""
    argv = [saved_model_cli(), "show", "--dir", str(path), "--tag_set", "serve", "--signature_def", signature]
    return run_clean(argv, cwd)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny generator exported once: (version folder, the Keras model it came from, out root)."""
    root = tmp_path_factory.mktemp("export")
    fit = make_fit_folder(root / "fit")
    out = root / "saved_models"
    assert export.main([str(fit), "--out", str(out), "--quiet"]) == 0
    return out / "hsr" / "1", load_generator(fit / "generator.keras"), out


def keras_output(model, lr):
    return np.asarray(model(lr, training=False))


def test_signature_in_fresh_process_matches_keras(exported, tmp_path):
    path, model, _ = exported
    inputs = {
        "small_t1": np.random.default_rng(1).uniform(0, 120, (2, 1, 3, 5, 1)).astype("float32"),
        "large_t8": np.random.default_rng(2).uniform(0, 140, (1, 8, 6, 4, 1)).astype("float32"),
    }
    np.savez(tmp_path / "inputs.npz", **inputs)
    out = fresh_python(
        f"""
        import json
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load({str(path)!r})
        signature = loaded.signatures["serving_default"]
        args, kwargs = signature.structured_input_signature
        spec = kwargs["lr"]
        assert not args and list(kwargs) == ["lr"], (args, kwargs)
        assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, None, None, None, 1], spec
        hr_spec = signature.structured_outputs["hr"]
        assert hr_spec.dtype == tf.float32 and hr_spec.shape.as_list() == [None, None, None, None, 1], hr_spec
        asset = loaded.hsr_manifest.asset_path.numpy().decode()
        info = json.load(open(asset))
        inputs = np.load("inputs.npz")
        np.savez("outputs.npz", **{{k: signature(lr=tf.constant(inputs[k]))["hr"].numpy() for k in inputs}})
        print(json.dumps({{"scale": info["scale"], "modules": sorted(m for m in sys.modules if m.startswith("hsr"))}}))
        """,
        cwd=tmp_path,
    )
    report = json.loads(out.strip().splitlines()[-1])
    assert report == {"scale": SCALE, "modules": []}
    outputs = np.load(tmp_path / "outputs.npz")
    for key, lr in inputs.items():
        b, t, h, w, _ = lr.shape
        assert outputs[key].shape == (b, t, SCALE * h, SCALE * w, 1)
        assert outputs[key].dtype == np.float32
        np.testing.assert_allclose(outputs[key], keras_output(model, lr), atol=1e-5, rtol=1e-6)


def test_saved_model_cli_show(exported, tmp_path):
    path, _, _ = exported
    text = show_signature(path, "serving_default", tmp_path)
    inputs, outputs = text.split("output(s):")
    assert "inputs['lr'] tensor_info:" in inputs and "outputs['hr'] tensor_info:" in outputs
    for part in (inputs, outputs):
        assert "dtype: DT_FLOAT" in part
        assert "shape: (-1, -1, -1, -1, 1)" in part
    assert "tensorflow/serving/predict" in text


def test_saved_model_cli_run(exported, tmp_path):
    # TF 2.21's saved_model_cli evaluates --input_exprs as literals only (np.ones(...) is refused),
    # so the input goes in as an .npy file.
    path, model, _ = exported
    np.save(tmp_path / "lr.npy", np.full((1, 8, 4, 4, 1), 50.0, "float32"))
    argv = [saved_model_cli(), "run", "--dir", str(path), "--tag_set", "serve", "--signature_def", "serving_default"]
    run_clean(argv + ["--inputs", f"lr={tmp_path / 'lr.npy'}", "--outdir", str(tmp_path / "out")], tmp_path)
    hr = np.load(tmp_path / "out" / "hr.npy")
    assert hr.shape == (1, 8, 32, 32, 1)
    expected = keras_output(model, np.full((1, 8, 4, 4, 1), 50.0, "float32"))
    np.testing.assert_allclose(hr, expected, atol=1e-5, rtol=1e-6)


def test_asset_file_holds_the_client_facts(exported):
    path, model, _ = exported
    asset = path / "assets" / ASSET_NAME
    info = json.loads(asset.read_text())
    assert info["format"] == FORMAT
    assert (info["scale"], info["units"], info["variable"], info["levels"]) == (SCALE, "%", "r", [300])
    assert info["grid"]["hr_resolution_deg"] == HR_RES
    assert info["grid"]["lr_resolution_deg"] == HR_RES * SCALE
    assert info["grid"]["hr_offset_cells"] == 0.0
    assert info["degradation"] == "stride"
    assert info["stats"]["mean"] == 50.0 and info["stats"]["std"] == 25.0
    assert info["time"]["step_hours"] == list(range(0, 24, 3))
    assert info["clip_negative"] is False
    assert info["model"]["parameters"] == model.count_params()
    assert info["model"]["training_config"]["filters"] == TINY["filters"]
    assert info["model"]["keras_config"]["class_name"] == "Functional"
    assert len(info["model"]["source"]["sha256"]) == 64
    assert info["code_version"]["version"]
    assert info["signature"]["inputs"]["lr"]["shape"] == [-1, -1, -1, -1, 1]


def test_versions_increment_and_clip_negative(exported, tmp_path):
    import tensorflow as tf

    _, _, out = exported
    # A generator centred on 0 %RH gives negative values, which --clip-negative must remove.
    fit = make_fit_folder(tmp_path / "fit", mean=0.0, std=50.0, seed=3)
    assert export.main([str(fit), "--out", str(out), "--clip-negative", "--quiet"]) == 0
    assert existing_versions(out / "hsr") == [1, 2]
    assert export.main([str(fit), "--out", str(out), "--version", "5", "--clip-negative", "--quiet"]) == 0
    assert existing_versions(out / "hsr") == [1, 2, 5]
    assert sorted(p.name for p in (out / "hsr").iterdir()) == ["1", "2", "5"]  # no temporary folder left

    lr = np.random.default_rng(0).uniform(0, 120, (1, 2, 3, 3, 1)).astype("float32")
    raw = keras_output(load_generator(fit / "generator.keras"), lr)
    assert raw.min() < 0
    served = tf.saved_model.load(str(out / "hsr" / "5")).signatures["serving_default"](lr=tf.constant(lr))["hr"]
    np.testing.assert_allclose(served.numpy(), np.maximum(raw, 0.0), atol=1e-5, rtol=1e-6)
    assert json.loads((out / "hsr" / "5" / "assets" / ASSET_NAME).read_text())["clip_negative"] is True

    # The next free number follows the highest; publishing is a rename of a finished folder.
    tmp = out / "hsr" / ".tmp-test"
    tmp.mkdir()
    assert publish(tmp, out / "hsr", None) == out / "hsr" / "6"
    shutil.rmtree(out / "hsr" / "6")


def test_bad_inputs_exit_2(exported, tmp_path, capsys):
    _, _, out = exported
    fit = out.parent / "fit"
    no_manifest = tmp_path / "lonely"
    no_manifest.mkdir()
    shutil.copy(fit / "generator.keras", no_manifest / "generator.keras")
    (tmp_path / "model.h5").write_text("not a model")
    (tmp_path / "broken.keras").write_text("not a zip")
    cases = [
        ([str(tmp_path / "missing.keras")], "no such model file"),
        ([str(tmp_path / "model.h5")], "not a Keras model file"),
        ([str(tmp_path)], "without generator.keras"),
        ([str(no_manifest)], "no data manifest found"),
        ([str(tmp_path / "broken.keras"), "--manifest", str(fit)], "cannot load the generator"),
        ([str(fit), "--manifest", str(tmp_path / "nowhere")], "manifest.json"),
        ([str(fit), "--out", str(out), "--version", "1"], "already exists"),
        ([str(fit), "--out", str(out), "--version", "0"], "positive integer"),
    ]
    for argv, message in cases:
        assert export.main(argv + ["--quiet"]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err and err[-1].startswith("error: ") and message in err[-1], (argv, err)
        assert "Traceback" not in "\n".join(err)
    assert existing_versions(out / "hsr")[0] == 1


# ----------------------------------------------------------------------------- ensembles


@pytest.fixture(scope="module")
def texture_exported(tmp_path_factory):
    """A tiny generator whose noise is on in inference, exported: (version folder, its Keras model)."""
    root = tmp_path_factory.mktemp("texture")
    fit = make_fit_folder(root / "fit", global_skip=True, noise="texture", noise_stddev=0.3)
    assert export.main([str(fit), "--out", str(root / "saved_models"), "--quiet"]) == 0
    return root / "saved_models" / "hsr" / "1", load_generator(fit / "generator.keras")


def test_sample_signature_in_a_fresh_process_draws_seeded_members(texture_exported, tmp_path):
    """Through the SavedModel alone: the same seed gives the same members, another seed others; members in %RH."""
    from hsr_keras.models import sampling

    path, model = texture_exported
    lr = np.random.default_rng(4).uniform(0, 120, (2, 3, 4, 5, 1)).astype("float32")
    np.save(tmp_path / "lr.npy", lr)
    out = fresh_python(
        f"""
        import json
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load({str(path)!r})
        sample = loaded.signatures["sample"]
        _, kwargs = sample.structured_input_signature
        specs = {{name: (spec.dtype.name, spec.shape.as_list()) for name, spec in kwargs.items()}}
        lr = tf.constant(np.load("lr.npy"))

        def draw(seed, members):
            return sample(lr=lr, seed=tf.constant(seed, tf.int64), members=tf.constant(members))["members"].numpy()

        np.savez("members.npz", a=draw(7, 4), b=draw(7, 4), c=draw(8, 4), one=draw(7, 1),
                 best=loaded.signatures["serving_default"](lr=lr)["hr"].numpy())
        try:
            draw(7, 0)
            refused = False
        except tf.errors.InvalidArgumentError:
            refused = True
        print(json.dumps({{"specs": specs, "refused": refused, "signatures": sorted(loaded.signatures)}}))
        """,
        cwd=tmp_path,
    )
    report = json.loads(out.strip().splitlines()[-1])
    assert report["signatures"] == ["sample", "serving_default"] and report["refused"] is True
    assert report["specs"] == {
        "lr": ["float32", [None, None, None, None, 1]],
        "seed": ["int64", []],
        "members": ["int32", []],
    }
    got = np.load(tmp_path / "members.npz")
    assert got["a"].shape == (2, 4, 3, 32, 40, 1) and got["one"].shape == (2, 1, 3, 32, 40, 1)
    np.testing.assert_array_equal(got["a"], got["b"])  # same seed, same members
    assert np.abs(got["a"] - got["c"]).mean() > 0.1  # another seed, other members (%RH; untrained: LR-grid noise only)
    assert np.abs(got["a"][:, 0] - got["a"][:, 1]).mean() > 0.1  # members of one draw differ
    # The members are the Keras generator's, its noise bound to the seed: the batch repeated 4 times.
    keras_members = np.asarray(sampling.seeded_call(model, np.repeat(lr, 4, axis=0), 7)).reshape(got["a"].shape)
    np.testing.assert_allclose(got["a"], keras_members, atol=1e-4)
    # serving_default is the best estimate: the mean of 8 members drawn with seed 0.
    eight = np.asarray(sampling.seeded_call(model, np.repeat(lr, 8, axis=0), 0)).reshape(2, 8, 3, 32, 40, 1)
    np.testing.assert_allclose(got["best"], eight.mean(axis=1), atol=1e-4)
    assert np.abs(got["best"] - got["a"][:, 0]).mean() > 0.1  # not one member


def test_the_asset_and_saved_model_cli_describe_the_sample_signature(texture_exported, exported, tmp_path):
    path, _ = texture_exported
    info = json.loads((path / "assets" / ASSET_NAME).read_text())
    assert info["sample_signature"]["name"] == "sample"
    assert info["sample_signature"]["outputs"]["members"]["layout"].startswith("[batch, members, time")
    assert "mean of 8 members" in info["best_estimate"]
    # The paper's stem noise is sampled too; its best estimate is the generator with the noise off.
    stem = json.loads((exported[0] / "assets" / ASSET_NAME).read_text())
    assert stem["sample_signature"]["name"] == "sample" and "noise off" in stem["best_estimate"]
    inputs, outputs = show_signature(path, "sample", tmp_path).split("output(s):")
    assert "inputs['seed'] tensor_info:" in inputs and "dtype: DT_INT64" in inputs
    assert "inputs['members'] tensor_info:" in inputs and "dtype: DT_INT32" in inputs
    assert "outputs['members'] tensor_info:" in outputs and "shape: (-1, -1, -1, -1, -1, 1)" in outputs


def test_a_generator_without_noise_has_no_sample_signature(tmp_path):
    import tensorflow as tf

    fit = make_fit_folder(tmp_path / "fit", noise_stddev=0.0)
    assert export.main([str(fit), "--out", str(tmp_path / "sm"), "--quiet"]) == 0
    version = tmp_path / "sm" / "hsr" / "1"
    assert list(tf.saved_model.load(str(version)).signatures) == ["serving_default"]
    assert json.loads((version / "assets" / ASSET_NAME).read_text())["sample_signature"] is None


def test_evaluate_samples_an_export_through_its_sample_signature(texture_exported):
    from hsr_keras.evaluation.engine import load_model_method

    path, _ = texture_exported
    lr = np.random.default_rng(5).uniform(0, 120, (2, 3, 4, 4)).astype("float32")
    first, again = (load_model_method("m", path, samples=3, seed=1) for _ in range(2))
    assert first.info["stochastic"] is True and first.samples == 3
    members = first.sampler(lr, 3)
    assert members.shape == (3, 2, 3, 32, 32)
    assert np.abs(members[0] - members[1]).mean() > 0.1  # untrained: LR-grid noise only
    np.testing.assert_array_equal(members, again.sampler(lr, 3))  # the same seed: the same evaluation
    assert np.abs(first.sampler(lr, 3) - members).mean() > 0.1  # the next batch: new draws
