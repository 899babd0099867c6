"""Tests of the evaluation engine: methods, sampling, streaming and the accumulators."""

import math

import keras
import numpy as np
import pytest
from tiny_build import SCALE, TINY_GENERATOR, oracle, planted_lattice

from hsr_keras.evaluation import engine as evaluation
from hsr_keras.evaluation import method_scores
from hsr_keras.layers import SamplingGaussianNoise
from hsr_keras.models.networks import build_generator, build_srcnn
from hsr_keras.training.data import load_split

# ----------------------------------------------------------------------------- methods


def test_sampling_keeps_batch_norm_in_inference_mode(tiny):
    """The noise-active copy shares every weight, and with a tiny noise it is the inference output."""
    model = build_generator(scale=SCALE, mean=50.0, std=25.0, noise_stddev=1e-6, **TINY_GENERATOR)
    noisy = evaluation.stochastic_generator(model, seed=1)
    assert all(a is b for a, b in zip(model.weights, noisy.weights))
    assert isinstance(noisy.get_layer("noise"), SamplingGaussianNoise)
    lr = np.random.default_rng(0).uniform(0, 120, (3, 2, 4, 4, 1)).astype("float32")
    inference = np.asarray(model(lr, training=False))
    sampled = np.asarray(noisy.predict_on_batch(lr))
    np.testing.assert_allclose(sampled, inference, atol=1e-3)
    # training=True (batch statistics) would give something else: the check above has teeth
    assert np.abs(np.asarray(model(lr, training=True)) - inference).max() > 1e-2
    draws = evaluation.stochastic_generator(build_generator(scale=SCALE, noise_stddev=0.5, **TINY_GENERATOR), seed=1)
    assert not np.allclose(draws.predict_on_batch(lr), draws.predict_on_batch(lr))
    assert evaluation.stochastic_generator(build_srcnn(scale=SCALE, filters=(4, 4))) is None


def test_sampling_gaussian_noise_is_on_in_inference_mode_and_serialises(tmp_path):
    layer = SamplingGaussianNoise(0.5, seed=3, name="noise")
    assert layer.get_config()["stddev"] == 0.5 and layer.get_config()["seed"] == 3
    inputs = keras.Input((None, None, None, 1))
    model = keras.Model(inputs, layer(inputs))
    x = np.zeros((2, 1, 4, 4, 1), "float32")
    assert np.abs(np.asarray(model(x, training=False))).max() > 0  # noise without training=True
    model.save(tmp_path / "noise.keras")
    loaded = keras.saving.load_model(tmp_path / "noise.keras")
    assert isinstance(loaded.get_layer("noise"), SamplingGaussianNoise) and loaded.get_layer("noise").stddev == 0.5


def test_baselines_parse_keys_and_groups():
    assert evaluation.parse_baselines("bicubic, aligned") == ["bicubic", "lanczos", "bilinear"]
    assert evaluation.parse_baselines("none") == []
    with pytest.raises(evaluation.EvaluationError, match="unknown baseline 'spline'"):
        evaluation.parse_baselines("bicubic,spline")
    assert evaluation.REFERENCE == evaluation.BASELINES["bicubic"][0] == "Bicubic (aligned)"
    assert evaluation.COMPARISON_REFERENCE == "bicubic (aligned)"


def test_compare_with_bicubic(tiny):
    report = evaluation.compare_with_bicubic(tiny["srcnn"], tiny["data"], "test", batch_size=2)
    assert set(report) == {"split", "days", "methods"} and report["days"] == 4
    assert list(report["methods"]) == ["model", "bicubic (aligned)"]


# ----------------------------------------------------------------------------- metrics


def test_truth_scores_perfect(tiny):
    report = evaluation.evaluate_methods(
        tiny["data"], "test", {"truth": oracle(tiny["manifest"], "test"), "Bicubic (aligned)": "bicubic"}, map_days=0
    )
    evaluation.add_reference_ratio(report)
    scores = report["methods"]["truth"]
    assert scores["mse"] == 0 and scores["mae"] == 0 and scores["bias"] == 0
    assert scores["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert scores["acc"] == pytest.approx(1.0, abs=1e-6) and scores["tcc"] == pytest.approx(1.0, abs=1e-6)
    assert scores["psnr"] == math.inf and scores["psnr_pooled"] == math.inf and scores["mse_ratio"] == math.inf


def test_aligned_interpolation_beats_naive_resize(tiny):
    report = evaluation.evaluate_methods(
        tiny["data"],
        "test",
        evaluation.baseline_methods(evaluation.BASELINE_GROUPS["all"], tiny["manifest"]),
        map_days=0,
    )
    scores = report["methods"]
    for kernel in ("Bilinear", "Bicubic", "Lanczos"):
        aligned, naive = scores[f"{kernel} (aligned)"], scores[f"{kernel} (naive resize)"]
        assert aligned["mse"] < naive["mse"]
        assert aligned["ssim"] > naive["ssim"] and aligned["acc"] > naive["acc"]


def test_days_go_to_the_month_of_their_first_step(tiny):
    report = evaluation.evaluate_methods(tiny["data"], "test", {"bicubic": "bicubic"}, batch_size=3, map_days=0)
    monthly = report["monthly"]["bicubic"]
    assert sorted(monthly) == ["2019-01", "2019-02"]
    assert monthly["2019-01"]["days"] == 2 and monthly["2019-02"]["days"] == 2
    # each month equals the metric card on that month's days alone
    lr, hr, time = load_split(tiny["manifest"], "test")
    january = time[:, 0].astype("datetime64[M]") == np.datetime64("2019-01")
    assert january.tolist() == [True, True, False, False]
    from hsr_keras.scoring.metrics import MetricAccumulator

    method = evaluation.interpolation_method("bicubic", tiny["manifest"])
    for month, rows in (("2019-01", january), ("2019-02", ~january)):
        acc = MetricAccumulator(climatology=evaluation.training_climatology(tiny["manifest"], None), scale=SCALE)
        acc.update(method(lr[rows]).astype("float64"), hr[rows].astype("float64"))
        assert "lattice" in acc.result()
        for key, value in acc.result().items():
            assert monthly[month][key] == pytest.approx(value, rel=1e-9)
    overall = report["methods"]["bicubic"]["mse"]
    assert overall == pytest.approx(np.mean([monthly[m]["mse"] for m in monthly]))


def test_streaming_batch_size_does_not_change_numbers(tiny):
    """Batches of 1 day and of 8 days give the same table, monthly values and spectra."""
    stream = evaluation.stream_split(tiny["manifest"], "test", 1)
    first = next(stream)
    assert [a.shape for a in first] == [(1, 8, 8, 8), (1, 8, 32, 32), (1, 8), (1,)]  # one day at a time, its patch
    methods = {"bicubic": "bicubic", "lanczos": "lanczos"}
    one = evaluation.evaluate_methods(tiny["data"], "test", methods, batch_size=1, map_days=2)
    eight = evaluation.evaluate_methods(tiny["data"], "test", methods, batch_size=8, map_days=2)
    for name in methods:
        for key, value in eight["methods"][name].items():
            assert one["methods"][name][key] == pytest.approx(value, rel=1e-9, nan_ok=True), key
        for month in eight["monthly"][name]:
            assert one["monthly"][name][month]["mse"] == pytest.approx(eight["monthly"][name][month]["mse"], rel=1e-9)
        np.testing.assert_allclose(one["spectra"]["methods"][name], eight["spectra"]["methods"][name], rtol=1e-9)
    assert [m["date"] for m in one["maps"]] == [m["date"] for m in eight["maps"]] == ["2019-01-30", "2019-02-02"]


def test_spectrum_accumulator_is_the_mean_over_frames():
    fields = np.random.default_rng(0).normal(size=(5, 3, 16, 16))
    acc = method_scores.SpectrumAccumulator()
    acc.update(fields[:2])
    acc.update(fields[2:])
    from hsr_keras.scoring.spectra import radial_power_spectrum

    np.testing.assert_allclose(acc.result(), radial_power_spectrum(fields)[1], rtol=1e-12)
    assert acc.frames == 15


def test_lattice_and_band_power_of_known_methods(tiny):
    """The truth, twice the truth and the truth with a planted lattice, against independent numbers."""
    from hsr_keras.scoring.metrics import lattice

    truth = oracle(tiny["manifest"], "test")
    methods = {
        "truth": truth,
        "twice": lambda lr: 2 * truth(lr),
        "dotted": lambda lr: planted_lattice(truth(lr), SCALE),
    }
    report = evaluation.evaluate_methods(tiny["data"], "test", methods, batch_size=3, map_days=0)
    bands = {"power_near": [4, 10], "power_mid": [11, 16], "power_far": [21, 16]}  # 32 points, scale 4
    assert report["spectra"]["power_bands"] == bands
    scores = report["methods"]
    assert scores["truth"]["power_near"] == pytest.approx(1) and scores["truth"]["power_mid"] == pytest.approx(1)
    assert scores["twice"]["power_near"] == pytest.approx(4) and scores["twice"]["power_mid"] == pytest.approx(4)
    assert math.isnan(scores["truth"]["power_far"])  # an empty band
    _, hr, _ = load_split(tiny["manifest"], "test")
    expected = float(np.mean(np.asarray(lattice(hr.astype("float64"), SCALE))))
    assert 0.5 < expected < 2 and expected != pytest.approx(1, abs=1e-3)  # the truth's own value: not exactly 1
    for name in methods:
        assert scores[name]["lattice_truth"] == pytest.approx(expected, rel=1e-9)
    assert scores["truth"]["lattice"] == pytest.approx(expected, rel=1e-9)
    assert scores["twice"]["lattice"] == pytest.approx(expected, rel=1e-9)  # a ratio: scale-free
    assert scores["dotted"]["lattice"] == pytest.approx(0, abs=1e-9)
    january = report["monthly"]["dotted"]["2019-01"]
    assert january["lattice"] == pytest.approx(0, abs=1e-9) and "power_near" not in january


@pytest.mark.parametrize(
    "degradation, hr_shape, expected",
    [
        ("stride", [8, 64, 64], 8),
        ("block_mean", [8, 64, 64], None),
        ("stride", [8, 8, 64], None),
        (None, [8, 64, 64], None),
    ],
)
def test_lattice_only_where_a_build_has_sample_points(degradation, hr_shape, expected):
    manifest = {"scale": 8, "hr_shape": hr_shape} | ({"degradation": degradation} if degradation else {})
    assert evaluation.lattice_scale(manifest) == expected


# ----------------------------------------------------------------------------- patch builds


@pytest.fixture(scope="module")
def patch_build(tmp_path_factory):
    """Six days of 32 x 32 patches over 20-35.75 N, 100-115.75 E: patch centres on both sides of 30 N."""
    from tfrecords_builder import build, synthetic
    from tfrecords_builder.contract.manifest import read_manifest

    folder = tmp_path_factory.mktemp("patches")
    synthetic.write_synthetic(
        folder / "era5", "2019-01-01", "2019-01-06", lat_bounds=(20.0, 35.75), lon_bounds=(100.0, 115.75), seed=3
    )
    argv = [str(folder / "era5"), "--out", str(folder / "tf"), "--lat", "20", "35.75", "--lon", "100", "115.75"]
    argv += ["--patch-size", "32", "--train", "2019-01-01:2019-01-04", "--val", "none"]
    assert build.main([*argv, "--test", "2019-01-05:2019-01-06", "--quiet"]) == 0
    return read_manifest(folder / "tf")


def test_a_patch_build_is_scored_per_latitude_band_with_each_patch_climatology(patch_build):
    from hsr_keras.scoring.metrics import MetricAccumulator
    from tfrecords_builder.contract.patches import patch_coords

    manifest = patch_build
    assert manifest["patches"]["count"] == 4
    report = evaluation.evaluate_methods(manifest, "test", {"bicubic": "bicubic"}, batch_size=3, map_days=1)
    lr, hr, _ = load_split(manifest, "test")
    records = list(evaluation.stream_split(manifest, "test", 100))
    patch = np.concatenate([batch[3] for batch in records])
    climatology = evaluation.training_climatology(manifest, None)
    assert climatology.shape == (4, 8, 32, 32)
    centres = np.array([np.mean(patch_coords(manifest, int(k))["lat"]) for k in patch])
    method = evaluation.interpolation_method("bicubic", manifest)
    expected = {}
    for band, rows in (("0-30N", centres < 30), ("30N-60N", centres >= 30)):
        acc = MetricAccumulator(scale=manifest["scale"])
        acc.update(method(lr[rows]).astype("float64"), hr[rows].astype("float64"), climatology[patch[rows]])
        expected[band] = acc.result()
    bands = report["bands"]["bicubic"]
    assert set(bands) == {"0-30N", "30N-60N"}
    for band, scores in expected.items():
        assert bands[band]["days"] == scores["days"] > 0
        for key in ("mse", "ssim", "acc_anomaly", "lattice", "lattice_truth"):
            assert bands[band][key] == pytest.approx(scores[key], rel=1e-9)
    # the anomaly ACC of the whole split also uses each record's own patch climatology
    overall = MetricAccumulator()
    overall.update(method(lr), hr.astype("float64"), climatology[patch])
    assert report["methods"]["bicubic"]["acc_anomaly"] == pytest.approx(overall.result()["acc_anomaly"], rel=1e-9)
    assert report["maps"][0]["patch"] == int(patch[0])


def test_a_single_region_has_no_band_breakdown(tiny):
    report = evaluation.evaluate_methods(tiny["data"], "test", {"bicubic": "bicubic"}, map_days=0)
    assert report["bands"] == {}
