"""Training runs you can trust: every failure of fit, tune and compare is loud, and nothing is lost.

Each test names the case it covers. They check the exit code, the one line on
stderr (no traceback) and what is on disk afterwards.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from tiny_runs import history_rows, write_config

from hsr_keras import fit
from hsr_keras.training import trainer
from hsr_keras.training.callbacks import TrainingDiverged
from hsr_keras.training.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def snapshot(folder):
    """Every file under `folder` with its size and modification time: what 'untouched' means."""
    folder = Path(folder)
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def one_error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def fit_argv(build, config, out, *extra):
    return ["--data", str(build), "--config", str(config), "--out", str(out), "--quiet", *extra]


def plant_nan(build, split, records):
    """Rewrite the shard of `split` in `build` with NaN fields (hr and lr) in the records numbered `records`."""
    import tensorflow as tf

    from tfrecords_builder.contract.manifest import shard_record
    from tfrecords_builder.contract.schema import COMPRESSION

    info = json.loads((build / "manifest.json").read_text())
    shard = build / info["splits"][split]["shards"][0]
    examples = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(shard), COMPRESSION)]
    for index in records:
        for name in ("hr", "lr"):
            feature = examples[index].features.feature[name].bytes_list
            size = len(feature.value[0]) // 4
            feature.value[0] = np.full(size, np.nan, "<f4").tobytes()
    with tf.io.TFRecordWriter(str(shard), options=COMPRESSION) as writer:
        for example in examples:
            writer.write(example.SerializeToString(deterministic=True))
    # The manifest keeps describing its shards truthfully (sizes, checksums), so only the values are bad.
    record = info["splits"][split]
    record["shard_files"] = [shard_record(build / name) for name in record["shards"]]
    record["bytes"] = sum(f["bytes"] for f in record["shard_files"])
    (build / "manifest.json").write_text(json.dumps(info, indent=1))


# -- case 2: a diverged run stops, exits non-zero and keeps (or writes no) generator -------------


def test_nan_in_the_training_data_stops_fit_with_one_line(small_build, tmp_path, capsys):
    build = tmp_path / "nan_build"
    shutil.copytree(small_build, build)
    plant_nan(build, "train", [2, 7])
    out = tmp_path / "run"
    assert fit.main(fit_argv(build, write_config(tmp_path / "tiny.json"), out)) == 1
    line = one_error_line(capsys)
    assert line.startswith("error: training diverged at epoch 1, step ")
    assert "g_loss = nan" in line and "no generator was saved" in line
    assert not (out / "generator.keras").exists() and not (out / "best.json").exists()
    assert not (out / "evaluation.json").exists()
    assert not (out / "history.csv").exists() or history_rows(out) == []


def test_divergence_keeps_the_best_generator_of_the_earlier_epochs(small_build, tmp_path):
    class Diverge(keras.callbacks.Callback):
        """From the second epoch on, the generator's weights are NaN (a blow-up)."""

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                weights = self.model.generator.weights[0]
                weights.assign(np.full(weights.shape, np.nan, "float32"))

    out = tmp_path / "run"
    config = load_config(write_config(tmp_path / "tiny.json", epochs=3), preset="demo")
    with pytest.raises(TrainingDiverged) as info:
        trainer.train(config, small_build, out, verbose=0, extra_callbacks=[Diverge()])
    message = str(info.value)
    assert message.startswith("training diverged at epoch 2, step 1: ") and "g_loss = nan" in message
    assert "the best generator (epoch 1, val_mse = " in message and str(out / "generator.keras") in message
    assert json.loads((out / "best.json").read_text())["epoch"] == 1
    assert [row["epoch"] for row in history_rows(out)] == ["0"]  # no row of the diverged epoch
    from hsr_keras.models.model_files import load_generator

    generator = load_generator(out / "generator.keras")
    assert all(np.isfinite(w).all() for w in generator.get_weights())


# -- case 3: resume never replaces the best generator with a worse one ----------------------------


@pytest.mark.slow
def test_killed_fit_resumes_and_keeps_the_best_generator(small_build, tmp_path):
    out = tmp_path / "run"
    config = write_config(tmp_path / "tiny.json", epochs=3, plot_every=100)  # no maps: quicker
    command = [sys.executable, "-m", "hsr_keras.fit", *fit_argv(small_build, config, out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if (out / "history.csv").exists() and len(history_rows(out)) >= 2:  # epochs 1 and 2 finished
            break
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()[1]
    process.send_signal(signal.SIGKILL)  # during epoch 3
    process.wait()
    assert not (out / "evaluation.json").exists() and (out / "backup").is_dir()

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    rows = history_rows(out)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]  # each epoch once
    val_mse = [float(row["val_mse"]) for row in rows]
    best_epoch = int(np.argmin(val_mse)) + 1
    best = json.loads((out / "best.json").read_text())
    assert (best["epoch"], best["value"]) == (best_epoch, pytest.approx(min(val_mse)))
    report = json.loads((out / "evaluation.json").read_text())
    assert report["best"]["epoch"] == best_epoch
    # generator.keras is that epoch's: its validation MSE is the best one of history.csv.
    assert report["methods"]["model"]["mse"] == pytest.approx(min(val_mse), rel=1e-3)
    assert not (out / "backup").exists() and not list(out.glob(".*"))  # no temporaries left


def test_an_epoch_killed_before_its_backup_gives_back_its_best_generator(small_build, tmp_path, monkeypatch):
    """A kill after epoch 2 saved a new best generator but before its backup: the resume starts from epoch 1's."""
    from hsr_keras.training import run_folder
    from hsr_keras.training.callbacks import WholeBackup

    class Killed(BaseException):
        pass

    kept = {}

    class KeepEpochOne(keras.callbacks.Callback):  # runs after the backup: what epoch 1 left
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                kept.update({name: (out / name).read_bytes() for name in ("generator.keras", "best.json")})

    save = WholeBackup._save_model

    def killed_in_epoch_two(self):
        if self._current_epoch == 2:
            raise Killed
        save(self)

    out = tmp_path / "run"
    config = load_config(write_config(tmp_path / "tiny.json", epochs=3, plot_every=100), preset="demo")
    monkeypatch.setattr(WholeBackup, "_save_model", killed_in_epoch_two)
    with pytest.raises(Killed):
        trainer.train(config, small_build, out, verbose=0, extra_callbacks=[KeepEpochOne()])
    monkeypatch.undo()
    assert json.loads((out / "best.json").read_text())["epoch"] == 2  # epoch 2 was a new best...
    assert run_folder.backed_up_epochs(out) == 1  # ...that no backup holds

    run_folder.restore_best(out)
    assert {name: (out / name).read_bytes() for name in kept} == kept
    trainer.train(config, small_build, out, verbose=0)
    val_mse = [float(row["val_mse"]) for row in history_rows(out)]
    best = json.loads((out / "best.json").read_text())
    assert len(val_mse) == 3 and (best["epoch"], best["value"]) == (np.argmin(val_mse) + 1, pytest.approx(min(val_mse)))


def test_a_backup_without_best_files_leaves_the_run_folder_as_it_is(tmp_path):
    from hsr_keras.training import run_folder

    backup = tmp_path / "backup"
    backup.mkdir()
    (tmp_path / "best.json").write_text(json.dumps({"value": 1.0, "epoch": 3}))
    (tmp_path / "generator.keras").write_bytes(b"three")
    for metadata, kept in [
        ({"epoch": 2}, None),  # a backup written before best files were kept in it
        ({"epoch": 2, "best_epoch": 2}, {"value": 2.0, "epoch": 1}),  # its files do not match its record
    ]:
        (backup / "training_metadata.json").write_text(json.dumps(metadata))
        if kept is not None:
            (backup / "best.json").write_text(json.dumps(kept))
            (backup / "generator.keras").write_bytes(b"one")
        run_folder.restore_best(tmp_path)
        assert (tmp_path / "generator.keras").read_bytes() == b"three"
    (backup / "training_metadata.json").write_text(json.dumps({"epoch": 1, "best_epoch": None}))
    run_folder.restore_best(tmp_path)  # no epoch before the backup's had a best generator
    assert not (tmp_path / "generator.keras").exists() and not (tmp_path / "best.json").exists()


# -- case 4: check before writing; no silent retraining; history without repeats ------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"loss": "hinge"}, "loss must be one of"),
    ],
)
def test_a_failed_start_creates_no_folder_and_leaves_one_untouched(small_build, tmp_path, capsys, change, message):
    config = write_config(tmp_path / "bad.json", **change)
    new = tmp_path / "new" / "run"
    assert fit.main(fit_argv(small_build, config, new)) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "new").exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    before = snapshot(existing)
    assert fit.main(fit_argv(small_build, config, existing)) == 2
    assert message in one_error_line(capsys)
    assert snapshot(existing) == before


def test_a_missing_eval_split_is_refused_before_training(small_build, tmp_path, capsys):
    out = tmp_path / "run"
    argv = fit_argv(small_build, write_config(tmp_path / "tiny.json"), out, "--eval-split", "test")
    assert fit.main(argv) == 2
    assert "--eval-split 'test' is not in the data (it has train, val)" in one_error_line(capsys)
    assert not out.exists()


def unfinished_run(folder, config, build):
    """The state a run killed after its first epoch leaves (backup/ with its metadata)."""
    folder.mkdir()
    config.save(folder / "config.json")
    (folder / "run.json").write_text(json.dumps({"data": str(Path(build).resolve())}))
    (folder / "backup").mkdir()
    (folder / "backup" / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    return snapshot(folder)


def test_a_backup_of_another_config_is_one_line(small_build, tmp_path, capsys):
    out = tmp_path / "run"
    before = unfinished_run(out, load_config(write_config(tmp_path / "old.json"), preset="paper"), small_build)
    assert fit.main(fit_argv(small_build, write_config(tmp_path / "new.json", filters=16), out)) == 2
    line = one_error_line(capsys)
    assert f"{out} holds an unfinished run of another config (filters 8 -> 16)" in line
    assert "--overwrite" in line and "--config" in line
    assert snapshot(out) == before

    other_data = tmp_path / "other_data"
    shutil.copytree(small_build, other_data)
    assert fit.main(fit_argv(other_data, write_config(tmp_path / "old.json"), out)) == 2
    assert "holds an unfinished run on other data" in one_error_line(capsys)
    assert snapshot(out) == before


def test_a_finished_run_is_not_trained_again_without_overwrite(small_build, tmp_path, capsys):
    out = tmp_path / "run"
    config = write_config(tmp_path / "tiny.json", epochs=1)
    out.mkdir()
    load_config(config, preset="demo").save(out / "config.json")
    (out / "generator.keras").write_bytes(b"an old generator")
    (out / "history.csv").write_text("epoch,g_loss\n" + "".join(f"{e},0.5\n" for e in range(7)))
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    assert fit.main(fit_argv(small_build, config, out)) == 2
    line = one_error_line(capsys)
    assert f"{out} holds a finished run (7 epochs, generator.keras): add --overwrite" in line
    assert snapshot(out) == before

    assert fit.main(fit_argv(small_build, config, out, "--overwrite")) == 0
    assert [row["epoch"] for row in history_rows(out)] == ["0"]  # the old rows are gone
    assert (out / "generator.keras").read_bytes() != b"an old generator"
    assert (out / "notes.txt").read_text() == "mine"  # not an output of the run: kept
    assert not (out / "backup").exists()


# -- case 5 and 6: config values and config files ---------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("g_learning_rate: abc\n", "g_learning_rate must be a number. Received: g_learning_rate='abc'"),
        ("filters: eight\n", "filters must be an integer. Received: filters='eight'"),
        ('batch_size: "4"\n', "batch_size must be an integer. Received: batch_size='4'"),
        ("epochs: 1.5\n", "epochs must be an integer. Received: epochs=1.5"),
        ('use_cbam: "no"\n', "use_cbam must be true or false. Received: use_cbam='no'"),
        ("critic_steps: true\n", "critic_steps must be an integer. Received: critic_steps=True"),
        ("seed: null\n", "seed must be an integer. Received: seed=None"),
        ("filters: 8\nloss: [wgan-gp\n", "line 3: "),
        ("filters: 8\n  bad indent: 1\n", "line 2: mapping values are not allowed here (YAML)"),
    ],
)
def test_bad_yaml_configs_are_one_line_naming_the_file(small_build, tmp_path, capsys, text, message):
    config = tmp_path / "config.yaml"
    config.write_text(text)
    out = tmp_path / "run"
    assert fit.main(fit_argv(small_build, config, out)) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: config file {config}") and message in line
    assert "Received: architecture=" not in line  # one field, not the whole config
    assert not out.exists()


def test_malformed_json_config_names_the_line(small_build, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text('{\n "filters": 8,\n "epochs": 2\n "seed": 1\n}\n')
    assert fit.main(fit_argv(small_build, config, tmp_path / "run")) == 2
    assert one_error_line(capsys) == f"error: config file {config}, line 4: Expecting ',' delimiter (JSON)"


def test_a_yaml_float_without_a_dot_is_a_float(tmp_path):
    # PyYAML reads 1e-4 as the string "1e-4": a float field takes it as the number it writes.
    config = tmp_path / "config.yaml"
    config.write_text("g_learning_rate: 1e-4\nwarmup_epochs: 2\n")
    loaded = load_config(config, preset="demo")
    assert loaded.g_learning_rate == 1e-4 and isinstance(loaded.warmup_epochs, float)


# -- case 8b: a read-only --out ---------------------------------------------------------------


def test_fit_into_a_read_only_folder_is_one_line(small_build, tmp_path, capsys, read_only_folder):
    config = write_config(tmp_path / "tiny.json")
    before = snapshot(read_only_folder) if read_only_folder != Path("/sys") else None
    assert fit.main(fit_argv(small_build, config, read_only_folder)) == 2
    assert f"error: cannot write in --out {read_only_folder}: " in one_error_line(capsys)
    out = read_only_folder / "run"
    assert fit.main(fit_argv(small_build, config, out)) == 2
    assert f"error: cannot create --out {out}: " in one_error_line(capsys)
    assert not out.exists()
    if before is not None:
        assert snapshot(read_only_folder) == before


# -- case 9: --help at once, without TensorFlow or Keras --------------------------------------


@pytest.mark.parametrize("command", ["fit", "tune", "compare"])
def test_help_answers_without_importing_tensorflow_or_keras(command):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", f"hsr_keras.{command}", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 0
    assert run.stdout.startswith(f"usage: python -m hsr_keras.{command}")
    imported = [line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()]
    assert all(line.startswith("import time:") for line in run.stderr.splitlines())  # nothing else on stderr
    heavy = [name for name in imported if name.split(".")[0] in ("tensorflow", "keras", "keras_tuner", "jax")]
    assert heavy == []
