"""Tests of `python -m hsr_keras.evaluate` (tables, months, maps, ensembles) and `hsr_keras.compare`."""

import csv
import json
import math

import keras
import numpy as np
import pytest

from hsr_keras import compare, evaluate
from hsr_keras.data import load_split
from hsr_keras.networks import build_generator, build_srcnn
from hsr_keras.provenance import code_version
from tfrecords_builder import build, synthetic
from tfrecords_builder.manifest import read_manifest

SCALE = 4
# 32 x 32 HR points, 8 x 8 LR; the test split spans two months (2 January, 2 February days).
REGION = dict(lat_bounds=(40.0, 47.75), lon_bounds=(110.0, 117.75), resolution=0.25)
SPLITS = ["--train", "2019-01-27:2019-01-29", "--val", "2019-02-03:2019-02-03", "--test", "2019-01-30:2019-02-02"]
TINY_GENERATOR = dict(filters=8, num_res_blocks=1, upsample_filters=4, num_post_blocks=1, se_ratio=4)
PAPER_COLUMNS = ["mse", "mae", "ssim", "psnr", "acc", "tcc"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A build of synthetic ERA5-like data, and two tiny generators saved as fit outputs."""
    root = tmp_path_factory.mktemp("evaluate")
    synthetic.write_synthetic(root / "era5", "2019-01-27", "2019-02-03", per="all", interval_hours=3, seed=0, **REGION)
    argv = [
        str(root / "era5"),
        "--out",
        str(root / "data"),
        "--lat",
        "40",
        "47.75",
        "--lon",
        "110",
        "117.75",
        "--scale",
        str(SCALE),
        "--quiet",
    ] + SPLITS
    assert build.main(argv) == 0
    manifest = read_manifest(root / "data")
    mean, std = manifest["stats"]["mean"], manifest["stats"]["std"]
    keras.utils.set_random_seed(0)
    paper = root / "paper"
    paper.mkdir()
    build_generator(scale=SCALE, mean=mean, std=std, noise_stddev=0.5, global_skip=True, **TINY_GENERATOR).save(
        paper / "generator.keras"
    )
    (paper / "config.json").write_text(json.dumps({"architecture": "paper", "filters": 8}))
    srcnn = root / "srcnn.keras"
    build_srcnn(scale=SCALE, filters=(4, 4), kernel_sizes=(3, 3, 3), mean=mean, std=std).save(srcnn)
    return {"root": root, "data": root / "data", "manifest": manifest, "paper": paper, "srcnn": srcnn}


def oracle(manifest, split):
    """A method returning the truth: looks the HR day up by its LR day (a test-only cheat)."""
    lr, hr, _ = load_split(manifest, split)
    table = {day.tobytes(): truth for day, truth in zip(lr, hr)}
    return lambda batch: np.stack([table[day.astype("float32").tobytes()] for day in batch])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


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
    expected = [label for label, _, _ in evaluate.BASELINES.values()] + ["paper", "SRCNN"]
    assert [row["method"] for row in rows] == expected
    for row in rows:
        scores = results["scores"][row["method"]]
        for key, text in row.items():
            if key == "method" or text == "":
                continue
            a, b = float(text), float(evaluate.json_number(scores[key]))
            assert (math.isnan(a) and math.isnan(b)) or a == b, (row["method"], key)
    for key in PAPER_COLUMNS + ["psnr_pooled", "bias", "acc_anomaly", "mse_ratio"]:
        assert all(row[key] != "" for row in rows)


def test_results_record_the_settings(cli_run, tiny):
    results = json.loads((cli_run / "results.json").read_text())
    data = results["data"]
    assert data["split"] == "test" and data["days"] == 4 and data["months"] == ["2019-01", "2019-02"]
    assert data["manifest_sha256"] == evaluate.sha256_of(tiny["data"] / "manifest.json")
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
    """A stochastic generator has spread; a deterministic one has spread 0 and CRPS == MAE."""
    results = json.loads((cli_run / "results.json").read_text())
    paper, srcnn = results["scores"]["paper"], results["scores"]["SRCNN"]
    assert paper["spread"] > 0 and paper["crps"] < paper["mae"] + 1e-9
    assert srcnn["spread"] == 0.0
    assert srcnn["crps"] == pytest.approx(srcnn["mae"], rel=1e-9, abs=1e-9)
    assert "crps" not in results["scores"]["Bicubic (aligned)"]
    rows = {row["method"]: row for row in read_csv(cli_run / "table.csv")}
    assert rows["Bicubic (aligned)"]["crps"] == "" and float(rows["SRCNN"]["spread"]) == 0.0
    assert "paper (one sample)" in results["spectra"]["methods"]


def test_sampling_keeps_batch_norm_in_inference_mode(tiny):
    """The noise-active copy shares every weight, and with a tiny noise it is the inference output."""
    model = build_generator(scale=SCALE, mean=50.0, std=25.0, noise_stddev=1e-6, **TINY_GENERATOR)
    noisy = evaluate.stochastic_generator(model, seed=1)
    assert all(a is b for a, b in zip(model.weights, noisy.weights))
    assert isinstance(noisy.get_layer("noise"), evaluate.SamplingGaussianNoise)
    lr = np.random.default_rng(0).uniform(0, 120, (3, 2, 4, 4, 1)).astype("float32")
    inference = np.asarray(model(lr, training=False))
    sampled = np.asarray(noisy.predict_on_batch(lr))
    np.testing.assert_allclose(sampled, inference, atol=1e-3)
    # training=True (batch statistics) would give something else: the check above has teeth
    assert np.abs(np.asarray(model(lr, training=True)) - inference).max() > 1e-2
    draws = evaluate.stochastic_generator(build_generator(scale=SCALE, noise_stddev=0.5, **TINY_GENERATOR), seed=1)
    assert not np.allclose(draws.predict_on_batch(lr), draws.predict_on_batch(lr))
    assert evaluate.stochastic_generator(build_srcnn(scale=SCALE, filters=(4, 4))) is None


# ----------------------------------------------------------------------------- metrics


def test_truth_scores_perfect_and_inf_is_written(tiny, tmp_path):
    report = evaluate.evaluate_methods(
        tiny["data"], "test", {"truth": oracle(tiny["manifest"], "test"), "Bicubic (aligned)": "bicubic"}, map_days=0
    )
    evaluate.add_reference_ratio(report)
    scores = report["methods"]["truth"]
    assert scores["mse"] == 0 and scores["mae"] == 0 and scores["bias"] == 0
    assert scores["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert scores["acc"] == pytest.approx(1.0, abs=1e-6) and scores["tcc"] == pytest.approx(1.0, abs=1e-6)
    assert scores["psnr"] == math.inf and scores["psnr_pooled"] == math.inf and scores["mse_ratio"] == math.inf
    md, csv_path = evaluate.write_tables(report, tmp_path)
    row = next(r for r in read_csv(csv_path) if r["method"] == "truth")
    assert row["psnr"] == "inf" and float(row["psnr"]) == math.inf and float(row["mse"]) == 0
    assert "| inf |" in md.read_text()
    encoded = json.loads(json.dumps(evaluate.jsonable(report["methods"])))  # strict JSON: no Infinity
    assert encoded["truth"]["psnr"] == "inf" and evaluate.json_number(encoded["truth"]["psnr"]) == math.inf


def test_aligned_interpolation_beats_naive_resize(tiny):
    report = evaluate.evaluate_methods(
        tiny["data"], "test", evaluate.baseline_methods(evaluate.BASELINE_GROUPS["all"], tiny["manifest"]), map_days=0
    )
    scores = report["methods"]
    for kernel in ("Bilinear", "Bicubic", "Lanczos"):
        aligned, naive = scores[f"{kernel} (aligned)"], scores[f"{kernel} (naive resize)"]
        assert aligned["mse"] < naive["mse"]
        assert aligned["ssim"] > naive["ssim"] and aligned["acc"] > naive["acc"]


def test_days_go_to_the_month_of_their_first_step(tiny):
    report = evaluate.evaluate_methods(tiny["data"], "test", {"bicubic": "bicubic"}, batch_size=3, map_days=0)
    monthly = report["monthly"]["bicubic"]
    assert sorted(monthly) == ["2019-01", "2019-02"]
    assert monthly["2019-01"]["days"] == 2 and monthly["2019-02"]["days"] == 2
    # each month equals the metric card on that month's days alone
    lr, hr, time = load_split(tiny["manifest"], "test")
    january = time[:, 0].astype("datetime64[M]") == np.datetime64("2019-01")
    assert january.tolist() == [True, True, False, False]
    from hsr_keras.metrics import MetricAccumulator

    method = evaluate.interpolation_method("bicubic", tiny["manifest"])
    for month, rows in (("2019-01", january), ("2019-02", ~january)):
        acc = MetricAccumulator(climatology=evaluate._climatology(tiny["manifest"], None))
        acc.update(method(lr[rows]), hr[rows].astype("float64"))
        for key, value in acc.result().items():
            assert monthly[month][key] == pytest.approx(value, rel=1e-9)
    overall = report["methods"]["bicubic"]["mse"]
    assert overall == pytest.approx(np.mean([monthly[m]["mse"] for m in monthly]))


def test_streaming_batch_size_does_not_change_numbers(tiny):
    """Batches of 1 day and of 8 days give the same table, monthly values and spectra."""
    stream = evaluate.stream_split(tiny["manifest"], "test", 1)
    first = next(stream)
    assert [a.shape for a in first] == [(1, 8, 8, 8), (1, 8, 32, 32), (1, 8)]  # one day at a time
    methods = {"bicubic": "bicubic", "lanczos": "lanczos"}
    one = evaluate.evaluate_methods(tiny["data"], "test", methods, batch_size=1, map_days=2)
    eight = evaluate.evaluate_methods(tiny["data"], "test", methods, batch_size=8, map_days=2)
    for name in methods:
        for key, value in eight["methods"][name].items():
            assert one["methods"][name][key] == pytest.approx(value, rel=1e-9), key
        for month in eight["monthly"][name]:
            assert one["monthly"][name][month]["mse"] == pytest.approx(eight["monthly"][name][month]["mse"], rel=1e-9)
        np.testing.assert_allclose(one["spectra"]["methods"][name], eight["spectra"]["methods"][name], rtol=1e-9)
    assert [m["date"] for m in one["maps"]] == [m["date"] for m in eight["maps"]] == ["2019-01-30", "2019-02-02"]


def test_spectrum_accumulator_is_the_mean_over_frames():
    fields = np.random.default_rng(0).normal(size=(5, 3, 16, 16))
    acc = evaluate.SpectrumAccumulator()
    acc.update(fields[:2])
    acc.update(fields[2:])
    from hsr_keras.metrics import radial_power_spectrum

    np.testing.assert_allclose(acc.result(), radial_power_spectrum(fields)[1], rtol=1e-12)
    assert acc.frames == 15


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
    ],
)
def test_bad_inputs_exit_2(tiny, tmp_path, capsys, argv, message):
    argv = [a.format(root=tiny["root"], data=tiny["data"]) for a in argv] + ["--out", str(tmp_path)]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_not_a_model_file_exits_2(tiny, tmp_path, capsys):
    bad = tmp_path / "broken.keras"
    bad.write_text("not a zip")
    assert run_cli(["--data", tiny["data"], "--model", f"m={bad}", "--out", tmp_path]) == 2
    assert "cannot load the model" in capsys.readouterr().err


def test_wrong_scale_exits_2(tiny, tmp_path, capsys):
    path = tmp_path / "x8.keras"
    build_srcnn(scale=8, filters=(2, 2), kernel_sizes=(3, 3, 3)).save(path)
    assert run_cli(["--data", tiny["data"], "--model", f"m={path}", "--baselines", "none", "--out", tmp_path]) == 2
    assert "another scale" in capsys.readouterr().err


def test_saved_model_scores_like_the_keras_model(tiny, tmp_path):
    """An export folder (saved_models/<name>/<version>/) is evaluated through its signature."""
    import tensorflow as tf

    model = evaluate.load_generator(tiny["srcnn"])

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


@pytest.mark.parametrize("module", [evaluate, compare])
def test_help(module, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m hsr_keras." in capsys.readouterr().out


# ----------------------------------------------------------------------------- compare


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


def test_compare_rejects_unknown_method(tmp_path, capsys):
    assert compare.main(["--methods", "srcnn,esrgan", "--out", str(tmp_path)]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert compare.main(["--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err


def test_compare_configs():
    manifest = {"scale": 4}
    configs = {key: compare.run_config(key, manifest) for key in compare.RUNS}
    assert configs["srcnn"].architecture == "srcnn" and configs["srcnn"].loss == "content"
    assert configs["gan"].loss == "gan" and configs["gan"].architecture == "paper"
    assert configs["srgan"].architecture == "srgan" and configs["srgan"].loss == "gan"
    assert configs["wgan-gp"].loss == "wgan-gp" and configs["wgan-gp"].use_cbam and configs["wgan-gp"].use_residual
    assert not configs["no-cbam"].use_cbam and not configs["no-resnet"].use_residual
    assert all(c.scale == 4 for c in configs.values())
    assert compare.run_config("gan", manifest, epochs=2).epochs == 2
