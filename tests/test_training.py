"""hsr_keras.training on small synthetic builds: demo data, resuming, the global state a run leaves."""

import json

import keras
import pytest
from tiny_runs import history_rows, make_build, write_config

from hsr_keras import training
from hsr_keras.config import load_config


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    return make_build(tmp_path_factory.mktemp("fit_data"))


def test_demo_data_is_built_once_with_the_demo_dates(tmp_path):
    folder = training.make_demo_data(tmp_path, verbose=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    for split in ("train", "val", "test"):
        start, end = training.DEMO_DATES[split].split(":")
        assert (manifest["splits"][split]["start"], manifest["splits"][split]["end"]) == (start, end)
    # The manifest names the shell command that makes the same build.
    assert manifest["command"][:4] == ["python", "-m", "tfrecords_builder", str(tmp_path / "era5")]
    assert "--train=" + training.DEMO_DATES["train"] in manifest["command"]
    written = (folder / "manifest.json").stat().st_mtime_ns
    assert training.make_demo_data(tmp_path, verbose=False) == folder
    assert (folder / "manifest.json").stat().st_mtime_ns == written  # reused, not rebuilt


def test_steps_per_epoch_counts_whole_batches():
    manifest = {"splits": {"train": {"examples": 9}}}
    assert training.steps_per_epoch(manifest, 4) == 2
    assert training.steps_per_epoch(manifest, 16) == 1  # never 0


def test_killed_run_resumes_where_it_stopped(small_build, tmp_path):
    out = tmp_path / "run"
    config = load_config(write_config(tmp_path / "tiny.json", epochs=3), preset="demo")

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt("killed after the first epoch")

    with pytest.raises(KeyboardInterrupt):
        training.train(config, small_build, out, verbose=0, extra_callbacks=[Kill()])
    assert [r["epoch"] for r in history_rows(out)] == ["0"]
    # As if the kill had come after epoch 1's row but before its backup: epoch 1 is done again.
    with (out / "history.csv").open("a") as f:
        f.write("1" + "," * (len(history_rows(out)[0]) - 1) + "\n")
    epochs_run = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs_run.append(epoch)

    result = training.train(config, small_build, out, verbose=0, extra_callbacks=[Record()])
    assert epochs_run == [1, 2]  # resumed after epoch 0, not from scratch
    assert [r["epoch"] for r in history_rows(out)] == ["0", "1", "2"]  # each epoch once
    assert result["generator_path"].exists()
    assert result["best"]["epoch"] in (1, 2, 3) and not (out / "backup").exists()

    # The run is finished: the same call again is refused, not trained again.
    with pytest.raises(training.TrainingError, match="holds a finished run \\(3 epochs"):
        training.train(config, small_build, out, verbose=0)


def test_train_restores_the_callers_precision_policy_when_training_fails(small_build, tmp_path):
    class Fail(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            raise RuntimeError("training failed")

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    config = load_config(write_config(tmp_path / "tiny.json"), preset="demo", precision="mixed_float16")
    with pytest.raises(RuntimeError, match="training failed"):
        training.train(config, small_build, tmp_path / "run", verbose=0, extra_callbacks=[Fail()])
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"


def test_train_rejects_an_unknown_strategy(small_build, tmp_path):
    config = load_config(write_config(tmp_path / "tiny.json"), preset="demo")
    with pytest.raises(training.TrainingError, match="strategy must be one of"):
        training.train(config, small_build, tmp_path / "run", strategy="tpu")
