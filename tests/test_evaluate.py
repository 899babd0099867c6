"""Tests of `python -m hsr_keras.evaluate`: its files (tables, months, maps, ensembles), settings and errors."""

import json
import math

import pytest
from tiny_build import PAPER_COLUMNS, read_csv

from hsr_keras import evaluate
from hsr_keras.evaluation.engine import BASELINES
from hsr_keras.evaluation.reports import json_number
from hsr_keras.models.model_files import load_generator
from hsr_keras.models.networks import build_srcnn
from tfrecords_builder.contract.files import sha256_of

TEXTURE_COLUMNS = ["power_near", "power_mid", "power_far", "lattice", "lattice_truth"]


def run_cli(argv):
    return evaluate.main([str(a) for a in argv] + ["--quiet"])


@pytest.fixture(scope="module")
def cli_run(tiny):
    out = tiny["root"] / "out"
    argv = [
        "--data",
        tiny["data"],
        "--model",
        f"paper={tiny['paper']}",
        "--model",
        f"SRCNN={tiny['srcnn']}",
        "--out",
        out,
        "--samples",
        3,
        "--batch-size",
        3,
        "--maps",
        2,
    ]
    assert run_cli(argv) == 0
    return out


# ----------------------------------------------------------------------------- outputs


def test_cli_writes_every_file(cli_run):
    names = {"table.md", "table.csv", "monthly.csv", "monthly.png", "spectra.csv", "spectra.png", "results.json"}
    assert names <= {p.name for p in cli_run.iterdir()}
    assert sorted(p.name for p in (cli_run / "maps").iterdir()) == ["2019-01-30.png", "2019-02-02.png"]
    for png in list(cli_run.glob("*.png")) + list((cli_run / "maps").glob("*.png")):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((cli_run / "results.json").read_text())
    assert set(results["files"]) >= names | {"maps/2019-01-30.png"}
    table = (cli_run / "table.md").read_text()
    assert "PSNR (pooled): PSNR of the MSE pooled" in table and "per-frame PSNR" in table
    header = next(line for line in table.splitlines() if line.startswith("| method"))
    assert header.split(" | ")[1:7] == ["MSE", "MAE", "SSIM", "PSNR", "ACC", "TCC"]


def test_csv_numbers_equal_json(cli_run):
    results = json.loads((cli_run / "results.json").read_text())
    rows = read_csv(cli_run / "table.csv")
    expected = [label for label, _, _ in BASELINES.values()] + ["paper", "SRCNN"]
    assert [row["method"] for row in rows] == expected
    for row in rows:
        scores = results["scores"][row["method"]]
        for key, text in row.items():
            if key == "method" or text == "":
                continue
            a, b = float(text), float(json_number(scores[key]))
            assert (math.isnan(a) and math.isnan(b)) or a == b, (row["method"], key)
    for key in PAPER_COLUMNS + ["psnr_pooled", "bias", "acc_anomaly", "mse_ratio", *TEXTURE_COLUMNS]:
        assert all(row[key] != "" for row in rows)


def test_texture_scores_in_every_output(cli_run):
    """Band power and lattice for every method, the truth's lattice beside them, the bands in the caption."""
    results = json.loads((cli_run / "results.json").read_text())
    bands = {"power_near": [4, 10], "power_mid": [11, 16], "power_far": [21, 16]}  # 32 points, scale 4
    assert results["spectra"]["power_bands"] == bands
    caption = "near 4-10, mid 11-16, far none (above the highest wavenumber)"
    assert caption in results["table_caption"]
    table = (cli_run / "table.md").read_text()
    assert caption in table and "| lattice (truth) |" in table
    card = results["metric_card"]["metrics"]
    truth_lattice = {float(json_number(s["lattice_truth"])) for s in results["scores"].values()}
    assert len(truth_lattice) == 1  # the same days for every method
    for name, scores in results["scores"].items():
        assert set(TEXTURE_COLUMNS) <= set(scores) <= set(card) | {"mse_ratio"}, name
        assert 0 < float(json_number(scores["power_near"])) < 10
    monthly = read_csv(cli_run / "monthly.csv")
    assert all(row["lattice"] != "" and row["lattice_truth"] != "" for row in monthly)
    assert "power_near" not in monthly[0]  # scored over the split only


def test_results_record_the_settings(cli_run, tiny):
    results = json.loads((cli_run / "results.json").read_text())
    data = results["data"]
    assert data["split"] == "test" and data["days"] == 4 and data["months"] == ["2019-01", "2019-02"]
    assert data["manifest_sha256"] == sha256_of(tiny["data"] / "manifest.json")
    assert results["methods"]["paper"]["config"] == {"architecture": "paper", "filters": 8}
    assert results["methods"]["paper"]["stochastic"] is True
    assert results["methods"]["SRCNN"]["stochastic"] is False
    assert results["methods"]["Bicubic (aligned)"]["placement"] == "aligned"
    assert results["metric_card"]["metrics"]["psnr_pooled"]["units"] == "dB"
    assert results["command"][:3] == ["python", "-m", "hsr_keras.evaluate"] and "--samples" in results["command"]
    assert results["settings"]["samples"] == 3
    assert results["code_version"]["version"]
    assert results["reference"] == "Bicubic (aligned)"
    assert results["scores"]["Bicubic (aligned)"]["mse_ratio"] == 1.0


def test_ensemble_scores(cli_run):
    """A stochastic generator has spread; a deterministic one, and interpolation, spread 0 and CRPS == MAE."""
    results = json.loads((cli_run / "results.json").read_text())
    paper, srcnn = results["scores"]["paper"], results["scores"]["SRCNN"]
    bicubic = results["scores"]["Bicubic (aligned)"]
    assert paper["spread"] > 0 and paper["crps"] < paper["mae"] + 1e-9 and paper["spread_skill"] > 0
    for deterministic in (srcnn, bicubic):  # 3 identical members: the truth is below or above all of them
        assert deterministic["spread"] == 0.0 and deterministic["spread_skill"] == 0.0
        assert deterministic["crps"] == pytest.approx(deterministic["mae"], rel=1e-9, abs=1e-9)
        assert deterministic["rank_flatness"] >= 1 and deterministic["members"] == 3
    # Aligned bicubic keeps the LR values, 1 in 16 HR points at scale 4: there the truth ties with all
    # 3 members and its count is shared among the 4 ranks; elsewhere it is below or above all 3.
    assert bicubic["rank_histogram"][1:3] == pytest.approx([1 / 16 / 4] * 2, rel=1e-12)
    assert srcnn["rank_histogram"][1:3] == [0.0, 0.0]
    rows = {row["method"]: row for row in read_csv(cli_run / "table.csv")}
    assert (
        float(rows["Bicubic (aligned)"]["crps"]) == pytest.approx(bicubic["mae"])
        and float(rows["SRCNN"]["spread"]) == 0.0
    )
    assert "paper (members)" in results["spectra"]["methods"]
    assert {"member_power_near", "member_power_mid", "member_lattice"} <= set(paper)
    assert "rank_histograms.png" in results["files"] and "rank_histograms.csv" in results["files"]
    shares = [float(row["share"]) for row in read_csv(cli_run / "rank_histograms.csv") if row["method"] == "paper"]
    assert shares == pytest.approx(paper["rank_histogram"]) and sum(shares) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- errors and help


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "{root}/nowhere"], "no manifest.json"),
        (["--data", "{data}", "--model", "m={root}/missing.keras"], "no such model"),
        (["--data", "{data}", "--model", "m={root}"], "without generator.keras"),
        (["--data", "{data}", "--model", "m={root}/era5"], "without generator.keras"),
        (["--data", "{data}", "--baselines", "bicubic,spline"], "unknown baseline 'spline'"),
        (["--data", "{data}", "--split", "train2"], "split 'train2'"),
        (["--data", "{data}", "--baselines", "none"], "nothing to evaluate"),
        (["--data", "{data}", "--model", "={root}"], "NAME=PATH"),
        (["--data", "{data}", "--samples", "0"], "--samples must be >= 1"),
        (["--data", "{data}", "--samples", "100000000"], "--samples=100000000 needs about"),
    ],
)
def test_bad_inputs_exit_2(tiny, tmp_path, capsys, argv, message):
    argv = [a.format(root=tiny["root"], data=tiny["data"]) for a in argv] + ["--out", str(tmp_path / "out")]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_not_a_model_file_exits_2(tiny, tmp_path, capsys):
    bad = tmp_path / "broken.keras"
    bad.write_text("not a zip")
    assert run_cli(["--data", tiny["data"], "--model", f"m={bad}", "--out", tmp_path]) == 2
    assert "cannot load the generator" in capsys.readouterr().err


def test_wrong_scale_exits_2(tiny, tmp_path, capsys):
    path = tmp_path / "x8.keras"
    build_srcnn(scale=8, filters=(2, 2), kernel_sizes=(3, 3, 3)).save(path)
    assert run_cli(["--data", tiny["data"], "--model", f"m={path}", "--baselines", "none", "--out", tmp_path]) == 2
    assert "another scale" in capsys.readouterr().err


def test_saved_model_scores_like_the_keras_model(tiny, tmp_path):
    """An export folder (saved_models/<name>/<version>/) is evaluated through its signature."""
    import tensorflow as tf

    model = load_generator(tiny["srcnn"])

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None, 1], tf.float32, name="lr")])
    def serve(lr):
        return {"hr": model(lr, training=False)}

    root = tf.Module()
    root.generator_variables = list(serve.get_concrete_function().variables)
    root.serve = serve
    tf.saved_model.save(root, str(tmp_path / "hsr" / "3"), signatures={"serving_default": serve})
    out = tmp_path / "out"
    argv = [
        "--data",
        tiny["data"],
        "--model",
        f"keras={tiny['srcnn']}",
        "--model",
        f"served={tmp_path / 'hsr'}",
        "--baselines",
        "none",
        "--maps",
        0,
        "--out",
        out,
    ]
    assert run_cli(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["methods"]["served"]["kind"] == "saved_model"
    assert results["methods"]["served"]["path"].endswith("3")
    for key in PAPER_COLUMNS:
        assert results["scores"]["served"][key] == pytest.approx(results["scores"]["keras"][key], rel=1e-5, abs=1e-6)


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m hsr_keras.evaluate" in capsys.readouterr().out
