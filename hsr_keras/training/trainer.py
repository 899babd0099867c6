"""The training library: demo data, the compiled GAN of a config, and a training run.

`python -m hsr_keras.fit` is `train` with arguments; `tune`, `compare`, the benchmarks and
the notebook call the same functions, so every model is trained by one recipe.

What a run promises (see `train`): bad input is refused before anything is written; a run
killed at any moment resumes with the same command and never replaces its best generator
with a worse one; a loss that turns NaN or infinite stops the run (`TrainingDiverged`)
without saving the diverged model; a finished run is not trained again unless asked to
(`overwrite=True`); nothing is written outside the output folder.
"""

import contextlib
import csv
import functools
import json
import math
import shutil
from pathlib import Path

import keras
import numpy as np

from hsr_keras.choices import STRATEGIES
from hsr_keras.models.model_files import CONFIG_FILE, GENERATOR_FILE, RUN_FILE
from hsr_keras.models.networks import build_networks
from hsr_keras.models.wgan import SuperResolutionGAN
from hsr_keras.scoring.plots import plot_history
from hsr_keras.training.callbacks import (
    BEST_RECORD,
    BestGeneratorCheckpoint,
    HistoryLog,
    SamplePlots,
    StopOnNonFinite,
    TrainingDiverged,
    read_best,
    remove_stale_temporaries,
    save_generator_atomic,
    write_text_atomic,
)
from hsr_keras.training.config import Config
from hsr_keras.training.data import load_split, make_dataset, read_errors
from hsr_keras.training.schedules import WarmupCosine
from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.manifest import read_manifest
from tfrecords_builder.contract.schema import MANIFEST_NAME
from tfrecords_builder.in_memory import InMemoryData
from tfrecords_builder.writer import writable

HISTORY_FILE = "history.csv"
CURVES_FILE = "training_curves.png"
EVALUATION_FILE = "evaluation.json"  # written by `python -m hsr_keras.fit` after training
BACKUP_DIR = "backup"
# What a run writes in its output folder, all of which `overwrite=True` removes first (the
# demo data that `fit` makes under <out>/data is not among them: it is kept and reused).
RUN_OUTPUTS = (
    CONFIG_FILE,
    RUN_FILE,
    GENERATOR_FILE,
    BEST_RECORD,
    HISTORY_FILE,
    CURVES_FILE,
    EVALUATION_FILE,
    "samples",
    "logs",
    BACKUP_DIR,
)

# The demo data: six months of synthetic files, four months to train on, one to validate, one to test.
DEMO_DATES = {
    "synthetic": ("2019-01-01", "2019-06-30"),
    "train": "2019-01-01:2019-04-30",
    "val": "2019-05-01:2019-05-31",
    "test": "2019-06-01:2019-06-30",
}


class TrainingError(InputError):
    """Bad input to a training run (its output folder, data or options): one line, exit status 2."""


def make_demo_data(folder, verbose=True):
    """Synthetic ERA5-like netCDF and its TFRecord build under `folder` (reused when present).

    Returns the build folder, `folder/tfrecords`. `verbose` shows the builder's progress bar
    and summary.
    """
    from tfrecords_builder import synthetic
    from tfrecords_builder.build import BuildConfig, build, summary

    folder = Path(folder)
    tfrecords = folder / "tfrecords"
    if (tfrecords / MANIFEST_NAME).exists():
        return tfrecords
    era5 = folder / "era5"
    start, end = DEMO_DATES["synthetic"]
    if not any(era5.glob("*.nc")):
        synthetic.write_synthetic(era5, start, end, interval_hours=3, seed=0)
    splits = {split: DEMO_DATES[split] for split in ("train", "val", "test")}
    config = BuildConfig(inputs=(str(era5),), out=str(tfrecords), quiet=not verbose, **splits)
    # The manifest records the command line that makes the same build from a shell.
    command = ["python", "-m", "tfrecords_builder", str(era5), "--out", str(tfrecords)]
    command += [f"--{split}={dates}" for split, dates in splits.items()] + ([] if verbose else ["--quiet"])
    manifest = build(config, command=command)
    if verbose:
        print(summary(manifest, tfrecords))
    return tfrecords


def steps_per_epoch(manifest, batch_size):
    """Training batches per epoch of a TFRecord build: whole batches of its train split, at least one."""
    return max(manifest["splits"]["train"]["examples"] // batch_size, 1)


def build_gan(config, manifest, steps_per_epoch, epoch=0):
    """Generator, critic and their training model for a config and a data build, compiled for epoch `epoch`.

    `epoch` (from 0) picks the phase the model is compiled for (`pretraining`); a run with
    pre-training needs `FineTuning` among its callbacks to switch to the config's loss.
    `steps_per_epoch` (generator updates per epoch) sizes the learning-rate schedules.
    """
    if config.scale != manifest["scale"]:
        raise TrainingError(
            f"config scale {config.scale} does not match the data's scale {manifest['scale']}: "
            f"set scale: {manifest['scale']} in the config"
        )
    height, width = manifest["hr_shape"][1:]
    if config.lattice_weight and min(height, width) <= 2 * config.scale:
        raise TrainingError(
            f"lattice_weight needs HR fields larger than 2 x scale = {2 * config.scale} cells to compare the "
            f"positions of whole LR cells; this data's are {height} x {width}: set lattice_weight: 0 in the config"
        )
    mean, std = manifest["stats"]["mean"], manifest["stats"]["std"]
    generator, critic = build_networks(config, mean, std)
    gan = SuperResolutionGAN(generator, critic, data_std=std, seed=config.seed)
    g_optimizer = _optimizer(config, config.g_learning_rate, steps_per_epoch, config.epochs)
    _compile(gan, config, g_optimizer, steps_per_epoch, epoch)
    return gan


def pretraining(config, epoch):
    """Whether epoch `epoch` (from 0) of a run of `config` trains the generator on the content loss alone."""
    return config.loss != "content" and epoch < config.pretrain_epochs


class FineTuning(keras.callbacks.Callback):
    """Switches a run from its content-only pre-training to the config's loss, at epoch `pretrain_epochs`.

    The model is compiled again, in the epoch's `on_epoch_begin`: the generator keeps its
    optimizer (state and schedule run over all the epochs), the critic's optimizer is new
    (its warm-up and decay run over the fine-tuning epochs). A no-op when the model already
    trains with the config's loss (a run resumed after the switch).
    """

    def __init__(self, config, steps_per_epoch):
        super().__init__()
        self.config = config
        self.steps_per_epoch = steps_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if pretraining(self.config, epoch) or self.model.loss_name == self.config.loss:
            return
        g_optimizer = self.model.g_optimizer
        if isinstance(g_optimizer, keras.optimizers.LossScaleOptimizer):
            # compile wraps it again: a wrapper's build makes new variables, not idempotent
            g_optimizer = g_optimizer.inner_optimizer
        strategy = getattr(self.model, "distribute_strategy", None)  # TensorFlow's: new variables belong in it
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            _compile(self.model, self.config, g_optimizer, self.steps_per_epoch, epoch)
        self.model.make_train_function()  # fit calls the model's train function of the moment


def _compile(gan, config, g_optimizer, steps_per_epoch, epoch):
    """Compile `gan` for epoch `epoch`'s phase; a critic optimizer is made for the adversarial one."""
    content_only = config.loss == "content" or pretraining(config, epoch)
    d_optimizer = None
    if not content_only:
        fine_tuning = config.epochs - config.pretrain_epochs
        d_optimizer = _optimizer(config, config.d_learning_rate, steps_per_epoch * config.critic_steps, fine_tuning)
    gan.compile(
        g_optimizer=g_optimizer,
        d_optimizer=d_optimizer,
        loss="content" if content_only else config.loss,
        gp_weight=config.gp_weight,
        content_weight=config.content_weight,
        adversarial_weight=config.adversarial_weight,
        lattice_weight=config.lattice_weight,
        critic_steps=config.critic_steps,
    )


def _optimizer(config, learning_rate, updates_per_epoch, epochs):
    """Adam with the paper's schedule: warm-up for `warmup_epochs`, cosine decay over the rest of `epochs`."""
    warmup = int(config.warmup_epochs * updates_per_epoch)
    schedule = WarmupCosine(
        learning_rate,
        decay_steps=max(epochs * updates_per_epoch - warmup, 1),
        warmup_steps=warmup,
        min_learning_rate=config.min_learning_rate,
    )
    return keras.optimizers.Adam(schedule, beta_1=config.beta_1, beta_2=config.beta_2)


def dataset_inputs(config, manifest):
    """`Model.fit` arguments for a TFRecord build: the train split shuffled and repeated, and the val split if any."""
    train_ds = make_dataset(
        manifest, "train", config.batch_size, shuffle=True, repeat=True, seed=config.seed, drop_remainder=True
    )
    val_ds = make_dataset(manifest, "val", config.batch_size) if "val" in manifest["splits"] else None
    # The dataset shuffles itself.
    return dict(
        x=train_ds,
        validation_data=val_ds,
        steps_per_epoch=steps_per_epoch(manifest, config.batch_size),
        shuffle=False,
    )


def train(config, data, out, strategy="default", verbose=1, extra_callbacks=(), overwrite=False):
    """Train; returns the history, the path of the best generator, its record and the data's manifest.

    `data` is a build folder (TFRecords through `tf.data`: TensorFlow) or an
    `tfrecords_builder.in_memory.InMemoryData` (numpy arrays: any Keras backend, no TensorFlow needed).
    Writes config.json, run.json, generator.keras (the best generator by val_mse, or by the
    training content loss when the data has no val split), best.json (its score and epoch),
    history.csv, training_curves.png, samples/, logs/ and backup/ in `out`, and nothing
    outside it.

    Before writing anything it checks the input (`check_run` and building the model): a
    failed start leaves `out` as it was (and creates no folder). A run killed and started
    again with the same arguments resumes from backup/ (the same config and data only); a
    finished run (generator.keras and no backup/) is refused unless `overwrite=True`, which
    removes the old outputs (`RUN_OUTPUTS`) first. Raises `TrainingError` (bad input) or
    `TrainingDiverged` (a NaN or infinite loss: the run stops at once, the best generator of
    the earlier epochs stays and no generator is saved from the diverged model).

    With `config.pretrain_epochs` = P > 0 and an adversarial loss, epochs 1..P train the
    generator on the content loss alone (their history rows have no critic columns and the
    critic is not touched), then `FineTuning` switches to the config's loss for the rest: one
    fit, one history.csv, the best generator of the fine-tuning epochs (by the same monitor), and a
    run killed in either phase resumes in it. The returned history is Keras' (the critic's
    logs have values for the fine-tuning epochs only).

    The run seeds Keras' global random generators with `config.seed` and sets the global
    precision policy to `config.precision`; the caller's policy is restored afterwards, also
    when training fails.
    """
    in_memory = isinstance(data, InMemoryData)
    if in_memory:
        manifest, source = data.manifest, "in memory"
    else:
        manifest = read_manifest(data)
        source = str(Path(manifest["_dir"]).resolve())
    out = Path(out)
    mode = check_run(config, manifest, out, strategy=strategy, source=source, overwrite=overwrite)
    # Compiled for the phase of the last epoch backed up, so that the backup's optimizer
    # state fits the model; FineTuning switches at the first epoch after the pre-training.
    resumed_at = _backed_up_epochs(out) if mode == "resume" else 0
    caller_policy = keras.mixed_precision.global_policy()
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    try:
        if in_memory:
            inputs, steps, samples = _array_inputs(config, data)
        else:
            inputs, steps = dataset_inputs(config, manifest), steps_per_epoch(manifest, config.batch_size)
            has_val = inputs["validation_data"] is not None
            samples = load_split(manifest, "val", limit=config.plot_samples) if has_val else None
        with _strategy_scope(strategy):
            gan = build_gan(config, manifest, steps, epoch=max(resumed_at - 1, 0))

        _prepare_folder(out, overwrite)
        config.save(out / CONFIG_FILE)
        write_text_atomic(out / RUN_FILE, json.dumps({"data": source}, indent=1) + "\n")
        generator_path = out / GENERATOR_FILE
        # The best generator: by val_mse, or by the training content loss without validation data.
        monitor = "val_mse" if inputs["validation_data"] is not None else "content_loss"
        cbs = [
            StopOnNonFinite(),  # first: a diverged epoch reaches none of the others
            *([FineTuning(config, steps)] if pretraining(config, 0) else []),
            HistoryLog(out / HISTORY_FILE),
            *_tensorboard(out / "logs"),
            BestGeneratorCheckpoint(
                generator_path, monitor=monitor, start_epoch=config.pretrain_epochs * pretraining(config, 0)
            ),
        ]
        if samples is not None:
            cbs.append(SamplePlots(*samples, manifest, out / "samples", every=config.plot_every))
        # Last: an epoch counts as done (for a resume) once its row, checkpoint and maps are written.
        cbs.append(keras.callbacks.BackupAndRestore(str(out / BACKUP_DIR), double_checkpoint=True))
        splits = [] if in_memory else ["train", "val"] if inputs["validation_data"] is not None else ["train"]
        try:
            with read_errors(manifest, splits):  # a shard found damaged while read: one line naming it
                history = gan.fit(
                    **inputs, epochs=config.epochs, callbacks=cbs + list(extra_callbacks), verbose=verbose
                )
        except TrainingDiverged as err:
            err.args = (f"{err}; {_kept(out)}",)
            raise
        if not generator_path.exists() and _finite_weights(gan.generator):  # no finite monitor value
            save_generator_atomic(gan.generator, generator_path)
        plot_history(out / HISTORY_FILE, out / CURVES_FILE)
    finally:
        keras.mixed_precision.set_global_policy(caller_policy)
    return {
        "history": history.history,
        "generator_path": generator_path,
        "best": read_best(out),
        "manifest": manifest,
    }


def check_run(config, manifest, out, strategy="default", source=None, overwrite=False):
    """Everything `train` checks before it writes: the options, the data and the output folder.

    Returns what `check_output` returns. Raises `TrainingError` with one line saying what to
    do. Reads only.
    """
    if strategy not in STRATEGIES:
        raise TrainingError(f"strategy must be one of {STRATEGIES}. Received: strategy={strategy!r}")
    if config.scale != manifest["scale"]:
        raise TrainingError(
            f"config scale {config.scale} does not match the data's scale {manifest['scale']}: "
            f"set scale: {manifest['scale']} in the config"
        )
    if "train" not in manifest["splits"]:
        raise TrainingError(f"the data has no train split (it has {', '.join(sorted(manifest['splits']))})")
    return check_output(config, out, source=source, overwrite=overwrite)


def check_output(config, out, source=None, overwrite=False):
    """Whether `train` may write a run of `config` on the data `source` (a resolved path) in `out`.

    Returns "new", "resume" (an unfinished run of the same config and data is there: its
    backup/ is used) or "overwrite". Raises `TrainingError` for a file, a folder it cannot
    write in, an unfinished run of another config or data, or a finished run (unless
    `overwrite`). Reads only (a probe file in an existing `out` tests that it is writable).
    """
    out = Path(out)
    _check_writable(out)
    if overwrite:
        return "overwrite"
    if (out / BACKUP_DIR).is_dir():
        _check_same_run(config, out, source)
        return "resume"
    if (out / GENERATOR_FILE).is_file():
        epochs = len(_history_epochs(out))
        done = f"{epochs} epoch{'s' if epochs != 1 else ''}, " if epochs else ""
        raise TrainingError(
            f"{out} holds a finished run ({done}{GENERATOR_FILE}): add --overwrite to train it again "
            "(its outputs are removed first), or choose another --out"
        )
    return "new"


def _check_writable(out):
    """`out` must be a folder we may write in, or not exist yet (then it is made when training starts)."""
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out} is a file, not a folder")
    if not out.is_dir():
        parent = next(p for p in out.absolute().parents if p.exists())
        if not parent.is_dir():
            raise TrainingError(f"cannot create --out {out}: {parent} is a file")
        if not writable(parent):
            raise TrainingError(f"cannot create --out {out}: {parent} is not writable")
        return  # made when training starts, after every check
    if not writable(out):
        raise TrainingError(f"cannot write in --out {out}: the folder is read-only")


def _check_same_run(config, out, source):
    """An unfinished run in `out` resumes only with its own config and data."""
    again = "add --overwrite to start again, or choose another --out"
    saved = out / CONFIG_FILE
    try:
        before = json.loads(saved.read_text())
    except FileNotFoundError:
        raise TrainingError(f"{out} holds {BACKUP_DIR}/ of a run without {CONFIG_FILE}: {again}") from None
    except (OSError, ValueError) as err:
        raise TrainingError(
            f"{out} holds an unfinished run whose {CONFIG_FILE} cannot be read ({err}): {again}"
        ) from None
    changed = config_changes(before, config)
    if changed:
        shown = ", ".join(f"{name} {saved!r} -> {wanted!r}" for name, saved, wanted in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise TrainingError(
            f"{out} holds an unfinished run of another config ({shown}{more}): resume it with --config {saved}, {again}"
        )
    try:
        trained_on = json.loads((out / RUN_FILE).read_text()).get("data")
    except (OSError, ValueError, AttributeError):
        trained_on = None
    if source is not None and trained_on is not None and trained_on != source:
        raise TrainingError(f"{out} holds an unfinished run on other data ({trained_on}): {again}")


def config_changes(saved, config):
    """(field, saved value, value in `config`) where `saved`, a config as config.json holds it, differs.

    Sorted by field. A field `saved` lacks counts as holding its default: a run saved before
    the field existed trained as the default does.
    """
    wanted = _as_json(config)
    saved = {**_as_json(Config()), **saved}
    return [
        (name, saved.get(name), wanted.get(name))
        for name in sorted(set(saved) | set(wanted))
        if saved.get(name) != wanted.get(name)
    ]


def _as_json(config):
    return json.loads(json.dumps(config.to_dict()))


def _prepare_folder(out, overwrite):
    """Make `out` (removing the old outputs first with `overwrite`) and its stale temporaries."""
    if overwrite and out.is_dir():
        for name in RUN_OUTPUTS:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TrainingError(f"cannot create --out {out}: {err.strerror or err}") from None
    remove_stale_temporaries(out, [CONFIG_FILE, RUN_FILE, GENERATOR_FILE, BEST_RECORD, HISTORY_FILE])


def _backed_up_epochs(out):
    """The epochs done by the unfinished run in `out`: what Keras' BackupAndRestore recorded (0 if unreadable)."""
    try:
        return int(json.loads((out / BACKUP_DIR / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _history_epochs(out):
    """The epochs (from 0) that history.csv has rows for."""
    path = out / HISTORY_FILE
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [row.get("epoch") for row in csv.DictReader(f)]


def _kept(out):
    """What a diverged run leaves, for its message."""
    record = read_best(out)
    if record is None or not (out / GENERATOR_FILE).is_file():
        return "no generator was saved; lower the learning rates or look for NaN in the data"
    return (
        f"the best generator (epoch {record.get('epoch')}, {record.get('monitor')} = {record['value']:.6g}) "
        f"is kept in {out / GENERATOR_FILE}"
    )


def _finite_weights(model):
    return all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)


def _array_inputs(config, data):
    """`fit` arguments, updates per epoch and plotted samples for `InMemoryData` (numpy arrays)."""
    x, y = data.train.model_inputs()
    val = data.val
    samples = None if val is None else tuple(array[: config.plot_samples] for array in val)
    inputs = dict(
        x=x,
        y=y,
        batch_size=config.batch_size,
        validation_data=None if val is None else val.model_inputs(),
        shuffle=True,
    )
    return inputs, math.ceil(len(x) / config.batch_size), samples


def _strategy_scope(strategy):
    """The scope the GAN is built in: a `tf.distribute.MirroredStrategy`'s, or none."""
    if strategy != "mirrored":
        return contextlib.nullcontext()
    if keras.backend.backend() != "tensorflow":
        raise ValueError("strategy='mirrored' is a tf.distribute strategy: it needs KERAS_BACKEND=tensorflow")
    return _mirrored_strategy().scope()


@functools.cache
def _mirrored_strategy():
    """One per process: a second MirroredStrategy's collective ops reuse the first's instance keys and fail."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def _tensorboard(log_dir):
    """[Keras' TensorBoard callback] when TensorFlow, which writes its logs, is installed; else [].

    Under another backend this hides the GPUs from TensorFlow for the rest of the process
    (the summaries need none), leaving them to that backend.
    """
    try:
        import tensorflow as tf
    except ImportError:
        return []
    if keras.backend.backend() != "tensorflow":
        with contextlib.suppress(RuntimeError):  # raised once TF's runtime has started
            tf.config.set_visible_devices([], "GPU")
    return [keras.callbacks.TensorBoard(str(log_dir), write_graph=False)]
