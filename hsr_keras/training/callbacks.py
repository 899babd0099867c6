"""Training callbacks: stop on a non-finite loss, keep the best generator, log the history, draw samples, back up.

Every file they write is published whole (`tfrecords_builder.contract.files`), so a run
killed at any moment, or stopped by a full disk, leaves each file whole: the old one or the new one.
"""

import csv
import json
import math
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from hsr_keras.models.model_files import save_generator
from hsr_keras.scoring.plots import plot_sample_maps
from hsr_keras.training.run_folder import BEST_RECORD, TrainingError, read_best
from tfrecords_builder.contract import files
from tfrecords_builder.contract.console import one_line


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite: the run stopped there. Not bad input: the command exits with 1.

    `epoch` counts from 1 (as Keras' progress bar does); `step` is the batch within the epoch,
    from 1, or None when a validation loss was the first non-finite value; `values` holds the
    non-finite logs.
    """

    def __init__(self, epoch, step, values):
        self.epoch, self.step, self.values = epoch, step, dict(values)
        where = f"epoch {epoch}, step {step}" if step is not None else f"epoch {epoch} (validation)"
        shown = ", ".join(f"{name} = {value}" for name, value in self.values.items())
        super().__init__(f"training diverged at {where}: {shown}")


def non_finite(logs, allow_infinite_psnr=False):
    """The NaN or infinite numbers among `logs` (a PSNR of +inf, an exact match, is allowed on request)."""
    found = {}
    for name, value in (logs or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number) or (allow_infinite_psnr and name.endswith("psnr") and number == math.inf):
            continue
        found[name] = number
    return found


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop at the first NaN or infinite value among ALL the model's logs, at every batch.

    Keras' `TerminateOnNaN` reads `logs["loss"]` only, which `SuperResolutionGAN` does not
    report (it logs g_loss, d_loss, content_loss, gradient_penalty, ...). This checks every
    value after each training batch, and the validation values at the end of each epoch.

    With `raise_error=True` it raises `TrainingDiverged` at once: put it FIRST among the
    callbacks, so that the diverged epoch reaches none of the others (no backup, history row
    or checkpoint of a NaN model). With `raise_error=False` it sets `model.stop_training`
    and records the values in `diverged` (the epoch still ends: what `tune` wants, whose
    trials score non-finite epochs as their worst).
    """

    def __init__(self, raise_error=True):
        super().__init__()
        self.raise_error = raise_error
        self.epoch = 0
        self.diverged = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = non_finite(logs)
        if bad:
            self._stop(TrainingDiverged(self.epoch + 1, batch + 1, bad))

    def on_epoch_end(self, epoch, logs=None):
        bad = non_finite({k: v for k, v in (logs or {}).items() if k.startswith("val_")}, allow_infinite_psnr=True)
        if bad and self.diverged is None:
            self._stop(TrainingDiverged(epoch + 1, None, bad))

    def _stop(self, error):
        if self.raise_error:
            raise error
        if self.diverged is None:
            self.diverged = error
        self.model.stop_training = True


class BestGeneratorCheckpoint(keras.callbacks.Callback):
    """Save the generator (the part users deploy) as `.keras` whenever `monitor` improves.

    What the saved generator scored is kept beside it in `best.json` (monitor, mode, value,
    epoch counted from 1), written after the generator; a run resumed after a kill reads it
    back, so the first epoch after the restart replaces the generator only if it is better.
    A generator with non-finite weights is never saved. Epochs before `start_epoch` (from 0)
    are not candidates: a run that pre-trains on the content loss alone delivers a fine-tuned
    generator, not the content model its lower MSE would often pick.
    """

    def __init__(self, path, monitor="val_mse", mode="min", start_epoch=0):
        super().__init__()
        self.path = Path(path)
        self.start_epoch = start_epoch
        self.record = self.path.with_name(BEST_RECORD)
        self.monitor = monitor
        self.mode = mode
        self.sign = 1.0 if mode == "min" else -1.0
        self.best = np.inf
        self.best_epoch = None

    def on_train_begin(self, logs=None):
        record = read_best(self.path.parent)
        if (
            record is not None
            and self.path.is_file()
            and (record.get("monitor"), record.get("mode")) == (self.monitor, self.mode)
        ):
            self.best = self.sign * float(record["value"])
            self.best_epoch = record.get("epoch")

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if epoch < self.start_epoch or value is None or not np.isfinite(value) or not self.sign * value < self.best:
            return
        if not all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in self.model.generator.weights):
            return
        save_generator(self.model.generator, self.path)
        self.best, self.best_epoch = self.sign * float(value), epoch + 1
        record = {"monitor": self.monitor, "mode": self.mode, "value": float(value), "epoch": epoch + 1}
        files.write_text(self.record, json.dumps(record, indent=1) + "\n")


class HistoryLog(keras.callbacks.Callback):
    """history.csv: one row per finished epoch (column `epoch` from 0, then the logs sorted by name).

    Like Keras' `CSVLogger` in append mode, but a resumed run drops the rows of the epochs it
    does again (those from the first epoch it starts), so no epoch appears twice, and every
    write replaces the file atomically.
    """

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)
        self.trimmed = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self.trimmed:  # the first epoch of this fit: rows from it on are stale
            self.trimmed = True
            rows = self._rows()
            kept = [row for row in rows if _epoch_of(row) < epoch]
            if len(kept) != len(rows):
                self._write(kept)

    def on_epoch_end(self, epoch, logs=None):
        rows = [row for row in self._rows() if _epoch_of(row) < epoch]
        rows.append({"epoch": str(epoch), **{k: _cell(v) for k, v in (logs or {}).items()}})
        self._write(rows)

    def _rows(self):
        if not self.path.is_file():
            return []
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))

    def _write(self, rows):
        names = sorted({name for row in rows for name in row} - {"epoch"})
        with files.publishing(self.path) as temporary, open(temporary, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["epoch", *names], restval="")
            writer.writeheader()
            writer.writerows(rows)


def _epoch_of(row):
    try:
        return int(row.get("epoch"))
    except (TypeError, ValueError):
        return -1


def _cell(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


class SamplePlots(keras.callbacks.Callback):
    """Every `every` epochs, a PNG of LR / truth / prediction / error for fixed validation days.

    `extras`: the days' extra inputs by name (`hsr_keras.training.data.load_extras`) for a
    generator that takes them.
    """

    def __init__(self, lr, hr, time, manifest, folder, every=10, step=0, extras=None):
        super().__init__()
        self.lr = lr
        self.extras = extras or {}
        self.hr = hr
        self.time = time
        self.manifest = manifest
        self.folder = Path(folder)
        self.every = max(int(every), 1)
        self.step = step

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        inputs = {"lr": self.lr[..., None], **self.extras} if self.extras else self.lr[..., None]
        pred = keras.ops.convert_to_numpy(self.model.generator(inputs, training=False))[..., 0]
        s = self.step
        stamps = ", ".join(str(t[s])[:16] for t in self.time)
        plot_sample_maps(
            self.lr[:, s],
            self.hr[:, s],
            {"model": pred[:, s].astype("float32")},
            self.manifest,
            self.folder / f"epoch_{epoch + 1:04d}.png",
            title=f"epoch {epoch + 1}: {stamps} UTC",
        )


class WholeBackup(keras.callbacks.BackupAndRestore):
    """Keras' `BackupAndRestore` whose backup is always the last whole epoch: what a run resumes from.

    Keras writes backup/latest.weights.h5 in place: a disk that fills while it writes leaves
    half a file (h5py may even crash the process), and every resume fails on it until the run
    is thrown away; its `double_checkpoint` copy is written in place too. Here an epoch's
    weights and its number go to a temporary folder beside them, after a check that the disk
    has room (h5py does not fail cleanly when it has not), and replace the previous ones only
    once both are written and synced. A backup that still cannot be read is one line.

    `best` names the run's best generator and its record: each backup keeps them as they were at
    that epoch (hard links when the file system has them), so that a resume can put them back
    (`run_folder.restore_best`).
    """

    def __init__(self, backup_dir, best=(), **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.best = [Path(path) for path in best]

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except Exception as err:  # h5py, JSON and Keras' own errors for a damaged or foreign backup
            raise TrainingError(
                f"cannot resume from {self.backup_dir} ({one_line(err)}): add --overwrite to train again from the start"
            ) from err

    def _save_model(self):
        folder = Path(self.backup_dir)
        weights, metadata = Path(self._weights_path), Path(self._training_metadata_path)
        needed = self._bytes_needed(weights)
        with files.reporting_full_disk(folder, needed, "needed for the backup"):
            folder.mkdir(parents=True, exist_ok=True)
            files.remove_stale(folder)
            files.check_space(folder, needed, "needed for the backup")
            staging = files.temporary_path(folder / "next")
            try:
                staging.mkdir()
                self.model.save_weights(str(staging / weights.name))
                record = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
                if self.best:
                    record["best_epoch"] = self._keep_best(staging)
                (staging / metadata.name).write_text(json.dumps(record))
                files.sync(staging)
                for path in [*sorted(set(staging.iterdir()) - {staging / metadata.name}), staging / metadata.name]:
                    os.replace(path, folder / path.name)  # the record last: it says which epoch the rest is
            finally:
                files.remove(staging)

    def _keep_best(self, staging):
        """Link (or copy) the best generator and its record into the backup; the epoch of that record, or None."""
        present = [path for path in self.best if path.is_file()]
        if len(present) < len(self.best):
            return None
        for path in present:
            try:
                os.link(path, staging / path.name)  # the run replaces these files, never rewrites them
            except OSError:
                shutil.copy2(path, staging / path.name)
        return (read_best(staging) or {}).get("epoch")

    def _bytes_needed(self, weights):
        """Room for one more backup: the last one's size, or the bytes of the variables and optimizer states, and a margin."""
        size = weights.stat().st_size if weights.is_file() else 0
        optimizers = [o for o in vars(self.model).values() if isinstance(o, keras.optimizers.Optimizer)]
        variables = [*self.model.variables, *(v for optimizer in optimizers for v in optimizer.variables)]
        total = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)
        return int(1.25 * max(size, total)) + 2**18  # HDF5 adds a little per variable
