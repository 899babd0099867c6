"""`python -m hsr_keras.fit` end to end on small synthetic builds."""

import json

import numpy as np
import pytest
from tiny_runs import history_rows, write_config

from hsr_keras import fit
from hsr_keras.training.config import load_config


def test_fit_writes_every_output(small_build, tmp_path, capsys):
    out = tmp_path / "run"
    config = write_config(tmp_path / "tiny.json")
    code = fit.main(["--data", str(small_build), "--config", str(config), "--out", str(out), "--quiet"])
    assert code == 0
    for name in ("config.json", "run.json", "generator.keras", "history.csv", "training_curves.png", "evaluation.json"):
        assert (out / name).exists(), name
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["epoch_0001.png", "epoch_0002.png"]
    assert any((out / "logs").rglob("events.out.tfevents*"))
    saved = load_config(out / "config.json", preset="paper")
    assert saved.filters == 8 and saved.epochs == 2
    assert json.loads((out / "run.json").read_text())["data"] == str(small_build.resolve())
    rows = history_rows(out)
    assert [r["epoch"] for r in rows] == ["0", "1"]
    report = json.loads((out / "evaluation.json").read_text())
    assert set(report["methods"]) == {"model", "bicubic (aligned)"}
    printed = capsys.readouterr().out
    assert "bicubic (aligned)" in printed and "MSE ratio" in printed
    # the reported model MSE is the saved generator's MSE on the validation split
    from hsr_keras.models.model_files import load_generator
    from hsr_keras.training.data import load_split

    lr, hr, _ = load_split(small_build, "val")
    pred = load_generator(out / "generator.keras").predict(lr[..., None], verbose=0)[..., 0]
    np.testing.assert_allclose(report["methods"]["model"]["mse"], np.mean((pred - hr) ** 2), rtol=1e-3)


def test_mirrored_strategy_run(small_build, tmp_path):
    out = tmp_path / "run"
    config = write_config(tmp_path / "tiny.json", epochs=1)
    code = fit.main(
        ["--data", str(small_build), "--config", str(config), "--out", str(out), "--strategy", "mirrored", "--quiet"]
    )
    assert code == 0
    rows = history_rows(out)
    assert np.isfinite(float(rows[0]["val_mse"]))


def test_help_documents_pretraining(capsys):
    with pytest.raises(SystemExit):
        fit.main(["--help"])
    assert "pretrain_epochs" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "{missing}"], "no manifest.json"),
        (["--data", "{build}", "--config", "{bad}"], "loss must be one of"),
        (["--data", "{build}", "--config", "{unknown}"], "unknown config field"),
        (["--data", "{build}", "--config", "{missing}"], "does not exist"),
        (["--data", "{build}", "--config", "{no_members}"], "ensemble_size must be >= 1. Received: ensemble_size=0"),
        (["--data", "{build}", "--config", "{crps_alone}"], "ensemble_size must be >= 2 for the crps loss term"),
        (["--data", "{build}", "--config", "{too_many}"], "ensemble_size=100000 needs about"),
    ],
)
def test_clear_errors(small_build, tmp_path, capsys, argv, message):
    paths = {
        "missing": tmp_path / "nothing",
        "build": small_build,
        "bad": write_config(tmp_path / "bad.json", loss="hinge"),
        "unknown": write_config(tmp_path / "unknown.json", filterz=3),
        "no_members": write_config(tmp_path / "zero.json", ensemble_size=0),
        "crps_alone": write_config(tmp_path / "crps.json", loss_weights={"crps": 1.0}),
        # 100000 members of the small build's fields need terabytes: refused before anything is written
        "too_many": write_config(tmp_path / "many.json", ensemble_size=100000, noise="texture"),
    }
    argv = [a.format(**paths) for a in argv] + ["--out", str(tmp_path / "out"), "--quiet"]
    assert fit.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_demo_lowers_val_l1_and_beats_bicubic(tmp_path, capsys):
    # The README's main job: `python -m hsr_keras.fit` with no data, end to end.
    assert fit.main(["--out", str(tmp_path), "--quiet"]) == 0
    assert "MSE ratio bicubic / model" in capsys.readouterr().out
    l1 = [float(row["val_content_loss"]) for row in history_rows(tmp_path)]
    assert len(l1) == 10 and l1[-1] < l1[0]
    report = json.loads((tmp_path / "evaluation.json").read_text())
    model, bicubic = report["methods"]["model"], report["methods"]["bicubic (aligned)"]
    assert model["mse"] < bicubic["mse"]
    assert model["psnr"] > bicubic["psnr"]
    assert model["ssim"] > bicubic["ssim"]
