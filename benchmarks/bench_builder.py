"""How fast the TFRecord builder turns hourly ERA5-like data into shards, against reading the same data alone.

Generates (or reuses, with --data) --days of synthetic hourly data in the default synthetic
box (35-55N, 103-123E, 0.25 deg, 300 hPa) as monthly classic CDS netCDF files, and the same
values as a Zarr store in the ARCO-ERA5 layout (long names, a chunk per hour). For each
input it times:

  read only   the builder's reader pulling every day's 8 three-hourly 64x64 fields, nothing else
  build       the whole build (train = all days, paper region, 8 steps, stride 8), in-process,
              so TensorFlow's import (about 4 s) is not counted

and prints the median of --repeats runs in this one process: wall and CPU seconds, days/s,
and the build's median wall time over the median wall time of the reads run between its
builds ("x read": read and build alternate, so a shared machine's load weighs on both
alike), for each --compression and --workers 1 and the default. The shard size decides how many shards compress in
parallel (64 MiB, the default, gives one shard for a year, so workers cannot help).

    PYTHONPATH=. python benchmarks/bench_builder.py --data /tmp/era5-bench --days 120 --repeats 5
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tfrecords_builder.build import build
from tfrecords_builder.cutting import check_config, open_source, plan_splits
from tfrecords_builder.options import BuildConfig, default_workers
from tfrecords_builder.sequences import day_times
from tfrecords_builder.synthetic import write_synthetic
from tfrecords_builder.writer import COMPRESSIONS

START = np.datetime64("2019-01-01")


def ensure_data(folder, days):
    """(netCDF files, Zarr store) of `days` days in `folder`, written there first unless they already are."""
    import xarray as xr

    folder = Path(folder)
    end = str(START + days - 1)
    stamp = folder / f"days-{days}"
    if not stamp.exists():
        print(f"writing {days} days of synthetic hourly data to {folder} ...", flush=True)
        for old in folder.glob("netcdf/*.nc"):
            old.unlink()
        files = write_synthetic(folder / "netcdf", str(START), end, style="classic", per="month")
        arco = xr.concat([xr.load_dataset(f) for f in files], "time").rename(r="relative_humidity")
        arco = arco.astype(np.float32)
        chunks = {"relative_humidity": {"chunks": (1, *arco["relative_humidity"].shape[1:])}}
        arco.to_zarr(folder / "era5.zarr", mode="w", encoding=chunks, zarr_format=2, consolidated=True)
        stamp.touch()
    return sorted((folder / "netcdf").glob("*.nc")), folder / "era5.zarr"


def read_only(config):
    """Read every complete day's fields exactly as the builder does; return the number of days."""
    cut = check_config(config)
    with open_source(config.inputs, cut) as source:
        days, _ = plan_splits(source, cut)["train"]
        for day in days:
            source.read(day_times(day, cut.hours))
    return len(days)


def seconds(fn):
    """Wall-clock and CPU (all threads) seconds of one call: on a shared machine the CPU time shows
    the work, the wall time what other processes leave of the cores."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - start_cpu


def alternate(read, build, repeats):
    """Median (wall, CPU) of `read` and of `build` over `repeats` runs of each, one after the other."""
    reads, builds = [], []
    for _ in range(repeats):
        reads.append(seconds(read))
        builds.append(seconds(build))
    return [tuple(statistics.median(column) for column in zip(*runs)) for runs in (reads, builds)]


def row(label, wall, cpu, days, read_wall):
    print(f"{label:44s} {wall:7.3f} {cpu:7.3f} {days / wall:8.1f} {wall / read_wall:7.2f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="folder for the synthetic data (reused if there; default: a temp dir)")
    parser.add_argument("--days", type=int, default=365, help="days of hourly data from 2019-01-01")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the median is shown")
    parser.add_argument("--inputs", nargs="+", choices=("netcdf", "zarr"), default=["netcdf", "zarr"])
    parser.add_argument("--compression", nargs="+", choices=tuple(COMPRESSIONS), default=list(COMPRESSIONS))
    parser.add_argument("--shard-mb", type=float, default=64.0, help="shard size of the builds")
    args = parser.parse_args(argv)

    import tensorflow  # noqa: F401  (imported once here so the builds time the build, not the import)

    with tempfile.TemporaryDirectory() as tmp:
        files, store = ensure_data(args.data or Path(tmp) / "era5", args.days)
        inputs = {"netcdf": tuple(map(str, files)), "zarr": (str(store),)}
        print(
            f"\n{args.days} days; median of {args.repeats} runs, {default_workers()} default workers, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n"
        )
        print(f"{'run':44s} {'wall s':>7s} {'CPU s':>7s} {'days/s':>8s} {'x read':>7s}")
        for kind in args.inputs:
            config = BuildConfig(
                inputs=inputs[kind],
                out=str(Path(tmp) / "out"),
                train=f"{START}:{START + args.days - 1}",
                val="none",
                test="none",
                shard_mb=args.shard_mb,
                quiet=True,
            )
            days = read_only(config)
            for compression in args.compression:
                for workers in sorted({1, default_workers()}):
                    run = BuildConfig(**{**config.__dict__, "compression": compression, "workers": workers})
                    shards = len(build(run)["splits"]["train"]["shards"])
                    (read_wall, read_cpu), (wall, cpu) = alternate(
                        lambda config=config: read_only(config), lambda run=run: build(run), args.repeats
                    )
                    row(f"{kind}: read only", read_wall, read_cpu, days, read_wall)
                    row(
                        f"{kind}: build {compression}, {shards} shard(s), {workers} workers", wall, cpu, days, read_wall
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
