"""README command 1 (`python -m hsr_keras.fit`) timed as a user times it: the whole process, from the outside.

Each run is a fresh `python -m hsr_keras.fit --quiet --out <new folder>` (demo data made anew, as
on a fresh clone), its wall time taken around the process. With `--old REV` the same command also
runs from a checkout of that revision (a temporary `git worktree`), the two alternating so that
both see the same load; the table gives the median, the range and the ratio new / old, and each
run's MSE ratio to aligned bicubic (the demo's quality, which must not move).

    python benchmarks/bench_demo.py --runs 3
    python benchmarks/bench_demo.py --runs 3 --old 0ad9c05
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_demo(code, out):
    """(wall seconds, MSE ratio model / bicubic) of one demo run of the checkout `code` into `out`."""
    env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "hsr_keras.fit", "--quiet", "--out", str(out)],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"error: the demo of {code} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, mse_ratio(out)


def mse_ratio(out):
    """The model's validation MSE over aligned bicubic's, from the run's evaluation.json."""
    methods = json.loads((Path(out) / "evaluation.json").read_text())["methods"]
    return methods["model"]["mse"] / methods["bicubic (aligned)"]["mse"]


def summary(label, seconds, ratios):
    low, high = min(seconds), max(seconds)
    mse = ", ".join(f"{r:.4f}" for r in ratios)
    return f"| {label} | {statistics.median(seconds):.1f} | {low:.1f}-{high:.1f} | {mse} |"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per checkout. Default: 3")
    parser.add_argument("--old", help="a git revision to run beside the working tree, alternating")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")

    with tempfile.TemporaryDirectory() as tmp:
        codes = {"this checkout": ROOT}
        if args.old:
            old = Path(tmp) / "old"
            subprocess.run(["git", "worktree", "add", "--detach", str(old), args.old], cwd=ROOT, check=True)
            codes = {f"{args.old}": old, **codes}
        times = {label: [] for label in codes}
        ratios = {label: [] for label in codes}
        try:
            for i in range(args.runs):
                for label, code in codes.items():
                    seconds, ratio = run_demo(code, Path(tmp) / f"run-{label.replace(' ', '-')}-{i}")
                    times[label].append(seconds)
                    ratios[label].append(ratio)
                    print(f"run {i + 1} {label}: {seconds:.1f} s, MSE / bicubic {ratio:.4f}", flush=True)
        finally:
            if args.old:
                subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, check=False)

    print(f"\n{os.cpu_count()} CPUs; whole-process wall time of `python -m hsr_keras.fit --quiet` (fresh --out)")
    print("| code | median s | range s | MSE / bicubic per run |")
    print("|---|---:|---:|---|")
    for label in codes:
        print(summary(label, times[label], ratios[label]))
    if args.old:
        new, old_label = "this checkout", args.old
        ratio = statistics.median(times[new]) / statistics.median(times[old_label])
        print(f"\nmedian new / old: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
