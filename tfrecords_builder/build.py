"""The build: ERA5 files -> train/val/test TFRecord shards, training statistics, climatology, manifest.

`python -m tfrecords_builder FILES... --out DIR` runs `main`; `build(BuildConfig(...))` is the
same from Python. Shards are written by a pool of threads, one shard at a time per thread:
GZIP compression, the costly part, runs in TensorFlow without the GIL, so shards compress in
parallel while netCDF reads (serialised by xarray's file lock) interleave with them.
"""

import argparse
import hashlib
import importlib.metadata
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tfrecords_builder.errors import BuildError
from tfrecords_builder.reader import Era5Source, expand_inputs
from tfrecords_builder.schema import MANIFEST_NAME, SCHEMA_VERSION, SPLITS, serialize_example, shard_name
from tfrecords_builder.sequences import (
    DEGRADATIONS,
    SCALES,
    check_divisible,
    day_times,
    degrade,
    lr_coords,
    nan_reason,
    plan_days,
    step_hours,
)
from tfrecords_builder.stats import Climatology, RunningStats
from tfrecords_builder.writer import FRAME_BYTES, ShardWriter, publish, remove_temporaries, shard_runs, temp_path

MB = 2**20


def default_workers():
    return min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class BuildConfig:
    """Everything a build depends on; the defaults are the paper's protocol (section 3)."""

    inputs: tuple
    out: str
    variable: str = "r"
    levels: tuple = (300,)
    lat: tuple = (37.0, 52.75)
    lon: tuple = (105.0, 120.75)
    region_name: str | None = None
    steps: int = 8
    interval_hours: int = 3
    scale: int = 8
    degradation: str = "stride"
    train: str = "2019-01-01:2020-12-31"
    val: str = "2021-01-01:2021-12-31"
    test: str = "2022-01-01:2022-10-31"
    shard_mb: float = 64.0
    workers: int = field(default_factory=default_workers)
    quiet: bool = False


@dataclass
class ShardTask:
    split: str
    index: int
    count: int
    days: list

    @property
    def name(self):
        return shard_name(self.split, self.index, self.count)


@dataclass
class ShardResult:
    examples: int
    days: int
    skipped: list
    stats: RunningStats | None
    climatology: Climatology | None


def parse_splits(config):
    """{split: (first day, last day)} of the splits not omitted; an error for bad or overlapping ranges."""
    splits = {}
    for name in SPLITS:
        text = getattr(config, name)
        if text is None or text.strip().lower() in ("", "none"):
            continue
        try:
            start, end = (np.datetime64(part.strip(), "D") for part in text.split(":"))
        except ValueError:
            raise BuildError(f"--{name} {text!r} is not START:END with dates like 2019-01-01:2020-12-31") from None
        if end < start:
            raise BuildError(f"--{name} {text!r} ends before it starts")
        splits[name] = (start, end)
    if "train" not in splits:
        raise BuildError("the train split is required: statistics and climatology come from it")
    ordered = sorted(splits.items(), key=lambda item: item[1][0])
    for (a, (_, a_end)), (b, (b_start, _)) in zip(ordered, ordered[1:]):
        if b_start <= a_end:
            raise BuildError(f"splits {a} ({getattr(config, a)}) and {b} ({getattr(config, b)}) overlap")
    return splits


def _no_days(name, start, end, skipped):
    """The error for an empty split; `skipped` [(day, reason)] says why, when the data had days there."""
    why = f" ({len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
    return BuildError(f"split {name} has no complete days between {start} and {end}{why}")


def _level_value(level):
    """300.0 -> 300, so manifest levels and climatology keys read "300"."""
    return int(level) if float(level).is_integer() else float(level)


def _source_record(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MB), b""):
            digest.update(chunk)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _version():
    try:
        return importlib.metadata.version("hsr-keras")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class _Cancelled(Exception):
    """Another shard failed; this one stops early (its error is the one reported)."""


class _ShardJob:
    """Writes one shard's days: read, skip incomplete ones, degrade, serialise, compress."""

    def __init__(self, config, source, levels, hours, region, out_dir, progress):
        self.config, self.source, self.levels, self.hours = config, source, levels, hours
        self.region, self.out_dir, self.progress = region, out_dir, progress
        self.cancel = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, task):
        training = task.split == "train"
        stats = RunningStats() if training else None
        shape = (len(self.hours), len(self.source.lat), len(self.source.lon))
        climatology = Climatology(len(self.levels), shape) if training else None
        skipped, days = [], 0
        with ShardWriter(temp_path(self.out_dir, task.name)) as writer:
            for day in task.days:
                if self.cancel.is_set():
                    raise _Cancelled
                times = day_times(day, self.hours)
                block = self.source.read(times)
                written = writer.records
                for index, level in enumerate(self.levels):
                    hr = block[index]
                    reason = nan_reason(hr, self.hours)
                    if reason:
                        skipped.append((day, level, reason))
                        continue
                    lr = degrade(hr, self.config.scale, self.config.degradation)
                    writer.write(serialize_example(hr, lr, times, level, self.region))
                    if training:
                        stats.update(hr)
                        climatology.update(index, hr)
                days += writer.records > written
                with self._lock:
                    self.progress.update(1)
        return ShardResult(writer.records, days, skipped, stats, climatology)


def _run(tasks, job, files, workers):
    """Run the shard tasks and the checksums on `workers` threads; results in task order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        shard_futures = [pool.submit(job, task) for task in tasks]
        file_futures = [pool.submit(_source_record, path) for path in files]
        try:
            for future in as_completed(shard_futures + file_futures):
                future.result()
        except BaseException:
            job.cancel.set()
            for future in shard_futures + file_futures:
                future.cancel()
            raise
    return [f.result() for f in shard_futures], [f.result() for f in file_futures]


def build(config, command=()):
    """Build the TFRecords and manifest described by `config`; return the manifest."""
    hours = step_hours(config.steps, config.interval_hours)
    splits = parse_splits(config)
    if config.scale not in SCALES:
        raise BuildError(f"scale {config.scale} is not one of {', '.join(map(str, SCALES))}")
    if config.degradation not in DEGRADATIONS:
        raise BuildError(f"degradation {config.degradation!r} is not one of {', '.join(DEGRADATIONS)}")
    if config.shard_mb <= 0 or config.workers < 1:
        raise BuildError("--shard-mb must be positive and --workers at least 1")
    for axis, (lo, hi) in (("latitude", config.lat), ("longitude", config.lon)):
        if lo > hi:
            raise BuildError(f"{axis} bounds {lo:g} to {hi:g}: the minimum is above the maximum")
    levels = sorted({float(level) for level in config.levels})
    files = expand_inputs(config.inputs)
    out_dir = Path(config.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise BuildError(f"output {out_dir} exists and is not a folder")

    with Era5Source(files, config.variable, levels, config.lat, config.lon) as source:
        lat, lon = source.lat, source.lon
        check_divisible(len(lat), len(lon), config.scale)
        plans = {name: plan_days(source.times, start, end, hours) for name, (start, end) in splits.items()}
        for name, (days, skipped) in plans.items():
            if not days:
                raise _no_days(name, *splits[name], skipped)
        region = config.region_name or f"lat{lat[0]:g}-{lat[-1]:g}_lon{lon[0]:g}-{lon[-1]:g}"
        hr_shape = [len(hours), len(lat), len(lon)]
        lr_shape = [len(hours), len(lat) // config.scale, len(lon) // config.scale]
        first_day = plans["train"][0][0]
        record_bytes = FRAME_BYTES + len(
            serialize_example(np.zeros(hr_shape), np.zeros(lr_shape), day_times(first_day, hours), levels[-1], region)
        )
        tasks = []
        for name, (days, _) in plans.items():
            runs = shard_runs(days, record_bytes * len(levels), config.shard_mb * MB)
            tasks += [ShardTask(name, i, len(runs), run) for i, run in enumerate(runs)]

        out_dir.mkdir(parents=True, exist_ok=True)
        remove_temporaries(out_dir)
        total_days = sum(len(task.days) for task in tasks)
        progress = tqdm(total=total_days, unit="day", desc="building", disable=True if config.quiet else None, delay=1)
        job = _ShardJob(config, source, levels, hours, region, out_dir, progress)
        try:
            with progress:
                results, sources = _run(tasks, job, files, config.workers)
            manifest = _manifest(config, command, levels, hours, region, source, hr_shape, lr_shape)
            renames = _collect(manifest, splits, plans, levels, tasks, results, out_dir)
            manifest["sources"] = sources
            publish(out_dir, renames, manifest)
        finally:  # after a failure all of this build's temporaries; after success the empty shards
            for task in tasks:
                temp_path(out_dir, task.name).unlink(missing_ok=True)
    return manifest


def _manifest(config, command, levels, hours, region, source, hr_shape, lr_shape):
    lat, lon = source.lat, source.lon
    return {
        "schema_version": SCHEMA_VERSION,
        "created_by": f"tfrecords_builder {_version()}",
        "command": list(command),
        "variable": config.variable,
        "units": "%",
        "levels": [_level_value(level) for level in levels],
        "region": {
            "name": region,
            "lat_min": float(lat[0]),
            "lat_max": float(lat[-1]),
            "lon_min": float(lon[0]),
            "lon_max": float(lon[-1]),
        },
        "steps_per_day": len(hours),
        "interval_hours": config.interval_hours,
        "step_hours": hours,
        "scale": config.scale,
        "degradation": config.degradation,
        "hr_shape": hr_shape,
        "lr_shape": lr_shape,
        "grid": {
            "lat": lat.tolist(),
            "lon": lon.tolist(),
            "lr_lat": lr_coords(lat, config.scale, config.degradation).tolist(),
            "lr_lon": lr_coords(lon, config.scale, config.degradation).tolist(),
            "resolution_deg": source.resolution,
        },
    }


def _collect(manifest, splits, plans, levels, tasks, results, out_dir):
    """Fill in splits, stats and climatology from the shard results; return the shard renames.

    Shards left empty (every day of their run skipped) are dropped and the others renumbered.
    Partial statistics merge in task order, so the numbers do not depend on --workers.
    """
    stats, climatology = RunningStats(), Climatology(len(levels), manifest["hr_shape"])
    for result in results:
        if result.stats is not None:
            stats.merge(result.stats)
            climatology.merge(result.climatology)
    renames, manifest["splits"] = [], {}
    for name, (start, end) in splits.items():
        mine = [result for task, result in zip(tasks, results) if task.split == name]
        kept = [
            (temp_path(out_dir, task.name), result)
            for task, result in zip(tasks, results)
            if task.split == name and result.examples
        ]
        skipped = [(day, level, reason) for day, reason in plans[name][1] for level in levels]
        skipped += [entry for result in mine for entry in result.skipped]
        skipped.sort(key=lambda entry: (entry[0], entry[1]))
        if not kept:
            raise _no_days(name, start, end, [(day, reason) for day, _, reason in skipped])
        names = [shard_name(name, i, len(kept)) for i in range(len(kept))]
        renames += [(temp, final) for (temp, _), final in zip(kept, names)]
        manifest["splits"][name] = {
            "start": str(start),
            "end": str(end),
            "examples": sum(result.examples for result in mine),
            "days": sum(result.days for result in mine),
            "shards": names,
            "bytes": sum(temp.stat().st_size for temp, _ in kept),
            "skipped": [{"date": str(d), "level": _level_value(lv), "reason": r} for d, lv, r in skipped],
            "skipped_count": len(skipped),
        }
    manifest["stats"] = stats.as_dict()
    means = climatology.means()
    manifest["climatology"] = {str(_level_value(level)): means[i].tolist() for i, level in enumerate(levels)}
    return renames


def summary(manifest, out_dir):
    lines = []
    for name, split in manifest["splits"].items():
        lines.append(
            f"{name:5s} {split['start']}..{split['end']}: {split['days']} days, {split['examples']} examples "
            f"in {len(split['shards'])} shards ({split['bytes'] / MB:.1f} MiB), {split['skipped_count']} skipped"
        )
    lines.append(f"wrote {Path(out_dir) / MANIFEST_NAME}")
    return "\n".join(lines)


def parse_args(argv):
    d = BuildConfig(inputs=(), out="")
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_builder",
        description=(
            "Turn ERA5 relative-humidity files into sharded GZIP TFRecords of region-days (HR fields and their "
            "LR counterparts) plus manifest.json with grid, training statistics and climatology."
        ),
        epilog="`python -m tfrecords_builder synthetic --help` writes synthetic ERA5-like files for demos and tests.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="ERA5 files, quoted glob patterns or folders of .nc/.grib files: netCDF in the classic or 2024+ CDS "
        "layout, or GRIB (needs pip install hsr-keras[grib])",
    )
    parser.add_argument(
        "-o",
        "--out",
        required=True,
        default=argparse.SUPPRESS,
        help="output folder for the shards and manifest.json (an earlier build there is replaced)",
    )
    parser.add_argument("--variable", default=d.variable, help="variable to read; its units must be %%")
    parser.add_argument(
        "--levels",
        nargs="+",
        type=float,
        default=list(d.levels),
        metavar="HPA",
        help="pressure levels; one record per region, day and level",
    )
    parser.add_argument(
        "--lat",
        nargs=2,
        type=float,
        default=list(d.lat),
        metavar=("MIN", "MAX"),
        help="latitude bounds in degrees north, inclusive, snapped to grid points",
    )
    parser.add_argument(
        "--lon",
        nargs=2,
        type=float,
        default=list(d.lon),
        metavar=("MIN", "MAX"),
        help="longitude bounds in degrees east, inclusive, snapped to grid points",
    )
    parser.add_argument(
        "--region-name",
        default=d.region_name,
        help="region id stored in each record; None: from the bounds, e.g. lat37-52.75_lon105-120.75",
    )
    parser.add_argument("--steps", type=int, default=d.steps, help="time steps per day, from 00 UTC")
    parser.add_argument("--interval-hours", type=int, default=d.interval_hours, help="hours between steps")
    parser.add_argument("--scale", type=int, choices=SCALES, default=d.scale, help="HR/LR resolution ratio")
    parser.add_argument(
        "--degradation",
        choices=DEGRADATIONS,
        default=d.degradation,
        help="LR from HR: stride takes every scale-th point (the paper's), block_mean "
        "averages each scale x scale block",
    )
    parser.add_argument(
        "--train",
        default=d.train,
        help="training dates START:END, inclusive; statistics and climatology come from them",
    )
    for name in ("val", "test"):
        parser.add_argument(
            f"--{name}", default=getattr(d, name), help=f"{name} dates START:END, inclusive; '' or none omits the split"
        )
    parser.add_argument(
        "--shard-mb",
        type=float,
        default=d.shard_mb,
        help="target shard size in MiB of uncompressed records; decides the shard count",
    )
    parser.add_argument("--workers", type=int, default=d.workers, help="threads writing shards in parallel")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    args = parser.parse_args(argv)
    return BuildConfig(
        inputs=tuple(args.inputs),
        out=args.out,
        variable=args.variable,
        levels=tuple(args.levels),
        lat=tuple(args.lat),
        lon=tuple(args.lon),
        region_name=args.region_name,
        steps=args.steps,
        interval_hours=args.interval_hours,
        scale=args.scale,
        degradation=args.degradation,
        train=args.train,
        val=args.val,
        test=args.test,
        shard_mb=args.shard_mb,
        workers=args.workers,
        quiet=args.quiet,
    )


def main(argv=None):
    """Command line entry point; returns the exit status (2 for bad input, with a one-line message)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    config = parse_args(argv)
    try:
        manifest = build(config, command=["python", "-m", "tfrecords_builder", *argv])
    except BuildError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was published", file=sys.stderr)
        return 130
    if not config.quiet:
        print(summary(manifest, config.out))
    return 0
