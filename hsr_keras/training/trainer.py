"""The training recipe: the compiled GAN of a config and a data build, and a training run.

`python -m hsr_keras.fit` is `train` with arguments; `tune`, `compare`, the benchmarks and
the notebook call the same functions, so every model is trained by one recipe.

What a run promises (see `train`): bad input is refused before anything is written; a run
killed at any moment, or stopped by a full disk (`files.DiskFull`, one line), resumes with the
same command and never replaces its best generator with a worse one; a loss that turns NaN or
infinite stops the run (`TrainingDiverged`) without saving the diverged model; a finished run
is not trained again unless asked to (`overwrite=True`); one process at a time writes a run
folder (`run_folder.lock`); nothing is written outside the output folder.

With `strategy="multi-worker"` every process of the cluster (`TF_CONFIG`, `training.cluster`)
runs `train` with the same arguments; the chief writes the run folder, the other workers write
theirs in a temporary folder that is removed when they finish (docs/scale.md). The same holds for
`strategy="data-parallel"` (JAX) across processes (`KERAS_DISTRIBUTION_*`, `cluster.read_processes`):
process 0 writes the run folder.
"""

import contextlib
import functools
import math
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np

from hsr_keras.choices import STRATEGIES
from hsr_keras.models import losses, memory
from hsr_keras.models.model_files import CONFIG_FILE, GENERATOR_FILE, save_generator
from hsr_keras.models.networks import build_networks, extra_input_kwargs
from hsr_keras.models.wgan import SuperResolutionGAN
from hsr_keras.scoring.plots import plot_history
from hsr_keras.training import cluster, run_folder
from hsr_keras.training.callbacks import (
    BestGeneratorCheckpoint,
    HistoryLog,
    SamplePlots,
    StopOnNonFinite,
    TrainingDiverged,
    WholeBackup,
)
from hsr_keras.training.data import load_extras, load_split, make_dataset, read_errors
from hsr_keras.training.run_folder import BACKUP_DIR, CURVES_FILE, HISTORY_FILE, TrainingError
from hsr_keras.training.schedules import WarmupCosine
from tfrecords_builder.contract import files
from tfrecords_builder.contract.arrays import InMemoryData
from tfrecords_builder.contract.inputs import input_names
from tfrecords_builder.contract.manifest import read_manifest


def steps_per_epoch(manifest, batch_size):
    """Training batches per epoch of a TFRecord build: whole batches of its train split, at least one."""
    return max(manifest["splits"]["train"]["examples"] // batch_size, 1)


def build_gan(config, manifest, steps_per_epoch, epoch=0):
    """Generator, critic and their training model for a config and a data build, compiled for epoch `epoch`.

    The scale and the normalisation come from the data's manifest.

    `epoch` (from 0) picks the phase the model is compiled for (`pretraining`); a run with
    pre-training needs `FineTuning` among its callbacks to switch to the config's loss.
    `steps_per_epoch` (generator updates per epoch) sizes the learning-rate schedules.
    """
    scale = int(manifest["scale"])
    check_loss_terms(config, manifest["hr_shape"], scale)
    mean, std = manifest["stats"]["mean"], manifest["stats"]["std"]
    generator, critic = build_networks(config, scale, mean, std, extra_input_kwargs(manifest))
    check_members_fit(config, generator, manifest)
    gan = SuperResolutionGAN(generator, critic, data_std=std, seed=config.seed)
    g_optimizer = _optimizer(config, config.g_learning_rate, steps_per_epoch, config.epochs)
    _compile(gan, config, g_optimizer, steps_per_epoch, epoch)
    return gan


def check_loss_terms(config, hr_shape, scale):
    """The config's loss weights name known terms, and the data suits every term it weighs in."""
    try:
        weights = losses.term_weights(config.loss_weights)
    except ValueError as err:
        raise TrainingError(f"loss_weights in the config: {err}") from None
    for name, term in losses.GENERATOR_TERMS.items():
        problem = weights[name] and term.requires and term.requires(hr_shape, scale)
        if problem:
            raise TrainingError(f"the {name} loss term {problem}: set loss_weights: {{{name}: 0}} in the config")


def check_members_fit(config, generator, manifest):
    """`ensemble_size` x `batch_size` fields per generator update must fit the memory (`models.memory`).

    Checked on CPU (host memory) only; on an accelerator the check is left to the device.
    Raises `TrainingError` naming ensemble_size with the estimate.
    """
    if config.ensemble_size == 1 or memory.on_accelerator():
        return
    needed = memory.training_bytes(
        generator, manifest["lr_shape"], config.batch_size, config.ensemble_size, hr_shape=manifest["hr_shape"]
    )
    short = memory.shortfall(needed)
    if short:
        what = f"{config.ensemble_size} members x batch {config.batch_size} per generator update"
        raise TrainingError(memory.limit_text("ensemble_size", config.ensemble_size, *short, what))


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
        loss_weights=config.loss_weights,
        critic_steps=config.critic_steps,
        ensemble_size=config.ensemble_size,
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


def dataset_inputs(config, manifest, strategy="default"):
    """`Model.fit` arguments for a TFRecord build: the train split shuffled and repeated, and the val split if any.

    `config.batch_size` is the global batch. Under a multi-worker strategy every worker reads
    the whole split in the same (seeded) order and keeps its part of each global batch
    (`AutoShardPolicy.DATA`): the batches are those of a one-process run whatever the number of
    workers and shards (FILE sharding would need at least as many shards as workers, and
    shards of equal sizes, or the workers' step counts differ and the run hangs).

    Under `strategy="data-parallel"` the val split comes in whole global batches too: JAX
    splits every batch evenly over the devices (the last `examples % batch_size` are not scored).
    """
    train_ds = _data_sharded(
        make_dataset(
            manifest, "train", config.batch_size, shuffle=True, repeat=True, seed=config.seed, drop_remainder=True
        )
    )
    whole = strategy == "data-parallel"
    val_ds = None
    if "val" in manifest["splits"]:
        val_ds = _data_sharded(make_dataset(manifest, "val", config.batch_size, drop_remainder=whole))
    # The dataset shuffles itself.
    return dict(
        x=train_ds,
        validation_data=val_ds,
        steps_per_epoch=steps_per_epoch(manifest, config.batch_size),
        shuffle=False,
    )


def _data_sharded(ds):
    """`ds` auto-sharded by elements (not files) when a multi-worker strategy distributes it."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


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

    With `strategy="data-parallel"` (JAX) the GAN is trained under `keras.distribution.DataParallel`
    over every device: each batch (of `config.batch_size`, the global batch) is split evenly over
    them, and only whole batches are used (in memory too: the last `examples % batch_size` of the
    arrays are left out). Across processes (`KERAS_DISTRIBUTION_*`, a TFRecord build), JAX's
    distributed runtime joins them first; the processes then follow the multi-worker rules below,
    process 0 as the chief.

    With `strategy="multi-worker"` (TensorFlow, a TFRecord build) each process of the cluster
    calls `train` with the same arguments. The chief writes `out` as above; another worker checks
    `out` without writing it, resumes from its backup/ when it has one (a shared folder, or the
    chief's backup/ copied to the same path), writes its outputs to a temporary folder and
    removes it at the end; its result has no generator (`generator_path` and `best` are None).
    """
    in_memory = isinstance(data, InMemoryData)
    if in_memory:
        manifest, source = data.manifest, "in memory"
    else:
        manifest = read_manifest(data)
        source = str(Path(manifest["_dir"]).resolve())
    out = Path(out)
    mode = check_run(config, manifest, out, strategy=strategy, source=source, overwrite=overwrite)
    task = cluster.read_task() if strategy == "multi-worker" else None
    if strategy == "data-parallel":
        task = join_data_parallel(config)
    if task is not None and in_memory:
        raise TrainingError(
            f"strategy={strategy!r} across processes trains on a TFRecord build (--data), not on arrays"
        )
    if strategy == "multi-worker":
        _multi_worker_strategy()  # before any other TensorFlow op: the collectives are set up at startup
    if task is not None and not task.chief:
        scratch = Path(tempfile.mkdtemp(prefix=f"hsr-keras-{task.type}{task.index}-"))
        try:
            return _train_as_worker(config, data, out, scratch, mode, strategy, verbose, extra_callbacks, overwrite)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    # Compiled for the phase of the last epoch backed up, so that the backup's optimizer
    # state fits the model; FineTuning switches at the first epoch after the pre-training.
    resumed_at = run_folder.backed_up_epochs(out) if mode == "resume" else 0
    return _train(config, data, manifest, source, out, out, resumed_at, strategy, verbose, extra_callbacks, overwrite)


def _train_as_worker(config, data, out, scratch, mode, strategy, verbose, extra_callbacks, overwrite):
    """A non-chief worker's `train`: the chief's run in `out`, written to `scratch` (the chief's backup/ copied in)."""
    manifest = read_manifest(data)
    source = str(Path(manifest["_dir"]).resolve())
    resumed_at = 0
    if mode == "resume" and (out / BACKUP_DIR).is_dir():
        # The chief's unfinished run, as far as a resume reads it: this worker restores the same epoch.
        resumed_at = run_folder.backed_up_epochs(out)
        (scratch / "run").mkdir()
        for name in (CONFIG_FILE, run_folder.RUN_FILE, HISTORY_FILE, run_folder.BEST_RECORD):
            if (out / name).is_file():
                shutil.copy2(out / name, scratch / "run" / name)
        shutil.copytree(out / BACKUP_DIR, scratch / "run" / BACKUP_DIR)
    result = _train(
        config, data, manifest, source, scratch / "run", out, resumed_at, strategy, verbose, extra_callbacks, False
    )
    return {**result, "generator_path": None, "best": None}


def _train(config, data, manifest, source, out, shown, resumed_at, strategy, verbose, extra_callbacks, overwrite):
    """`train` after its checks: fit in `out` (the folder named `shown` in messages and in the lock)."""
    in_memory = isinstance(data, InMemoryData)
    caller_policy = keras.mixed_precision.global_policy()
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    try:
        if in_memory:
            inputs, steps, samples = _array_inputs(config, data, whole_batches=strategy == "data-parallel")
        else:
            inputs, steps = dataset_inputs(config, manifest, strategy), steps_per_epoch(manifest, config.batch_size)
            has_val = inputs["validation_data"] is not None
            samples = None
            if has_val:
                limit = config.plot_samples
                samples = (*load_split(manifest, "val", limit=limit), load_extras(manifest, "val", limit=limit))
        with _distribution_scope(strategy), _strategy_scope(strategy):
            gan = build_gan(config, manifest, steps, epoch=max(resumed_at - 1, 0))
        with (
            _distribution_scope(strategy),
            run_folder.lock(out, command=f"training {config.architecture} on {source} for {shown}"),
        ):
            # Checked again under the lock: another process may have written the folder meanwhile.
            run_folder.check(config, out, source=source, overwrite=overwrite)
            history, generator_path = _fit(
                gan,
                config,
                manifest,
                inputs,
                steps,
                samples,
                source,
                out,
                in_memory,
                verbose,
                extra_callbacks,
                overwrite,
            )
    finally:
        keras.mixed_precision.set_global_policy(caller_policy)
    return {
        "history": history.history,
        "generator_path": generator_path,
        "best": run_folder.read_best(out),
        "manifest": manifest,
    }


def _fit(gan, config, manifest, inputs, steps, samples, source, out, in_memory, verbose, extra_callbacks, overwrite):
    """The part of `train` that writes `out`, under its lock: prepare it, fit, save the best generator.

    backup/ is made before the first epoch and removed after the last file is written, so a run
    stopped anywhere in between (a kill, a full disk) is an unfinished run that resumes.
    """
    with files.reporting_full_disk(out):
        run_folder.prepare(out, overwrite)
        config.save(out / CONFIG_FILE)
        run_folder.write_run(out, source)
        run_folder.restore_best(out)
        (out / BACKUP_DIR).mkdir(exist_ok=True)
        history, generator_path = _fit_epochs(
            gan, config, manifest, inputs, steps, samples, out, in_memory, verbose, extra_callbacks
        )
        plot_history(out / HISTORY_FILE, out / CURVES_FILE)
        files.remove(out / BACKUP_DIR)
    return history, generator_path


def _fit_epochs(gan, config, manifest, inputs, steps, samples, out, in_memory, verbose, extra_callbacks):
    """`gan.fit` with the run's callbacks; then the generator, when no epoch gave a finite monitor value."""
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
        lr, hr, time, *extras = samples  # the extra inputs by name, after the fields (TFRecord builds)
        plots = SamplePlots(
            lr, hr, time, manifest, out / "samples", every=config.plot_every, extras=extras and extras[0]
        )
        cbs.append(plots)
    # Last: an epoch counts as done (for a resume) once its row, checkpoint and maps are written.
    best = (generator_path, out / run_folder.BEST_RECORD)
    cbs.append(WholeBackup(str(out / BACKUP_DIR), best=best, delete_checkpoint=False))
    splits = [] if in_memory else ["train", "val"] if inputs["validation_data"] is not None else ["train"]
    try:
        with read_errors(manifest, splits):  # a shard found damaged while read: one line naming it
            history = gan.fit(**inputs, epochs=config.epochs, callbacks=cbs + list(extra_callbacks), verbose=verbose)
    except TrainingDiverged as err:
        err.args = (f"{err}; {run_folder.kept_after_divergence(out)}",)
        raise
    if not generator_path.exists() and _finite_weights(gan.generator):  # no finite monitor value
        save_generator(gan.generator, generator_path)
    return history, generator_path


def check_run(config, manifest, out, strategy="default", source=None, overwrite=False):
    """Everything `train` checks before it writes: the options, the data and the output folder.

    Returns what `run_folder.check` returns. Raises `TrainingError` with one line saying what to
    do. Reads only.
    """
    if strategy not in STRATEGIES:
        raise TrainingError(f"strategy must be one of {STRATEGIES}. Received: strategy={strategy!r}")
    cluster.check_backend(strategy, keras.backend.backend())
    if strategy == "multi-worker":
        cluster.read_task()
    if strategy == "data-parallel":
        cluster.read_processes()
    extras = input_names(manifest)[1:]
    if extras and config.architecture != "paper":
        raise TrainingError(
            f"the data has extra inputs ({', '.join(extras)}) and architecture {config.architecture!r} takes the LR "
            "field only: use architecture 'paper' or a build without them"
        )
    if "train" not in manifest["splits"]:
        raise TrainingError(f"the data has no train split (it has {', '.join(sorted(manifest['splits']))})")
    std = manifest["stats"].get("std")
    if not (isinstance(std, (int, float)) and math.isfinite(std) and std > 0):
        raise TrainingError(
            f"the train split of {manifest.get('_dir', 'the data')} has standard deviation {std!r}: a constant field "
            "cannot be normalised nor learnt; build the data from fields that vary"
        )
    return run_folder.check(config, out, source=source, overwrite=overwrite)


def _finite_weights(model):
    return all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)


def _array_inputs(config, data, whole_batches=False):
    """`fit` arguments, updates per epoch and plotted samples for `InMemoryData` (numpy arrays).

    `whole_batches`: the arrays cut to whole batches (the last `examples % batch_size` left out),
    for a data-parallel run, which splits every batch evenly over the devices.
    """
    x, y = data.train.model_inputs()
    val = data.val
    validation = None if val is None else val.model_inputs()
    samples = None
    if val is not None:  # x may be a dict of named inputs: the plots take its extras beside the fields
        n = config.plot_samples
        named = validation[0] if isinstance(validation[0], dict) else {}
        samples = (val.lr[:n], val.hr[:n], val.time[:n], {k: v[:n] for k, v in named.items() if k != "lr"})
    if whole_batches:
        x, y = _whole_batches((x, y), config.batch_size, "train")
        validation = None if validation is None else _whole_batches(validation, config.batch_size, "val")
    inputs = dict(x=x, y=y, batch_size=config.batch_size, validation_data=validation, shuffle=True)
    return inputs, math.ceil(len(y) / config.batch_size), samples


def _whole_batches(arrays, batch_size, split):
    """(inputs, targets) cut to whole batches; the inputs may be a dict of named arrays."""
    count = len(arrays[-1])
    whole = count // batch_size * batch_size
    if not whole:
        raise TrainingError(
            f"the {split} split has {count} examples, fewer than one batch of {batch_size}: lower batch_size"
        )
    return tuple(keras.tree.map_structure(lambda array: array[:whole], part) for part in arrays)


def join_data_parallel(config):
    """This process of a `strategy="data-parallel"` run (a `cluster.Task`, None for one process), once joined.

    Joins the other processes (JAX's distributed runtime: it waits for all of them) and checks that
    the global batch splits evenly over all their devices (`TrainingError` otherwise). Writes nothing.
    """
    task = cluster.read_processes()
    devices = _data_parallel().device_mesh.devices.size
    if config.batch_size % devices:
        raise TrainingError(
            f"batch_size {config.batch_size} does not split evenly over the {devices} devices of "
            f"strategy='data-parallel': choose a multiple of {devices} (--batch-size)"
        )
    return task


@functools.cache
def _data_parallel():
    """One per process: Keras' `DataParallel` over every JAX device, of every process of the run.

    Across processes (`KERAS_DISTRIBUTION_*`) it first joins them with `keras.distribution.initialize`
    (`jax.distributed`, which reads the same variables), before JAX starts any computation; on
    CPUs the cross-process all-reduce runs on gloo (JAX has none by default).
    """
    import jax

    if cluster.read_processes() is not None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        keras.distribution.initialize()
    return keras.distribution.DataParallel()


def _distribution_scope(strategy):
    """JAX's `DataParallel` scope for `strategy="data-parallel"` (the build's variables, fit's batches), or none."""
    return _data_parallel().scope() if strategy == "data-parallel" else contextlib.nullcontext()


def _strategy_scope(strategy):
    """The scope the GAN is built in: a `tf.distribute.MirroredStrategy`'s, a `MultiWorkerMirroredStrategy`'s, or none."""
    if strategy in ("default", "data-parallel"):
        return contextlib.nullcontext()
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"strategy={strategy!r} is a tf.distribute strategy: it needs KERAS_BACKEND=tensorflow")
    return (_multi_worker_strategy() if strategy == "multi-worker" else _mirrored_strategy()).scope()


@functools.cache
def _mirrored_strategy():
    """One per process: a second MirroredStrategy's collective ops reuse the first's instance keys and fail."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


@functools.cache
def _multi_worker_strategy():
    """One per process, made before any other TensorFlow op: the cluster and this worker come from TF_CONFIG.

    Ring all-reduce: the collective implementation that runs on CPUs as well as GPUs (NCCL is GPU only).
    """
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


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
