"""Tests of the report writers: tables, CSVs, strict JSON, captions, results.json and fit's table."""

import json
import math

import numpy as np
import pytest
from tiny_build import read_csv

from hsr_keras.evaluation import reports
from hsr_keras.evaluation.engine import REFERENCE, Method, add_reference_ratio

CARD = ("mse", "mae", "ssim", "psnr", "acc", "tcc", "psnr_pooled", "bias", "acc_anomaly")


def make_report():
    """A report as `evaluate_methods` returns it: a perfect method (PSNR inf) and aligned bicubic."""
    truth = dict(zip(CARD, (0.0, 0.0, 1.0, math.inf, 1.0, 1.0, math.inf, 0.0, 1.0)))
    bicubic = dict(zip(CARD, (12.5, 2.0, 0.8, 30.1, 0.9, 0.85, 29.0, -0.1, 0.7)))
    monthly = {name: {"2019-01": {**scores, "days": 2}} for name, scores in (("truth", truth), (REFERENCE, bicubic))}
    return {
        "split": "test",
        "level": 300.0,
        "days": 2,
        "months": ["2019-01"],
        "methods": {"truth": truth, REFERENCE: bicubic},
        "monthly": monthly,
        "spectra": {"wavenumber": [1, 2], "frames": 16, "truth": [4.0, 1.0], "methods": {"truth": [4.0, 1.0]}},
        "maps": [],
    }


def test_inf_is_written(tmp_path):
    report = add_reference_ratio(make_report())
    assert report["methods"]["truth"]["mse_ratio"] == math.inf
    md, csv_path = reports.write_tables(report, tmp_path)
    row = next(r for r in read_csv(csv_path) if r["method"] == "truth")
    assert row["psnr"] == "inf" and float(row["psnr"]) == math.inf and float(row["mse"]) == 0
    assert "| inf |" in md.read_text()
    encoded = json.loads(json.dumps(reports.jsonable(report["methods"])))  # strict JSON: no Infinity
    assert encoded["truth"]["psnr"] == "inf" and reports.json_number(encoded["truth"]["psnr"]) == math.inf


def test_numbers_and_caption():
    assert [reports.format_number(v) for v in (None, math.nan, -math.inf, 1.23456)] == ["", "nan", "-inf", "1.235"]
    assert reports.jsonable({"a": np.float32(2.5), "b": [np.int64(3), np.bool_(True)]}) == {"a": 2.5, "b": [3, True]}
    text = reports.caption(make_report())
    assert text.startswith("Table 3 layout (split 'test', 2 days, 300 hPa). Metric card")
    columns = [key for key, _ in reports.table_columns(make_report())]
    assert columns == list(CARD)  # no mse_ratio, CRPS or spread without them in the scores


def test_results_json_records_settings_and_extra_sections(tmp_path):
    report = add_reference_ratio(make_report())
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{}")
    methods = [Method("truth", None, {"kind": "callable"}), Method(REFERENCE, None, {"kind": "interpolation"})]
    files = reports.write_tables(report, tmp_path)
    settings = reports.settings_record(4, 1, ["bicubic"])
    command = ["python", "-m", "hsr_keras.evaluate"]
    reports.write_results(tmp_path, report, methods, manifest, command, settings, files, compare={"seeds": 1})
    results = json.loads((tmp_path / reports.RESULTS_FILE).read_text())
    assert list(results)[-1] == "compare" and results["compare"] == {"seeds": 1}
    assert results["files"] == ["results.json", "table.csv", "table.md"]
    assert list(results["settings"]) == [
        "batch_size",
        "samples",
        "seed",
        "baselines",
        "map_step",
        "maps",
        "map_dates",
        "keras_backend",
    ]
    assert results["settings"]["maps"] == 3 and results["reference"] == REFERENCE
    assert results["scores"]["truth"]["psnr"] == "inf" and results["methods"]["truth"] == {"kind": "callable"}


def test_format_comparison_is_fits_table():
    """The text `fit` prints at the end of training (checked against the table before the move)."""
    report = {
        "split": "val",
        "days": 31,
        "methods": {
            "model": {"mse": 10.0, "psnr": 30.0, "ssim": 0.8},
            "bicubic (aligned)": {"mse": 33.8, "psnr": 25.0, "ssim": 0.7},
        },
    }
    assert reports.format_comparison(report).splitlines() == [
        "",
        "Validation on split 'val' (31 days), %RH on the HR grid:",
        "method                     MSE     PSNR    SSIM",
        "model                   10.000   30.000  0.8000",
        "bicubic (aligned)       33.800   25.000  0.7000",
        "MSE ratio bicubic / model: 3.38 (paper, its data: 3.38)",
    ]


@pytest.mark.parametrize("markdown", [True, False])
def test_table_rows_in_method_order(markdown):
    text = reports.format_table(add_reference_ratio(make_report()), markdown=markdown)
    rows = [line for line in text.splitlines() if "truth" in line or REFERENCE in line]
    assert "truth" in rows[0] and REFERENCE in rows[1]


def test_texture_columns_caption_bands_and_monthly_csv(tmp_path):
    report = add_reference_ratio(make_report())
    texture = {"power_near": 0.62, "power_mid": 0.74, "lattice": 0.6, "lattice_truth": 0.98}
    report["methods"][REFERENCE].update(texture)
    report["monthly"][REFERENCE]["2019-01"].update(lattice=0.5, lattice_truth=0.97)
    report["spectra"]["power_bands"] = {"power_near": [4, 10], "power_mid": [11, 8], "power_far": [21, 8]}
    columns = reports.table_columns(report)
    keys = [key for key, _ in columns]
    assert keys[-4:] == list(texture) and keys[: len(CARD)] == list(CARD)
    assert dict(columns)["lattice_truth"] == "lattice (truth)"
    text = reports.caption(report)
    assert text.endswith(
        "(wavenumbers in cycles per domain): near 4-10, mid none (above the highest wavenumber), "
        "far none (above the highest wavenumber)."
    )
    assert "lattice (truth): the truth's over the same days" in text
    _, csv_path = reports.write_tables(report, tmp_path)
    rows = {row["method"]: row for row in read_csv(csv_path)}
    assert float(rows[REFERENCE]["lattice_truth"]) == 0.98 and rows["truth"]["lattice"] == ""
    monthly = read_csv(reports.write_monthly(report, tmp_path))
    assert "power_near" not in monthly[0] and "mse_ratio" not in monthly[0]
    assert {row["method"]: row["lattice"] for row in monthly} == {"truth": "", REFERENCE: "0.5"}
