"""`python -m hsr_keras.evaluate`: the paper's Table 3 on any split, with its figures.

Scores trained generators and interpolation baselines with the metric card of
`hsr_keras.scoring.metrics` (all in %RH on the HR grid) on one split of a `tfrecords_builder` build,
and writes into `--out`:

    table.md, table.csv   Table 3 layout: one row per method; MSE, MAE, SSIM, PSNR, ACC, TCC,
                          then PSNR (pooled), bias, ACC (anomaly), the ratio of aligned
                          bicubic's MSE to the method's, its power over the truth's in two
                          bands above the LR grid's Nyquist wavenumber, the lattice (roughness
                          at the LR sample points over that elsewhere) beside the truth's, and
                          CRPS / spread for ensembles
    monthly.csv, monthly.png    per-month means of each metric per method (paper Fig. 9);
                          a day belongs to the month of its first time step
    spectra.csv, spectra.png    radially averaged power spectrum of each method and of the
                          truth, averaged over every frame of the split (log-log)
    maps/<date>.png       LR, truth, each method and its error on shared colour scales with
                          lat/lon axes, for a few fixed days (paper Fig. 10)
    results.json          every number above and what produced it: the metric card, the
                          manifest path and sha256, split, level, models (with the config.json
                          of their fit folder), code version and the command line

Baselines (`--baselines`, comma separated): bilinear, bicubic, lanczos interpolate from the LR
points' true coordinates onto the HR grid ("aligned", the fair baselines); bilinear-naive,
bicubic-naive, lanczos-naive are a plain image resize, which misplaces a stride-8 grid by 3.5
HR cells ("naive resize", kept to show the difference); "aligned", "naive", "all" (default)
and "none" name groups.

The split is streamed batch by batch through metric accumulators: memory does not grow with
the number of days.

Ensembles (`--samples N`, N > 1): each model draws N members per LR field. The paper's
generator adds Gaussian noise after its stem, which Keras applies only when the model is called
with training=True (which would also switch batch normalisation to batch statistics): it is
cloned with its `GaussianNoise` layers replaced by an always-on noise layer, every other layer
(and weight) shared and called in inference mode. A generator with `noise: texture` draws a new
member on every call anyway (with `--samples 1` the table scores one member). The draws are
seeded by `--seed`. The table then scores the ensemble mean (MSE, MAE, SSIM, ... of the mean)
and adds the ensemble scores: fair CRPS, spread, spread-skill ratio (with the finite-ensemble
correction), rank-histogram flatness (the histograms in rank_histograms.csv/.png), and the
members' band power and lattice. A model without noise and every interpolation baseline count
as N identical members (spread 0, CRPS = MAE).
"""

import argparse
import sys
from pathlib import Path

from hsr_keras.evaluation.engine import MAP_DAYS, EvaluationError
from hsr_keras.models.model_files import GENERATOR_FILE
from hsr_keras.training.data import CHEAP_CHECK_BYTES
from tfrecords_builder.contract.console import run_command, set_quiet


def parse_model_arg(text):
    """`NAME=PATH` (or a bare PATH, named after its folder or file) -> (name, path)."""
    if "=" in text:
        name, path = text.split("=", 1)
        name, path = name.strip(), path.strip()
        if not name or not path:
            raise EvaluationError(f"--model takes NAME=PATH. Received: {text!r}")
        return name, path
    path = Path(text)
    return (path.parent.name if path.name == GENERATOR_FILE else path.stem or path.name), text


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hsr_keras.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="build folder holding manifest.json (or the manifest itself)")
    parser.add_argument("--split", default="test", help="split to evaluate. Default: test")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a trained generator: a .keras file, a fit output folder (its generator.keras and config.json), "
        "a SavedModel version folder or saved_models/<name>/ (latest version); repeat for several. "
        "NAME is the table row",
    )
    parser.add_argument(
        "--baselines",
        default="all",
        help="comma-separated interpolation baselines: bilinear, bicubic, lanczos (aligned), "
        "bilinear-naive, bicubic-naive, lanczos-naive (image resize), or the groups aligned, naive, "
        "all, none. Default: all",
    )
    parser.add_argument("--out", default="runs/evaluate", help="output folder. Default: runs/evaluate")
    parser.add_argument("--batch-size", type=int, default=8, help="days per streamed batch. Default: 8")
    parser.add_argument(
        "--samples",
        type=int,
        default=1,
        help="members drawn per model with its noise active (batch norm stays in inference mode); "
        "> 1 scores the ensemble mean and adds the ensemble scores (CRPS, spread, spread-skill, rank "
        "flatness, member power and lattice); interpolation counts as N identical members. Default: 1",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise draws. Default: 0")
    parser.add_argument("--level", type=float, help="pressure level (hPa) to evaluate. Default: the build's first")
    parser.add_argument(
        "--maps",
        type=int,
        default=MAP_DAYS,
        help=f"days, evenly spread over the split, drawn as maps (0: none). Default: {MAP_DAYS}",
    )
    parser.add_argument("--map-dates", nargs="+", metavar="YYYY-MM-DD", help="draw these days instead")
    parser.add_argument("--map-step", type=int, help="time step of a day drawn in the maps. Default: the middle one")
    parser.add_argument(
        "--verify-shards",
        action="store_true",
        help="read every shard of the split whole before evaluating: its sha256 where the manifest records it, "
        f"else its GZIP checksum (default: sizes only, and checksums when the split is at most "
        f"{CHEAP_CHECK_BYTES >> 20} MiB)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser.parse_args(argv)


def main(argv=None):
    """Command line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    return run_command(_run, list(sys.argv[1:] if argv is None else argv))


def _run(argv):
    args = parse_args(argv)
    set_quiet(args.quiet)
    run(args, argv=argv)
    return 0


def run(args, argv=None):
    """Evaluates per `args` (see `parse_args`), writes every output; returns the report.

    Every input is checked before any model is loaded: the manifest, split, level and map
    dates, the model paths, the output folder (locked: one evaluation writes it at a time),
    and the shards of the split (`hsr_keras.training.data.check_shards`).
    """
    from hsr_keras.evaluation.engine import check_batching, check_map_dates, check_members_fit, parse_baselines
    from hsr_keras.models.model_files import resolve
    from tfrecords_builder.contract import files
    from tfrecords_builder.contract.manifest import read_manifest

    check_batching(args.batch_size, args.samples)
    manifest = read_manifest(args.data)
    if args.split not in manifest["splits"]:
        raise EvaluationError(f"split {args.split!r} is not in the manifest; it has {sorted(manifest['splits'])}")
    levels = manifest.get("levels") or []
    if args.level is not None and levels and not any(abs(args.level - v) < 1e-3 for v in levels):
        raise EvaluationError(f"level {args.level:g} is not in the build; it has {levels}")
    if args.map_dates:
        check_map_dates(args.map_dates, manifest, args.split, args.level)
    check_members_fit(manifest, args.batch_size, args.samples)
    keys = parse_baselines(args.baselines)
    model_specs = [parse_model_arg(text) for text in args.model]
    names = [name for name, _ in model_specs]
    if len(set(names)) != len(names):
        raise EvaluationError(f"model names must be unique. Received: {names}")
    for _, path in model_specs:  # check every path before loading any model
        resolve(path)
    files.check_folder(args.out)
    with files.FolderLock(args.out, command="python -m hsr_keras.evaluate"):  # one evaluation per folder
        return _evaluate(args, argv, manifest, keys, model_specs, levels)


def _evaluate(args, argv, manifest, keys, model_specs, levels):
    """The part of `run` under the lock of --out: load the models, evaluate, write the outputs."""
    from hsr_keras.evaluation import reports
    from hsr_keras.evaluation.engine import (
        add_reference_ratio,
        as_ensemble,
        baseline_methods,
        evaluate_methods,
        load_model_method,
    )
    from hsr_keras.training.data import check_shards
    from tfrecords_builder.contract.manifest import manifest_path

    check_shards(manifest, args.split, checksums=args.verify_shards)
    methods = [as_ensemble(method, args.samples) for method in baseline_methods(keys, manifest)]
    for name, path in model_specs:
        methods.append(load_model_method(name, path, args.batch_size, args.samples, args.seed))
    if not methods:
        raise EvaluationError("nothing to evaluate: give --model NAME=PATH and/or --baselines")
    if not args.quiet and len(levels) > 1 and args.level is None:
        print(f"note: the build has levels {levels}; evaluating {levels[0]:g} hPa (use --level)", file=sys.stderr)

    report = evaluate_methods(
        manifest,
        args.split,
        methods,
        args.batch_size,
        args.level,
        map_days=args.maps,
        map_dates=args.map_dates,
        map_step=args.map_step,
        verbose=not args.quiet,
    )
    add_reference_ratio(report)
    out = Path(args.out)
    written = reports.write_outputs(report, manifest, out)
    settings = reports.settings_record(
        args.batch_size, args.samples, keys, args.seed, args.maps, args.map_dates, args.map_step
    )
    command = ["python", "-m", "hsr_keras.evaluate"] + list(argv if argv is not None else [])
    results = reports.write_results(out, report, methods, manifest_path(args.data), command, settings, written)
    if not args.quiet:
        print(f"\n{reports.caption(report)}\n")
        print(reports.format_table(report, markdown=False))
        print(f"\nOutputs in {out}/: {', '.join(results['files'][:6])}{', ...' if len(results['files']) > 6 else ''}")
    return report


if __name__ == "__main__":
    sys.exit(main())
