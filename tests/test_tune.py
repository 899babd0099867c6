"""`python -m hsr_keras.tune` on a tiny build: a real search, resume, failed trials, errors."""

import csv
import json

import keras_tuner
import pytest
from tiny_runs import TINY_SEARCH

from hsr_keras import tune
from hsr_keras.training import search, search_space
from hsr_keras.training.config import load_config

SEARCH = ["--tuner", "random", "--max-trials", "2", "--epochs", "1", "--space", "small", "--quiet"]


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_search_writes_best_config_and_resumes(search_build, search_base_file, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data", str(search_build), "--config", str(search_base_file), "--out", str(out), *SEARCH]
    assert tune.main(argv) == 0
    printed = capsys.readouterr().out
    assert "best_config.json" in printed and "Best: trial" in printed

    rows = read_rows(out / "trials.csv")
    assert [row["trial"] for row in rows] == ["0", "1"]
    assert all(row["status"] == "COMPLETED" and float(row["val_content_loss"]) > 0 for row in rows)
    best = load_config(out / "best_config.json")
    assert best == load_config(out / "best_config.json", preset="paper")  # complete: no preset field used
    note = best.notes["tune"]
    winner = next(row for row in rows if row["trial"] == note["trial"])
    scores = [float(row["val_content_loss"]) for row in rows]
    assert float(winner["val_content_loss"]) == min(scores) == pytest.approx(note["score"])
    for name in search_space.SMALL_SPACE:  # tuned fields: the winning trial's values
        assert str(best.value(name)) == winner[name]
    for name, value in TINY_SEARCH.items():  # the rest: the base config's
        assert getattr(best, name) == value
    assert best.epochs == 1
    assert (out / "trials.png").stat().st_size > 0
    assert "| trial | status |" in (out / "trials.md").read_text()

    # The same command again resumes the finished search: no new trial, the same best config.
    before = (out / "best_config.json").read_text()
    assert tune.main(argv) == 0
    assert len(read_rows(out / "trials.csv")) == 2
    assert len(list((out / "tuner").glob("trial_*"))) == 2
    assert (out / "best_config.json").read_text() == before

    # Other settings do not silently mix with the stored trials.
    capsys.readouterr()
    assert tune.main([*argv, "--objective", "val_psnr"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_failed_trials_are_reported(search_build, search_base_file, tmp_path, capsys, monkeypatch):
    def diverge(self, hp, model, **kwargs):
        raise keras_tuner.errors.FailedTrialError("training diverged")

    monkeypatch.setattr(search.GANHyperModel, "fit", diverge)
    argv = ["--data", str(search_build), "--config", str(search_base_file), "--out", str(tmp_path), *SEARCH]
    assert tune.main(argv) == 1
    assert "no trial completed" in capsys.readouterr().err
    assert [row["status"] for row in read_rows(tmp_path / "trials.csv")] == ["FAILED", "FAILED"]
    assert not (tmp_path / "best_config.json").exists() and (tmp_path / "trials.png").exists()

    # KerasTuner gives up after 3 consecutive failures; the reports are still written.
    argv = [*argv, "--max-trials", "5"]
    assert tune.main(argv) == 1
    assert "consecutive failures" in capsys.readouterr().err
    assert len(read_rows(tmp_path / "trials.csv")) == 3


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tuner", "grid"], "unknown tuner 'grid'"),
        (["--objective", "val_loss"], "unknown objective 'val_loss'"),
        (["--max-trials", "0"], "--max-trials must be >= 1"),
        (["--space", "filters,lr"], "--space must be"),
    ],
)
def test_bad_options_exit_2_with_one_line(search_build, search_base_file, tmp_path, capsys, extra, message):
    argv = ["--data", str(search_build), "--config", str(search_base_file), "--out", str(tmp_path), "--quiet", *extra]
    assert tune.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_manifest_and_bad_config_exit_2(search_build, tmp_path, capsys):
    assert tune.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no manifest.json" in err and err.count("\n") == 1

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**TINY_SEARCH, "critic_steps": 0}))
    assert tune.main(["--data", str(search_build), "--config", str(bad), "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "critic_steps must be >= 1" in err and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bayesian", "hyperband"])
def test_other_tuners_run_a_search(search_build, search_base_file, tmp_path, name):
    argv = [
        "--data",
        str(search_build),
        "--config",
        str(search_base_file),
        "--out",
        str(tmp_path),
        "--tuner",
        name,
        "--max-trials",
        "2",
        "--epochs",
        "2",
        "--quiet",
    ]
    assert tune.main(argv) == 0
    best = load_config(tmp_path / "best_config.json", preset="demo")
    assert best.notes["tune"]["tuner"] == name
    rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert 1 <= len(rows) <= 2
