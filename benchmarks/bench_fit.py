"""Where the CPU demo's time goes: what `python -m hsr_keras.fit` does, with timers on each phase.

Runs the demo command's work (the demo data, `hsr_keras.training.trainer.train`, the comparison with
aligned bicubic) with timers on every callback hook, the training steps, the validation
passes and the time between steps, then reads the input pipeline alone for one epoch, and
prints seconds per phase and their share of the whole, the steps' days/s without the rest,
and the comparison table the demo prints (the model must stay ahead of bicubic).

`--set` overrides fields of the demo preset, to try a change before making it:

    PYTHONPATH=. python benchmarks/bench_fit.py --epochs 2
    PYTHONPATH=. python benchmarks/bench_fit.py --set epochs=4 batch_size=16 plot_every=4

Keeps the demo data in `--data` (made there once; its making is timed only when it is made).
"""

import argparse
import collections
import faulthandler
import functools
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def timed_callbacks(classes, totals):
    """Wrap every `on_*` hook of `classes` so its wall time adds up in `totals[(class, hook)]`."""
    for cls in classes:
        for name in dir(cls):
            if not name.startswith("on_") or not callable(getattr(cls, name)):
                continue

            def wrap(fn, key):
                @functools.wraps(fn)
                def timed(self, *args, **kwargs):
                    start = time.perf_counter()
                    try:
                        return fn(self, *args, **kwargs)
                    finally:
                        totals[key] += time.perf_counter() - start

                return timed

            setattr(cls, name, wrap(getattr(cls, name), (cls.__name__, name)))


def phase_timer():
    """A callback recording the start and end of every training step and validation pass."""
    import keras

    class PhaseTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps = collections.defaultdict(list)  # epoch -> [(begin, end)]
            self.tests = {}  # epoch -> (begin, end)
            self.epochs = {}  # epoch -> begin
            self.epoch = 0
            self.train_begin = self.train_end = None
            self.epoch_ends = {}

        def on_train_begin(self, logs=None):
            self.train_begin = time.perf_counter()

        def on_train_end(self, logs=None):
            self.train_end = time.perf_counter()
            # Some runs lose about a minute after fit's last hook: show every thread's stack then.
            faulthandler.dump_traceback_later(15, repeat=True)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.epochs[epoch] = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            self.steps[self.epoch].append([time.perf_counter(), None])

        def on_train_batch_end(self, batch, logs=None):
            self.steps[self.epoch][-1][1] = time.perf_counter()

        def on_test_begin(self, logs=None):
            self.tests[self.epoch] = [time.perf_counter(), None]

        def on_test_end(self, logs=None):
            self.tests[self.epoch][1] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_ends[epoch] = time.perf_counter()  # after the other callbacks' (this one is last)

    return PhaseTimer()


def pipeline_seconds(config, manifest):
    """Seconds to read one epoch of training batches and one validation pass through `tf.data` alone."""
    from hsr_keras.training.trainer import dataset_inputs

    inputs = dataset_inputs(config, manifest)
    result = {}
    for label, dataset, count in (
        ("train", inputs["x"], inputs["steps_per_epoch"]),
        ("val", inputs["validation_data"], None),
    ):
        if dataset is None:
            continue
        for attempt in range(2):  # the first pass fills the cache, as the first epoch does
            start = time.perf_counter()
            for _ in dataset.take(count) if count else dataset:
                pass
            result[f"{label} pass {attempt + 1}"] = time.perf_counter() - start
    return result


def parse_value(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "hsr-demo"), help="demo data folder")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="other preset overrides")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--timeline", action="store_true", help="also print each epoch's timeline")
    args = parser.parse_args(argv)

    wall_start = time.perf_counter()
    import keras

    from hsr_keras.evaluation.engine import compare_with_bicubic
    from hsr_keras.evaluation.reports import format_comparison
    from hsr_keras.training import callbacks as project_callbacks
    from hsr_keras.training import trainer
    from hsr_keras.training.config import PRESETS
    from hsr_keras.training.demo_data import make_demo_data
    from tfrecords_builder.contract.manifest import read_manifest

    phases = {"imports (Keras, TensorFlow)": time.perf_counter() - wall_start}
    overrides = dict(item.split("=", 1) for item in args.set)
    overrides = {key: parse_value(value) for key, value in overrides.items()}
    if args.epochs:
        overrides["epochs"] = args.epochs
    config = PRESETS["demo"].replace(**overrides)

    start = time.perf_counter()
    data = make_demo_data(args.data, verbose=False)
    phases["demo data (made or reused)"] = time.perf_counter() - start
    manifest = read_manifest(data)

    hooks = collections.defaultdict(float)
    timed_callbacks(
        [
            keras.callbacks.BackupAndRestore,
            keras.callbacks.TerminateOnNaN,
            keras.callbacks.CSVLogger,
            keras.callbacks.TensorBoard,
            keras.callbacks.ProgbarLogger,
            keras.callbacks.History,
            project_callbacks.BestGeneratorCheckpoint,
            project_callbacks.SamplePlots,
        ],
        hooks,
    )
    plot_seconds = []
    original_plot_history = trainer.plot_history

    def timed_plot_history(*a, **k):
        begin = time.perf_counter()
        original_plot_history(*a, **k)
        plot_seconds.append(time.perf_counter() - begin)

    trainer.plot_history = timed_plot_history
    build_seconds = []
    original_build_gan = trainer.build_gan

    def timed_build_gan(*a, **k):
        begin = time.perf_counter()
        try:
            return original_build_gan(*a, **k)
        finally:
            build_seconds.append(time.perf_counter() - begin)

    trainer.build_gan = timed_build_gan
    timer = phase_timer()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = trainer.train(config, data, out, verbose=0 if args.quiet else 1, extra_callbacks=[timer])
        phases["train (fit and its callbacks)"] = time.perf_counter() - start
        faulthandler.cancel_dump_traceback_later()
        before_fit = timer.train_begin - start
        start = time.perf_counter()
        report = compare_with_bicubic(result["generator_path"], data, "val", config.batch_size)
        phases["comparison with bicubic"] = time.perf_counter() - start
    keras.mixed_precision.set_global_policy(config.precision)
    pipeline = pipeline_seconds(config, manifest)
    keras.mixed_precision.set_global_policy("float32")
    total = time.perf_counter() - wall_start - sum(pipeline.values())  # without the pipeline check

    epochs = sorted(timer.epochs)
    step_seconds = {e: [end - begin for begin, end in timer.steps[e]] for e in epochs}
    between = {
        e: sum(b[0] - a[1] for a, b in zip(timer.steps[e], timer.steps[e][1:])) for e in epochs if timer.steps[e]
    }
    test_seconds = {e: end - begin for e, (begin, end) in timer.tests.items()}
    steps_total = sum(sum(v) for v in step_seconds.values())
    first_step = step_seconds[epochs[0]][0]
    later = [s for e in epochs for s in step_seconds[e]][1:]
    # on_train_begin hooks run before PhaseTimer's (it comes last): inside before_fit already.
    hooks_total = sum(v for (_, hook), v in hooks.items() if hook != "on_train_begin")
    train = phases["train (fit and its callbacks)"]
    days = sum(len(v) for v in step_seconds.values()) * config.batch_size

    print(
        f"\nconfig: {json.dumps(overrides)} on the demo preset; backend {keras.backend.backend()}; {os.cpu_count()} CPUs"
    )
    print(f"{'phase':<44} {'seconds':>8} {'share':>6}")

    def row(name, seconds):
        print(f"{name:<44} {seconds:8.1f} {100 * seconds / total:5.1f}%")

    row("imports (Keras, TensorFlow)", phases["imports (Keras, TensorFlow)"])
    row("demo data (made or reused)", phases["demo data (made or reused)"])
    row("train", train)
    row("  building and compiling the GAN", sum(build_seconds))
    row("  other set-up before fit's first hook", before_fit - sum(build_seconds))
    row("  fit set-up after on_train_begin", timer.steps[epochs[0]][0][0] - timer.train_begin)
    row("  first step (tracing the train step)", first_step)
    row("  other steps", steps_total - first_step)
    row("  between steps (host, progress bar)", sum(between.values()))
    row("  validation, first epoch (tracing)", test_seconds.get(epochs[0], 0.0))
    row("  validation, later epochs", sum(v for e, v in test_seconds.items() if e != epochs[0]))
    for (cls, hook), seconds in sorted(hooks.items(), key=lambda item: -item[1]):
        if seconds >= 0.05:
            row(f"  {cls}.{hook}", seconds)
    row("  training curves plot", sum(plot_seconds))
    accounted = steps_total + sum(between.values()) + sum(test_seconds.values()) + hooks_total + sum(plot_seconds)
    accounted += before_fit + timer.steps[epochs[0]][0][0] - timer.train_begin
    row("  rest (epoch bookkeeping, saving at the end)", train - accounted)
    row("comparison with bicubic", phases["comparison with bicubic"])
    row("total (from the first import)", total)
    print(
        f"\nsteps alone: {days / steps_total:.1f} days/s over all steps, "
        f"{config.batch_size / statistics.median(later):.1f} days/s median after the first; "
        f"train phase: {days / train:.1f} days/s"
    )
    if args.timeline:
        print("\nepoch: start, to first step, steps, to validation, validation, to epoch end, to next epoch (s)")
        for e in epochs:
            steps = timer.steps[e]
            test_begin, test_end = timer.tests.get(e, (steps[-1][1], steps[-1][1]))
            following = timer.epochs.get(e + 1, timer.train_end)
            gaps = [
                timer.epochs[e] - timer.train_begin,
                steps[0][0] - timer.epochs[e],
                steps[-1][1] - steps[0][0],
                test_begin - steps[-1][1],
                test_end - test_begin,
                timer.epoch_ends[e] - test_end,
                following - timer.epoch_ends[e],
            ]
            print(f"{e + 1:5d}: " + " ".join(f"{g:7.2f}" for g in gaps))
    print("tf.data alone: " + ", ".join(f"{k} {v:.2f} s" for k, v in pipeline.items()))
    print("\n" + format_comparison(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
