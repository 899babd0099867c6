"""Faults in the data and in the outputs of evaluate, export and predict: one line, exit 2, nothing lost.

Damaged shards (truncated, bit-flipped) are named before any work or while reading; a
non-finite generator is not exported; outputs are checked before the work (a folder where a
file is wanted, a read-only folder, an input as the output); temporaries of killed runs are
removed by the next run, those of live processes kept; `--help` answers without TensorFlow.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_data import first_test_shard, flip_bit, truncate
from test_export import make_fit_folder

from hsr_keras import evaluate, export, predict
from hsr_keras.evaluation import engine as evaluation
from hsr_keras.evaluation.engine import EvaluationError
from hsr_keras.models.model_files import ModelFileError, existing_versions
from hsr_keras.serving import prediction
from hsr_keras.serving import saved_model as serving
from hsr_keras.serving.prediction import PredictError
from hsr_keras.serving.saved_model import ExportError
from hsr_keras.training import data
from hsr_keras.training.data import ShardError, check_shards
from tfrecords_builder import synthetic
from tfrecords_builder.contract import files
from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.manifest import ManifestError, read_manifest

ROOT = Path(__file__).resolve().parents[1]


def command_env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def one_error_line(err):
    """The single `error: ...` line of a command's stderr (no traceback, nothing else)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def read_only(read_only_folder):
    """A folder nobody can write into, root included (see conftest's `read_only_folder`)."""
    return read_only_folder


# ----------------------------------------------------------------------------- damaged shards


def evaluate_cli(folder, out, *extra):
    return evaluate.main(["--data", str(folder), "--baselines", "bicubic", "--out", str(out), "--quiet", *extra])


def test_truncated_shard_evaluate_cli(sharded_build_copy, tmp_path):
    """Case 7: a truncated shard is named, with the build command that rebuilds it; nothing is written."""
    shard = first_test_shard(sharded_build_copy)
    truncate(shard)
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "hsr_keras.evaluate", "--data", str(sharded_build_copy), "--baselines", "bicubic"]
        + ["--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    line = one_error_line(run.stderr)
    assert f"shard {shard.name} of split 'test'" in line and "is truncated" in line
    assert "rebuild the data: python -m tfrecords_builder" in line
    assert not out.exists()


def test_truncated_shard_in_process(sharded_build_copy, tmp_path, capsys):
    truncate(first_test_shard(sharded_build_copy))
    assert evaluate_cli(sharded_build_copy, tmp_path / "out") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "of split 'test'" in line and "is truncated" in line and first_test_shard(sharded_build_copy).name in line
    assert not (tmp_path / "out").exists()


def test_bit_flip_found_by_checksums_on_request(sharded_build_copy, tmp_path, capsys, monkeypatch):
    """A bit-flip keeps the size: a size check passes, the checksum (--verify-shards) names the shard."""
    monkeypatch.setattr(data, "CHEAP_CHECK_BYTES", 0, raising=False)  # as for a build too large to checksum by default
    shard = first_test_shard(sharded_build_copy)
    flip_bit(shard)
    assert check_shards(sharded_build_copy, "test")["checksums"] is False  # sizes only: they are right
    with pytest.raises(ShardError, match=f"shard {shard.name} of split 'test' .* is corrupt"):
        check_shards(sharded_build_copy, ["train", "test"], checksums=True)
    assert evaluate_cli(sharded_build_copy, tmp_path / "out", "--verify-shards") == 2
    line = one_error_line(capsys.readouterr().err)
    assert shard.name in line and "is corrupt" in line and "rebuild the data" in line


def test_bit_flip_found_while_reading(sharded_build_copy, tmp_path, capsys, monkeypatch):
    """No check beforehand: the DataLossError met while streaming becomes one line naming the shard."""
    monkeypatch.setattr(data, "check_shards", lambda *args, **kwargs: None, raising=False)
    shard = first_test_shard(sharded_build_copy)
    flip_bit(shard)
    assert evaluate_cli(sharded_build_copy, tmp_path / "out") == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"shard {shard.name} of split 'test'" in line and "is corrupt" in line
    assert not (tmp_path / "out").exists()
    with pytest.raises(ShardError, match=shard.name):
        data.load_split(sharded_build_copy, "test")


def test_fit_refuses_a_truncated_shard_before_training(tmp_path):
    """Case 7 in fit: its input pipeline names the shard before the first step; no history.csv."""
    from tiny_runs import make_build, write_config

    from hsr_keras.training import trainer
    from hsr_keras.training.config import load_config

    folder = make_build(tmp_path)
    shard = folder / read_manifest(folder)["splits"]["train"]["shards"][0]
    truncate(shard)
    config = load_config(write_config(tmp_path / "tiny.json"), preset="demo")
    with pytest.raises(ShardError, match=f"shard {shard.name} of split 'train' .* is truncated"):
        trainer.train(config, folder, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run" / "history.csv").exists()
    assert not (tmp_path / "run" / "generator.keras").exists()


# ----------------------------------------------------------------------------- export


def broken_generator(folder, how):
    """A fit folder whose generator has a NaN weight, or weights that overflow to inf."""
    import keras

    fit = make_fit_folder(folder)
    model = keras.saving.load_model(fit / "generator.keras", compile=False)
    kernel = next(v for v in model.weights if len(v.shape) >= 4)
    values = np.asarray(kernel).copy()
    if how == "nan":
        values.flat[0] = np.nan
    else:
        values[...] = 3e38
    kernel.assign(values)
    model.save(fit / "generator.keras")
    return fit


@pytest.mark.parametrize(
    "how, message",
    [
        ("nan", "has non-finite weights (NaN or inf in"),
        ("overflow", "gives non-finite values (NaN or inf) for a probe of 0 to 120 %RH"),
    ],
)
def test_export_refuses_a_non_finite_generator(tmp_path, capsys, monkeypatch, how, message):
    """Case 2b: one sentence, not 'differs from the Keras model by nan %RH'; nothing published."""
    fit = broken_generator(tmp_path / "fit", how)
    out = tmp_path / "saved_models"
    saved = []
    monkeypatch.setattr(serving, "save_servable", lambda *args: saved.append(args))
    assert export.main([str(fit), "--out", str(out), "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert message in line and "did training diverge?" in line and "nan %RH" not in line
    assert saved == [], "the SavedModel was written before the generator was checked"
    assert not (out / "hsr").exists() or list((out / "hsr").iterdir()) == []


def test_export_removes_stale_temporaries(tmp_path, capsys, live_pid, dead_pid):
    """Case 10: a killed export's temporary folder goes; a live one's, and another host's, stay."""
    fit = make_fit_folder(tmp_path / "fit")
    base = tmp_path / "saved_models" / "hsr"
    stale = files.temporary_path(base / "export", pid=dead_pid)
    live = files.temporary_path(base / "export", pid=live_pid)
    other_host = files.temporary_path(base / "export", pid=dead_pid, host=f"elsewhere-{files.host_tag()}")
    legacy = base / ".tmp-export-abcd1234"  # no pid in the name: whose it is cannot be known
    for folder in (stale, live, other_host, legacy):
        (folder / "variables").mkdir(parents=True)
    seen = {}
    verify = serving.verify_servable

    def spy(folder, *args, **kwargs):
        seen["tmp"] = Path(folder).name
        return verify(folder, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(serving, "verify_servable", spy)
        assert export.main([str(fit), "--out", str(tmp_path / "saved_models")]) == 0
    assert files.TEMPORARY_RE.match(seen["tmp"])["pid"] == str(os.getpid())
    assert not stale.exists()
    assert live.exists() and other_host.exists() and legacy.exists()
    assert existing_versions(base) == [1]
    assert f"note: removed {stale}" in capsys.readouterr().err


def test_export_to_a_read_only_folder(tmp_path, read_only, capsys, monkeypatch):
    """Case 8: one line, exit 2, before the generator is loaded."""
    fit = make_fit_folder(tmp_path / "fit")
    monkeypatch.setattr(serving.model_files, "load_generator", pytest.fail)
    assert export.main([str(fit), "--out", str(read_only), "--quiet"]) == 2
    assert "read-only" in one_error_line(capsys.readouterr().err)
    assert export.main([str(fit), "--out", str(read_only / "deeper"), "--quiet"]) == 2
    assert "read-only" in one_error_line(capsys.readouterr().err)
    (tmp_path / "file").write_text("")
    assert export.main([str(fit), "--out", str(tmp_path / "file"), "--quiet"]) == 2
    assert "is a file, not a folder" in one_error_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------- predict


def predict_cli(setup, out, *extra):
    return predict.main([str(setup["lr"]), "--model", str(setup["fit"]), "--out", str(out), "--quiet", *extra])


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the model is loaded: the output checks come first."""
    monkeypatch.setattr(prediction, "load_model_function", pytest.fail)
    monkeypatch.setattr(prediction, "resolve_model", pytest.fail)


def test_predict_overwrite_onto_a_folder(predict_setup, tmp_path, capsys, no_work):
    """Case 11: refused before any work, not [Errno 21] after predicting everything."""
    (tmp_path / "out.nc").mkdir()
    assert predict_cli(predict_setup, tmp_path / "out.nc", "--overwrite") == 2
    assert "is a folder: give the name of the file to write" in one_error_line(capsys.readouterr().err)
    assert list((tmp_path / "out.nc").iterdir()) == []


def test_predict_onto_its_input(predict_setup, capsys, no_work):
    assert predict_cli(predict_setup, predict_setup["lr"], "--overwrite") == 2
    assert "is one of the inputs" in one_error_line(capsys.readouterr().err)


def test_predict_into_a_read_only_folder(predict_setup, read_only, capsys, no_work):
    """Cases 8 and 11: an unwritable folder is one line, before the work."""
    assert predict_cli(predict_setup, read_only / "out.nc") == 2
    assert "read-only" in one_error_line(capsys.readouterr().err)
    assert not (read_only / "out.nc").exists()


def test_predict_removes_stale_temporaries(predict_setup, tmp_path, capsys, live_pid, dead_pid):
    """Case 10: a killed predict's temporary goes on the next run; a live one's and another host's stay."""
    out = tmp_path / "hr.nc"
    stale = files.temporary_path(out, pid=dead_pid)
    stale_other_output = files.temporary_path(tmp_path / "other.nc", pid=dead_pid)
    live = files.temporary_path(out, pid=live_pid)
    other_host = files.temporary_path(out, pid=dead_pid, host=f"elsewhere-{files.host_tag()}")
    unrelated = tmp_path / ".hr.nc.part"
    for path in (stale, stale_other_output, live, other_host, unrelated):
        path.write_bytes(b"\x89HDF\r\n\x1a\n")
    assert files.temporary_path(out).name == f".hr.{files.host_tag()}.{os.getpid()}.part.nc"
    assert predict.main([str(predict_setup["lr"]), "--model", str(predict_setup["fit"]), "--out", str(out)]) == 0
    assert out.is_file()
    assert not stale.exists() and not stale_other_output.exists()
    assert live.exists() and other_host.exists() and unrelated.exists()
    assert f"note: removed {stale}" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_predict_leaves_a_temporary_the_next_run_removes(predict_setup, tmp_path):
    """Case 10 for real: SIGKILL while predicting leaves `.hr.<host>.<pid>.part.nc`; the next run removes it."""
    import signal
    import time

    grid = dict(lat_bounds=(30.0, 44.0), lon_bounds=(100.0, 114.0), resolution=2.0, levels=(300,))
    lr = synthetic.write_synthetic(tmp_path / "lr", "2019-01-01", "2019-01-20", per="all", interval_hours=3, **grid)
    out = tmp_path / "hr.nc"
    argv = [sys.executable, "-m", "hsr_keras.predict", *map(str, lr), "--model", str(predict_setup["fit"])]
    argv += ["--out", str(out), "--tile", "2", "--overlap", "0", "--batch-size", "1", "--quiet"]
    process = subprocess.Popen(argv, env=command_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    part = files.temporary_path(out, pid=process.pid)
    deadline = time.monotonic() + 90
    while not part.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    _, err = process.communicate(timeout=30)
    assert part.exists(), err.decode()[-2000:]
    assert not out.exists()
    assert predict_cli(predict_setup, out) == 0
    assert out.is_file() and not part.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ----------------------------------------------------------------------------- evaluate outputs


def test_evaluate_into_a_read_only_folder(sharded_build, read_only, capsys, monkeypatch):
    """Case 8: one line, exit 2, before anything is evaluated."""
    monkeypatch.setattr(evaluation, "evaluate_methods", pytest.fail)
    assert evaluate_cli(sharded_build, read_only / "out") == 2
    assert "read-only" in one_error_line(capsys.readouterr().err)
    assert not (read_only / "out").exists()


def test_evaluate_onto_a_file(sharded_build, tmp_path, capsys):
    (tmp_path / "out").write_text("")
    assert evaluate_cli(sharded_build, tmp_path / "out") == 2
    assert "is a file, not a folder" in one_error_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------- help, errors, Ctrl-C


@pytest.mark.parametrize("command", ["evaluate", "export", "predict"])
def test_help_without_tensorflow(command):
    """Case 9: `--help` answers at once; neither TensorFlow nor Keras is imported, stderr stays empty."""
    run = subprocess.run(
        [sys.executable, "-m", f"hsr_keras.{command}", "--help"],
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=60,
    )
    assert run.returncode == 0 and f"usage: python -m hsr_keras.{command}" in run.stdout
    assert run.stderr == ""
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", f"hsr_keras.{command}", "--help"],
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=60,
    )
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in probe.stderr.splitlines() if "|" in line}
    assert probe.returncode == 0 and "hsr_keras" in modules
    assert not modules & {"tensorflow", "keras", "jax", "torch"}, sorted(modules)


def test_error_classes_are_input_errors():
    for error in (EvaluationError, ExportError, PredictError, ModelFileError, ManifestError, ShardError):
        assert issubclass(error, InputError), error
    assert issubclass(files.OutputError, InputError) and issubclass(files.FolderBusy, InputError)


@pytest.mark.parametrize(
    "module, target, name",
    [(evaluate, evaluate, "run"), (export, serving, "export"), (predict, prediction, "predict")],
)
def test_ctrl_c_exits_130(module, target, name, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, name, interrupted)
    argv = {"evaluate": ["--data", "x"], "export": ["model"], "predict": ["in.nc", "--model", "m", "--out", "o"]}
    assert module.main(argv[module.__name__.rsplit(".", 1)[-1]]) == 130
    assert capsys.readouterr().err.strip() == "interrupted: nothing was published"
