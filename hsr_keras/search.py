"""The hyper-parameter search of `python -m hsr_keras.tune`: space, hyper-model, tuner, reports.

`search_space` names the tuned Config fields and their ranges; `GANHyperModel` builds and
trains a trial's `SuperResolutionGAN` with `hsr_keras.training` (the recipe `fit` uses);
`make_tuner` makes the KerasTuner tuner; `write_reports` writes the trial tables, the plot
and the best trial's full config.
"""

import csv
import dataclasses
import math

import keras
import keras_tuner

from hsr_keras.training import build_gan, dataset_inputs, steps_per_epoch

TUNERS = ("random", "bayesian", "hyperband")
# Validation logs of `SuperResolutionGAN.test_step` and the direction that improves them.
OBJECTIVES = {"val_content_loss": "min", "val_mse": "min", "val_psnr": "max", "val_ssim": "max"}
# The "small" space: quick trials that leave the networks as the base config has them.
SMALL_SPACE = ("g_learning_rate", "d_learning_rate", "adversarial_weight", "critic_steps")
# Parameters a base config does not use, left out of its space: (field, value) -> names.
UNUSED = {
    # The generator alone on the L1 loss: no critic, and with Adam a loss weight changes nothing.
    ("loss", "content"): ("d_learning_rate", "content_weight", "adversarial_weight", "critic_steps", "gp_weight"),
    ("loss", "gan"): ("gp_weight",),
    ("architecture", "srcnn"): ("filters", "num_res_blocks", "noise_stddev"),
    ("architecture", "srgan"): ("noise_stddev",),
}
# KerasTuner's project folder under the search's output folder.
PROJECT = "tuner"


# -- the search space ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Param:
    """One tuned Config field: a float or int range, or a list of choices."""

    name: str
    kind: str  # "float", "int" or "choice"
    low: float = None
    high: float = None
    values: tuple = ()
    log: bool = False
    step: float = None
    default: object = None

    def declare(self, hp):
        """Register the parameter on a `keras_tuner.HyperParameters` and return its value."""
        if self.kind == "choice":
            return hp.Choice(self.name, list(self.values), default=self.default)
        sampling = "log" if self.log else "linear"
        if self.kind == "int":
            return hp.Int(self.name, int(self.low), int(self.high), sampling=sampling, default=self.default)
        return hp.Float(self.name, self.low, self.high, step=self.step, sampling=sampling, default=self.default)

    def describe(self):
        if self.kind == "choice":
            return "one of " + ", ".join(str(v) for v in self.values)
        text = f"{self.low:g} .. {self.high:g}"
        if self.step:
            text += f" step {self.step:g}"
        return text + (" (log)" if self.log else "")


def search_space(base, space="full"):
    """The tuned parameters, named after their Config fields: the one home of the ranges.

    Optimiser and loss settings get fixed ranges that hold the paper's values (and the demo
    preset's); the generator's width and depth are sized around the base config's, so the
    same space suits the paper's 128-filter network and the demo's 32-filter one. Each
    parameter's default (the value KerasTuner starts from) is the base config's, clamped
    into the range. Parameters the base does not use (`UNUSED`: the critic's with the
    content loss, the paper generator's with SRCNN) are left out.

    Args:
        base: the `Config` trials start from.
        space: "full" (every parameter below), "small" (learning rates, adversarial weight
            and critic steps 1-2 with the architecture fixed: fast smoke runs) or a
            comma-separated list of parameter names.

    Returns:
        {name: Param}, in a fixed order.
    """
    half, double = max(2, 2 * round(base.filters / 4)), 2 * base.filters
    full = [
        # Two time-scale update rule: separate generator and critic rates.
        Param("g_learning_rate", "float", 1e-5, 3e-3, log=True),
        Param("d_learning_rate", "float", 1e-5, 3e-3, log=True),
        # With Adam only the ratio of the two generator weights matters, so the content
        # weight moves over a narrow linear range and the adversarial weight over decades.
        Param("content_weight", "float", 0.5, 2.0),
        Param("adversarial_weight", "float", 1e-4, 1e-1, log=True),
        Param("critic_steps", "int", 1, 5),
        Param("gp_weight", "float", 1.0, 30.0, log=True),
        Param("filters", "choice", values=tuple(sorted({half, base.filters, double}))),
        Param("num_res_blocks", "int", base.num_res_blocks // 2, max(2 * base.num_res_blocks, 1)),
        Param("noise_stddev", "float", 0.0, 0.3, step=0.05),
    ]
    params = {p.name: p for p in full}
    unused = {name for (field, value), names in UNUSED.items() if getattr(base, field, None) == value for name in names}
    if space == "full":
        names = [name for name in params if name not in unused]
    elif space == "small":
        names = [name for name in SMALL_SPACE if name not in unused]
        params["critic_steps"] = Param("critic_steps", "int", 1, 2)
    else:
        names = [n.strip() for n in space.split(",") if n.strip()]
        unknown = [n for n in names if n not in params]
        if unknown or not names:
            raise ValueError(
                f"--space must be 'full', 'small' or a comma-separated list of {', '.join(params)}. "
                f"Received: space={space!r}"
            )
        if unused.intersection(names):
            raise ValueError(
                f"--space names {', '.join(sorted(unused.intersection(names)))}, which this base config "
                f"(architecture={getattr(base, 'architecture', 'paper')}, loss={base.loss}) does not use"
            )
    return {name: _with_default(params[name], getattr(base, name)) for name in names}


def _with_default(param, value):
    if param.kind == "choice":
        default = value if value in param.values else param.values[0]
    else:
        default = min(max(value, param.low), param.high)
        if param.step:  # on the grid KerasTuner samples from
            default = param.low + round((default - param.low) / param.step) * param.step
        default = int(default) if param.kind == "int" else float(default)
    return dataclasses.replace(param, default=default)


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
            raise ValueError(f"unknown objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
        if "val" not in manifest["splits"]:
            raise ValueError(
                f"the build at {manifest.get('_dir')} has no 'val' split, which the search scores trials on"
            )
        if base.scale != manifest["scale"]:
            raise ValueError(
                f"config scale {base.scale} does not match the data's scale {manifest['scale']}: "
                f"set scale: {manifest['scale']} in the config"
            )
        self.base = base
        self.manifest = manifest
        self.space = space
        self.params = search_space(base, space)
        self.objective = keras_tuner.Objective(objective, direction=OBJECTIVES[objective])

    def declare_hyperparameters(self, hp):
        for param in self.params.values():
            param.declare(hp)

    def config_for(self, hp):
        """The base config with the tuned fields replaced by `hp`'s values (`HyperParameters` or dict)."""
        values = hp if isinstance(hp, dict) else hp.values
        casts = {"int": int, "float": float, "choice": lambda v: v}
        changes = {name: casts[param.kind](values[name]) for name, param in self.params.items() if name in values}
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
        callbacks = [keras.callbacks.TerminateOnNaN(), *(kwargs.pop("callbacks", None) or [])]
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
        raise ValueError(f"unknown tuner {name!r}: choose one of {', '.join(TUNERS)}")
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


# -- reports ---------------------------------------------------------------------------------


def trial_rows(tuner, hypermodel):
    """One dict per trial, in trial order: id, status, each tuned value, epochs, objective, best epoch."""
    objective = tuner.oracle.objective.name
    rows = []
    for trial_id in sorted(tuner.oracle.trials, key=lambda t: (_trial_number(t, 0), t)):
        trial = tuner.oracle.trials[trial_id]
        config = hypermodel.config_for(trial.hyperparameters)
        row = {"trial": trial_id, "status": trial.status}
        row.update({name: getattr(config, name) for name in hypermodel.params})
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
    with open(out / "trials.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    config, trial = best_config(tuner, hypermodel, settings)
    best_id = None if trial is None else trial.trial_id
    marked = [{**row, "status": row["status"] + (" (best)" if row["trial"] == best_id else "")} for row in rows]
    lines = [f"# Trials: {settings['tuner']} search, {objective} ({OBJECTIVES[objective]})", ""]
    lines += [markdown_table(marked, columns), ""]
    if config is not None:
        temporary = out / ".best_config.json.tmp"
        config.save(temporary)
        temporary.replace(out / "best_config.json")  # never half a file
        lines.append(f"Best: trial {trial.trial_id}, {objective} = {trial.score:.6g}.")
    else:
        (out / "best_config.json").unlink(missing_ok=True)
        lines.append(f"No trial completed: see the messages in {out / PROJECT}/trial_*/trial.json.")
    (out / "trials.md").write_text("\n".join(lines) + "\n")
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

    from hsr_keras.plots import pyplot, save_figure

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
