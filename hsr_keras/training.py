"""The training library: demo data, the compiled GAN of a config, and a training run.

`python -m hsr_keras.fit` is `train` with arguments; `tune`, `compare`, the benchmarks and
the notebook call the same functions, so every model is trained by one recipe.
"""

import contextlib
import json
import math
from pathlib import Path

import keras

from hsr_keras.callbacks import BestGeneratorCheckpoint, SamplePlots
from hsr_keras.data import load_split, make_dataset
from hsr_keras.in_memory import InMemoryData
from hsr_keras.networks import build_networks
from hsr_keras.plots import plot_history
from hsr_keras.schedules import WarmupCosine
from hsr_keras.wgan import SuperResolutionGAN
from tfrecords_builder.manifest import read_manifest
from tfrecords_builder.schema import MANIFEST_NAME

# The demo data: six months of synthetic files, four months to train on, one to validate, one to test.
DEMO_DATES = {
    "synthetic": ("2019-01-01", "2019-06-30"),
    "train": "2019-01-01:2019-04-30",
    "val": "2019-05-01:2019-05-31",
    "test": "2019-06-01:2019-06-30",
}
# tf.distribute strategies of `train`: "mirrored" uses every visible GPU (or logical CPU device).
STRATEGIES = ("default", "mirrored")


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


def build_gan(config, manifest, steps_per_epoch):
    """Generator, critic and their compiled training model for a config and a data build.

    `steps_per_epoch` (generator updates per epoch) sizes the learning-rate schedules.
    """
    if config.scale != manifest["scale"]:
        raise ValueError(
            f"config scale {config.scale} does not match the data's scale {manifest['scale']}: "
            f"set scale: {manifest['scale']} in the config"
        )
    mean, std = manifest["stats"]["mean"], manifest["stats"]["std"]
    generator, critic = build_networks(config, mean, std)
    gan = SuperResolutionGAN(generator, critic, data_std=std, seed=config.seed)

    def optimizer(learning_rate, updates_per_step):
        steps = steps_per_epoch * updates_per_step
        warmup = int(config.warmup_epochs * steps)
        schedule = WarmupCosine(
            learning_rate,
            decay_steps=max(config.epochs * steps - warmup, 1),
            warmup_steps=warmup,
            min_learning_rate=config.min_learning_rate,
        )
        return keras.optimizers.Adam(schedule, beta_1=config.beta_1, beta_2=config.beta_2)

    gan.compile(
        g_optimizer=optimizer(config.g_learning_rate, 1),
        d_optimizer=None if critic is None else optimizer(config.d_learning_rate, config.critic_steps),
        loss=config.loss,
        gp_weight=config.gp_weight,
        content_weight=config.content_weight,
        adversarial_weight=config.adversarial_weight,
        critic_steps=config.critic_steps,
    )
    return gan


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


def train(config, data, out, strategy="default", verbose=1, extra_callbacks=()):
    """Train; returns the history, the path of the best generator and the data's manifest.

    `data` is a build folder (TFRecords through `tf.data`: TensorFlow) or an
    `hsr_keras.in_memory.InMemoryData` (numpy arrays: any Keras backend, no TensorFlow needed).
    Writes config.json, run.json, generator.keras, history.csv, training_curves.png,
    samples/, logs/ and backup/ in `out`; a run killed and started again with the same
    arguments resumes from backup/.

    The run seeds Keras' global random generators with `config.seed` and sets the global
    precision policy to `config.precision`; the caller's policy is restored afterwards, also
    when training fails.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}. Received: strategy={strategy!r}")
    in_memory = isinstance(data, InMemoryData)
    if in_memory:
        manifest, source = data.manifest, "in memory"
    else:
        manifest = read_manifest(data)
        source = str(Path(manifest["_dir"]).resolve())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    caller_policy = keras.mixed_precision.global_policy()
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    try:
        config.save(out / "config.json")
        (out / "run.json").write_text(json.dumps({"data": source}, indent=1) + "\n")
        if in_memory:
            inputs, steps, samples = _array_inputs(config, data)
        else:
            inputs, steps = dataset_inputs(config, manifest), steps_per_epoch(manifest, config.batch_size)
            has_val = inputs["validation_data"] is not None
            samples = load_split(manifest, "val", limit=config.plot_samples) if has_val else None
        with _strategy_scope(strategy):
            gan = build_gan(config, manifest, steps)

        generator_path = out / "generator.keras"
        monitor = "val_mse" if inputs["validation_data"] is not None else "content_loss"
        cbs = [
            keras.callbacks.BackupAndRestore(str(out / "backup")),
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
            *_tensorboard(out / "logs"),
            BestGeneratorCheckpoint(generator_path, monitor=monitor),
        ]
        if samples is not None:
            cbs.append(SamplePlots(*samples, manifest, out / "samples", every=config.plot_every))
        history = gan.fit(**inputs, epochs=config.epochs, callbacks=cbs + list(extra_callbacks), verbose=verbose)
        if not generator_path.exists():  # no epoch completed with a finite monitor value
            gan.generator.save(generator_path)
        plot_history(out / "history.csv", out / "training_curves.png")
    finally:
        keras.mixed_precision.set_global_policy(caller_policy)
    return {"history": history.history, "generator_path": generator_path, "manifest": manifest}


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
    import tensorflow as tf

    return tf.distribute.MirroredStrategy().scope()


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
