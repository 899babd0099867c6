"""`python -m hsr_keras.fit`: train the WGAN-GP super-resolution model.

With no arguments it runs end to end on built-in demo data: synthetic ERA5-like files,
TFRecord shards, a small model trained for a few epochs on the CPU, and a comparison
with aligned bicubic interpolation on the validation split. With `--data` it trains on a
`tfrecords_builder` build with the paper's preset (a GPU job).

Everything lands in `--out`, nothing elsewhere: config.json (the resolved config), run.json
(the data build it trained on), generator.keras (the best generator by validation MSE;
by the training content loss when the build has no val split) and best.json (its score
and epoch), history.csv, training_curves.png, evaluation.json (the best generator beside
bicubic), samples/ (maps every `plot_every` epochs), logs/ (TensorBoard) and backup/.

The config (--config: any fields of hsr_keras/training/config.py) sets the networks, the loss and the
schedule. With `pretrain_epochs: P` (default 0) the first P epochs train the generator on the
content loss alone, and the critic joins for the remaining epochs (pre-training, then
adversarial fine-tuning); history.csv's critic columns are empty in the first P rows.

A run killed (or interrupted) and started again with the same command continues after its
last finished epoch, and keeps its best generator unless a later epoch beats it. Bad input
(config, data, a --out holding another run) is refused before anything is written. A loss
that turns NaN or infinite stops the run with exit status 1, keeping the best generator of
the earlier epochs. A finished run is not trained again: add --overwrite, or choose another
--out.

Strategies (--strategy):
  default       one device (the first GPU, or the CPU)
  mirrored      every visible GPU (or logical CPU device) of this process
  multi-worker  the processes or hosts that TF_CONFIG names; the chief writes --out (docs/scale.md)
  data-parallel  KERAS_BACKEND=jax: every JAX device of this process, or of the processes that the
                KERAS_DISTRIBUTION_* variables name; process 0 writes --out (docs/scale.md)
Each worker of multi-worker (each process of data-parallel) runs this command with the same
arguments, --data included. The config's batch_size is the global batch, split over all devices
and workers.

Exit status: 0 done, 1 training diverged (or a bug: with its traceback), 2 bad input (one
line), 130 interrupted.
"""

import argparse
import json
import sys
from pathlib import Path

from hsr_keras.choices import PRECISIONS, STRATEGIES
from hsr_keras.models.model_files import GENERATOR_FILE
from hsr_keras.training.config import PRESETS, load_config
from tfrecords_builder.contract.console import EXIT_INTERNAL, EXIT_INTERRUPTED, one_line, run_command, set_quiet
from tfrecords_builder.contract.errors import InputError


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hsr_keras.fit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        help="build folder holding manifest.json, or its URL (gs://, s3://, memory://: copied to the cache first); "
        "default: make the demo data under --out",
    )
    parser.add_argument("--config", help="YAML or JSON file with any Config fields (see hsr_keras/training/config.py)")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="starting point for the config: 'paper' (default with --data) or 'demo' (default without)",
    )
    parser.add_argument(
        "--out",
        help="output folder, or a URL (the run is staged in the cache and published after every epoch; "
        "docs/cloud.md). Default: runs/demo without --data, runs/fit with",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="train afresh in an --out that holds a run: its outputs are removed first (the demo data is kept)",
    )
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--batch-size", type=int, help="override the config's batch size (global, over all devices)")
    parser.add_argument("--precision", choices=PRECISIONS, help="override the config's precision policy")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="distribution strategy (one line each under 'Strategies' above). Default: default",
    )
    parser.add_argument("--eval-split", default="val", help="split evaluated against bicubic at the end. Default: val")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv=None):
    return run_command(_run, argv)


def _run(argv):
    args = parse_args(argv)
    set_quiet(args.quiet)
    # Keras and TensorFlow load here, after the arguments: --help answers at once.
    from hsr_keras.training.callbacks import TrainingDiverged

    try:
        return run(args)
    except TrainingDiverged as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print(
            "interrupted: the same command resumes after the last finished epoch; generator.keras is the best so far",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def run(args):
    from tfrecords_builder.contract import remote

    for url in (args.out, args.data):  # a protocol without its package: one line, before any download
        if url is not None and remote.is_url(url):
            remote.filesystem(url)
    data_url = args.data if args.data is not None and remote.is_url(args.data) else None
    if data_url:
        args = argparse.Namespace(**{**vars(args), "data": str(remote.fetch_build(data_url))})
    if args.out is not None and remote.is_url(args.out):
        return _run_at_url(args, data_url)
    return _run_in(args, Path(args.out or ("runs/demo" if args.data is None else "runs/fit")))


def _run_at_url(args, data_url=None):
    """--out URL: the run folder is a local staging folder, pulled from the URL first and published to it.

    Published after every epoch's backup and at the end (only by the chief of a multi-worker
    run); a resume, here or on another machine, starts from what the URL holds. With --data a
    URL, the published run.json names the data by its URL, the staged one by its cached copy
    (`_record_data`): a run resumes on any machine, whatever its cache folder.
    """
    from hsr_keras.training import cluster, run_folder
    from tfrecords_builder.contract import remote

    url = args.out
    # One staging folder per process of a multi-worker run: two of them may share a host.
    task = (cluster.read_task().name,) if args.strategy == "multi-worker" else ()
    local = remote.staging_folder("runs", url, *task)
    cached = str(Path(args.data).resolve()) if data_url else None
    # The epoch a resume restarts from (Keras' BackupAndRestore's record): uploaded last.
    marker = f"{run_folder.BACKUP_DIR}/training_metadata.json"
    with run_folder.lock(local, command=f"python -m hsr_keras.fit --out {url}"):
        if _whole_at(url, marker):
            remote.fetch_folder(url, local)
        elif not ((local / marker).is_file() or args.overwrite):  # else the staged copy, whole, mends the URL
            raise InputError(
                f"{url} holds a run whose last publish was cut short ({marker} missing): resume it on the machine "
                "that trained it, whose staged copy is whole, or add --overwrite"
            )
        _record_data(local, data_url, cached)
        publish = _publishing_callback(local, url, marker, cached, data_url)
        code = _run_in(args, local, [publish])
        if publish.chief:
            publish.now()
            if not args.quiet:
                print(f"Published to {url}/ (staged in {local}/)")
    return code


def _run_in(args, out, extra_callbacks=()):
    from hsr_keras.training import run_folder

    demo = args.data is None
    if args.strategy in ("multi-worker", "data-parallel") and not _is_chief(args, demo):
        for callback in extra_callbacks:  # another worker writes no --out
            callback.chief = False
        return _train_as_worker(args, out)
    config = load_config(
        args.config,
        preset=args.preset or ("demo" if demo else "paper"),
        epochs=args.epochs,
        batch_size=args.batch_size,
        precision=args.precision,
        seed=args.seed,
    )
    if args.strategy == "data-parallel":
        from hsr_keras.training import trainer

        trainer.join_data_parallel(config)  # the batch splits over the devices: checked before the demo data
    run_folder.check(config, out, overwrite=args.overwrite)  # before the lock, which makes the folder
    # One fit per folder, from here to evaluation.json: a second one is refused before it loads anything.
    with run_folder.lock(out, command=f"python -m hsr_keras.fit --out {out}"):
        return _train_and_compare(args, config, out, demo, extra_callbacks)


def _train_and_compare(args, config, out, demo, extra_callbacks=()):
    from hsr_keras.evaluation.engine import compare_with_bicubic
    from hsr_keras.evaluation.reports import format_comparison
    from hsr_keras.training import demo_data, run_folder, trainer
    from tfrecords_builder.contract import files
    from tfrecords_builder.contract.manifest import read_manifest

    # Every check before the first write: a failed start leaves --out as it was.
    if demo:
        _check_split(args.eval_split, demo_data.SPLITS)
        source = str((out / "data" / "tfrecords").resolve())
        run_folder.check(config, out, source=source, overwrite=args.overwrite)
        try:
            data = demo_data.make_demo_data(out / "data", verbose=not args.quiet)
        except OSError as err:
            raise InputError(f"cannot write the demo data under {out / 'data'}: {err.strerror or err}") from None
        manifest = read_manifest(data)
    else:
        data = Path(args.data)
        manifest = read_manifest(data)
        _check_split(args.eval_split, manifest["splits"])
        source = str(Path(manifest["_dir"]).resolve())
        trainer.check_run(config, manifest, out, strategy=args.strategy, source=source, overwrite=args.overwrite)
    if "val" not in manifest["splits"] and not args.quiet:
        print(f"note: the data has no val split: {GENERATOR_FILE} is the epoch with the lowest content_loss")

    result = trainer.train(
        config,
        data,
        out,
        strategy=args.strategy,
        verbose=0 if args.quiet else 1,
        extra_callbacks=extra_callbacks,
        overwrite=args.overwrite,
    )
    report = compare_with_bicubic(result["generator_path"], data, args.eval_split, config.batch_size)
    report["best"] = result["best"]  # the epoch generator.keras comes from, and its score
    files.write_text(out / run_folder.EVALUATION_FILE, _json(report))
    print(format_comparison(report))
    best = result["best"]
    if best:
        print(f"\n{GENERATOR_FILE}: epoch {best['epoch']} of {config.epochs}, {best['monitor']} = {best['value']:.6g}")
    print(f"Outputs in {out}/: generator.keras, config.json, history.csv, training_curves.png, samples/, logs/")
    return 0


def _is_chief(args, demo):
    """Whether this process writes --out: checks --strategy multi-worker's or data-parallel's needs first (one line each)."""
    import keras

    from hsr_keras.training import cluster

    cluster.check_backend(args.strategy, keras.backend.backend())
    task = _task(args.strategy)
    if task is None:
        return True
    if demo:
        raise InputError(f"--strategy {args.strategy} trains on a build every process can read: give --data")
    return task.chief


def _task(strategy):
    """This process's `cluster.Task` (None: data-parallel on one process)."""
    from hsr_keras.training import cluster

    return cluster.read_task() if strategy == "multi-worker" else cluster.read_processes()


def _train_as_worker(args, out):
    """A worker other than the chief: the same checks and training, nothing written in --out, no evaluation."""
    from hsr_keras.training import trainer
    from tfrecords_builder.contract.manifest import read_manifest

    config = load_config(
        args.config,
        preset=args.preset or "paper",
        epochs=args.epochs,
        batch_size=args.batch_size,
        precision=args.precision,
        seed=args.seed,
    )
    manifest = read_manifest(args.data)
    _check_split(args.eval_split, manifest["splits"])
    source = str(Path(manifest["_dir"]).resolve())
    trainer.check_run(config, manifest, out, strategy=args.strategy, source=source, overwrite=args.overwrite)
    trainer.train(
        config, args.data, out, strategy=args.strategy, verbose=0 if args.quiet else 1, overwrite=args.overwrite
    )
    print(f"{_task(args.strategy).name} done: the chief writes {out}/")
    return 0


def _whole_at(url, marker):
    """Whether the run at `url` is whole: no backup/, or backup/ with its `marker` (a publish cut short has none)."""
    from tfrecords_builder.contract import remote

    fs, root = remote.filesystem(url)
    names = remote.listing(fs, root)
    return marker in names or not any(name.startswith(marker.split("/")[0] + "/") for name in names)


def _record_data(out, before, after):
    """Rewrite the data that run.json in `out` names from `before` to `after` (a URL, its cached copy), if it does."""
    from hsr_keras.training import run_folder
    from tfrecords_builder.contract import files

    record = run_folder.read_run(out)
    if before is not None and record.get("data") == before:
        files.write_text(Path(out) / run_folder.RUN_FILE, json.dumps({**record, "data": after}, indent=1) + "\n")


def _publishing_callback(local, url, marker, cached=None, data_url=None):
    """A callback that publishes the run folder `local` to `url` after each epoch (after its backup); `now()` at the end.

    `marker` (the backup's epoch record) is uploaded last; run.json names the data by
    `data_url` instead of its `cached` copy.
    """
    import keras

    from tfrecords_builder.contract import remote

    class _PublishRun(keras.callbacks.Callback):
        chief = True

        def now(self):
            _record_data(local, cached, data_url)
            try:
                remote.publish_folder(local, url, marker=marker)
            finally:
                _record_data(local, data_url, cached)

        def on_epoch_end(self, epoch, logs=None):
            if self.chief:
                self.now()

    return _PublishRun()


def _check_split(split, splits):
    if split not in splits:
        raise InputError(
            f"--eval-split {split!r} is not in the data (it has {', '.join(sorted(splits))}): choose one of those"
        )


def _json(report):
    return json.dumps(report, indent=1, default=float) + "\n"


if __name__ == "__main__":
    sys.exit(main())
