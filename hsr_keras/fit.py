"""`python -m hsr_keras.fit`: train the WGAN-GP super-resolution model.

With no arguments it runs end to end on built-in demo data: synthetic ERA5-like files,
TFRecord shards, a small model trained for a few epochs on the CPU, and a comparison
with aligned bicubic interpolation on the validation split. With `--data` it trains on a
`tfrecords_builder` build with the paper's preset (a GPU job).

Everything lands in `--out`: config.json (the resolved config), run.json (the data
build it trained on), generator.keras (the best
generator by validation MSE), history.csv, training_curves.png, samples/ (maps every
`plot_every` epochs), logs/ (TensorBoard) and backup/ (resume state; a killed run started
again with the same command continues where it stopped).
"""

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

from hsr_keras.config import PRECISIONS, PRESETS, load_config

DEMO_DATES = {
    "synthetic": ("2019-01-01", "2019-06-30"),
    "train": "2019-01-01:2019-04-30",
    "val": "2019-05-01:2019-05-31",
    "test": "2019-06-01:2019-06-30",
}
STRATEGIES = ("default", "mirrored")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hsr_keras.fit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", help="build folder holding manifest.json (default: make the demo data under --out)")
    parser.add_argument("--config", help="YAML or JSON file with any Config fields (see hsr_keras/config.py)")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="starting point for the config: 'paper' (default with --data) or 'demo' (default without)",
    )
    parser.add_argument("--out", help="output folder (default: runs/demo without --data, runs/fit with)")
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--batch-size", type=int, help="override the config's batch size (global, over all devices)")
    parser.add_argument("--precision", choices=PRECISIONS, help="override the config's precision policy")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="tf.distribute strategy: 'mirrored' uses every visible GPU (or logical CPU device). Default: default",
    )
    parser.add_argument("--eval-split", default="val", help="split evaluated against bicubic at the end. Default: val")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tfrecords_builder.manifest import ManifestError

    try:
        return run(args)
    except (ManifestError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def run(args):
    from hsr_keras.evaluation import compare_with_bicubic
    from hsr_keras.reports import format_comparison

    demo = args.data is None
    out = Path(args.out or ("runs/demo" if demo else "runs/fit"))
    out.mkdir(parents=True, exist_ok=True)
    data = make_demo_data(out / "data", verbose=not args.quiet) if demo else Path(args.data)
    config = load_config(
        args.config,
        preset=args.preset or ("demo" if demo else "paper"),
        epochs=args.epochs,
        batch_size=args.batch_size,
        precision=args.precision,
        seed=args.seed,
    )
    result = train(config, data, out, strategy=args.strategy, verbose=0 if args.quiet else 1)
    report = compare_with_bicubic(result["generator_path"], data, args.eval_split, config.batch_size)
    (out / "evaluation.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    print(format_comparison(report))
    print(f"\nOutputs in {out}/: generator.keras, config.json, history.csv, training_curves.png, samples/, logs/")
    return 0


def make_demo_data(folder, verbose=True):
    """Synthetic ERA5-like netCDF and its TFRecord build under `folder` (reused when present)."""
    from tfrecords_builder import build, synthetic

    tfrecords = folder / "tfrecords"
    if (tfrecords / "manifest.json").exists():
        return tfrecords
    era5 = folder / "era5"
    start, end = DEMO_DATES["synthetic"]
    if not any(era5.glob("*.nc")):
        synthetic.write_synthetic(era5, start, end, interval_hours=3, seed=0)
    argv = [str(era5), "--out", str(tfrecords)]
    argv += [f"--{split}={DEMO_DATES[split]}" for split in ("train", "val", "test")]
    code = build.main(argv if verbose else argv + ["--quiet"])
    if code != 0:
        raise ValueError(f"building the demo data failed (exit code {code})")
    return tfrecords


def build_gan(config, manifest, steps_per_epoch):
    """Generator, critic and their compiled training model for a config and a data build."""
    import keras

    from hsr_keras.schedules import WarmupCosine
    from hsr_keras.wgan import SuperResolutionGAN

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


def build_networks(config, mean, std):
    """The generator and critic of a config's architecture; no critic for the content loss."""
    from hsr_keras import baselines, networks

    if config.architecture == "paper":
        generator = networks.build_generator(**config.generator_kwargs(mean, std))
    elif config.architecture == "srcnn":
        generator = networks.build_srcnn(scale=config.scale, mean=mean, std=std)
    else:
        generator = baselines.build_srgan_generator(
            scale=config.scale,
            filters=config.filters,
            num_res_blocks=config.num_res_blocks,
            global_skip=config.global_skip,
            skip_interpolation=config.skip_interpolation,
            mean=mean,
            std=std,
        )
    if config.loss == "content":
        return generator, None
    if config.architecture == "srgan":
        return generator, baselines.build_srgan_discriminator(filters=config.critic_filters, mean=mean, std=std)
    return generator, networks.build_critic(**config.critic_kwargs(mean, std))


def train(config, data, out, strategy="default", verbose=1, extra_callbacks=()):
    """Train; returns the history and the path of the best generator.

    `data` is a build folder (TFRecords through `tf.data`: TensorFlow) or an
    `hsr_keras.arrays.InMemoryData` (numpy arrays: any Keras backend, no TensorFlow needed).
    """
    import keras

    from hsr_keras import callbacks
    from hsr_keras.arrays import InMemoryData

    in_memory = isinstance(data, InMemoryData)
    if in_memory:
        manifest, source = data.manifest, "in memory"
    else:
        from tfrecords_builder.manifest import read_manifest

        manifest = read_manifest(data)
        source = str(Path(manifest["_dir"]).resolve())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    config.save(out / "config.json")
    (out / "run.json").write_text(json.dumps({"data": source}, indent=1) + "\n")

    if in_memory:
        inputs, steps_per_epoch, samples = _array_inputs(config, data)
    else:
        from hsr_keras import data as data_lib

        steps_per_epoch = max(manifest["splits"]["train"]["examples"] // config.batch_size, 1)
        train_ds = data_lib.make_dataset(
            manifest, "train", config.batch_size, shuffle=True, repeat=True, seed=config.seed, drop_remainder=True
        )
        has_val = "val" in manifest["splits"]
        val_ds = data_lib.make_dataset(manifest, "val", config.batch_size) if has_val else None
        samples = data_lib.load_split(manifest, "val", limit=config.plot_samples) if has_val else None
        # The dataset shuffles itself.
        inputs = dict(x=train_ds, validation_data=val_ds, steps_per_epoch=steps_per_epoch, shuffle=False)

    if strategy == "mirrored":
        if keras.backend.backend() != "tensorflow":
            raise ValueError("strategy='mirrored' is a tf.distribute strategy: it needs KERAS_BACKEND=tensorflow")
        import tensorflow as tf

        scope = tf.distribute.MirroredStrategy().scope()
    else:
        scope = contextlib.nullcontext()
    with scope:
        gan = build_gan(config, manifest, steps_per_epoch)

    generator_path = out / "generator.keras"
    monitor = "val_mse" if inputs["validation_data"] is not None else "content_loss"
    cbs = [
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        *_tensorboard(out / "logs"),
        callbacks.BestGeneratorCheckpoint(generator_path, monitor=monitor),
    ]
    if samples is not None:
        cbs.append(callbacks.SamplePlots(*samples, manifest, out / "samples", every=config.plot_every))
    history = gan.fit(**inputs, epochs=config.epochs, callbacks=cbs + list(extra_callbacks), verbose=verbose)
    if not generator_path.exists():  # no epoch completed with a finite monitor value
        gan.generator.save(generator_path)
    callbacks.plot_history(out / "history.csv", out / "training_curves.png")
    keras.mixed_precision.set_global_policy("float32")
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


def _tensorboard(log_dir):
    """[Keras' TensorBoard callback] when TensorFlow, which writes its logs, is installed; else []."""
    import keras

    try:
        import tensorflow as tf
    except ImportError:
        return []
    if keras.backend.backend() != "tensorflow":
        with contextlib.suppress(RuntimeError):  # raised once TF's runtime has started
            tf.config.set_visible_devices([], "GPU")  # the summaries need no GPU: leave it to JAX
    return [keras.callbacks.TensorBoard(str(log_dir), write_graph=False)]


if __name__ == "__main__":
    sys.exit(main())
