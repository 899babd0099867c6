"""Which training recipe gives texture without a lattice: recipes x seeds on the demo data, scored.

Each recipe is the demo preset with some fields changed (`NAME=field:value,field:value`);
each is trained with seeds 0 .. N-1 by `hsr_keras.training.trainer.train`, then every model and
aligned bicubic are scored on the test split by `hsr_keras.evaluation.engine` (the engine of
`evaluate`). Prints, per recipe, the mean and sample standard deviation over the seeds of
the metric card's MSE, SSIM, lattice ratio and spectral band power ratios, and how many of
the seeds meet the issue-15 conditions against aligned bicubic and the truth:

    PYTHONPATH=. python benchmarks/bench_texture.py --seeds 3 \\
        wgan-gp= content=loss:content lattice10=lattice_weight:10

A recipe trained before with the same config (in `--out`) is reused, so a sweep can grow.
`--figure PATH` draws, for the truth, aligned bicubic and each recipe's seed-0 model, a zoom
on one test frame and the mean roughness at each position of an LR cell over the test split
(`metrics.phase_roughness`): a lattice shows as a pattern in the second row.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Scores printed per recipe when the evaluation reports them (the metric card's names).
COLUMNS = ("mse", "ssim", "lattice", "lattice_spread", "power_near", "power_mid", "power_far")


def parse_recipe(text):
    """'name=field:value,field:value' -> (name, {field: value}); values as JSON where they parse."""
    name, _, fields = text.partition("=")
    if not name:
        raise SystemExit(f"error: a recipe needs a name: {text!r}")
    overrides = {}
    for item in filter(None, fields.split(",")):
        key, sep, value = item.partition(":")
        if not sep:
            raise SystemExit(f"error: {item!r} in recipe {name!r} is not field:value")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


def train_recipe(config, data, folder):
    """Train `config` into `folder` unless a finished run of the same config is there; seconds spent."""
    from hsr_keras.training.run_folder import config_changes
    from hsr_keras.training.trainer import train

    marker = folder / "recipe.json"
    wanted = json.loads(json.dumps(config.to_dict()))
    if marker.is_file() and not config_changes(json.loads(marker.read_text()), config):
        return 0.0
    start = time.perf_counter()
    train(config, data, folder, verbose=0, overwrite=True)
    marker.write_text(json.dumps(wanted, indent=1))
    return time.perf_counter() - start


def draw_figure(path, manifest, bicubic, models, zoom=32):
    """Zoomed maps of one test frame (top) and per-position roughness over the test split (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from hsr_keras.scoring.metrics import phase_roughness
    from hsr_keras.training.data import load_split

    lr, hr, _ = load_split(manifest, "test")
    scale = int(manifest["scale"])
    fields = {"truth": hr, bicubic.name: np.asarray(bicubic(lr))}
    fields.update({name: np.asarray(method(lr)) for name, method in models.items()})
    day, step = len(hr) // 2, hr.shape[1] // 2
    fig, axes = plt.subplots(2, len(fields), figsize=(2.6 * len(fields), 5.4), squeeze=False)
    lo, hi = np.percentile(hr[day, step, :zoom, :zoom], [2, 98])
    phases = {name: np.asarray(phase_roughness(field, scale)).mean(axis=0) for name, field in fields.items()}
    top = max(p.max() for p in phases.values())
    for col, (name, field) in enumerate(fields.items()):
        axes[0, col].imshow(field[day, step, :zoom, :zoom], cmap="YlGnBu", vmin=lo, vmax=hi, origin="lower")
        axes[0, col].set_title(name, fontsize=9)
        p = phases[name]
        image = axes[1, col].imshow(p, cmap="magma", vmin=0, vmax=top, origin="lower")
        axes[1, col].set_title(f"mean roughness by position\n(%RH; spread {p.std() / p.mean():.2f})", fontsize=8)
        fig.colorbar(image, ax=axes[1, col], fraction=0.046, pad=0.04)
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel(f"{zoom} x {zoom} HR cells", fontsize=8)
    axes[1, 0].set_ylabel(f"{scale} x {scale} positions of an LR cell", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4g} +- {spread:.2g}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipes", nargs="+", help="NAME=field:value,... (the demo preset with those fields)")
    parser.add_argument("--seeds", type=int, default=1, help="trainings per recipe (seeds 0 .. N-1)")
    parser.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs")
    parser.add_argument("--out", default="runs/bench_texture", help="models, demo data and results.json")
    parser.add_argument("--data", default=None, help="a TFRecord build (default: the demo data under --out)")
    parser.add_argument("--figure", default=None, help="PNG: zoomed maps and per-position roughness (see above)")
    args = parser.parse_args(argv)

    from hsr_keras.evaluation.engine import baseline_methods, evaluate_methods, load_model_method
    from hsr_keras.training.config import PRESETS
    from hsr_keras.training.demo_data import make_demo_data
    from tfrecords_builder.contract.manifest import read_manifest

    out = Path(args.out)
    data = Path(args.data) if args.data else make_demo_data(out / "data", verbose=False)
    manifest = read_manifest(data)
    recipes = dict(parse_recipe(text) for text in args.recipes)
    runs = {}  # recipe -> [run label]
    methods = baseline_methods(["bicubic"], manifest)
    reference = methods[0].name
    for name, overrides in recipes.items():
        for seed in range(args.seeds):
            values = {**PRESETS["demo"].to_dict(), **overrides, "seed": seed, "scale": int(manifest["scale"])}
            if args.epochs:
                values["epochs"] = args.epochs
            config = type(PRESETS["demo"])(**values)
            folder = out / "models" / f"{name}-s{seed}"
            seconds = train_recipe(config, data, folder)
            print(f"{name} seed {seed}: {'reused' if not seconds else f'trained in {seconds:.0f} s'}", flush=True)
            label = f"{name} s{seed}"
            runs.setdefault(name, []).append(label)
            methods.append(load_model_method(label, folder))
    report = evaluate_methods(manifest, "test", methods, batch_size=16)
    scores = report["methods"]
    (out / "results.json").write_text(json.dumps({"recipes": recipes, "runs": runs, "scores": scores}, indent=1))

    if args.figure:
        seed0 = {name: methods[1 + i * args.seeds] for i, name in enumerate(recipes)}
        draw_figure(args.figure, manifest, methods[0], seed0)
    columns = [c for c in COLUMNS if c in scores[reference]]
    print(f"\n{report['days']} test days; mean +- sample sd over {args.seeds} seed(s)")
    print("| recipe | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    print(f"| {reference} | " + " | ".join(f"{scores[reference][c]:.4g}" for c in columns) + " |")
    truth = [scores[reference].get(f"{c}_truth", 1.0 if c.startswith("power") else None) for c in columns]
    print("| truth | " + " | ".join("-" if v is None else f"{v:.4g}" for v in truth) + " |")
    for name, labels in runs.items():
        print(f"| {name} | " + " | ".join(summary([scores[label].get(c) for label in labels]) for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
