"""How fast the TFRecord builder turns a year of hourly ERA5-like data into shards, and where time goes.

Generates (or reuses, with --data) one year of synthetic hourly data in the default synthetic
box (35-55N, 103-123E, 0.25 deg, 300 hPa, monthly classic CDS files), then times:

  read only   the builder's reader pulling every day's 8 three-hourly 64x64 fields, nothing else
  build       the whole build (train = the year, paper region, 8 steps, stride 8), in-process,
              so TensorFlow's import (about 4 s) is not counted

and prints the median of --repeats runs: wall and CPU seconds, days/s, MB/s of netCDF input
(input files' size over wall time) and build time over read-only time, for --workers 1 and
the default, at each --shard-mb (64, the default, gives one shard for a year, so workers
cannot help; smaller shards show what compressing shards in parallel gains).

    pip install -e .   # or PYTHONPATH=.
    python benchmarks/bench_builder.py --data /tmp/era5-year --repeats 3
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from tfrecords_builder.build import BuildConfig, build, default_workers
from tfrecords_builder.cutting import check_config, open_source, plan_splits
from tfrecords_builder.sequences import day_times
from tfrecords_builder.synthetic import write_synthetic

YEAR = ("2019-01-01", "2019-12-31")


def ensure_data(folder):
    """The year's files in `folder`, written there first unless they already are."""
    folder = Path(folder)
    files = sorted(folder.glob("*.nc"))
    if len(files) < 12:
        print(f"writing one year of synthetic hourly data to {folder} ...", flush=True)
        files = write_synthetic(folder, *YEAR, style="classic", per="month")
    return files


def read_only(config):
    """Read every complete day's fields exactly as the builder does; return the number of days."""
    cut = check_config(config)
    with open_source(config.inputs, cut) as source:
        days, _ = plan_splits(source, cut)["train"]
        for day in days:
            source.read(day_times(day, cut.hours))
    return len(days)


def median_seconds(fn, repeats):
    """Median wall-clock and CPU (all threads) seconds of `repeats` calls: on a shared machine the
    CPU time shows the work, the wall time what other processes leave of the cores."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def row(label, wall, cpu, days, input_mb, read_wall):
    print(f"{label:36s} {wall:7.2f} {cpu:7.2f} {days / wall:8.1f} {input_mb / wall:8.1f} {wall / read_wall:7.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="folder for the year of synthetic files (reused if there; default: a temp dir)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is shown")
    parser.add_argument("--shard-mb", type=float, nargs="+", default=[64.0, 8.0], help="shard sizes to compare")
    args = parser.parse_args(argv)

    import tensorflow  # noqa: F401  (imported once here so the builds time the build, not the import)

    with tempfile.TemporaryDirectory() as tmp:
        files = ensure_data(args.data or Path(tmp) / "era5")
        input_mb = sum(Path(f).stat().st_size for f in files) / 1e6
        config = BuildConfig(
            inputs=tuple(map(str, files)),
            out=str(Path(tmp) / "out"),
            train=":".join(YEAR),
            val="none",
            test="none",
            quiet=True,
        )
        days = read_only(config)
        read_wall, read_cpu = median_seconds(lambda: read_only(config), args.repeats)
        print(
            f"\n{len(files)} files, {input_mb:.0f} MB, {days} days; median of {args.repeats} runs, "
            f"{default_workers()} default workers, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n"
        )
        print(f"{'run':36s} {'wall s':>7s} {'CPU s':>7s} {'days/s':>8s} {'MB/s':>8s} {'x read':>7s}")
        row("read only (reader.Era5Source)", read_wall, read_cpu, days, input_mb, read_wall)
        for shard_mb in args.shard_mb:
            for workers in sorted({1, default_workers()}):
                run = BuildConfig(**{**config.__dict__, "shard_mb": shard_mb, "workers": workers})
                manifest = build(run)
                shards = len(manifest["splits"]["train"]["shards"])
                wall, cpu = median_seconds(lambda run=run: build(run), args.repeats)
                row(f"build, {shards} shard(s), workers {workers}", wall, cpu, days, input_mb, read_wall)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
