"""Two processes at once: every command that writes a folder (or a file) holds its lock; a second writer stops at once.

Each test has another process take the lock, then runs the command: exit 2, one line
"<folder> is in use by process N since T", before any input is read or model loaded, and
the folder as it was. Once that process is gone its lock is taken over, with a note.
"""

import contextlib
import json
import os
import subprocess
import sys

import pytest
from test_export import make_fit_folder
from test_faults_files import command_env, one_error_line
from tiny_runs import write_config

from hsr_keras import evaluate, export, fit, predict, tune
from hsr_keras.evaluation import engine
from hsr_keras.serving import prediction
from hsr_keras.serving import saved_model as serving
from tfrecords_builder import build as build_module
from tfrecords_builder import download
from tfrecords_builder.contract import files

HOLD = (
    "import sys, time\n"
    "from tfrecords_builder.contract import files\n"
    "folder, name = sys.argv[1:]\n"
    "files.FolderLock(folder, command='a test', name=name).acquire()\n"
    "print('held', flush=True)\n"
    "time.sleep(300)\n"
)


@contextlib.contextmanager
def held(folder, name=files.LOCK_NAME):
    """Another process holds the lock of `folder` (or, with `name`, of one file in it); yields its pid.

    The process is killed afterwards: its lock stays behind, as a crashed writer's would.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), name], stdout=subprocess.PIPE, env=command_env(), text=True
    )
    try:
        assert process.stdout.readline().strip() == "held"
        yield process.pid
    finally:
        process.kill()
        process.wait()


def refused(capsys, folder, pid):
    line = one_error_line(capsys.readouterr().err)
    since = files.read_lock(folder)["since"]
    assert f"{folder} is in use by process {pid} since {since}: wait for it to finish" in line, line
    return line


def test_a_second_build_waits_for_nothing_and_the_first_is_untouched(tmp_path, capsys, monkeypatch):
    """The issue's case: two builds on one --out shared temporaries and left a manifest of other shards."""
    from era5_samples import REGION_ARGS, SPLIT_ARGS, hourly, write_era5

    era5 = write_era5(tmp_path / "era5.nc", hourly("2020-01-01", 4))
    out = tmp_path / "out"
    argv = [str(era5), "--out", str(out), *REGION_ARGS, *SPLIT_ARGS, "--quiet"]
    with held(out) as pid:
        with monkeypatch.context() as patch:
            patch.setattr(build_module, "open_source", pytest.fail)  # refused before any input is read
            assert build_module.main(argv) == 2
        refused(capsys, out, pid)
        assert sorted(p.name for p in out.iterdir()) == [files.LOCK_NAME]
    assert build_module.main(argv[:-1]) == 0  # the holder is gone: its lock is taken over (not --quiet: the note)
    assert f"note: took over the lock of {out} from process {pid}, which is gone" in capsys.readouterr().err
    assert not (out / files.LOCK_NAME).exists() and (out / "manifest.json").is_file()


def test_a_second_fit_on_the_same_out_is_refused_before_it_loads_anything(small_build, tmp_path, capsys, monkeypatch):
    """The issue's case: both exited 0, and one reported a generator it did not train."""
    from hsr_keras.training import trainer

    out = tmp_path / "run"
    out.mkdir()
    monkeypatch.setattr(trainer, "train", pytest.fail)
    with held(out) as pid:
        assert (
            fit.main(
                [
                    "--data",
                    str(small_build),
                    "--config",
                    str(write_config(tmp_path / "c.json")),
                    "--out",
                    str(out),
                    "--quiet",
                ]
            )
            == 2
        )
        refused(capsys, out, pid)
    assert sorted(p.name for p in out.iterdir()) == [files.LOCK_NAME]  # the dead holder's


def test_a_second_search_on_the_same_out_is_refused(search_build, search_base_file, tmp_path, capsys):
    out = tmp_path / "search"
    with held(out) as pid:
        argv = ["--data", str(search_build), "--config", str(search_base_file), "--out", str(out), "--quiet"]
        assert tune.main(argv) == 2
        refused(capsys, out, pid)
        assert sorted(p.name for p in out.iterdir()) == [files.LOCK_NAME]


def test_a_second_export_into_the_same_model_folder_is_refused(tmp_path, capsys, monkeypatch):
    fit_folder = make_fit_folder(tmp_path / "fit")
    base = tmp_path / "saved_models" / "hsr"
    monkeypatch.setattr(serving.model_files, "load_generator", pytest.fail)
    with held(base) as pid:
        assert export.main([str(fit_folder), "--out", str(tmp_path / "saved_models"), "--quiet"]) == 2
        refused(capsys, base, pid)
        assert sorted(p.name for p in base.iterdir()) == [files.LOCK_NAME]


def test_predicts_into_one_file_exclude_each_other_and_not_into_other_files(predict_setup, tmp_path, capsys):
    """The issue's case: two predicts to one output silently replaced each other."""
    out = tmp_path / "hr.nc"
    argv = [str(predict_setup["lr"]), "--model", str(predict_setup["fit"]), "--quiet"]
    lock_name = f".{out.name}.lock"
    with held(tmp_path, lock_name) as pid:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(prediction, "resolve_model", pytest.fail)
            assert predict.main([*argv, "--out", str(out)]) == 2
        line = one_error_line(capsys.readouterr().err)
        since = files.read_lock(tmp_path / lock_name)["since"]
        assert f"{out} is in use by process {pid} since {since}" in line
        assert predict.main([*argv, "--out", str(tmp_path / "other.nc")]) == 0  # another file of the folder
    assert predict.main([*argv, "--out", str(out)]) == 0
    assert out.is_file() and not (tmp_path / lock_name).exists()
    assert predict.main([*argv, "--out", str(out)]) == 2  # now it exists: --overwrite replaces it
    assert "exists: pass --overwrite to replace it" in one_error_line(capsys.readouterr().err)


def test_a_second_evaluation_into_the_same_out_is_refused(sharded_build, tmp_path, capsys, monkeypatch):
    out = tmp_path / "eval"
    monkeypatch.setattr(engine, "evaluate_methods", pytest.fail)
    with held(out) as pid:
        argv = ["--data", str(sharded_build), "--baselines", "bicubic", "--out", str(out), "--quiet"]
        assert evaluate.main(argv) == 2
        refused(capsys, out, pid)


def test_a_second_download_into_the_same_folder_is_refused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "era5"
    monkeypatch.setattr(download, "_client", lambda: object())  # never asked: the lock comes first
    with held(out) as pid:
        assert download.main(["--out", str(out), "--start", "2019-01-01", "--end", "2019-01-01"]) == 2
        refused(capsys, out, pid)


def test_a_lock_left_unreadable_by_a_killed_writer_is_taken_over(tmp_path, caplog):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / files.LOCK_NAME).write_text("")  # created, never filled
    old = os.stat(folder).st_mtime - 60
    os.utime(folder / files.LOCK_NAME, (old, old))
    with caplog.at_level("INFO", logger="tfrecords_builder"), files.FolderLock(folder):
        assert files.read_lock(folder)["pid"] == os.getpid()
    assert "took over the unreadable lock" in caplog.text


def test_a_command_nested_in_another_shares_its_lock(tmp_path):
    """`fit` holds its folder's lock and calls `train`, which takes it again: the same process, one lock."""
    with files.FolderLock(tmp_path / "run") as outer:
        with files.FolderLock(tmp_path / "run"):
            assert json.loads((tmp_path / "run" / files.LOCK_NAME).read_text())["pid"] == os.getpid()
        assert outer.path.exists()  # the inner release leaves it to the outer
    assert not (tmp_path / "run").exists()
