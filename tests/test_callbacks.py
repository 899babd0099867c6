"""hsr_keras.training.callbacks: the non-finite guard, the best-generator checkpoint across restarts, the history log."""

import csv
import json
import math
import types

import keras
import numpy as np
import pytest

from hsr_keras.models.networks import build_srcnn
from hsr_keras.training import callbacks


def test_stop_on_non_finite_reads_every_log_not_just_loss():
    # Keras' TerminateOnNaN reads logs["loss"], which SuperResolutionGAN does not log.
    guard = callbacks.StopOnNonFinite()
    guard.on_epoch_begin(2)
    guard.on_train_batch_end(0, {"g_loss": 0.3, "d_loss": 1.0})
    with pytest.raises(callbacks.TrainingDiverged) as info:
        guard.on_train_batch_end(4, {"g_loss": 0.3, "d_loss": math.nan, "gradient_penalty": math.inf})
    assert str(info.value) == "training diverged at epoch 3, step 5: d_loss = nan, gradient_penalty = inf"
    assert (info.value.epoch, info.value.step) == (3, 5)


def test_stop_on_non_finite_checks_validation_at_epoch_end():
    guard = callbacks.StopOnNonFinite()
    guard.on_epoch_end(0, {"g_loss": 0.3, "val_mse": 4.0, "val_psnr": math.inf})  # an exact match: allowed
    with pytest.raises(callbacks.TrainingDiverged, match=r"at epoch 2 \(validation\): val_mse = nan"):
        guard.on_epoch_end(1, {"val_mse": math.nan})


def test_stop_on_non_finite_without_raising_stops_the_model():
    guard = callbacks.StopOnNonFinite(raise_error=False)
    guard.set_model(types.SimpleNamespace(stop_training=False))
    guard.on_train_batch_end(0, {"content_loss": math.nan})
    assert guard.model.stop_training and guard.diverged.values == {"content_loss": math.nan}


def _generator(seed):
    keras.utils.set_random_seed(seed)
    return build_srcnn(scale=4, filters=(2, 2), kernel_sizes=(3, 3, 3))


def test_best_generator_survives_a_restart(tmp_path):
    """A restart does not reset the best score: a worse first epoch after it keeps the file."""
    path = tmp_path / "generator.keras"
    first = callbacks.BestGeneratorCheckpoint(path)
    first.set_model(types.SimpleNamespace(generator=_generator(0)))
    first.on_train_begin()
    first.on_epoch_end(0, {"val_mse": 5.0})
    first.on_epoch_end(1, {"val_mse": 4.0})
    saved = path.read_bytes()
    assert json.loads((tmp_path / "best.json").read_text()) == {
        "monitor": "val_mse",
        "mode": "min",
        "value": 4.0,
        "epoch": 2,
    }

    # The process is killed; a new one resumes at epoch 3 with other weights.
    again = callbacks.BestGeneratorCheckpoint(path)
    again.set_model(types.SimpleNamespace(generator=_generator(1)))
    again.on_train_begin()
    assert again.best == 4.0 and again.best_epoch == 2
    again.on_epoch_end(2, {"val_mse": 4.5})  # worse: kept
    assert path.read_bytes() == saved
    assert callbacks.read_best(tmp_path)["epoch"] == 2
    again.on_epoch_end(3, {"val_mse": 3.0})  # better: replaced
    assert path.read_bytes() != saved
    assert callbacks.read_best(tmp_path)["epoch"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json", "generator.keras"]  # no temporaries


def test_best_generator_is_never_saved_with_non_finite_weights(tmp_path):
    generator = _generator(0)
    generator.weights[0].assign(np.full(generator.weights[0].shape, np.nan, "float32"))
    checkpoint = callbacks.BestGeneratorCheckpoint(tmp_path / "generator.keras")
    checkpoint.set_model(types.SimpleNamespace(generator=generator))
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"val_mse": 1.0})
    assert not any(tmp_path.iterdir())


def test_best_generator_ignores_the_epochs_before_start_epoch(tmp_path):
    """The content pre-training's better MSE does not make its generator the run's."""
    checkpoint = callbacks.BestGeneratorCheckpoint(tmp_path / "generator.keras", start_epoch=2)
    checkpoint.set_model(types.SimpleNamespace(generator=_generator(0)))
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"val_mse": 1.0})
    checkpoint.on_epoch_end(1, {"val_mse": 0.5})
    assert not any(tmp_path.iterdir())
    checkpoint.on_epoch_end(2, {"val_mse": 3.0})
    assert callbacks.read_best(tmp_path)["epoch"] == 3


def _history(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_history_log_drops_the_rows_of_epochs_done_again(tmp_path):
    path = tmp_path / "history.csv"
    log = callbacks.HistoryLog(path)
    for epoch in range(3):
        log.on_epoch_begin(epoch)
        log.on_epoch_end(epoch, {"g_loss": 0.5 - epoch / 10, "val_mse": np.float32(2.0)})
    # Killed after epoch 2's row, before its backup: the restart does epoch 2 again.
    resumed = callbacks.HistoryLog(path)
    resumed.on_epoch_begin(2)
    assert [row["epoch"] for row in _history(path)] == ["0", "1"]
    resumed.on_epoch_end(2, {"g_loss": 0.25, "val_mse": 1.5})
    rows = _history(path)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert list(rows[0]) == ["epoch", "g_loss", "val_mse"] and rows[2]["g_loss"] == "0.25"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]
