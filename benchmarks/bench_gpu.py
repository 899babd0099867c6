"""Training throughput of a whole WGAN-GP iteration on a GPU under JAX, with no TensorFlow.

For each preset (`hsr_keras.training.config.PRESETS`), precision and batch size, prints days
(samples) per second of `fit` on in-memory synthetic ERA5-like days: the median over timed
steps after warm-up steps (the first compiles), one step being the critic update(s) with
the gradient penalty and the generator update. Also printed: the forward FLOPs per day of
the generator (G) and critic (D) from `hsr_keras.models.networks.count_flops`, the FLOPs of one
iteration per day (`bench_train.iteration_flops`, the estimate `bench_train.py` prints), the
achieved rate and its fraction of `--peak-tflops`, the compile time (the first step) and
the device's peak memory. Each configuration runs in a fresh subprocess, so one that runs
out of memory is reported and the others still run, and peak memory is its own.

The default peak, 989.4 TFLOP/s, is the H100 SXM5 dense BF16 Tensor Core rate: NVIDIA's
H100 datasheet gives 1,979 TFLOP/s "with sparsity", twice the dense rate. Use 756 for an
H100 PCIe, 835 for an H100 NVL. The same peak is the reference for float32 runs, whose
matmuls XLA runs in TF32 on the Tensor Cores by default (half the BF16 rate).

Needs JAX, numpy, xarray and Keras, and no TensorFlow or netCDF library (the data are drawn
in memory by `tfrecords_builder.synthetic`):

    XLA_PYTHON_CLIENT_PREALLOCATE=false KERAS_BACKEND=jax python benchmarks/bench_gpu.py
    XLA_PYTHON_CLIENT_PREALLOCATE=false KERAS_BACKEND=jax python benchmarks/bench_gpu.py \\
        --presets paper --precisions mixed_bfloat16 --batch-sizes 32 128 --json results.json
    KERAS_BACKEND=jax python benchmarks/bench_gpu.py --smoke     # a quick check, e.g. on a CPU
    KERAS_BACKEND=jax python benchmarks/bench_gpu.py --baseline-code /tmp/old   # old/new rows in turn

XLA_PYTHON_CLIENT_PREALLOCATE=false makes JAX take GPU memory as it needs it instead of 75 %
of it up front, so nvidia-smi shows each configuration's real footprint; the peak printed is
JAX's own count of bytes in use.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

H100_SXM_BF16_DENSE_TFLOPS = 989.4


def measure(preset, precision, batch_size, steps, warmup):
    """One configuration, in this process: a dict of the numbers the table prints."""
    import jax
    import keras
    import numpy as np
    from bench_train import iteration_flops

    from hsr_keras.models.networks import count_flops
    from hsr_keras.training.config import PRESETS
    from hsr_keras.training.trainer import build_gan
    from tfrecords_builder.in_memory import synthetic_arrays

    class StepTimer(keras.callbacks.Callback):
        """Wall time at the end of each step. `fit` turns the step's logs into Python floats
        before calling this, so the step has finished on the device."""

        def on_train_begin(self, logs=None):
            self.stamps = [time.perf_counter()]

        def on_train_batch_end(self, batch, logs=None):
            self.stamps.append(time.perf_counter())

    if keras.backend.backend() != "jax":
        raise SystemExit(f"run with KERAS_BACKEND=jax (this is {keras.backend.backend()})")
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(precision)
    config = PRESETS[preset].replace(batch_size=batch_size, precision=precision)
    # One batch of distinct synthetic days (the paper's region, 8 steps a day), repeated: the
    # values do not change the speed, and every batch is full, so the step compiles once.
    last_day = str(np.datetime64("2019-01-01") + np.timedelta64(batch_size - 1, "D"))
    data = synthetic_arrays("2019-01-01", last_day, train=f"2019-01-01:{last_day}", val="none", test="none")
    lr, hr = (np.concatenate([array] * (warmup + steps)) for array in data.train.model_inputs())
    gan = build_gan(config, data.manifest, steps_per_epoch=warmup + steps)

    timer = StepTimer()
    gan.fit(lr, hr, batch_size=batch_size, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    times = [b - a for a, b in zip(timer.stamps, timer.stamps[1:])]
    median = statistics.median(times[warmup:])
    g_flops = count_flops(gan.generator, lr.shape[1:])
    d_flops = count_flops(gan.critic, hr.shape[1:])
    flops = iteration_flops(g_flops, d_flops, config.critic_steps)
    device = jax.devices()[0]
    return {
        "preset": preset,
        "precision": precision,
        "batch": batch_size,
        "days_per_s": batch_size / median,
        "step_ms": 1000 * median,
        "spread_ms": 1000 * (max(times[warmup:]) - min(times[warmup:])),
        "compile_s": times[0],
        "g_gflop_per_day": g_flops / 1e9,
        "d_gflop_per_day": d_flops / 1e9,
        "iteration_gflop_per_day": flops / 1e9,
        "tflop_per_s": flops * batch_size / median / 1e12,
        "peak_gib": (device.memory_stats() or {}).get("peak_bytes_in_use", float("nan")) / 2**30,
        "device": f"{device.platform} {device.device_kind}",
        "versions": f"jax {jax.__version__}, keras {keras.__version__}",
    }


def run_isolated(preset, precision, batch_size, steps, warmup, code=None):
    """`measure` in a fresh process (with `code`, a folder holding hsr_keras, first on PYTHONPATH):
    its result, or {"error": the last line of what went wrong}."""
    command = [sys.executable, __file__, "--one", json.dumps([preset, precision, batch_size])]
    command += ["--steps", str(steps), "--warmup", str(warmup)]
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = os.pathsep.join([code] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    lines = (proc.stderr or proc.stdout or f"exit code {proc.returncode}").strip().splitlines()
    return {"preset": preset, "precision": precision, "batch": batch_size, "error": lines[-1][:300]}


HEADER = (
    f"{'preset':<11} {'precision':<15} {'batch':>5} {'days/s':>9} {'step ms':>9} {'range ms':>9} "
    f"{'compile s':>9} {'G GF/day':>9} {'D GF/day':>9} {'it GF/day':>9} {'TFLOP/s':>8} {'% peak':>7} "
    f"{'peak GiB':>8}"
)


def format_row(r, peak_tflops):
    start = f"{r.get('code', '') + r['preset']:<11} {r['precision']:<15} {r['batch']:>5}"
    if "error" in r:
        return f"{start} failed: {r['error']}"
    return (
        f"{start} {r['days_per_s']:9.2f} {r['step_ms']:9.1f} {r['spread_ms']:9.1f} {r['compile_s']:9.1f} "
        f"{r['g_gflop_per_day']:9.3f} {r['d_gflop_per_day']:9.3f} {r['iteration_gflop_per_day']:9.3f} "
        f"{r['tflop_per_s']:8.3f} {100 * r['tflop_per_s'] / peak_tflops:7.3f} {r['peak_gib']:8.2f}"
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["demo", "paper"], help="Default: demo paper")
    parser.add_argument(
        "--precisions", nargs="+", default=["float32", "mixed_bfloat16"], help="Default: float32 mixed_bfloat16"
    )
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[16, 64], help="Default: 16 64")
    parser.add_argument("--steps", type=int, default=10, help="timed steps; the median is reported. Default: 10")
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed steps first, the compiling one included. Default: 3"
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=H100_SXM_BF16_DENSE_TFLOPS,
        help="peak dense bf16 matmul rate the achieved rate is compared with. Default: 989.4 (H100 SXM5)",
    )
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument(
        "--baseline-code",
        help="a folder holding another version's hsr_keras (e.g. `git archive REV hsr_keras tfrecords_builder`"
        " unpacked): each row also runs with it first on PYTHONPATH, just before the current code's",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a quick check: demo preset, batch 2, 1 warm-up and 2 timed steps"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one configuration, as JSON
    args = parser.parse_args(argv)
    if args.smoke:
        args.presets, args.batch_sizes, args.steps, args.warmup = ["demo"], [2], 2, 1
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be at least 1 (the first step compiles)")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.one:
        print(json.dumps(measure(*json.loads(args.one), args.steps, args.warmup)))
        return 0
    # This process never starts JAX: with preallocation on, it would hold the GPU's memory.
    print(
        f"{args.warmup} warm-up + {args.steps} timed steps per row (median); forward FLOPs from count_flops, "
        f"an iteration's from bench_train.iteration_flops; % peak of {args.peak_tflops} TFLOP/s"
    )
    print(HEADER, flush=True)
    rows = []
    for preset in args.presets:
        for precision in args.precisions:
            for batch_size in args.batch_sizes:
                for code in ([args.baseline_code] if args.baseline_code else []) + [None]:
                    rows.append(run_isolated(preset, precision, batch_size, args.steps, args.warmup, code))
                    rows[-1]["code"] = "old " if code else ("new " if args.baseline_code else "")
                    print(format_row(rows[-1], args.peak_tflops), flush=True)
    done = [r for r in rows if "error" not in r]
    if done:
        print(f"device: {done[0]['device']}; {done[0]['versions']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peak_tflops": args.peak_tflops, "rows": rows}, f, indent=1)
    return 0 if len(done) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
