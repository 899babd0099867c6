"""Days/s of the Beam build (`--runner beam`, DirectRunner) against the local build, and what a global build would take.

Writes (or reuses, with --data) --days of synthetic hourly data in the default synthetic box
(35-55N, 103-123E, 0.25 deg, 300 hPa) as monthly classic netCDF, then builds the paper's
region (64 x 64 cells, 8 three-hourly steps, deflate) from it, in this process, so
TensorFlow's import is not counted:

  local    the thread pool, --workers 1 and 2
  beam     DirectRunner in multi_processing mode, --direct_num_workers 1 and 2 (worker
           processes start per run, and that start is counted: it is part of a Beam build)

and prints the median wall time of --repeats runs (they alternate, so a shared machine's load
weighs on all alike) and days/s. --shard-mb decides how many shards there are to spread.

A Beam worker runs the local build's shard job, so past Beam's fixed start (worker processes,
pipeline set-up: seconds here, minutes on Dataflow) its rate is the local build's one-thread
rate; from that measured per-worker rate it then prints a table, marked
"simulated from measured rates", of a global 1979-2024 single-level build (ARCO-ERA5, 3-hourly,
242 patches of 64 x 64 cells a day, as in docs/data.md) on 1, 10 and 100 workers, and a Dataflow
command with its cost estimate. The simulation assumes that a worker's time is proportional to
the cells it cuts and compresses (the synthetic box's 64 x 64 cells per day against 242 such
patches) and that workers scale linearly past the two measured here; it ignores reading from
Cloud Storage, which a Dataflow worker does over the network, and the workers' start (minutes).

    PYTHONPATH=. python benchmarks/bench_beam.py --data /tmp/era5-bench --days 60 --repeats 3
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tfrecords_builder.build import build
from tfrecords_builder.options import BuildConfig
from tfrecords_builder.synthetic import write_synthetic

START = np.datetime64("2019-01-01")
GLOBAL_DAYS = int(
    (np.datetime64("2025-01-01", "D") - np.datetime64("1979-01-01", "D")).astype(int)
)  # 1979-2024: 16,802 days
GLOBAL_CELLS = 242 * 64 * 64  # docs/data.md's global build: 11 x 22 patches of 64 x 64 cells
BENCH_CELLS = 64 * 64  # the paper's region in the synthetic box
# Assumption, not a quote: Dataflow batch list prices in us-central1 of $0.056 per vCPU-hour and
# $0.003557 per GB-hour make an n1-standard-4 worker (4 vCPUs, 15 GB) about $0.28 an hour; a
# Beam SDK process runs on each vCPU, so one "worker" below is a quarter of such a machine.
PRICE_PER_VCPU_HOUR = (4 * 0.056 + 15 * 0.003557) / 4


def ensure_data(folder, days):
    folder = Path(folder)
    stamp = folder / f"days-{days}"
    if not stamp.exists():
        print(f"writing {days} days of synthetic hourly data to {folder} ...", flush=True)
        for old in folder.glob("netcdf/*.nc"):
            old.unlink()
        write_synthetic(folder / "netcdf", str(START), str(START + days - 1), style="classic", per="month")
        stamp.touch()
    return tuple(str(p) for p in sorted((folder / "netcdf").glob("*.nc")))


def runs(inputs, out, days, shard_mb):
    """{label: BuildConfig} of the builds to time."""
    base = BuildConfig(
        inputs=inputs, out=str(out), train=f"{START}:{START + days - 1}", val="none", test="none", shard_mb=shard_mb
    )
    configs = {}
    for workers in (1, 2):
        configs[f"local, --workers {workers}"] = BuildConfig(**{**base.__dict__, "workers": workers, "quiet": True})
    for workers in (1, 2):
        beam_args = (
            "--runner=DirectRunner",
            f"--direct_num_workers={workers}",
            "--direct_running_mode=multi_processing",
        )
        configs[f"beam DirectRunner, {workers} worker(s)"] = BuildConfig(
            **{**base.__dict__, "runner": "beam", "beam_args": beam_args, "quiet": True}
        )
    return configs


def hours(days, rate_per_worker, workers):
    return days / (rate_per_worker * workers) / 3600


def simulate(rate_per_worker):
    """The global table and the Dataflow command, from the measured days/s of one worker."""
    global_rate = rate_per_worker * BENCH_CELLS / GLOBAL_CELLS
    print(f"\nGlobal 1979-2024 single-level build, simulated from measured rates ({rate_per_worker:.1f} days/s")
    print(f"per worker on 64x64 cells -> {global_rate:.4f} global days/s per worker), {GLOBAL_DAYS} days:\n")
    print(f"{'workers':>8s} {'hours':>9s} {'worker-hours':>13s} {'cost USD':>9s}")
    for workers in (1, 10, 100):
        wall = hours(GLOBAL_DAYS, global_rate, workers)
        print(f"{workers:8d} {wall:9.1f} {wall * workers:13.1f} {wall * workers * PRICE_PER_VCPU_HOUR:9.0f}")
    print(
        f"\n(cost at ${PRICE_PER_VCPU_HOUR:.3f} per worker-hour: a quarter of an n1-standard-4 at about $0.28/h, "
        "an assumption; plus Cloud Storage for the output)"
    )
    print(
        "\nDataflow, 100 workers = 25 n1-standard-4 machines; reads ARCO-ERA5 from Cloud Storage and writes shards"
        "\nand manifest.json to a folder every worker mounts:\n"
        "\n    python -m tfrecords_builder gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3 \\"
        "\n        --out /mnt/era5-global --lat -88 87.75 --lon 0 359.75 --patch-size 64 \\"
        "\n        --train 1979-01-01:2016-12-31 --val 2017-01-01:2020-12-31 --test 2021-01-01:2024-12-31 \\"
        "\n        --runner beam --beam-runner DataflowRunner --project MY_PROJECT --region us-central1 \\"
        "\n        --temp_location gs://MY_BUCKET/tmp --num_workers 25 --max_num_workers 25 \\"
        "\n        --machine_type n1-standard-4 --extra_package dist/hsr_keras-0.1.0-py3-none-any.whl"
        "\n\n(the wheel from `pip wheel --no-deps -w dist .`, installed on every worker with its requirements)"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="folder for the synthetic data (reused if there; default: a temp dir)")
    parser.add_argument("--days", type=int, default=60, help="days of hourly data from 2019-01-01")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is shown")
    parser.add_argument("--shard-mb", type=float, default=1.0, help="shard size (1 MiB: a shard per ~7 days)")
    args = parser.parse_args(argv)

    import apache_beam  # noqa: F401
    import tensorflow  # noqa: F401  (imported once here so the builds time the build, not the imports)

    with tempfile.TemporaryDirectory() as tmp:
        inputs = ensure_data(args.data or Path(tmp) / "era5", args.days)
        configs = runs(inputs, Path(tmp) / "out", args.days, args.shard_mb)
        shards = len(build(next(iter(configs.values())))["splits"]["train"]["shards"])
        walls = {label: [] for label in configs}
        for _ in range(args.repeats):
            for label, config in configs.items():
                start = time.perf_counter()
                build(config)
                walls[label].append(time.perf_counter() - start)
        print(
            f"\n{args.days} days, {shards} shards; median of {args.repeats} runs, {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.1f}\n"
        )
        print(f"{'run':36s} {'wall s':>7s} {'days/s':>7s}")
        rates = {}
        for label, values in walls.items():
            wall = statistics.median(values)
            rates[label] = args.days / wall
            print(f"{label:36s} {wall:7.2f} {rates[label]:7.1f}")
    one, two = rates["beam DirectRunner, 1 worker(s)"], rates["beam DirectRunner, 2 worker(s)"]
    local = rates["local, --workers 1"]
    overhead = args.days / one - args.days / local
    print(f"\nBeam scaling 1 -> 2 workers: {two / one:.2f}x; Beam's fixed cost over the local build: {overhead:.1f} s")
    # A Beam worker runs the local build's ShardJob: past the fixed start, its rate is the local one-thread rate.
    simulate(local)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
