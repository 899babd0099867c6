"""`python -m hsr_keras.tune`: KerasTuner search over the WGAN-GP's hyper-parameters.

Each trial starts from a base config (a preset, updated by --config), replaces the tuned
fields with the trial's values, builds the generator and critic with `hsr_keras.training.trainer.build_gan`,
trains on the build's train split and scores the validation split. The search space is
`hsr_keras.training.search.search_space`, sized from the base config so it suits both presets.

With no arguments it searches on built-in demo data (synthetic ERA5-like TFRecords under
--out/data) from the demo preset, small enough for a laptop CPU. With --data it searches
from the paper preset (a GPU job).

Everything lands in --out, which one search at a time writes (a second is refused at once):
tuner/ (KerasTuner's project: running the same command again resumes it; --overwrite starts
again), search.json (the settings the project was started with), best_config.json (the full resolved config of the best trial, which
`python -m hsr_keras.fit --config best_config.json` takes unchanged), trials.csv,
trials.md and trials.png (every trial's values and objective).
"""

import argparse
import json
import sys
from pathlib import Path

from hsr_keras.choices import OBJECTIVES, TUNERS
from hsr_keras.training.config import PRESETS, load_config
from hsr_keras.training.search_space import SMALL_SPACE, SearchError, search_space
from tfrecords_builder.contract import files
from tfrecords_builder.contract.console import EXIT_INTERNAL, EXIT_INTERRUPTED, one_line, run_command, set_quiet

# Defaults that depend on the data: small for the demo, a real search with --data.
DEFAULTS = {
    "demo": {"max_trials": 2, "epochs": 1, "space": "small", "out": "runs/tune-demo", "preset": "demo"},
    "data": {"max_trials": 20, "epochs": 10, "space": "full", "out": "runs/tune", "preset": "paper"},
}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hsr_keras.tune",
        description=__doc__,
        epilog=_space_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo, data = DEFAULTS["demo"], DEFAULTS["data"]
    parser.add_argument(
        "--data", help="build folder holding manifest.json (default: make the demo data under --out/data)"
    )
    parser.add_argument("--config", help="YAML or JSON file with any Config fields: the base every trial starts from")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help=f"base config's starting point: '{data['preset']}' (default with --data) or '{demo['preset']}' (default without)",
    )
    parser.add_argument("--out", help=f"output folder (default: {demo['out']} without --data, {data['out']} with)")
    parser.add_argument(
        "--tuner",
        default="random",
        help=f"search algorithm: {', '.join(TUNERS)} Default: random",
    )
    parser.add_argument(
        "--objective",
        default="val_content_loss",
        help="validation log to optimise: "
        + ", ".join(f"{name} ({direction})" for name, direction in OBJECTIVES.items())
        + ". Default: val_content_loss",
    )
    parser.add_argument(
        "--max-trials",
        type=int,
        help=f"trials to run in all, counting those of a resumed search (default: {demo['max_trials']} "
        f"without --data, {data['max_trials']} with; hyperband: a cap on its brackets, none by default)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help=f"epochs per trial, also the length of its learning-rate schedule; hyperband's max epochs "
        f"(default: {demo['epochs']} without --data, {data['epochs']} with)",
    )
    parser.add_argument(
        "--executions-per-trial", type=int, default=1, help="trainings per trial, objective averaged. Default: 1"
    )
    parser.add_argument(
        "--space",
        help="parameters to tune: 'full' (all, see below), 'small' (" + ", ".join(SMALL_SPACE) + " with "
        "critic_steps 1-2 and the architecture fixed: quick trials) or a comma-separated list of names "
        f"(default: {demo['space']} without --data, {data['space']} with)",
    )
    parser.add_argument("--batch-size", type=int, help="override the base config's batch size")
    parser.add_argument(
        "--seed", type=int, help="override the base config's seed (trial weights, shuffling and the tuner's sampling)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="delete --out/tuner and start again instead of resuming"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-trial tables")
    return parser.parse_args(argv)


def _space_help():
    spaces = {name: search_space(PRESETS[name]) for name in ("demo", "paper")}
    lines = ["search space (the full one; ranges sized from the base config where they depend on it):"]
    lines.append(f"  {'parameter':<20} {'from the demo preset':<34} from the paper preset")
    for name in spaces["paper"]:
        lines.append(f"  {name:<20} {spaces['demo'][name].describe():<34} {spaces['paper'][name].describe()}")
    lines.append("Each trial's untuned fields keep the base config's values; seeds come from its seed.")
    return "\n".join(lines)


def main(argv=None):
    return run_command(_run, argv)


class SearchFailed(Exception):
    """No trial completed, or KerasTuner stopped after consecutive failures: exit status 1, one line."""


def _run(argv):
    args = parse_args(argv)
    set_quiet(args.quiet)
    try:  # Keras, KerasTuner and TensorFlow load in `run`, after the arguments: --help answers at once
        return run(args)
    except SearchFailed as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("interrupted: the same command resumes the search", file=sys.stderr)
        return EXIT_INTERRUPTED


def run(args):
    mode = "demo" if args.data is None else "data"
    defaults = DEFAULTS[mode]
    if args.tuner not in TUNERS:
        raise SearchError(f"unknown tuner {args.tuner!r}: choose one of {', '.join(TUNERS)}")
    if args.objective not in OBJECTIVES:
        raise SearchError(f"unknown objective {args.objective!r}: choose one of {', '.join(OBJECTIVES)}")
    for option in ("max_trials", "epochs", "executions_per_trial", "batch_size"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise SearchError(f"--{option.replace('_', '-')} must be >= 1. Received: {value}")
    epochs = args.epochs or defaults["epochs"]
    max_trials = args.max_trials or (None if args.tuner == "hyperband" else defaults["max_trials"])
    out = Path(args.out or defaults["out"])

    base = load_config(
        args.config,
        preset=args.preset or defaults["preset"],
        epochs=epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    files.check_folder(out)
    with files.FolderLock(out, command=f"python -m hsr_keras.tune --out {out}"):  # one search per folder
        return _search(args, mode, base, epochs, max_trials, out)


def _search(args, mode, base, epochs, max_trials, out):
    """The search of `run`, under the lock of its folder: demo data, tuner, reports."""
    import keras

    from hsr_keras.training.demo_data import make_demo_data
    from hsr_keras.training.search import PROJECT, GANHyperModel, make_tuner, write_reports
    from tfrecords_builder.contract.manifest import read_manifest

    defaults = DEFAULTS[mode]
    if mode == "demo":
        data = make_demo_data(out / "data", verbose=not args.quiet)
    else:
        data = Path(args.data)
    manifest = read_manifest(data)
    hypermodel = GANHyperModel(base, manifest, space=args.space or defaults["space"], objective=args.objective)

    settings = {
        "tuner": args.tuner,
        "objective": args.objective,
        "epochs": epochs,
        "executions_per_trial": args.executions_per_trial,
        "space": {name: param.describe() for name, param in hypermodel.params.items()},
        "data": str(Path(manifest["_dir"]).resolve()),
        "base_config": base.to_dict(),
    }
    _check_same_search(out, settings, args.overwrite, PROJECT)

    tuner, stopped = None, None
    try:
        tuner = make_tuner(
            args.tuner,
            hypermodel,
            max_trials,
            epochs,
            out,
            executions=args.executions_per_trial,
            seed=base.seed,
            overwrite=args.overwrite,
        )
        files.write_text(out / "search.json", json.dumps(settings, indent=1) + "\n")
        tuner.search(epochs=epochs, verbose=0 if args.quiet else 1)
    except RuntimeError as err:  # KerasTuner: too many consecutive failed trials
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        stopped = f"the search stopped: {lines[0]} Last error: {lines[-1]}"
    finally:
        keras.mixed_precision.set_global_policy("float32")

    if tuner is None:
        raise SearchFailed(stopped)
    print(write_reports(tuner, hypermodel, out, settings))
    if stopped:
        raise SearchFailed(stopped)
    if not (out / "best_config.json").exists():
        raise SearchFailed(f"no trial completed: see {out / 'trials.md'} and {out / PROJECT}/trial_*/trial.json")
    return 0


def _check_same_search(out, settings, overwrite, project):
    """Refuse to resume a project that was started with other settings (its trials would not compare)."""
    path = out / "search.json"
    if overwrite or not path.exists() or not (out / project).exists():
        return
    try:
        before = json.loads(path.read_text())
    except ValueError as err:
        raise SearchError(f"{path} cannot be read ({err}): add --overwrite to start again") from None
    changed = sorted(key for key in settings if before.get(key) != settings[key])
    if changed:
        raise SearchError(
            f"{out / project} holds a search started with other {', '.join(changed)}: run the same command "
            "to resume it, add --overwrite to start again, or choose another --out"
        )


if __name__ == "__main__":
    sys.exit(main())
