"""The build: ERA5 files or Zarr stores -> train/val/test TFRecord shards, training statistics, climatology, manifest.

`python -m tfrecords_builder FILES... --out DIR` runs `main`; `build(BuildConfig(...))` is the
same from Python. What a sample is (checks, splits, skipped days, manifest facts) is decided in
`cutting`, shared with `tfrecords_builder.in_memory`; this module writes the samples. Shards are
written by a pool of threads, one shard at a time per thread: GZIP compression, the costly
part, runs in TensorFlow without the GIL, so shards compress in parallel while netCDF reads
(serialised by xarray's file lock) interleave with them. Deflate (`--compression`, the
default) costs about 6x the read of the same data; huffman and store trade shard size for
speed (benchmarks/bench_builder.py measures both against the read alone).

`--runner beam` runs the same shard jobs as an Apache Beam pipeline instead of the thread
pool (`beam_pipeline`): the same checks, plan, shards and manifest, on as many workers as the
Beam runner gives (DirectRunner here, DataflowRunner in the cloud).
"""

import argparse
import contextlib
import hashlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tfrecords_builder.contract.console import run_command
from tfrecords_builder.contract.era5.reader import is_store
from tfrecords_builder.contract.errors import BuildError
from tfrecords_builder.contract.manifest import shard_record
from tfrecords_builder.contract.schema import MANIFEST_NAME, SCALES, serialize_example, shard_name
from tfrecords_builder.cutting import (
    Tally,
    base_manifest,
    check_config,
    cut_day,
    describe_region,
    open_source,
    patches_of,
    plan_splits,
    split_record,
    training_facts,
)
from tfrecords_builder.sequences import DEGRADATIONS, day_times
from tfrecords_builder.writer import (
    COMPRESSIONS,
    FRAME_BYTES,
    ShardWriter,
    check_writable,
    publish,
    remove_temporaries,
    shard_runs,
    temp_path,
)

MB = 2**20
# --runner: where the shard jobs run. local: this machine's thread pool; beam: an Apache Beam pipeline.
RUNNERS = ("local", "beam")


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
    patch_size: int | None = None
    patch_stride: int | None = None
    steps: int = 8
    interval_hours: int = 3
    scale: int = 8
    degradation: str = "stride"
    train: str = "2019-01-01:2020-12-31"
    val: str = "2021-01-01:2021-12-31"
    test: str = "2022-01-01:2022-10-31"
    shard_mb: float = 64.0
    compression: str = "deflate"
    workers: int = field(default_factory=default_workers)
    quiet: bool = False
    runner: str = "local"
    beam_args: tuple = ()  # Beam pipeline options, e.g. ("--runner=DirectRunner", "--direct_num_workers=2")


@dataclass
class ShardTask:
    split: str
    index: int
    count: int
    days: list

    @property
    def name(self):
        return shard_name(self.split, self.index, self.count)


def source_record(path):
    """What the manifest says of an input: a file's size and checksum; a Zarr store's path alone."""
    if is_store(path):
        return {"path": str(path), "format": "zarr"}
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MB), b""):
            digest.update(chunk)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


class _Cancelled(Exception):
    """Another shard failed; this one stops early (its error is the one reported)."""


class ShardJob:
    """Writes one shard's days: read, skip incomplete patches, degrade, serialise, compress.

    Run by the local thread pool and by the Beam pipeline's workers alike, so both write the same bytes.
    """

    def __init__(self, cut, source, region, out_dir, progress=None):
        self.cut, self.source, self.region = cut, source, region
        self.out_dir, self.progress = out_dir, progress
        self.patches = patches_of(source, cut)
        # A record names its patch only when there are several: one patch gives the records of schema 1.
        corners = self.patches.corners(source.lat, source.lon)
        self.patch_features = [(k, *corner) for k, corner in enumerate(corners)] if len(corners) > 1 else None
        self.cancel = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, task):
        tally = Tally(self.cut, self.region, training=task.split == "train", patches=self.patches.count)
        with ShardWriter(temp_path(self.out_dir, task.name), self.cut.config.compression) as writer:
            for day in task.days:
                if self.cancel.is_set():
                    raise _Cancelled
                times, samples = cut_day(self.source, day, self.cut, self.patches)
                for s in tally.add(day, samples):
                    patch = self.patch_features and self.patch_features[s.patch]
                    writer.write(serialize_example(s.hr, s.lr, times, s.level, self.region.name, patch))
                if self.progress is not None:
                    with self._lock:
                        self.progress.update(1)
        return tally

    def record_bytes(self, day):
        """Bytes in a shard of one record of the domain's last patch at the last level on `day`."""
        cut, region = self.cut, self.region
        patch = self.patch_features and self.patch_features[-1]
        times = day_times(day, cut.hours)
        example = serialize_example(
            np.zeros(region.hr_shape), np.zeros(region.lr_shape), times, cut.levels[-1], region.name, patch
        )
        return FRAME_BYTES + len(example)


class Totals:
    """Each split's tally and non-empty shards, merged shard by shard in task order as shards finish.

    Task order makes the numbers independent of --workers; merging as soon as the order allows
    keeps few shards' tallies (and their climatology, large for a global build) in memory.
    """

    def __init__(self, cut, region, tasks, patches):
        self.tasks = tasks
        self.tallies = {name: Tally(cut, region, training=name == "train", patches=patches) for name in cut.splits}
        self.kept = {name: [] for name in cut.splits}
        self._finished, self._next = {}, 0

    def add(self, index, tally):
        self._finished[index] = tally
        while self._next in self._finished:
            task, tally = self.tasks[self._next], self._finished.pop(self._next)
            self.tallies[task.split].merge(tally)
            if tally.examples:
                self.kept[task.split].append(task)
            self._next += 1


def _run(tasks, job, totals, files, workers):
    """Run the shard tasks (into `totals`) on `workers` threads and the checksums on one more.

    The checksums, a read of every input file, overlap the shards instead of following them;
    they come back in file order.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool, ThreadPoolExecutor(max_workers=1) as checksums:
        shard_futures = {pool.submit(job, task): index for index, task in enumerate(tasks)}
        file_futures = [checksums.submit(source_record, path) for path in files]
        try:
            for future in as_completed([*shard_futures, *file_futures]):
                result = future.result()
                if future in shard_futures:
                    totals.add(shard_futures[future], result)
        except BaseException:
            job.cancel.set()
            for future in [*shard_futures, *file_futures]:
                future.cancel()
            raise
    return [f.result() for f in file_futures]


def check_build(config):
    """The `Cut` of `config` after the checks that need no input: a `BuildError` for a bad request."""
    cut = check_config(config)
    if config.shard_mb <= 0 or config.workers < 1:
        raise BuildError("--shard-mb must be positive and --workers at least 1")
    if config.compression not in COMPRESSIONS:
        raise BuildError(f"compression {config.compression!r} is not one of {', '.join(COMPRESSIONS)}")
    if config.runner not in RUNNERS:
        raise BuildError(f"runner {config.runner!r} is not one of {', '.join(RUNNERS)}")
    out_dir = Path(config.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise BuildError(f"output {out_dir} exists and is not a folder")
    return cut


def plan_shards(job, plans):
    """The shard tasks of every split, in split order: runs of consecutive days of about --shard-mb each.

    The plan alone decides which records go to which shard, so every runner writes the same shards.
    """
    config, cut = job.cut.config, job.cut
    day_bytes = job.record_bytes(plans["train"][0][0]) * len(cut.levels) * job.patches.count
    tasks = []
    for name, (days, _) in plans.items():
        runs = shard_runs(days, day_bytes, config.shard_mb * MB)
        tasks += [ShardTask(name, i, len(runs), run) for i, run in enumerate(runs)]
    return tasks


def prepare_output(out_dir):
    """Create the output folder, check that it takes files, and remove what a killed build left there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    check_writable(out_dir)
    remove_temporaries(out_dir)


def remove_shard_temporaries(out_dir, tasks):
    """After a failure all of a build's temporaries; after success its empty shards."""
    for task in tasks:
        with contextlib.suppress(OSError):  # never hide the error that stopped the build
            temp_path(out_dir, task.name).unlink(missing_ok=True)


def build(config, command=()):
    """Build the TFRecords and manifest described by `config`; return the manifest."""
    cut = check_build(config)
    if config.runner == "beam":
        try:
            from tfrecords_builder.beam_pipeline import build_with_beam
        except ModuleNotFoundError as err:
            if err.name != "apache_beam":
                raise
            raise BuildError("--runner beam needs Apache Beam: pip install hsr-keras[beam]") from None
        return build_with_beam(cut, command)
    out_dir = Path(config.out)
    with open_source(config.inputs, cut) as source:
        region = describe_region(source, cut)
        plans = plan_splits(source, cut)
        progress = tqdm(total=0, unit="day", desc="building", disable=True if config.quiet else None, delay=1)
        job = ShardJob(cut, source, region, out_dir, progress)
        tasks = plan_shards(job, plans)
        prepare_output(out_dir)
        progress.total = sum(len(task.days) for task in tasks)
        totals = Totals(cut, region, tasks, job.patches.count)
        try:
            with progress:
                sources = _run(tasks, job, totals, source.paths, config.workers)
            manifest = base_manifest(cut, source, region, command)
            renames = collect(manifest, cut, plans, totals, out_dir)
            manifest["sources"] = sources
            publish(out_dir, renames, manifest)
        finally:
            remove_shard_temporaries(out_dir, tasks)
    return manifest


def collect(manifest, cut, plans, totals, out_dir):
    """Fill in splits, stats and climatology from the splits' tallies; return the shard renames.

    Shards left empty (every day of their run skipped) are dropped and the others renumbered.
    """
    renames, manifest["splits"] = [], {}
    for name in cut.splits:
        kept = [temp_path(out_dir, task.name) for task in totals.kept[name]]
        record = split_record(name, cut, plans[name][1], totals.tallies[name])
        names = [shard_name(name, i, len(kept)) for i in range(len(kept))]
        renames += list(zip(kept, names))
        files = [shard_record(temp, shard) for temp, shard in zip(kept, names)]
        manifest["splits"][name] = {
            **record,
            "shards": names,
            "bytes": sum(f["bytes"] for f in files),
            "shard_files": files,  # what `hsr_keras.training.data.check_shards` compares before reading
        }
        if name == "train":
            manifest.update(training_facts(totals.tallies[name], cut))
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
            "Turn ERA5 relative humidity (netCDF, GRIB or Zarr such as ARCO-ERA5; derived from t and q where r is "
            "absent) into sharded GZIP TFRecords of region-days or patch-days (HR fields and their LR counterparts) "
            "plus manifest.json with grid, patches, training statistics and climatology."
        ),
        epilog="`python -m tfrecords_builder synthetic --help` writes synthetic ERA5-like files for demos and tests.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="ERA5 files, quoted glob patterns or folders of .nc/.grib files: netCDF in the classic or 2024+ CDS "
        "layout, or GRIB (needs pip install hsr-keras[grib]); or Zarr stores in the ARCO-ERA5 layout, a local "
        "*.zarr folder or a gs:// URL (needs hsr-keras[zarr], and [gcs] for gs://)",
    )
    parser.add_argument(
        "-o",
        "--out",
        required=True,
        default=argparse.SUPPRESS,
        help="output folder for the shards and manifest.json (an earlier build there is replaced)",
    )
    parser.add_argument(
        "--variable",
        default=d.variable,
        help="variable to read (short or ARCO long name); its units must be %%; r is derived from t and q "
        "where an input has no r",
    )
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
        help="longitude bounds in degrees east, inclusive, snapped to grid points; MIN above MAX runs across "
        "0/360 (350 10)",
    )
    parser.add_argument(
        "--region-name",
        default=d.region_name,
        help="region id stored in each record; None: from the bounds, e.g. lat37-52.75_lon105-120.75",
    )
    parser.add_argument(
        "--patch-size",
        type=int,
        default=d.patch_size,
        metavar="CELLS",
        help="cut the region (up to the whole globe) into patches of CELLS x CELLS HR grid points, a record "
        "per patch, day and level; a multiple of the scale. None: the whole region is one sample",
    )
    parser.add_argument(
        "--patch-stride",
        type=int,
        default=d.patch_stride,
        metavar="CELLS",
        help="grid points from one patch to the next, a multiple of the scale; None: the patch size. Rows and "
        "columns that do not fill a patch are dropped and counted in the manifest",
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
    parser.add_argument(
        "--compression",
        choices=tuple(COMPRESSIONS),
        default=d.compression,
        help="how the GZIP shards are compressed: deflate (smallest), huffman (about 5x faster, a third larger on "
        "ERA5) or store (fastest, half as large again); all read alike",
    )
    parser.add_argument(
        "--workers", type=int, default=d.workers, help="threads writing shards in parallel (the local runner)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    parser.add_argument(
        "--runner",
        choices=RUNNERS,
        default=d.runner,
        help="local: a thread pool on this machine; beam: an Apache Beam pipeline (pip install hsr-keras[beam]) "
        "with the same shards and manifest, on the workers of --beam-runner. Options this command does not know, "
        "e.g. --direct_num_workers=2 or Dataflow's --project, go to Beam's PipelineOptions",
    )
    parser.add_argument(
        "--beam-runner",
        default="DirectRunner",
        help="the Beam runner of --runner beam: DirectRunner (this machine), DataflowRunner (Google Cloud), ...",
    )
    args, beam_args = parser.parse_known_args(argv)
    if beam_args and args.runner != "beam":
        parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
    return BuildConfig(
        inputs=tuple(args.inputs),
        out=args.out,
        variable=args.variable,
        levels=tuple(args.levels),
        lat=tuple(args.lat),
        lon=tuple(args.lon),
        region_name=args.region_name,
        patch_size=args.patch_size,
        patch_stride=args.patch_stride,
        steps=args.steps,
        interval_hours=args.interval_hours,
        scale=args.scale,
        degradation=args.degradation,
        train=args.train,
        val=args.val,
        test=args.test,
        shard_mb=args.shard_mb,
        compression=args.compression,
        workers=args.workers,
        quiet=args.quiet,
        runner=args.runner,
        beam_args=(f"--runner={args.beam_runner}", *beam_args) if args.runner == "beam" else (),
    )


def main(argv=None):
    """Command line entry point; returns the exit status (see `tfrecords_builder.contract.console`)."""
    return run_command(_command, sys.argv[1:] if argv is None else list(argv))


def _command(argv):
    config = parse_args(argv)
    manifest = build(config, command=["python", "-m", "tfrecords_builder", *argv])
    if not config.quiet:
        print(summary(manifest, config.out))
    return 0
