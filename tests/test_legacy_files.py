"""What earlier versions wrote, and how code written against them imported, still works.

tests/data/legacy holds a run folder, a build manifest and a SavedModel written by commit
887221d, before the package moved into role folders (see its README).
"""

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from hsr_keras.models import model_files
from hsr_keras.training import run_folder
from hsr_keras.training.config import load_config

LEGACY = Path(__file__).resolve().parent / "data" / "legacy"
REFERENCE = np.load(LEGACY / "reference.npz")


@pytest.fixture
def legacy_run(tmp_path):
    """A copy of the legacy run folder (commands may write beside it)."""
    return Path(shutil.copytree(LEGACY / "run", tmp_path / "run"))


def test_the_old_config_loads_as_this_versions(legacy_run):
    config = load_config(legacy_run / "config.json")
    assert (config.filters, config.num_res_blocks, config.icnr, config.epochs) == (8, 1, True, 2)
    assert config.loss_weights == {"content": 1.0, "adversarial": 0.001, "lattice": 0.03}
    # A resumed run compares configs: the old one equals the same config written today.
    saved = json.loads((legacy_run / "config.json").read_text())
    assert run_folder.config_changes(saved, config) == []


def test_the_old_run_folder_reads_as_a_finished_run(legacy_run):
    assert run_folder.read_best(legacy_run)["epoch"] == 2
    assert run_folder.history_epochs(legacy_run) == ["0", "1"]
    with pytest.raises(run_folder.TrainingError, match="holds a finished run"):
        run_folder.check(load_config(legacy_run / "config.json"), legacy_run)


def test_the_old_generator_loads_and_predicts_as_it_did(legacy_run):
    kind, path = model_files.resolve(legacy_run)
    generator = model_files.load_generator(path)
    hr = np.asarray(generator(REFERENCE["lr"], training=False))
    np.testing.assert_allclose(hr, REFERENCE["keras_hr"], atol=1e-4)


def test_the_old_generator_exports_with_the_old_manifest(legacy_run, tmp_path):
    from hsr_keras import export

    out = tmp_path / "saved_models"
    argv = [str(legacy_run), "--manifest", str(LEGACY / "data"), "--out", str(out), "--name", "old", "--quiet"]
    assert export.main(argv) == 0
    assert (out / "old" / "1" / "saved_model.pb").is_file()


def test_the_old_saved_model_serves_in_a_fresh_process_through_its_signature(tmp_path):
    """As TF Serving uses it: a new process, the signature alone, no hsr_keras import."""
    np.save(tmp_path / "lr.npy", REFERENCE["lr"])
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        "f = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "np.save(sys.argv[3], f(lr=tf.constant(np.load(sys.argv[2])))['hr'].numpy())\n"
    )
    version = LEGACY / "saved_models" / "tiny" / "1"
    done = subprocess.run(
        [sys.executable, "-c", script, str(version), str(tmp_path / "lr.npy"), str(tmp_path / "hr.npy")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "hr.npy"), REFERENCE["saved_model_hr"], atol=1e-4)
    assert model_files.read_export_info(version)["scale"] == 4


@pytest.mark.parametrize(
    "old, name",
    [
        ("hsr_keras.networks", "build_generator"),
        ("hsr_keras.wgan", "SuperResolutionGAN"),
        ("hsr_keras.metrics", "ssim"),
        ("hsr_keras.config", "load_config"),
        ("hsr_keras.model_files", "load_generator"),
        ("hsr_keras.in_memory", "synthetic_arrays"),
        ("tfrecords_builder.manifest", "read_manifest"),
        ("tfrecords_builder.schema", "parse_example"),
        ("tfrecords_builder.reader", "Era5Source"),
        ("tfrecords_builder.errors", "InputError"),
    ],
)
def test_old_module_paths_import_the_new_modules_with_a_warning(old, name):
    import importlib

    from hsr_keras import MOVED as hsr_moved
    from tfrecords_builder import MOVED as builder_moved

    new = {**hsr_moved, **builder_moved}[old]
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new) and hasattr(module, name)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in seen)


def test_the_old_training_evaluation_and_serving_names_are_lent_by_their_packages():
    from hsr_keras import evaluation, serving, training
    from hsr_keras.evaluation import engine
    from hsr_keras.serving import saved_model
    from hsr_keras.training import demo_data, trainer

    assert training.train is trainer.train and training.make_demo_data is demo_data.make_demo_data
    assert training.TrainingError is run_folder.TrainingError
    assert evaluation.evaluate_methods is engine.evaluate_methods and serving.export is saved_model.export
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        training.nothing  # noqa: B018
