"""A disk that fills: one line naming the folder (exit 2), no traceback, nothing half made, the earlier output intact.

Two kinds of test: a real small disk (a tmpfs, `small_disk`: root only, skipped elsewhere)
and an injected failing writer, which runs everywhere. Fit, stopped for space, resumes with
the same command once space is freed.
"""

import errno
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import fill
from era5_samples import REGION_ARGS, SPLIT_ARGS, hourly, write_era5
from test_build import digests
from test_export import make_fit_folder
from test_faults_files import one_error_line
from tiny_runs import history_rows, write_config

from hsr_keras import export, fit, predict
from hsr_keras.models.model_files import existing_versions
from hsr_keras.serving import prediction
from hsr_keras.serving import saved_model as serving
from hsr_keras.training.callbacks import WholeBackup
from tfrecords_builder import download
from tfrecords_builder.build import main as build_main
from tfrecords_builder.contract import console, files
from tfrecords_builder.contract import manifest as manifest_module
from tfrecords_builder.writer import ShardWriter

NO_SPACE = os.strerror(errno.ENOSPC)


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, NO_SPACE)


def tf_no_space(path="shard"):
    return tf.errors.ResourceExhaustedError(None, None, f"{path}; {NO_SPACE}")


@pytest.fixture
def era5(tmp_path):
    return write_era5(tmp_path / "era5.nc", hourly("2020-01-01", 4))


def build(era5, out, *extra):
    return build_main([str(era5), "--out", str(out), *REGION_ARGS, *SPLIT_ARGS, "--quiet", *extra])


# ----------------------------------------------------------------------------- build


class FullDiskWriter:
    """TensorFlow's TFRecordWriter on a full disk: the write fails, and so does the close (GZIP's last block)."""

    def __init__(self, path, options=None):
        self.path = path

    def write(self, record):
        raise tf_no_space(self.path)

    def close(self):
        raise tf_no_space(self.path)


def test_a_close_that_fails_after_a_write_does_not_hide_it(tmp_path, era5, capsys, monkeypatch):
    """The issue's case: ResourceExhaustedError from __exit__ replaced the clean error; an empty --out was left."""
    monkeypatch.setattr(tf.io, "TFRecordWriter", FullDiskWriter)
    with pytest.raises(ValueError, match="the block's error"), ShardWriter(tmp_path / "x.gz"):
        raise ValueError("the block's error")
    out = tmp_path / "out"
    assert build(era5, out) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: no space left in {out} (") and "MiB needed at most" in line
    assert not out.exists()


def test_a_build_on_a_small_disk(era5, small_disk, capsys):
    disk = small_disk("24k")
    assert build(era5, disk / "out", "--compression", "store") == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"no space left in {disk / 'out'} (" in line and "free some space" in line
    assert list(disk.iterdir()) == []  # no folder, no temporary


def test_a_rebuild_that_fills_the_disk_keeps_the_earlier_build(era5, small_disk, capsys):
    disk = small_disk("4m")
    out = disk / "out"
    assert build(era5, out) == 0
    before = digests(out)
    filler = fill(disk, leave=20_000)
    assert build(era5, out, "--compression", "store") == 2
    assert "no space left in" in one_error_line(capsys.readouterr().err)
    assert digests(out) == before and sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    filler.unlink()  # space freed: the same command works
    assert build(era5, out, "--compression", "store") == 0


def test_a_manifest_that_cannot_be_written_leaves_the_earlier_build(era5, tmp_path, capsys, monkeypatch):
    """The manifest is written before the earlier build is touched: a disk full then costs nothing."""
    out = tmp_path / "out"
    assert build(era5, out) == 0
    before = digests(out)
    monkeypatch.setattr(manifest_module, "readable_json", no_space)
    assert build(era5, out, "--shard-mb", "0.01") == 2
    assert one_error_line(capsys.readouterr().err).startswith(f"error: no space left in {out} (")
    assert digests(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # no temporary, no lock


# ----------------------------------------------------------------------------- fit


@pytest.fixture
def tiny_config(tmp_path):
    return write_config(tmp_path / "tiny.json", epochs=2, plot_every=100)


def test_fit_stopped_for_space_resumes_once_space_is_freed(small_build, tiny_config, tmp_path, capsys, monkeypatch):
    """The issue's case: a half-written backup/latest.weights.h5 made every resume fail; the process could crash.

    Here the second epoch's backup fails halfway (h5py on a disk another process filled): the
    first epoch's backup stays whole, and the same command resumes from it once space is freed.
    """
    out = tmp_path / "run"
    save_weights = keras.Model.save_weights
    calls = []

    def half_then_full(self, filepath, *args, **kwargs):
        calls.append(filepath)
        if len(calls) < 2:
            return save_weights(self, filepath, *args, **kwargs)
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + bytes(100))
        no_space()

    monkeypatch.setattr(keras.Model, "save_weights", half_then_full)
    argv = ["--data", str(small_build), "--config", str(tiny_config), "--out", str(out), "--quiet"]
    assert fit.main(argv) == 2
    assert one_error_line(capsys.readouterr().err).startswith(f"error: no space left in {out / 'backup'} (")
    assert json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    kept = ["best.json", "generator.keras", "latest.weights.h5", "training_metadata.json"]  # no temporaries
    assert sorted(p.name for p in (out / "backup").iterdir()) == kept
    monkeypatch.undo()  # space freed
    assert fit.main(argv) == 0
    assert [row["epoch"] for row in history_rows(out)] == ["0", "1"]  # epoch 2 alone was trained again
    assert not (out / "backup").exists()


def test_a_backup_without_room_is_not_begun(tmp_path, monkeypatch):
    """h5py does not fail cleanly on a full disk (it exits 139): the room is checked before it writes."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    backup = tmp_path / "backup"
    monkeypatch.setattr(files, "free_bytes", lambda folder: 1000 if "backup" in str(folder) else 10**12)
    data = np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32")
    with pytest.raises(
        files.DiskFull, match=r"no space left in .*backup \(0.0 MiB free, 0.3 MiB needed for the backup\)"
    ):
        model.fit(*data, epochs=1, verbose=0, callbacks=[WholeBackup(str(backup))])
    assert list(backup.iterdir()) == []


@pytest.mark.slow
def test_fit_on_a_small_disk_resumes_once_space_is_freed(small_build, tiny_config, small_disk, capsys):
    disk = small_disk("20m")
    filler = fill(disk, leave=600_000)  # room for the first files, not for every epoch's
    out = disk / "run"
    argv = ["--data", str(small_build), "--config", str(tiny_config), "--out", str(out), "--quiet"]
    assert fit.main(argv) == 2
    assert "no space left in" in one_error_line(capsys.readouterr().err)
    filler.unlink()
    assert fit.main(argv) == 0
    assert [row["epoch"] for row in history_rows(out)] == ["0", "1"]


# ----------------------------------------------------------------------------- export, predict, download


def test_export_on_a_full_disk_publishes_nothing(tmp_path, capsys, monkeypatch):
    fit_folder = make_fit_folder(tmp_path / "fit")
    base = tmp_path / "saved_models" / "hsr"

    def full(model, folder, info):
        (folder / "variables").mkdir(parents=True)
        raise tf_no_space(folder / "variables" / "variables.data-00000-of-00001")

    monkeypatch.setattr(serving, "save_servable", full)
    assert export.main([str(fit_folder), "--out", str(tmp_path / "saved_models"), "--quiet"]) == 2
    assert one_error_line(capsys.readouterr().err).startswith(f"error: no space left in {base} (")
    assert existing_versions(base) == [] and not base.exists()  # made for the export, removed with it


def test_predict_on_a_small_disk(predict_setup, small_disk, capsys):
    disk = small_disk("20k")
    argv = [str(predict_setup["lr"]), "--model", str(predict_setup["fit"]), "--out", str(disk / "hr.nc"), "--quiet"]
    assert predict.main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: no space left in {disk} (") and "MiB needed at most)" in line
    assert list(disk.iterdir()) == []


def test_predict_when_netcdf_does_not_say_the_disk_is_full(predict_setup, tmp_path, capsys, monkeypatch):
    """netCDF4 reports a full disk as 'NetCDF: HDF error': a folder left with no space says what it was."""

    def hdf_error(*args, **kwargs):
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(prediction, "_fill", hdf_error)
    monkeypatch.setattr(files, "free_bytes", lambda folder: 0)
    argv = [str(predict_setup["lr"]), "--model", str(predict_setup["fit"]), "--out", str(tmp_path / "hr.nc")]
    assert predict.main([*argv, "--quiet"]) == 2
    assert one_error_line(capsys.readouterr().err).startswith(f"error: no space left in {tmp_path} (0.0 MiB free")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_not_retried_by_download(tmp_path, capsys, monkeypatch):
    class FullDisk:
        calls = 0

        def retrieve(self, dataset, request, target):
            FullDisk.calls += 1
            no_space()

    monkeypatch.setattr(download, "_client", FullDisk)
    out = tmp_path / "era5"
    assert download.main(["--out", str(out), "--start", "2019-01-01", "--end", "2019-01-01"]) == 2
    assert one_error_line(capsys.readouterr().err).startswith(f"error: no space left in {out} (")
    assert FullDisk.calls == 1 and not out.exists()


def test_a_full_disk_in_a_library_error_is_one_line(capsys):
    """TensorFlow and h5py report a full disk in their own error types: still exit 2, one line, no traceback."""

    def body(argv):
        raise tf_no_space("/data/out/x")

    assert console.run_command(body, []) == 2
    assert one_error_line(capsys.readouterr().err) == f"error: the disk is full: /data/out/x; {NO_SPACE}"
    assert np.isfinite(files.free_bytes("/")) and files.is_disk_full(OSError(errno.EDQUOT, "quota"))
