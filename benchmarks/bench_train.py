"""Training throughput of a whole WGAN-GP iteration (critic + penalty + generator update).

Prints, for each preset, days (samples) per second as the median over timed steps after
warm-up, the forward FLOPs per day of the generator (G) and the critic (D), and the
achieved FLOP rate. The FLOPs of one iteration are estimated from the forward counts,
taking a backward pass as 2x its forward: each critic update runs G once, D on real,
fake and interpolated days with their backward passes and the penalty's double backward
(about G + 11 D); the generator update runs G and D forward and backward (3 G + 3 D).

    python benchmarks/bench_train.py                        # demo and paper presets, CPU
    python benchmarks/bench_train.py --presets demo --batch-size 8 --steps 10
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def iteration_flops(g_flops, d_flops, critic_steps=1):
    """FLOPs of one WGAN-GP iteration from the forward FLOPs of G and D (see the module docstring)."""
    return critic_steps * (g_flops + 11 * d_flops) + 3 * g_flops + 3 * d_flops


def measure(preset, batch_size, steps, warmup, precision):
    import keras
    import numpy as np

    from hsr_keras.models.networks import count_flops
    from hsr_keras.training.config import PRESETS
    from hsr_keras.training.trainer import build_gan

    keras.mixed_precision.set_global_policy(precision)
    config = PRESETS[preset].replace(batch_size=batch_size, precision=precision)
    lr_shape, hr_shape = (8, 8, 8), (8, 64, 64)
    manifest = {"scale": 8, "stats": {"mean": 55.0, "std": 25.0}}
    gan = build_gan(config, manifest, steps_per_epoch=100)
    rng = np.random.default_rng(0)
    lr = rng.uniform(0, 100, (batch_size, *lr_shape, 1)).astype("float32")
    hr = rng.uniform(0, 100, (batch_size, *hr_shape, 1)).astype("float32")
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        logs = gan.train_on_batch(lr, hr, return_dict=True)
        float(logs["g_loss"])  # wait for the step to finish
        if i >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    g_flops = count_flops(gan.generator, (*lr_shape, 1))
    d_flops = count_flops(gan.critic, (*hr_shape, 1))
    iteration = iteration_flops(g_flops, d_flops, config.critic_steps)
    keras.mixed_precision.set_global_policy("float32")
    return {
        "preset": preset,
        "precision": precision,
        "batch": batch_size,
        "days_per_s": batch_size / median,
        "step_ms": 1000 * median,
        "spread_ms": 1000 * (max(times) - min(times)),
        "g_gflops": g_flops / 1e9,
        "d_gflops": d_flops / 1e9,
        "gflops_per_s": iteration * batch_size / median / 1e9,
        "params_g": gan.generator.count_params(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["demo", "paper"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported). Default: 5")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing). Default: 2")
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()
    rows = [measure(p, args.batch_size, args.steps, args.warmup, args.precision) for p in args.presets]
    print(
        f"{'preset':<7} {'precision':<15} {'batch':>5} {'days/s':>8} {'step ms':>9} {'range ms':>9} "
        f"{'G GFLOP/day':>12} {'D GFLOP/day':>12} {'GFLOP/s':>8} {'G params':>10}"
    )
    for r in rows:
        print(
            f"{r['preset']:<7} {r['precision']:<15} {r['batch']:>5} {r['days_per_s']:8.2f} {r['step_ms']:9.1f} "
            f"{r['spread_ms']:9.1f} {r['g_gflops']:12.3f} {r['d_gflops']:12.3f} {r['gflops_per_s']:8.1f} "
            f"{r['params_g']:>10,}"
        )
    if len(rows) == 2:
        print(
            f"ratio {rows[0]['preset']}/{rows[1]['preset']} days/s: {rows[0]['days_per_s'] / rows[1]['days_per_s']:.1f}"
        )


if __name__ == "__main__":
    main()
