"""`python -m hsr_keras.compare`: the paper's Tables 2 and 3 on one dataset, in one command.

Trains, on the same data and with the same `hsr_keras.training.trainer.train` machinery, every learned
method of the paper's comparison, then scores them with the interpolation baselines through
`hsr_keras.evaluation.engine` (the engine of `python -m hsr_keras.evaluate`) on one split and prints:

* a Table-3-style table: every method and every metric of the card (interpolation from the
  LR points' true coordinates and the naive image resize, SRCNN, GAN, SRGAN, WGAN-GP, its
  content-only and pre-trained variants and the ablations), the ratio of WGAN-GP's MSE to aligned bicubic's (the paper's: 1/3.38);
* a Table-2-style ablation table: CBAM / ResNet / WGAN-GP switched off one at a time.

Methods (`--methods`, comma separated; default all):

    wgan-gp     the paper's generator and critic, WGAN-GP loss (the model of the paper)
    content     the paper's generator alone on the L1 content loss (no critic): beside
                wgan-gp, what the adversarial term adds
    pretrain    the paper's WGAN-GP whose generator first trains on the content loss alone
                for half the epochs (rounded down; config pretrain_epochs), the critic
                joining for the rest: SRGAN's and ESRGAN's recipe; needs --epochs >= 2
    srcnn       SRCNN (architecture "srcnn"), L1 content loss only
    gan         the paper's generator and critic, plain (non-saturating) GAN loss; this is
                also Table 2's "without WGAN-GP" row
    srgan       SRResNet generator + SRGAN discriminator (hsr_keras.models.srgan), GAN loss; the
                content loss is the config's L1 (VGG features do not apply to one-channel
                humidity and cannot be downloaded), plus the adversarial term; half the
                preset's width, as SRGAN (64 channels) is to the paper's generator (128)
    no-cbam     WGAN-GP without CBAM in the residual blocks (use_cbam=False)
    no-resnet   WGAN-GP without the blocks' skip connections (use_residual=False)

`--seeds N` trains every method N times (config seed 0 .. N-1; seed 0 keeps the plain row
name and folder) and adds the mean and sample standard deviation of MSE, PSNR and SSIM over
the seeds, and in how many runs each method is ahead of aligned bicubic: at the demo's size the
gaps between learned methods are of the order of the seed spread.

Each is a config derived from the preset (`--preset`, default "demo": the networks and the
10 epochs `python -m hsr_keras.fit` trains by default, so the eight runs take tens of minutes
on 2 CPU cores); `--epochs` overrides every run's epochs (3 gives a quick smoke comparison).
Runs land in `<out>/models/<method>/` (a `fit` output folder:
generator.keras, config.json, history.csv, ...); a run whose `trained.json` records the same
config and data is reused, so running the command again only evaluates (an interrupted run
resumes from its backup). A reused run trained by another code version is named in a note;
`--retrain` trains every method afresh. Evaluation outputs (table.md/csv, monthly and spectra
figures, maps, results.json) go to `<out>/evaluation/`, and both tables to `<out>/compare.md`.

Without `--data` it uses the built-in demo data (synthetic ERA5-like fields, made under
`<out>/data` on the first run).
"""

import argparse
import dataclasses
import json
import math
import shutil
import statistics
import sys
import time
from pathlib import Path

from hsr_keras.models.model_files import CONFIG_FILE, GENERATOR_FILE
from hsr_keras.models.provenance import code_version
from hsr_keras.training.config import PRESETS, Config
from tfrecords_builder.contract import files
from tfrecords_builder.contract.console import run_command, set_quiet
from tfrecords_builder.contract.errors import InputError

# The evaluation engine (hsr_keras.evaluation.engine, hsr_keras.evaluation.reports) loads Keras: it is imported
# where it is used, so that --help answers at once.

# key -> (table label, config overrides of the preset made single-member, `single_member`)
RUNS = {
    "srcnn": ("SRCNN", {"architecture": "srcnn", "loss": "content"}),
    "gan": ("GAN", {"loss": "gan"}),
    "srgan": ("SRGAN", {"architecture": "srgan", "loss": "gan"}),
    "wgan-gp": ("WGAN-GP", {"loss": "wgan-gp"}),
    "content": ("Content only", {"loss": "content"}),
    "pretrain": ("Pre-trained WGAN-GP", {"loss": "wgan-gp"}),  # pretrain_epochs: half the run's, set in run_config
    "no-cbam": ("WGAN-GP without CBAM", {"loss": "wgan-gp", "use_cbam": False}),
    "no-resnet": ("WGAN-GP without ResNet", {"loss": "wgan-gp", "use_residual": False}),
}

# Table 2 rows in the paper's order: (run key, CBAM, ResNet, WGAN-GP).
ABLATIONS = (
    ("no-resnet", True, False, True),
    ("gan", True, True, False),
    ("no-cbam", False, True, True),
    ("wgan-gp", True, True, True),
)

# The paper's Table 3 and Table 2 (its data), for reference beside ours.
PAPER_TABLE3 = {
    "Lanczos": (99.889, 5.432, 0.593, 27.394, 0.890, 0.741),
    "Bilinear": (114.449, 5.592, 0.601, 26.669, 0.879, 0.747),
    "Bicubic": (122.472, 5.762, 0.593, 26.418, 0.871, 0.728),
    "SRCNN": (50.143, 3.499, 0.699, 29.973, 0.904, 0.819),
    "GAN": (37.362, 2.755, 0.752, 31.640, 0.948, 0.860),
    "SRGAN": (38.611, 2.863, 0.749, 31.494, 0.948, 0.848),
    "WGAN-GP": (36.185, 2.698, 0.766, 31.832, 0.951, 0.866),
}
PAPER_TABLE2 = {  # (CBAM, ResNet, WGAN-GP) -> PSNR, SSIM, ACC, TCC
    (True, False, True): (25.747, 0.537, 0.866, 0.692),
    (True, True, False): (31.640, 0.752, 0.948, 0.860),
    (False, True, True): (31.483, 0.753, 0.948, 0.861),
    (True, True, True): (31.832, 0.766, 0.951, 0.866),
}


class CompareError(InputError):
    """Bad input to the comparison; the command line prints it on one line and exits with 2."""


def parse_methods(text):
    keys = [k.strip().lower() for k in str(text).replace(",", " ").split() if k.strip()]
    if keys == ["all"] or not keys:
        return list(RUNS)
    unknown = [k for k in keys if k not in RUNS]
    if unknown:
        raise CompareError(f"unknown method(s) {unknown}: choose from {', '.join(RUNS)} or all")
    return [k for k in RUNS if k in keys]  # the table's order


def run_config(key, preset="demo", epochs=None):
    """The config of one method: the preset, the comparison's sizes (demo), its overrides.

    Raises `CompareError` for a method the epochs cannot hold (pretrain with one epoch).
    """
    values = single_member(PRESETS[preset].to_dict())
    values.update(RUNS[key][1])
    if key == "srgan":
        # SRGAN is half as wide as the paper's generator (64 vs 128 channels) and has 16
        # residual blocks; the demo keeps that ratio and its own block count.
        values["filters"] = max(values["filters"] // 2, 1)
        if preset == "paper":
            values["num_res_blocks"] = 16
    if epochs is not None:
        values["epochs"] = int(epochs)
    if key == "pretrain":
        if values["epochs"] < 2:
            raise CompareError(
                f"method pretrain pre-trains for half the epochs and fine-tunes for the rest: it needs "
                f"--epochs >= 2. Received: {values['epochs']}"
            )
        values["pretrain_epochs"] = values["epochs"] // 2
    values["notes"] = {"compare_method": key, "label": RUNS[key][0]}
    return Config(**values)


def single_member(values):
    """A preset's values as the paper's comparison trains them: one member per field, the paper's stem noise.

    An ensemble preset (the demo's, docs/ensembles.md) gives its networks, sizes and schedule;
    its ensemble settings go: `ensemble_size` 1, `noise` "stem" at the paper's std, and no crps
    or spectral term (with the crps term, the preset's content weight too: back to 1).
    """
    values = dict(values)
    weights = dict(values["loss_weights"])
    if weights.pop("crps", 0.0):
        weights.pop("content", None)
    weights.pop("spectral", None)
    if values["noise"] != "stem":
        values["noise_stddev"] = Config().noise_stddev
    values.update(ensemble_size=1, noise="stem", loss_weights=weights)
    return values


def train_or_reuse(key, config, data, folder, manifest_sha256, verbose=True, retrain=False):
    """Trains `config` into `folder` unless a finished run with the same config and data is there.

    The code version is recorded but not part of the match (any commit would otherwise retrain
    everything); a run trained by other code is reused with a note saying so. `retrain=True`
    trains afresh regardless. Returns (seconds spent training, reused).
    """
    import keras

    from hsr_keras.training.run_folder import config_changes
    from hsr_keras.training.trainer import train

    folder = Path(folder)
    marker = folder / "trained.json"
    wanted = json.loads(json.dumps(config.to_dict()))
    code = code_version()
    if marker.is_file():
        info = json.loads(marker.read_text())
        if (
            not retrain
            and not config_changes(info.get("config") or {}, config)
            and info.get("manifest_sha256") == manifest_sha256
            and (folder / GENERATOR_FILE).is_file()
        ):
            if verbose:
                print(f"[{key}] reusing {folder} (trained in {info.get('seconds', 0):.0f} s)", flush=True)
                if info.get("code") != code:
                    print(
                        f"[{key}] note: trained by {_describe_code(info.get('code'))}, the code is now "
                        f"{_describe_code(code)}; --retrain trains it again",
                        flush=True,
                    )
            return info.get("seconds", 0.0), True
        if verbose:
            reason = "--retrain" if retrain else "config or data changed"
            print(f"[{key}] {reason}: retraining in {folder}", flush=True)
        shutil.rmtree(folder)
    elif (folder / CONFIG_FILE).is_file():
        previous = json.loads((folder / CONFIG_FILE).read_text())
        if retrain or config_changes(previous, config):  # an unfinished run not to resume
            shutil.rmtree(folder)
    if verbose:
        print(f"[{key}] training {RUNS[key][0]}: {config.epochs} epochs, {_describe(config)}", flush=True)
    start = time.time()
    train(config, data, folder, verbose=0)
    seconds = time.time() - start
    keras.backend.clear_session()
    record = {"config": wanted, "manifest_sha256": manifest_sha256, "seconds": seconds, "code": code}
    files.write_text(marker, json.dumps(record, indent=1) + "\n")
    if verbose:
        print(f"[{key}] done in {seconds:.0f} s", flush=True)
    return seconds, False


def _describe_code(code):
    """'hsr-keras 0.1.0 at commit 1a2b3c4 (with uncommitted changes)', from `code_version()`."""
    if not code:
        return "an unrecorded code version"
    text = f"hsr-keras {code.get('version')}"
    if code.get("git_commit"):
        text += f" at commit {code['git_commit'][:7]}"
        if code.get("git_dirty"):
            text += " (with uncommitted changes)"
    return text


def _describe(config):
    parts = [
        f"architecture={config.architecture}",
        f"loss={config.loss}",
        f"filters={config.filters}",
        f"batch={config.batch_size}",
        f"seed={config.seed}",
    ]
    if not config.use_cbam:
        parts.append("no CBAM")
    if not config.use_residual:
        parts.append("no residual skips")
    if config.pretrain_epochs:
        parts.append(f"content loss alone for the first {config.pretrain_epochs} epochs")
    return ", ".join(parts)


def _ratio(mse, reference):
    """'0.296 (1/3.38)' for a method's MSE over a reference MSE."""
    if reference <= 0:
        return "n/a"
    if mse <= 0:
        return "0 (exact)"
    return f"{mse / reference:.3f} (1/{reference / mse:.2f})"


def format_table3(report, labels):
    """Every method and metric (Table 3 layout) as plain text, with the paper's rows below."""
    from hsr_keras.evaluation import reports
    from hsr_keras.evaluation.engine import BASELINES, REFERENCE

    lanczos_label = BASELINES["lanczos"][0]
    lines = [reports.format_table(report, markdown=False)]
    scores = report["methods"]
    ref = scores.get(REFERENCE)
    lanczos = scores.get(lanczos_label)
    if ref is not None:
        lines.append("")
        lines.append(
            "MSE of each learned method over aligned interpolation's (below 1: better; "
            "the paper's WGAN-GP: 1/3.38 = 0.296 of bicubic's, 1/2.76 = 0.362 of Lanczos's):"
        )
        for label in labels.values():
            if label not in scores:
                continue
            mse = scores[label]["mse"]
            line = f"  {label:<24} / {REFERENCE}: {_ratio(mse, ref['mse'])}"
            if lanczos is not None:
                line += f"   / {lanczos_label}: {_ratio(mse, lanczos['mse'])}"
            lines.append(line)
    lines.append("")
    lines.append("Paper's Table 3 (its test set, 2022; for reference, not comparable in absolute terms):")
    lines.append(f"{'method':<10} {'MSE':>8} {'MAE':>6} {'SSIM':>6} {'PSNR':>7} {'ACC':>6} {'TCC':>6}")
    for name, row in PAPER_TABLE3.items():
        lines.append(f"{name:<10} " + " ".join(f"{v:{w}.3f}" for v, w in zip(row, (8, 6, 6, 7, 6, 6))))
    return "\n".join(lines)


def format_table2(report, labels):
    """The ablation table (paper Table 2 layout), ours beside the paper's."""
    from hsr_keras.evaluation import reports

    mark = {True: "yes", False: "-"}
    fmt = reports.format_number
    header = (
        f"{'CBAM':<5} {'ResNet':<6} {'WGAN-GP':<7} {'method':<24} {'MSE':>8} {'PSNR':>7} {'SSIM':>6} "
        f"{'ACC':>6} {'TCC':>6}   paper: {'PSNR':>6} {'SSIM':>6} {'ACC':>6} {'TCC':>6}"
    )
    lines = [header, "-" * len(header)]
    for key, cbam, resnet, wgan in ABLATIONS:
        label = labels.get(key)
        if label is None or label not in report["methods"]:
            continue
        s = report["methods"][label]
        paper = PAPER_TABLE2[(cbam, resnet, wgan)]
        lines.append(
            f"{mark[cbam]:<5} {mark[resnet]:<6} {mark[wgan]:<7} {label:<24} {fmt(s['mse']):>8} {fmt(s['psnr']):>7} "
            f"{fmt(s['ssim']):>6} {fmt(s['acc']):>6} {fmt(s['tcc']):>6}   paper: "
            + " ".join(f"{v:6.3f}" for v in paper)
        )
    if len(lines) == 2:
        return "(no ablation run among --methods)"
    return "\n".join(lines)


def seed_runs(key, config, seeds):
    """(run id, table label, config) for each seed of one method; seed 0 keeps the plain names."""
    runs = []
    for i in range(seeds):
        run_id, label = (key, RUNS[key][0]) if i == 0 else (f"{key}-seed{i}", f"{RUNS[key][0]} (seed {i})")
        runs.append((run_id, label, dataclasses.replace(config, seed=config.seed + i)))
    return runs


# Texture scores of the seed spread: small-scale power over the truth's and the lattice (`metrics`).
TEXTURE = ("power_near", "power_mid", "power_far", "lattice", "lattice_spread")


def seed_spread(report, groups):
    """Per method, mean and sample std over its seeds of MSE, PSNR, SSIM and bicubic MSE / MSE.

    `groups` maps a method's label to the labels of its seed runs. With aligned bicubic among
    the baselines, also counts the runs ahead of it on all of MSE, PSNR and SSIM. The texture
    scores (`TEXTURE`) are added where every run has them, with the truth's lattice values.
    """
    from hsr_keras.evaluation.engine import REFERENCE

    scores = report["methods"]
    ref = scores.get(REFERENCE)
    spread = {}
    for label, members in groups.items():
        rows = [scores[m] for m in members]
        entry = {"runs": len(rows)}
        for metric in ("mse", "psnr", "ssim"):
            values = [r[metric] for r in rows]
            entry[metric] = {"mean": statistics.fmean(values), "std": statistics.stdev(values)}
        for metric in TEXTURE:
            values = [r.get(metric, math.nan) for r in rows]
            if all(math.isfinite(v) for v in values):
                entry[metric] = {"mean": statistics.fmean(values), "std": statistics.stdev(values)}
        entry["truth"] = {key: rows[0][key] for key in ("lattice_truth", "lattice_spread_truth") if key in rows[0]}
        if ref is not None:
            ratios = [ref["mse"] / r["mse"] for r in rows]
            entry["bicubic_mse_ratio"] = {"mean": statistics.fmean(ratios), "std": statistics.stdev(ratios)}
            entry["ahead_of_bicubic"] = sum(
                r["mse"] < ref["mse"] and r["psnr"] > ref["psnr"] and r["ssim"] > ref["ssim"] for r in rows
            )
        spread[label] = entry
    return spread


def format_seed_spread(spread):
    """The seed spread as a plain-text table: mean +- sample standard deviation."""

    def pm(entry, digits):
        return f"{entry['mean']:.{digits}f} +- {entry['std']:.{digits}f}"

    with_ref = all("bicubic_mse_ratio" in e for e in spread.values())
    header = f"{'method':<24} {'runs':>4} {'MSE':>16} {'PSNR':>16} {'SSIM':>16}"
    if with_ref:
        header += f" {'Bicubic MSE / MSE':>17}  ahead of bicubic (MSE, PSNR and SSIM)"
    lines = [header, "-" * len(header)]
    for label, e in spread.items():
        line = f"{label:<24} {e['runs']:>4} {pm(e['mse'], 3):>16} {pm(e['psnr'], 3):>16} {pm(e['ssim'], 4):>16}"
        if with_ref:
            line += f" {pm(e['bicubic_mse_ratio'], 3):>17}  {e['ahead_of_bicubic']} of {e['runs']} runs"
        lines.append(line)
    # The texture scores some method has (an empty band has none), for the methods that have them all.
    scores = [m for m in TEXTURE if any(m in e for e in spread.values())]
    texture = {label: e for label, e in spread.items() if scores and all(m in e for m in scores)}
    if texture:
        truth = next(iter(texture.values()))["truth"]
        lines += ["", f"Texture (truth: power 1, {', '.join(f'{k} {v:.3f}' for k, v in truth.items())})"]
        header = f"{'method':<24} {'runs':>4}" + "".join(f" {m:>16}" for m in scores)
        lines += [header, "-" * len(header)]
        for label, e in texture.items():
            lines.append(f"{label:<24} {e['runs']:>4}" + "".join(f" {pm(e[m], 3):>16}" for m in scores))
    return "\n".join(lines)


def format_compare(report, labels, spread, seeds, timings, eval_seconds, total):
    """compare.md's text: the caption, both tables, the seed spread (several seeds) and the timings."""
    from hsr_keras.evaluation import reports

    text = (
        f"{reports.caption(report)}\n\nTable 3 layout: every method and metric\n\n{format_table3(report, labels)}\n\n"
        f"Table 2 layout: ablations (each row switches one part off; the GAN row is the run without "
        f"WGAN-GP)\n\n{format_table2(report, labels)}\n\n"
    )
    if spread:
        text += (
            f"Spread over {seeds} seeds (mean +- sample standard deviation of the "
            f"trainings of each method)\n\n{format_seed_spread(spread)}\n\n"
        )
    trained = ", ".join(
        f"{labels[k]} {t['train_seconds']:.0f}{' (reused)' if t['reused'] else ''}" for k, t in timings.items()
    )
    return text + f"Training seconds: {trained}; evaluation {eval_seconds:.0f} s; total {total:.0f} s\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hsr_keras.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", help="build folder holding manifest.json (default: the demo data under --out/data)")
    parser.add_argument("--out", default="runs/compare", help="output folder. Default: runs/compare")
    parser.add_argument(
        "--methods",
        default="all",
        help=f"comma-separated methods to train and compare: {', '.join(RUNS)}, or all. Default: all",
    )
    parser.add_argument("--epochs", type=int, help="override every run's epochs (default: the preset's)")
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default="demo", help="config every run derives from. Default: demo"
    )
    parser.add_argument("--split", default="test", help="split evaluated. Default: test")
    parser.add_argument(
        "--baselines", default="all", help="interpolation baselines, as for hsr_keras.evaluate. Default: all"
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=1,
        help="noise draws per model (ensemble mean, CRPS, spread), as for hsr_keras.evaluate. Default: 1",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="days per evaluation batch. Default: 8")
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="trainings per method, with config seeds 0 .. N-1; N > 1 adds the "
        "mean and standard deviation over seeds. Default: 1",
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train every method afresh, even where a finished run of the same config and data is in --out/models",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the tables")
    return parser.parse_args(argv)


def main(argv=None):
    return run_command(_run, sys.argv[1:] if argv is None else list(argv))


def _run(argv):
    args = parse_args(argv)
    set_quiet(args.quiet)
    files.check_folder(args.out)
    with files.FolderLock(args.out, command="python -m hsr_keras.compare"):  # one comparison per folder
        run(args, argv=argv)
    return 0


# Over 80 lines: the command's whole recipe (check, train or reuse, evaluate, write), read top to bottom.
def run(args, argv=None):
    """Trains what is missing, evaluates, prints and writes both tables; returns the evaluation report."""
    from hsr_keras.evaluation import reports
    from hsr_keras.evaluation.engine import (
        add_reference_ratio,
        as_ensemble,
        baseline_methods,
        check_batching,
        check_members_fit,
        evaluate_methods,
        load_model_method,
        parse_baselines,
    )
    from hsr_keras.training.demo_data import make_demo_data
    from tfrecords_builder.contract.manifest import manifest_path, read_manifest

    start = time.time()
    keys = parse_methods(args.methods)
    if args.epochs is not None and args.epochs < 1:
        raise CompareError(f"--epochs must be >= 1. Received: {args.epochs}")
    if args.seeds < 1:
        raise CompareError(f"--seeds must be >= 1. Received: {args.seeds}")
    baselines = parse_baselines(args.baselines)  # fail before any training
    check_batching(args.batch_size, args.samples)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else make_demo_data(out / "data", verbose=not args.quiet)
    manifest = read_manifest(data)
    if args.split not in manifest["splits"]:
        raise CompareError(f"split {args.split!r} is not in the manifest; it has {sorted(manifest['splits'])}")
    check_members_fit(manifest, args.batch_size, args.samples)
    sha = files.sha256_of(manifest_path(data))

    configs = {key: run_config(key, args.preset, args.epochs) for key in keys}  # may refuse: before training
    labels, timings, groups = {}, {}, {}  # by run id; groups: method label -> its seed runs' labels
    for key in keys:
        for run_id, label, config in seed_runs(key, configs[key], args.seeds):
            seconds, reused = train_or_reuse(
                key, config, data, out / "models" / run_id, sha, verbose=not args.quiet, retrain=args.retrain
            )
            labels[run_id] = label
            groups.setdefault(RUNS[key][0], []).append(label)
            timings[run_id] = {
                "train_seconds": round(seconds, 1),
                "reused": reused,
                "epochs": config.epochs,
                "seed": config.seed,
            }

    eval_start = time.time()
    methods = [as_ensemble(method, args.samples) for method in baseline_methods(baselines, manifest)]
    for run_id, label in labels.items():
        methods.append(load_model_method(label, out / "models" / run_id, args.batch_size, args.samples))
    report = add_reference_ratio(evaluate_methods(manifest, args.split, methods, args.batch_size))
    evaluation = out / "evaluation"
    written = reports.write_outputs(report, manifest, evaluation)
    eval_seconds = time.time() - eval_start

    spread = seed_spread(report, groups) if args.seeds > 1 else None
    total = time.time() - start
    text = format_compare(report, labels, spread, args.seeds, timings, eval_seconds, total)
    files.write_text(out / "compare.md", "```\n" + text + "```\n")
    command = ["python", "-m", "hsr_keras.compare"] + list(argv or [])
    settings = reports.settings_record(args.batch_size, args.samples, baselines)
    compared = {
        "command": command,
        "methods": labels,
        "timings": timings,
        "evaluation_seconds": round(eval_seconds, 1),
        "total_seconds": round(total, 1),
        "preset": args.preset,
        "seeds": args.seeds,
        "seed_spread": spread,
    }
    reports.write_results(
        evaluation, report, methods, manifest_path(data), command, settings, written, compare=compared
    )
    print(f"\n{text}")
    if not args.quiet:
        print(
            f"Outputs in {out}/: compare.md, models/<method>/, evaluation/ (table.md, table.csv, monthly.png, "
            "spectra.png, maps/, results.json)"
        )
    return report


if __name__ == "__main__":
    sys.exit(main())
