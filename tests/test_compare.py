"""Tests of `python -m hsr_keras.compare`: training once, reusing runs, seed spread, configs and errors."""

import json

import numpy as np
import pytest
from tiny_build import read_csv

from hsr_keras import compare
from hsr_keras.models.provenance import code_version
from hsr_keras.training.config import PRESETS


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m hsr_keras.compare" in capsys.readouterr().out


def test_compare_trains_once_and_reuses(tiny, tmp_path, capsys):
    argv = [
        "--data",
        str(tiny["data"]),
        "--out",
        str(tmp_path),
        "--methods",
        "srcnn",
        "--epochs",
        "1",
        "--baselines",
        "bicubic",
        "--quiet",
    ]
    assert compare.main(argv) == 0
    out = capsys.readouterr().out
    assert "SRCNN" in out and "1/" in out and "Table 2" in out
    marker = tmp_path / "models" / "srcnn" / "trained.json"
    assert json.loads(marker.read_text())["config"]["architecture"] == "srcnn"
    stamp = marker.stat().st_mtime_ns
    results = json.loads((tmp_path / "evaluation" / "results.json").read_text())
    assert list(results["scores"]) == ["Bicubic (aligned)", "SRCNN"]
    assert compare.main(argv[:-1]) == 0  # not quiet: says it reuses
    assert "reusing" in capsys.readouterr().out
    assert marker.stat().st_mtime_ns == stamp
    assert (tmp_path / "compare.md").is_file()
    assert json.loads(marker.read_text())["code"] == code_version()

    # A run from other code is reused, with a note; --retrain trains it again.
    info = json.loads(marker.read_text())
    info["code"] = {"package": "hsr-keras", "version": "0.0.1", "git_commit": "0" * 40, "git_dirty": False}
    marker.write_text(json.dumps(info))
    assert compare.main(argv[:-1]) == 0
    out = capsys.readouterr().out
    assert "reusing" in out and "trained by hsr-keras 0.0.1 at commit 0000000" in out
    assert compare.main(argv[:-1] + ["--retrain"]) == 0
    out = capsys.readouterr().out
    assert "--retrain: retraining" in out and "reusing" not in out
    assert json.loads(marker.read_text())["code"] == code_version()


def test_compare_seeds_spread(tiny, tmp_path, capsys):
    argv = [
        "--data",
        str(tiny["data"]),
        "--out",
        str(tmp_path),
        "--methods",
        "srcnn",
        "--epochs",
        "1",
        "--baselines",
        "bicubic",
        "--seeds",
        "3",
        "--quiet",
    ]
    assert compare.main(argv) == 0
    out = capsys.readouterr().out
    assert "Spread over 3 seeds" in out
    results = json.loads((tmp_path / "evaluation" / "results.json").read_text())
    assert list(results["scores"]) == ["Bicubic (aligned)", "SRCNN", "SRCNN (seed 1)", "SRCNN (seed 2)"]
    assert [t["seed"] for t in results["compare"]["timings"].values()] == [0, 1, 2]
    mse = np.array([results["scores"][m]["mse"] for m in ["SRCNN", "SRCNN (seed 1)", "SRCNN (seed 2)"]])
    assert len(set(mse.tolist())) == 3  # the seed reaches the training
    spread = results["compare"]["seed_spread"]["SRCNN"]
    assert spread["runs"] == 3
    assert spread["mse"]["mean"] == pytest.approx(mse.mean())
    assert spread["mse"]["std"] == pytest.approx(mse.std(ddof=1))
    bicubic = results["scores"]["Bicubic (aligned)"]["mse"]
    assert spread["bicubic_mse_ratio"]["mean"] == pytest.approx(np.mean(bicubic / mse))
    assert f"{mse.mean():.3f} +- {mse.std(ddof=1):.3f}" in out
    assert (tmp_path / "models" / "srcnn-seed2" / "trained.json").is_file()


def test_compare_seed_spread_counts_runs_ahead_of_bicubic():
    bicubic = {"mse": 10.0, "psnr": 20.0, "ssim": 0.5}
    report = {
        "methods": {
            "Bicubic (aligned)": bicubic,
            "M": {"mse": 8.0, "psnr": 21.0, "ssim": 0.6},
            "M (seed 1)": {"mse": 9.0, "psnr": 20.5, "ssim": 0.4},  # behind on SSIM
        }
    }
    spread = compare.seed_spread(report, {"M": ["M", "M (seed 1)"]})["M"]
    assert spread["ahead_of_bicubic"] == 1
    assert spread["psnr"] == {"mean": 20.75, "std": pytest.approx(np.std([21.0, 20.5], ddof=1))}
    assert spread["bicubic_mse_ratio"]["mean"] == pytest.approx((10 / 8 + 10 / 9) / 2)
    del report["methods"]["Bicubic (aligned)"]
    assert "ahead_of_bicubic" not in compare.seed_spread(report, {"M": ["M", "M (seed 1)"]})["M"]


def test_compare_seed_spread_adds_the_texture_scores_every_run_has():
    texture = {"power_near": 0.6, "power_mid": 0.75, "power_far": 0.7, "lattice": 0.9, "lattice_spread": 0.3}
    truth = {"lattice_truth": 1.0, "lattice_spread_truth": 0.05}
    report = {
        "methods": {
            "M": {"mse": 8.0, "psnr": 21.0, "ssim": 0.6, **texture, **truth},
            "M (seed 1)": {"mse": 9.0, "psnr": 20.5, "ssim": 0.4, **texture, "power_far": 0.9, **truth},
            "N": {"mse": 8.0, "psnr": 21.0, "ssim": 0.6},
            "N (seed 1)": {"mse": 9.0, "psnr": 20.5, "ssim": 0.4},
        }
    }
    spread = compare.seed_spread(report, {"M": ["M", "M (seed 1)"], "N": ["N", "N (seed 1)"]})
    assert spread["M"]["power_far"] == {"mean": pytest.approx(0.8), "std": pytest.approx(np.std([0.7, 0.9], ddof=1))}
    assert spread["M"]["truth"] == truth and "lattice" not in spread["N"]
    text = compare.format_seed_spread(spread)
    assert "Texture (truth: power 1, lattice_truth 1.000, lattice_spread_truth 0.050)" in text
    assert "0.800 +- 0.141" in text and text.count("\nN ") == 1  # N has no texture row


def test_compare_rejects_unknown_method(tmp_path, capsys):
    assert compare.main(["--methods", "srcnn,esrgan", "--out", str(tmp_path)]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert compare.main(["--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err


def test_compare_configs():
    configs = {key: compare.run_config(key) for key in compare.RUNS}
    assert configs["srcnn"].architecture == "srcnn" and configs["srcnn"].loss == "content"
    assert configs["gan"].loss == "gan" and configs["gan"].architecture == "paper"
    assert configs["srgan"].architecture == "srgan" and configs["srgan"].loss == "gan"
    assert configs["wgan-gp"].loss == "wgan-gp" and configs["wgan-gp"].use_cbam and configs["wgan-gp"].use_residual
    assert not configs["no-cbam"].use_cbam and not configs["no-resnet"].use_residual
    assert compare.run_config("gan", epochs=2).epochs == 2
    assert configs["content"].loss == "content" and configs["content"].architecture == "paper"
    assert (
        configs["pretrain"].loss == "wgan-gp" and configs["pretrain"].pretrain_epochs == configs["pretrain"].epochs // 2
    )
    assert compare.run_config("pretrain", epochs=3).pretrain_epochs == 1
    assert [key for key, c in configs.items() if c.pretrain_epochs] == ["pretrain"]
    # An ensemble preset's networks and schedule, one member and the paper's noise: the paper's comparison.
    ensemble = dict(noise="texture", noise_stddev=1.0, ensemble_size=4, loss="content")
    weights = {"lattice": 0.03, "content": 0.0, "crps": 1.0, "spectral": 0.1}
    single = compare.single_member(PRESETS["demo"].replace(**ensemble, loss_weights=weights).to_dict())
    assert (single["ensemble_size"], single["noise"], single["noise_stddev"]) == (1, "stem", 0.1)
    assert single["loss_weights"] == {"lattice": 0.03} and single["filters"] == PRESETS["demo"].filters


@pytest.mark.slow
def test_compare_content_and_pretrain_rows(tiny, tmp_path, capsys):
    argv = ["--data", str(tiny["data"]), "--out", str(tmp_path), "--methods", "pretrain,content", "--epochs", "2"]
    argv += ["--baselines", "bicubic", "--seeds", "2", "--quiet"]
    assert compare.main(argv) == 0
    out = capsys.readouterr().out
    labels = ["Content only", "Content only (seed 1)", "Pre-trained WGAN-GP", "Pre-trained WGAN-GP (seed 1)"]
    results = json.loads((tmp_path / "evaluation" / "results.json").read_text())
    assert list(results["scores"]) == ["Bicubic (aligned)", *labels]  # the table's order, not --methods'
    assert all(label in out for label in labels)
    spread = results["compare"]["seed_spread"]
    assert {label: spread[label]["runs"] for label in spread} == {"Content only": 2, "Pre-trained WGAN-GP": 2}

    models = tmp_path / "models"
    content = json.loads((models / "content" / "trained.json").read_text())["config"]
    pretrain = json.loads((models / "pretrain-seed1" / "trained.json").read_text())["config"]
    assert (content["architecture"], content["loss"], content["pretrain_epochs"]) == ("paper", "content", 0)
    assert (pretrain["architecture"], pretrain["loss"], pretrain["pretrain_epochs"]) == ("paper", "wgan-gp", 1)
    assert [row.get("d_loss", "") != "" for row in read_csv(models / "pretrain" / "history.csv")] == [False, True]
    assert "d_loss" not in read_csv(models / "content" / "history.csv")[0]

    # Run again: every run is reused, one recorded before pretrain_epochs existed too (as 0).
    marker = models / "content" / "trained.json"
    info = json.loads(marker.read_text())
    del info["config"]["pretrain_epochs"]
    marker.write_text(json.dumps(info))
    stamps = {run: (models / run / "generator.keras").stat().st_mtime_ns for run in ("content", "pretrain")}
    assert compare.main(argv[:-1]) == 0  # not quiet: says it reuses
    assert capsys.readouterr().out.count("reusing") == 4
    assert {run: (models / run / "generator.keras").stat().st_mtime_ns for run in stamps} == stamps


def test_compare_refuses_pretrain_with_one_epoch(tiny, tmp_path, capsys):
    argv = ["--data", str(tiny["data"]), "--out", str(tmp_path), "--methods", "srcnn,pretrain", "--epochs", "1"]
    assert compare.main(argv + ["--quiet"]) == 2
    assert "method pretrain pre-trains for half the epochs" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()  # refused before any training
