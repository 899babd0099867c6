"""More inputs: does the generator gain from LR predictors and HR static fields? Same model, budget and seeds.

For each dataset, the same input files are built four ways (each from the files it needs) (`VARIANTS`: the target alone,
+ LR predictors, + HR static fields, both), the demo preset's generator and critic (`BASE` of
bench_ensembles.py) are trained on each with seeds 0 .. N-1 by `hsr_keras.training.trainer.train`,
and every model is scored on its build's test split beside aligned bicubic through
`hsr_keras.evaluation.engine` (the engine of `evaluate`). The table gives per variant the median
over the seeds (and the range) of MSE and MAE, and the MSE gain over the target alone; a
gain counts only where the variant's worst seed beats the target alone's best seed.

  rh300  the synthetic terrain world (`synthetic --terrain`): r at 300 hPa, where air moving
         upslope moistens and the lee dries; predictors t, q, u, v at 300 hPa; static orography, lsm
  r2m    the synthetic 2 m world (`synthetic --terrain --surface`): 2 m RH from 2t and 2d;
         predictors 2t and sp; static orography, lsm
  real   tests/data/era5/met-accf-pl.nc at 300 hPa (real ERA5, one day's hours; western tiles
         to train, eastern to test, as bench_ensembles.py --real); predictors t, q, u, v at
         300 hPa; no static fields (the file has none): two variants

The synthetic data are the demo's six months (four to train, one to validate, one to test),
3-hourly. A model trained before with the same config and data (in --out) is reused.

    PYTHONPATH=. python benchmarks/bench_inputs.py --seeds 3 --epochs 6
"""

import argparse
import datetime
import json
import os
import statistics
import sys
from pathlib import Path

from bench_ensembles import BASE, REAL_PATCH, REAL_STRIDE, REAL_TILES, read_times, train_recipe

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent

DATASETS = {
    "rh300": {
        "synthetic": ["--terrain"],
        "files": {"target": "era5_r_*.nc", "predictors": "era5_pl_tquvz_*.nc", "static": "*invariant*.nc"},
        "target": ["--levels", "300"],
        "predictors": ["t@300", "q@300", "u@300", "v@300"],
        "static": ["orography", "lsm"],
    },
    "r2m": {
        "synthetic": ["--terrain", "--surface"],
        "files": {"target": "era5_sl_2t-2d-sp_*.nc", "predictors": "era5_sl_2t-2d-sp_*.nc", "static": "*invariant*.nc"},
        "target": ["--variable", "r2m"],
        "predictors": ["2t", "sp"],
        "static": ["orography", "lsm"],
    },
    "real": {
        "file": ROOT / "tests" / "data" / "era5" / "met-accf-pl.nc",
        "target": ["--levels", "300"],
        "predictors": ["t@300", "q@300", "u@300", "v@300"],
        "static": [],
    },
}
VARIANTS = {
    "target": (False, False),
    "+predictors": (True, False),
    "+static": (False, True),
    "both": (True, True),
}
DATES = {"synthetic": ("2019-01-01", "2019-06-30"), "train": "2019-01-01:2019-04-30"}
DATES.update(val="2019-05-01:2019-05-31", test="2019-06-01:2019-06-30")


def variant_options(spec, variant):
    predictors, static = VARIANTS[variant]
    options = list(spec["target"])
    if predictors:
        options += ["--predictors", *spec["predictors"]]
    if static:
        options += ["--static", *spec["static"]]
    return options


def synthetic_builds(name, spec, out, variants):
    """{variant: build folder} of the synthetic dataset `name`, files and builds made once under `out`."""
    from hsr_keras.training.demo_data import run_builder

    files = out / name / "era5"
    if not any(files.glob("*.nc")):
        start, end = DATES["synthetic"]
        run_builder(["synthetic", "--out", str(files), "--start", start, "--end", end, "--interval-hours", "3"]
                    + spec["synthetic"], verbose=False)  # fmt: skip
    splits = [f"--{split}={DATES[split]}" for split in ("train", "val", "test")]
    builds = {}
    for variant in variants:
        folder = out / name / variant
        if not (folder / "manifest.json").exists():
            predictors, static = VARIANTS[variant]
            kinds = ["target"] + ["predictors"] * predictors + ["static"] * static
            inputs = sorted({str(path) for kind in kinds for path in files.glob(spec["files"][kind])})
            run_builder([*inputs, "--out", str(folder), *splits, "--quiet", *variant_options(spec, variant)], False)
        builds[variant] = {"train": folder, "test": folder, "split": "test"}
    return builds


def real_builds(spec, out, variants):
    """{variant: train and test builds} of the real file's western and eastern tiles."""
    from hsr_keras.training.demo_data import run_builder

    path = spec["file"]
    day = str(read_times(path)[0])[:10]
    steps = str(len(read_times(path)))
    builds = {}
    for variant in variants:
        folders = {}
        for tiles, (lat, lon) in REAL_TILES.items():
            folder = out / "real" / f"{variant}-{tiles}"
            if not (folder / "manifest.json").exists():
                run_builder(
                    [str(path), "--out", str(folder), "--lat", *lat, "--lon", *lon, "--patch-size", REAL_PATCH]
                    + ["--patch-stride", REAL_STRIDE, "--scale", "8", "--steps", steps, "--interval-hours", "1"]
                    + ["--train", f"{day}:{day}", "--val", "none", "--test", "none", "--quiet"]
                    + variant_options(spec, variant),
                    verbose=False,
                )
            folders[tiles] = folder
        builds[variant] = {**folders, "split": "train"}  # the eastern tiles' only split
    return builds


def score(builds, seeds, epochs, out):
    """{variant: {"mse": [per seed], "mae": [...]}} and bicubic's scores, on each variant's test data."""
    from hsr_keras.evaluation.engine import baseline_methods, evaluate_methods, load_model_method
    from hsr_keras.training.config import Config
    from tfrecords_builder.contract.manifest import read_manifest

    results, bicubic = {}, None
    for variant, build in builds.items():
        test = read_manifest(build["test"])
        methods = baseline_methods(["bicubic"], test)
        for seed in range(seeds):
            config = Config(**BASE).replace(seed=seed, epochs=epochs)
            folder = out / "models" / f"{variant}-s{seed}"
            record, reused = train_recipe(config, build["train"], folder)
            state = "reused" if reused else f"trained in {record['seconds']:.0f} s"
            print(f"  {variant} seed {seed}: {state}", flush=True)
            methods.append(load_model_method(f"s{seed}", folder, batch_size=8))
        report = evaluate_methods(test, build["split"], methods, batch_size=8, map_days=0)["methods"]
        bicubic = bicubic or {key: report[methods[0].name][key] for key in ("mse", "mae")}
        results[variant] = {key: [report[f"s{seed}"][key] for seed in range(seeds)] for key in ("mse", "mae")}
    return results, bicubic


def table(name, results, bicubic):
    """Markdown rows of one dataset: median (min-max) over seeds, gain in MSE, and whether it exceeds the spread."""
    reference = results["target"]["mse"]
    lines = [
        f"**{name}** (aligned bicubic: MSE {bicubic['mse']:.3f}, MAE {bicubic['mae']:.3f})",
        "",
        "| inputs | MSE median (min-max) | MAE median (min-max) | MSE gain over target alone | beyond the seed spread |",
        "|---|---|---|---|---|",
    ]
    for variant, scores in results.items():
        mse, mae = scores["mse"], scores["mae"]
        gain = 1 - statistics.median(mse) / statistics.median(reference)
        beyond = "-" if variant == "target" else ("yes" if max(mse) < min(reference) else "no")
        lines.append(
            f"| {variant} | {statistics.median(mse):.3f} ({min(mse):.3f}-{max(mse):.3f}) "
            f"| {statistics.median(mae):.3f} ({min(mae):.3f}-{max(mae):.3f}) | {gain:+.1%} | {beyond} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=3, help="trainings per variant (seeds 0 .. N-1). Default: 3")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of every training. Default: 6")
    parser.add_argument("--out", default="runs/bench_inputs", help="data, models and results.json")
    args = parser.parse_args(argv)

    out = Path(args.out)
    command = "PYTHONPATH=. python benchmarks/bench_inputs.py " + " ".join(argv if argv is not None else sys.argv[1:])
    texts, everything = [], {}
    for name in args.datasets:
        spec = DATASETS[name]
        variants = [v for v in VARIANTS if spec["static"] or not VARIANTS[v][1]]
        print(f"{name}:", flush=True)
        builds = real_builds(spec, out, variants) if "file" in spec else synthetic_builds(name, spec, out, variants)
        results, bicubic = score(builds, args.seeds, args.epochs, out / name)
        everything[name] = {"results": results, "bicubic": bicubic}
        texts.append(table(name, results, bicubic))
    header = f"{datetime.date.today()}, `{command.strip()}`; {args.seeds} seeds, {args.epochs} epochs, demo preset"
    text = header + "\n\n" + "\n\n".join(texts)
    (out / "results.json").write_text(json.dumps({"command": command, "table": text, **everything}, indent=1))
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
