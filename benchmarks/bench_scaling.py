"""How the project scales on this machine: training on 1 and 2 processes, the Beam build on 1, 2 and 4 workers,
and predictions (local Zarr and the Beam path), as one markdown table with medians, ranges and ratios.

All on the CPU (CUDA_VISIBLE_DEVICES is emptied for the training processes), on synthetic hourly
data in the default synthetic box (`bench_beam.ensure_data`, reused with --data):

  training  `python -m hsr_keras.fit` on a build of the data (the paper's region cut into 32 x 32
            patches, 4 a day), a tiny network (TINY below), global batch 8, --epochs epochs:
            1 process (`--strategy default`) and 2 processes (`--strategy multi-worker`, TF_CONFIG
            on two free localhost ports, 4 samples each). Steady state only: the epoch time is
            the chief's TensorBoard epoch-end wall times, (last - first) / (epochs - 1), so the
            start, the tracing and the first epoch are not counted (an epoch is its training
            steps, its validation pass and the callbacks). steps/s = train steps per epoch / that.
  build     `build` with --runner beam on DirectRunner, --direct_num_workers 1, 2, 4 in
            multi_processing mode, in this process (TensorFlow's import not counted, the worker
            processes' start counted: it is part of a Beam build); wall time and days/s.
  predict   `python -m hsr_keras.predict` in this process with the generator the 1-process
            training wrote, --predict-days days of 3-hourly LR input on a 2 deg grid (21 x 31
            points, one level) into a fresh .zarr: local, and --runner beam on DirectRunner with
            1 worker (in this process) and 2 (multi_processing); chunks (days) per second of the
            whole command, model loading and Beam's start included.

Each measurement runs --repeats times, the settings alternating within a repeat so a shared
machine's load weighs on all alike; the table gives the median, the min-max and each ratio of
medians against the first setting of its group, all from this one run.

    PYTHONPATH=. python benchmarks/bench_scaling.py --repeats 3
    PYTHONPATH=. python benchmarks/bench_scaling.py --quick      # proves it runs; numbers mean nothing
"""

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_beam import START, ensure_data

from hsr_keras.training import cluster

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
# A network small enough for a few epochs in minutes on 2 CPU cores (tests/tiny_runs.py's TINY_RUN).
TINY = {
    "filters": 8,
    "num_res_blocks": 1,
    "upsample_filters": 8,
    "num_post_blocks": 0,
    "se_ratio": 4,
    "global_skip": True,
    "critic_filters": 8,
    "critic_res_blocks": 0,
    "critic_post_blocks": 0,
    "batch_size": 8,
    "plot_samples": 2,
}
VAL_DAYS = 4
BUILD_WORKERS = (1, 2, 4)
PREDICT_GRID = dict(lat_bounds=(20.0, 60.0), lon_bounds=(80.0, 140.0), resolution=2.0, levels=(300,))


# ----------------------------------------------------------------------------- training


def fit_processes(build, config, out, processes):
    """Run `python -m hsr_keras.fit` on `processes` processes (worker 0, the chief, writes `out`)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    strategy = "default" if processes == 1 else "multi-worker"
    ports = cluster.free_ports(processes)
    running = []
    for index in range(processes):
        argv = ["--data", str(build), "--config", str(config), "--out", f"{out}-{index}", "--strategy", strategy]
        if processes > 1:
            env = {**env, "TF_CONFIG": cluster.local_tf_config(ports, index)}
        running.append(
            subprocess.Popen(
                [sys.executable, "-m", "hsr_keras.fit", *argv, "--quiet"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for process in running:
        _, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"error: a training process failed ({process.returncode}):\n{err[-2000:]}")
    return Path(f"{out}-0")


def epoch_seconds(run):
    """Steady-state seconds per epoch: the chief's TensorBoard epoch-end wall times, (last - first) / (epochs - 1)."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    ends = {}
    for path in sorted((run / "logs" / "train").glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            if any(v.tag.startswith("epoch_") for v in event.summary.value):
                ends[event.step] = max(ends.get(event.step, 0.0), event.wall_time)
    if len(ends) < 2:
        raise SystemExit(f"error: {run}/logs/train has {len(ends)} epoch(s); --epochs must be at least 2")
    steps = sorted(ends)
    return (ends[steps[-1]] - ends[steps[0]]) / (steps[-1] - steps[0])


# ----------------------------------------------------------------------------- the build and predict


def build_configs(inputs, out, days, shard_mb, workers):
    from tfrecords_builder.options import BuildConfig

    configs = {}
    for count in workers:
        beam_args = ("--runner=DirectRunner", f"--direct_num_workers={count}", "--direct_running_mode=multi_processing")
        configs[count] = BuildConfig(
            inputs=inputs,
            out=str(out),
            train=f"{START}:{START + days - 1}",
            val="none",
            test="none",
            shard_mb=shard_mb,
            runner="beam",
            beam_args=beam_args,
            quiet=True,
        )
    return configs


PREDICT_RUNS = {
    "local": [],
    "beam, 1 worker": ["--runner", "beam"],
    "beam, 2 workers": ["--runner", "beam", "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
}


def predict_once(lr, model, manifest, out, extra):
    from hsr_keras import predict

    argv = [str(lr), "--model", str(model), "--manifest", str(manifest), "--out", str(out), "--quiet", *extra]
    start = time.perf_counter()
    if predict.main(argv) != 0:
        raise SystemExit(f"error: predict {shlex.join(argv)} failed")
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- the table


def table(group, settings, unit):
    """Markdown rows of one group: {setting: values}; ratios are medians over the first setting's median."""
    medians = {setting: statistics.median(values) for setting, values in settings.items()}
    base = next(iter(medians.values()))
    for setting, values in settings.items():
        spread = f"{min(values):.3g}-{max(values):.3g}"
        print(f"| {group} | {setting} | {medians[setting]:.3g} | {spread} | {unit} | {medians[setting] / base:.2f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="folder for the synthetic data (reused if there; default: a temp dir)")
    parser.add_argument("--days", type=int, default=60, help="days of hourly data from 2019-01-01. Default: 60")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs per run (>= 2). Default: 5")
    parser.add_argument("--predict-days", type=int, default=30, help="days (chunks) to predict. Default: 30")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement. Default: 3")
    parser.add_argument("--shard-mb", type=float, default=1.0, help="shard size of the build (1 MiB: ~7 days)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 12 days, 2 epochs, 3 predicted days")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.days, args.epochs, args.predict_days = 1, 12, 2, 3
    if args.repeats < 1 or args.epochs < 2 or args.days <= VAL_DAYS or args.predict_days < 1:
        parser.error(f"--repeats >= 1, --epochs >= 2, --days > {VAL_DAYS} and --predict-days >= 1 are needed")
    command = "PYTHONPATH=. python benchmarks/bench_scaling.py " + shlex.join(sys.argv[1:] if argv is None else argv)

    import apache_beam  # noqa: F401
    import tensorflow  # noqa: F401  (imported once here: the builds and predicts time their work, not the imports)

    from tfrecords_builder import synthetic
    from tfrecords_builder.build import build
    from tfrecords_builder.options import BuildConfig

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = ensure_data(args.data or tmp / "era5", args.days)
        train_end = START + args.days - VAL_DAYS - 1
        data = tmp / "tfrecords"
        build(
            BuildConfig(
                inputs=inputs,
                out=str(data),
                train=f"{START}:{train_end}",
                val=f"{train_end + 1}:{START + args.days - 1}",
                test="none",
                patch_size=32,
                quiet=True,
            )
        )
        examples = json.loads((data / "manifest.json").read_text())["splits"]["train"]["examples"]
        steps = examples // TINY["batch_size"]
        config = tmp / "tiny.json"
        config.write_text(json.dumps({**TINY, "epochs": args.epochs, "plot_every": args.epochs + 1}))
        end = np.datetime64("2019-01-01") + args.predict_days - 1
        lr = synthetic.write_synthetic(
            tmp / "lr", "2019-01-01", str(end), style="new", per="all", interval_hours=3, **PREDICT_GRID
        )[0]

        epochs = {1: [], 2: []}
        walls = {count: [] for count in BUILD_WORKERS}
        predicts = {label: [] for label in PREDICT_RUNS}
        model = None
        for repeat in range(args.repeats):
            for processes in epochs:
                run = fit_processes(data, config, tmp / f"fit-{processes}-{repeat}", processes)
                epochs[processes].append(epoch_seconds(run))
                model = model or run
                print(f"repeat {repeat + 1}: {processes} process(es), {epochs[processes][-1]:.2f} s/epoch", flush=True)
            for count, build_config in build_configs(
                inputs, tmp / "build", args.days, args.shard_mb, BUILD_WORKERS
            ).items():
                start = time.perf_counter()
                build(build_config)
                walls[count].append(time.perf_counter() - start)
                print(f"repeat {repeat + 1}: build, {count} worker(s), {walls[count][-1]:.1f} s", flush=True)
            for label, extra in PREDICT_RUNS.items():
                out = tmp / f"predict-{len(predicts[label])}-{label.replace(' ', '').replace(',', '-')}.zarr"
                predicts[label].append(predict_once(lr, model, data, out, extra))
                print(f"repeat {repeat + 1}: predict, {label}, {predicts[label][-1]:.1f} s", flush=True)

    today = datetime.date.today().isoformat()
    print(f"\n### Scaling on this machine ({today}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})\n")
    print(f"`{command}`\n")
    print(
        f"Training: {examples} train examples, global batch {TINY['batch_size']}, {steps} steps per epoch, "
        f"{args.epochs} epochs, the last {args.epochs - 1} timed. Build: {args.days} days. "
        f"Predict: {args.predict_days} chunks (days) of 21 x 31 LR points. {args.repeats} repeat(s).\n"
    )
    print("| measured | setting | median | min-max | unit | ratio to the first setting |")
    print("|---|---|---:|---:|---|---:|")
    per_second = {f"{n} process(es)": [steps / x for x in seconds] for n, seconds in epochs.items()}
    table("training", per_second, "steps/s")
    table("training", {k: [v * TINY["batch_size"] for v in values] for k, values in per_second.items()}, "samples/s")
    table(
        "Beam build", {f"DirectRunner, {n} worker(s)": [args.days / x for x in v] for n, v in walls.items()}, "days/s"
    )
    table("predict", {label: [args.predict_days / x for x in v] for label, v in predicts.items()}, "chunks/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
