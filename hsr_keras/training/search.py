"""The hyper-parameter search of `python -m hsr_keras.tune`: hyper-model, tuner, reports.

`hsr_keras.training.search_space.search_space` names the tuned Config fields and their ranges (a
module of its own, free of Keras, for `tune --help`); `GANHyperModel` builds and
trains a trial's `SuperResolutionGAN` with `hsr_keras.training.trainer` (the recipe `fit` uses);
`make_tuner` makes the KerasTuner tuner; `write_reports` writes the trial tables, the plot
and the best trial's full config.
"""

import csv
import math

import keras
import keras_tuner

from hsr_keras.choices import OBJECTIVES, TUNERS
from hsr_keras.models import losses
from hsr_keras.training.callbacks import StopOnNonFinite
from hsr_keras.training.config import LOSS_WEIGHT_FIELDS
from hsr_keras.training.search_space import SearchError, search_space, with_default
from hsr_keras.training.trainer import FineTuning, build_gan, dataset_inputs, steps_per_epoch
from tfrecords_builder.contract import files

# KerasTuner's project folder under the search's output folder.
PROJECT = "tuner"


# -- the hyper-model -------------------------------------------------------------------------


class GANHyperModel(keras_tuner.HyperModel):
    """Builds and trains `SuperResolutionGAN`s whose tuned Config fields come from `hp`.

    Args:
        base: the `Config` every trial starts from; its `epochs` sets the length of a
            trial and of its learning-rate schedule.
        manifest: a loaded manifest (`read_manifest`) of a build with "train" and "val" splits.
        space: "full", "small" or a comma-separated list of names; see `search_space`.
            Defaults to `"full"`.
        objective: the validation log trials are scored on, one of `OBJECTIVES`.
            Defaults to `"val_content_loss"`.
        name: the hyper-model name. Defaults to `"wgan_gp"`.

    Example:
        >>> hypermodel = GANHyperModel(load_config(preset="demo"), read_manifest(data))
        >>> tuner = keras_tuner.RandomSearch(
        ...     hypermodel, objective=hypermodel.objective, max_trials=4, directory="runs")
        >>> tuner.search(epochs=2)
    """

    def __init__(self, base, manifest, space="full", objective="val_content_loss", name="wgan_gp"):
        super().__init__(name=name)
        if objective not in OBJECTIVES:
            raise SearchError(f"unknown objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
        if "val" not in manifest["splits"]:
            raise SearchError(
                f"the build at {manifest.get('_dir')} has no 'val' split, which the search scores trials on"
            )
        self.base = base
        self.manifest = manifest
        self.space = space
        self.params = start_values(search_space(base, space), base)
        self.objective = keras_tuner.Objective(objective, direction=OBJECTIVES[objective])

    def declare_hyperparameters(self, hp):
        for param in self.params.values():
            param.declare(hp)

    def config_for(self, hp):
        """The base config with the tuned fields replaced by `hp`'s values (`HyperParameters` or dict)."""
        values = hp if isinstance(hp, dict) else hp.values
        casts = {"int": int, "float": float, "choice": lambda v: v}
        changes = {name: casts[param.kind](values[name]) for name, param in self.params.items() if name in values}
        # The crps term compares members: with one member per sequence a trial trains without it.
        members = changes.get("ensemble_size", self.base.ensemble_size)
        if members < 2 and (changes.get("crps_weight") or self.base.loss_weights.get("crps")):
            changes["crps_weight"] = 0.0
        return self.base.replace(**changes)

    def build(self, hp):
        self.declare_hyperparameters(hp)
        config = self.config_for(hp)
        # Same seed, same initial weights: a trial is rebuilt exactly from its config.
        keras.utils.set_random_seed(config.seed)
        keras.mixed_precision.set_global_policy(config.precision)
        return build_gan(config, self.manifest, steps_per_epoch(self.manifest, config.batch_size))

    def fit(self, hp, model, *args, **kwargs):
        """Train on the train split, validate on the val split; returns the `History`.

        The datasets come from the build, so `Tuner.search` passes only keyword arguments
        (`epochs`, `verbose`; KerasTuner adds `callbacks`, Hyperband `initial_epoch`).
        Epochs with a non-finite objective count as its worst value; a trial with none
        finite is reported to KerasTuner as failed.
        """
        if args:
            raise TypeError("GANHyperModel.fit takes its datasets from the build: pass keyword arguments only")
        config = self.config_for(hp)
        kwargs.setdefault("epochs", config.epochs)
        # Any non-finite log (Keras' TerminateOnNaN reads only "loss", which this model does not
        # log) ends the trial after that epoch, whose non-finite objective counts as its worst.
        # FineTuning: a config with pretrain_epochs switches to its adversarial loss, as in `train`.
        steps = steps_per_epoch(self.manifest, config.batch_size)
        callbacks = [
            StopOnNonFinite(raise_error=False),
            FineTuning(config, steps),
            *(kwargs.pop("callbacks", None) or []),
        ]
        history = model.fit(**dataset_inputs(config, self.manifest), callbacks=callbacks, **kwargs)
        scrub_non_finite(history, self.objective)
        return history


def scrub_non_finite(history, objective):
    """Replace NaN/inf values of the objective by its worst value; raise if none is finite."""
    values = history.history.get(objective.name)
    if values is None:
        return
    worst = math.inf if objective.direction == "min" else -math.inf
    if not any(math.isfinite(v) for v in values):
        raise keras_tuner.errors.FailedTrialError(
            f"training diverged: no finite {objective.name} in {len(values)} epoch(s)"
        )
    history.history[objective.name] = [v if math.isfinite(v) else worst for v in values]


def make_tuner(name, hypermodel, max_trials, epochs, out, *, executions=1, seed=0, overwrite=False):
    """A KerasTuner tuner on `hypermodel.objective`, its project in `out/tuner` (reloaded unless `overwrite`)."""
    if name not in TUNERS:
        raise SearchError(f"unknown tuner {name!r}: choose one of {', '.join(TUNERS)}")
    common = dict(
        hypermodel=hypermodel,
        objective=hypermodel.objective,
        seed=seed,
        executions_per_trial=executions,
        directory=str(out),
        project_name=PROJECT,
        overwrite=overwrite,
    )
    if name == "random":
        return keras_tuner.RandomSearch(max_trials=max_trials, **common)
    if name == "bayesian":
        return keras_tuner.BayesianOptimization(max_trials=max_trials, **common)
    tuner = keras_tuner.Hyperband(max_epochs=epochs, factor=3, hyperband_iterations=1, **common)
    tuner.oracle.max_trials = max_trials  # a cap on the brackets' trials; None: no cap
    return tuner


def start_values(params, base):
    """`params` with the loss weights the base leaves at their defaults starting from those defaults.

    `search_space` is Keras-free (`tune --help` lists it) and so cannot know a term's default
    weight, which lives with the term in `losses.GENERATOR_TERMS`.
    """
    weights = losses.term_weights(base.loss_weights)
    return {
        name: param
        if param.default is not None or name not in LOSS_WEIGHT_FIELDS
        else with_default(param, weights[LOSS_WEIGHT_FIELDS[name]])
        for name, param in params.items()
    }


# -- reports ---------------------------------------------------------------------------------


def trial_rows(tuner, hypermodel):
    """One dict per trial, in trial order: id, status, each tuned value, epochs, objective, best epoch."""
    objective = tuner.oracle.objective.name
    rows = []
    for trial_id in sorted(tuner.oracle.trials, key=lambda t: (_trial_number(t, 0), t)):
        trial = tuner.oracle.trials[trial_id]
        config = hypermodel.config_for(trial.hyperparameters)
        row = {"trial": trial_id, "status": trial.status}
        row.update({name: config.value(name) for name in hypermodel.params})
        row["epochs"] = trial.hyperparameters.values.get("tuner/epochs", config.epochs)
        score = trial.score if trial.status == "COMPLETED" else None
        row[objective] = score
        row["best_epoch"] = None if score is None or trial.best_step is None else int(trial.best_step) + 1
        rows.append(row)
    return rows


def best_config(tuner, hypermodel, settings):
    """The best completed trial's full config, with where it came from in `notes["tune"]`; None if none completed."""
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    if not completed:
        return None, None
    trial = tuner.oracle.get_best_trials(1)[0]
    config = hypermodel.config_for(trial.hyperparameters)
    notes = dict(config.notes)
    notes["tune"] = {
        "tuner": settings["tuner"],
        "objective": settings["objective"],
        "direction": OBJECTIVES[settings["objective"]],
        "trial": trial.trial_id,
        "score": float(trial.score),
        "best_epoch": None if trial.best_step is None else int(trial.best_step) + 1,
        "trials_completed": len(completed),
        "tuned": sorted(hypermodel.params),
        "data": settings["data"],
    }
    return config.replace(notes=notes), trial


def write_reports(tuner, hypermodel, out, settings):
    """best_config.json, trials.csv, trials.md and trials.png in `out`; returns the text to print."""
    objective = settings["objective"]
    rows = trial_rows(tuner, hypermodel)
    columns = ["trial", "status", *hypermodel.params, "epochs", objective, "best_epoch"]
    with files.publishing(out / "trials.csv") as temporary, open(temporary, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    config, trial = best_config(tuner, hypermodel, settings)
    best_id = None if trial is None else trial.trial_id
    marked = [{**row, "status": row["status"] + (" (best)" if row["trial"] == best_id else "")} for row in rows]
    lines = [f"# Trials: {settings['tuner']} search, {objective} ({OBJECTIVES[objective]})", ""]
    lines += [markdown_table(marked, columns), ""]
    if config is not None:
        config.save(out / "best_config.json")
        lines.append(f"Best: trial {trial.trial_id}, {objective} = {trial.score:.6g}.")
    else:
        (out / "best_config.json").unlink(missing_ok=True)
        lines.append(f"No trial completed: see the messages in {out / PROJECT}/trial_*/trial.json.")
    files.write_text(out / "trials.md", "\n".join(lines) + "\n")
    plot_trials(rows, objective, OBJECTIVES[objective], hypermodel.base, out / "trials.png")

    report = ["", *lines, "", f"Outputs in {out}/:"]
    if config is not None:
        report.append(f"  best_config.json  the best trial's full config (epochs = {config.epochs}, the trial length)")
    report += [
        "  trials.csv, trials.md, trials.png  every trial",
        f"  {PROJECT}/  KerasTuner's project (run the same command again to resume or extend it)",
    ]
    if config is not None:
        report.append(
            f"Train it: python -m hsr_keras.fit --data {settings['data']} --config {out / 'best_config.json'} "
            "[--epochs N for a full run]"
        )
    return "\n".join(report)


def _format(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows, columns):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_format(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def plot_trials(rows, objective, direction, base, path):
    """Objective per trial with the best so far, and the objective against both learning rates."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    from hsr_keras.scoring.plots import pyplot, save_figure

    plt = pyplot()

    scores = np.array([np.nan if r[objective] is None else r[objective] for r in rows], dtype=float)
    trial = np.array([_trial_number(r["trial"], i) for i, r in enumerate(rows)], dtype=float)
    ok = np.isfinite(scores)
    pick = np.fmin if direction == "min" else np.fmax
    best = pick.accumulate(scores) if len(rows) else scores

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    ax.plot(trial[ok], scores[ok], "o", label="trial")
    ax.step(trial, best, where="post", color="C3", label="best so far")
    if (~ok).any():
        worst = np.nanmax if direction == "min" else np.nanmin
        failed_at = worst(scores) if ok.any() else 0.0
        ax.plot(trial[~ok], np.full((~ok).sum(), failed_at), "x", color="grey", label="failed (drawn at the worst)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{objective} ({direction})")
    ax.legend()
    for ax, name in zip(axes[1:], ("g_learning_rate", "d_learning_rate")):
        rates = np.array([r.get(name, getattr(base, name)) for r in rows], dtype=float)
        points = ax.scatter(np.log10(rates[ok]), scores[ok], c=trial[ok], cmap="viridis")
        ax.set_xlabel(f"log10 {name}" + ("" if rows and name in rows[0] else " (not tuned)"))
        ax.set_ylabel(objective)
    for ax in axes:
        ax.ticklabel_format(axis="y", useOffset=False)
    if ok.any():
        fig.colorbar(points, ax=axes[2], label="trial", ticks=MaxNLocator(integer=True))
    fig.suptitle(f"{len(rows)} trials, {int(ok.sum())} completed")
    fig.tight_layout()
    save_figure(fig, path)


def _trial_number(trial_id, index):
    return int(trial_id) if str(trial_id).isdigit() else index
