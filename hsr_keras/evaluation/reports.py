"""Writing an evaluation down: the Table 3 layout, CSVs, figures, captions and results.json.

Takes the report of `hsr_keras.evaluation.engine.evaluate_methods` (with `add_reference_ratio`) and
writes into one folder:

    table.md, table.csv         one row per method, the columns of TABLE_COLUMNS
    monthly.csv, monthly.png    per-month means of each metric per method
    spectra.csv, spectra.png    radially averaged power spectra of the truth and each method
    rank_histograms.csv, .png   where the truth falls among each ensemble's members (ensembles only)
    maps/<date>.png             LR, truth, each method and its error for the kept days
    results.json                every number and what produced it (`write_results`)

Non-finite numbers are written as 'inf', '-inf', 'nan' (strict JSON has no Infinity).
"""

import csv
import datetime
import json
import math
import os
from pathlib import Path

import numpy as np

from hsr_keras.evaluation.engine import COMPARISON_MODEL, COMPARISON_REFERENCE, MAP_DAYS, REFERENCE
from hsr_keras.models.provenance import code_version
from hsr_keras.scoring.metrics import METRIC_CARD, PEAK, SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW
from tfrecords_builder.contract import files

RESULTS_FILE = "results.json"

# (key, header) of the table, in the paper's Table 3 order, then the extra columns.
TABLE_COLUMNS = (
    ("mse", "MSE"),
    ("mae", "MAE"),
    ("ssim", "SSIM"),
    ("psnr", "PSNR"),
    ("acc", "ACC"),
    ("tcc", "TCC"),
    ("psnr_pooled", "PSNR (pooled)"),
    ("bias", "bias"),
    ("acc_anomaly", "ACC (anomaly)"),
    ("mse_ratio", "Bicubic MSE / MSE"),
    ("power_near", "power near / truth"),
    ("power_mid", "power mid / truth"),
    ("power_far", "power far / truth"),
    ("lattice", "lattice"),
    ("lattice_truth", "lattice (truth)"),
    ("lattice_spread", "lattice spread"),
    ("lattice_spread_truth", "lattice spread (truth)"),
    ("crps", "CRPS"),
    ("spread", "spread"),
    ("spread_skill", "spread-skill"),
    ("rank_flatness", "rank flatness"),
    ("member_power_near", "member power near / truth"),
    ("member_power_mid", "member power mid / truth"),
    ("member_power_far", "member power far / truth"),
    ("member_lattice", "member lattice"),
)

SPLIT_ONLY = ("mse_ratio", "power_near", "power_mid", "power_far", "member_power_near", "member_power_mid")
SPLIT_ONLY += ("member_power_far",)
"""Columns scored over the whole split only, not per month or latitude band."""

TABLE_CAPTION = (
    "Metric card of `hsr_keras.scoring.metrics`, %RH on the HR grid. "
    "MSE, MAE, bias: means over every point of a day, then over days. "
    "PSNR: the paper's style, per-frame PSNR with peak 100 %RH averaged over the frames of a day, "
    "then over days (inf when a frame is reproduced exactly). "
    "PSNR (pooled): PSNR of the MSE pooled over every point of the split. "
    "SSIM: Gaussian window 11, sigma 1.5, data range 100 %RH, per frame, averaged. "
    "ACC: paper eq. 12, spatial correlation per frame, averaged over frames and days; "
    "ACC (anomaly): the same on anomalies from the training climatology. "
    "TCC: paper eq. 13, per-point correlation over the steps of a day, averaged over points and days. "
    "Bicubic MSE / MSE: aligned bicubic's MSE over the method's (the paper's WGAN-GP: 3.38). "
    "Power near / mid / far / truth: the method's radially averaged power summed over a band of wavenumbers "
    "at and above the LR grid's Nyquist wavenumber k_n (near: k_n to 2.5 k_n, mid: to 5 k_n, far: to N/2; see "
    "the bands below) over the truth's, every frame of the split; below 1: missing small-scale texture. "
    "Lattice: mean roughness |x - mean of its 4 neighbours| at the LR sample points over that at the "
    "other points, per day, averaged over days; lattice (truth): the truth's over the same days, "
    "the value to match; below it: a dotted lattice, smooth where the LR values were kept. "
    "Lattice spread: the coefficient of variation of the mean roughness over the scale x scale "
    "positions of an LR cell; (truth): its sampling-noise floor; above it: a lattice anywhere in the "
    "cell, e.g. sub-pixel upsampling that gives each position its own texture (both lattice scores: "
    "stride builds only). "
    "Ensembles (a model sampled K times, --samples K; interpolation then counts as K identical members): "
    "the other columns score the ensemble mean; CRPS: the fair CRPS (Ferro 2014), mean over points and days; "
    "spread: the members' standard deviation (ddof 1), mean over points and days; spread-skill: "
    "sqrt((K+1)/K) sqrt(mean member variance) / RMSE of the mean, pooled over the split (1: calibrated); "
    "rank flatness: max over the K+1 bins of the rank histogram of |(K+1) x share - 1| (0: flat; ties share "
    "their bins); member power near / mid / far: the members' mean spectrum over the truth's in each band; "
    "member lattice: each member's lattice, averaged. "
    "(aligned): interpolated from the LR points' true coordinates; (naive resize): an image resize "
    "that misplaces a stride-s grid by (s-1)/2 HR cells."
)


def table_columns(report):
    """The (key, header) columns of the table: the paper's six, the extras, ensemble scores if any."""
    present = set().union(*(scores.keys() for scores in report["methods"].values()))
    return [
        (key, header)
        for key, header in TABLE_COLUMNS
        if key in present or key in ("mse", "mae", "ssim", "psnr", "acc", "tcc")
    ]


def _number_text(value, finite_format):
    """'' for None, 'nan' / 'inf' / '-inf' for non-finite values, else `finite_format(value)`."""
    if value is None:
        return ""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return finite_format(value)


def format_number(value, digits=3):
    """Fixed-point text; 'inf', '-inf' and 'nan' for non-finite values; '' for None."""
    return _number_text(value, lambda v: f"{v:.{digits}f}")


def caption(report):
    """The caption of the table: the split, its days and level, TABLE_CAPTION, the power bands' wavenumbers."""
    where = f"split {report['split']!r}, {report['days']} days"
    if report.get("level") is not None:
        where += f", {report['level']:g} hPa"
    text = f"Table 3 layout ({where}). {TABLE_CAPTION}"
    bands = report.get("spectra", {}).get("power_bands")
    if bands:
        text += " Power bands here (wavenumbers in cycles per domain): " + ", ".join(
            f"{name.removeprefix('power_')} {_band_text(first, last)}" for name, (first, last) in bands.items()
        )
        text += "."
    return text


def _band_text(first, last):
    return f"{first}-{last}" if first <= last else "none (above the highest wavenumber)"


def format_table(report, markdown=True):
    """The table as Markdown (or aligned plain text for a terminal)."""
    columns = table_columns(report)
    headers = ["method"] + [header for _, header in columns]
    rows = [
        [name] + [format_number(scores.get(key)) if key in scores else "-" for key, _ in columns]
        for name, scores in report["methods"].items()
    ]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows + [headers]) for i in range(len(headers))]

    def fmt(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def write_tables(report, out):
    """Writes table.md (caption + Markdown table) and table.csv (full precision) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    columns = table_columns(report)
    files.write_text(out / "table.md", f"{caption(report)}\n\n{format_table(report)}\n")
    with files.publishing(out / "table.csv") as temporary, open(temporary, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method"] + [key for key, _ in columns])
        for name, scores in report["methods"].items():
            writer.writerow([name] + [_csv_number(scores.get(key)) for key, _ in columns])
    return out / "table.md", out / "table.csv"


def _csv_number(value):
    return _number_text(value, repr)


def write_monthly(report, out):
    """monthly.csv: one row per (method, month) with every metric."""
    return _write_groups(report["monthly"], "month", Path(out) / "monthly.csv")


def write_bands(report, out):
    """bands.csv: one row per (method, latitude band) with every metric (builds of several patches)."""
    return _write_groups(report["bands"], "latitude_band", Path(out) / "bands.csv")


def _write_groups(groups, column, path):
    keys = [key for key, _ in TABLE_COLUMNS if key not in SPLIT_ONLY] + ["days"]
    with files.publishing(path) as temporary, open(temporary, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", column] + keys)
        for name, per in groups.items():
            for group, scores in per.items():
                writer.writerow([name, group] + [_csv_number(scores.get(key)) for key in keys])
    return path


def write_spectra(report, out):
    """spectra.csv: wavenumber and the mean power of the truth and of each method."""
    path = Path(out) / "spectra.csv"
    power = {"truth": report["spectra"]["truth"], **report["spectra"]["methods"]}
    with files.publishing(path) as temporary, open(temporary, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["wavenumber"] + list(power))
        for i, k in enumerate(report["spectra"]["wavenumber"]):
            writer.writerow([k] + [repr(float(p[i])) for p in power.values()])
    return path


def jsonable(value):
    """Replaces non-finite floats by the strings 'inf', '-inf', 'nan' (strict JSON), recursively."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else format_number(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


def json_number(value):
    """Inverse of `jsonable` for one number: 'inf' / 'nan' strings back to floats."""
    return float(value) if isinstance(value, str) else value


def metric_card():
    """How every number was computed (the metric card of `hsr_keras.scoring.metrics`), for results.json."""
    return {
        "metrics": METRIC_CARD,
        "peak_and_data_range": PEAK,
        "ssim": {"window": SSIM_WINDOW, "sigma": SSIM_SIGMA, "k1": SSIM_K1, "k2": SSIM_K2},
        "units": "%RH on the HR grid",
        "psnr_columns": {
            "psnr": "paper style: per-frame PSNR averaged over frames, then days",
            "psnr_pooled": "PSNR of the MSE pooled over every point of the split",
        },
    }


def write_outputs(report, manifest, out):
    """Tables, per-month CSV and figure, spectra CSV and figure, sample maps; returns the paths."""
    from hsr_keras.evaluation import figures as evaluation_plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = list(write_tables(report, out))
    written.append(write_monthly(report, out))
    if report.get("bands"):
        written.append(write_bands(report, out))
    written.append(write_spectra(report, out))
    written.append(
        evaluation_plots.plot_monthly(
            report["monthly"], out / "monthly.png", title=f"split {report['split']!r}: monthly means"
        )
    )
    frames = report["spectra"]["frames"]
    written.append(
        evaluation_plots.plot_spectra(
            report["spectra"], out / "spectra.png", title=f"split {report['split']!r}, mean over {frames} frames"
        )
    )
    for entry in report["maps"]:
        written.append(evaluation_plots.plot_method_maps(entry, manifest, out / "maps" / f"{entry['date']}.png"))
    histograms = {name: s["rank_histogram"] for name, s in report["methods"].items() if "rank_histogram" in s}
    if histograms:
        written.append(write_rank_histograms(histograms, out))
        written.append(
            evaluation_plots.plot_rank_histograms(
                histograms, out / "rank_histograms.png", title=f"split {report['split']!r}: rank histograms"
            )
        )
    return written


def write_rank_histograms(histograms, out):
    """rank_histograms.csv: per ensemble method, each rank's share of the points (rank 0: truth below every member)."""
    path = Path(out) / "rank_histograms.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "rank", "share"])
        for name, shares in histograms.items():
            for rank, share in enumerate(shares):
                writer.writerow([name, rank, repr(float(share))])
    return path


def settings_record(batch_size, samples, baselines, seed=0, maps=MAP_DAYS, map_dates=None, map_step=None):
    """The settings of an evaluation as results.json records them (the defaults: `evaluate_methods`')."""
    return {
        "batch_size": batch_size,
        "samples": samples,
        "seed": seed,
        "baselines": list(baselines),
        "map_step": map_step,
        "maps": maps,
        "map_dates": map_dates,
        "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
    }


def write_results(out, report, methods, manifest_file, command, settings, written, **sections):
    """Writes results.json: every number of `report` and what produced it; returns the record.

    Args:
        out: the output folder.
        report: `evaluate_methods`' report, with `add_reference_ratio` applied.
        methods: the evaluated `Method`s (their info: kind, path, config, ...).
        manifest_file: the data manifest (its path and sha256 are recorded).
        command: the command line, as a list.
        settings: the evaluation settings (`settings_record`).
        written: the paths written into `out` so far.
        **sections: further top-level entries (e.g. `compare`'s timings).
    """
    out = Path(out)
    manifest_file = Path(manifest_file)
    results = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": list(command),
        "code_version": code_version(),
        "data": {
            "manifest": str(manifest_file.resolve()),
            "manifest_sha256": files.sha256_of(manifest_file),
            "split": report["split"],
            "level": report["level"],
            "days": report["days"],
            "months": report["months"],
        },
        "settings": settings,
        "metric_card": metric_card(),
        "table_caption": caption(report),
        "reference": REFERENCE if REFERENCE in report["methods"] else None,
        "methods": {m.name: m.info for m in methods},
        "scores": report["methods"],
        "monthly": report["monthly"],
        "bands": report.get("bands", {}),
        "spectra": report["spectra"],
        "maps": [{"date": m["date"], "time": m["time"]} for m in report["maps"]],
        "files": sorted(str(Path(p).relative_to(out)) for p in list(written) + [out / RESULTS_FILE]),
        **sections,
    }
    files.write_text(out / RESULTS_FILE, json.dumps(jsonable(results), indent=1) + "\n")
    return results


def format_comparison(report):
    """`fit`'s end-of-training table: the model beside aligned bicubic (`compare_with_bicubic`)."""
    rows = ["", f"Validation on split {report['split']!r} ({report['days']} days), %RH on the HR grid:"]
    rows.append(f"{'method':<20} {'MSE':>9} {'PSNR':>8} {'SSIM':>7}")
    for name, scores in report["methods"].items():
        rows.append(f"{name:<20} {scores['mse']:9.3f} {scores['psnr']:8.3f} {scores['ssim']:7.4f}")
    model, bicubic = report["methods"][COMPARISON_MODEL], report["methods"][COMPARISON_REFERENCE]
    rows.append(f"MSE ratio bicubic / model: {bicubic['mse'] / model['mse']:.2f} (paper, its data: 3.38)")
    return "\n".join(rows)
