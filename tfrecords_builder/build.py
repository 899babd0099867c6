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

A build holds the lock of its output folder (`files.FolderLock`): a second build into the same
folder is refused at once. A full disk stops it with one line (`files.DiskFull`); the earlier
build in the folder stays intact, and a folder the build made is removed again.
"""

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from tfrecords_builder.contract import beam_runner, files, remote
from tfrecords_builder.contract.console import run_command, set_quiet
from tfrecords_builder.contract.era5.reader import GRIB_SUFFIXES, NETCDF_SUFFIXES
from tfrecords_builder.contract.errors import BuildError
from tfrecords_builder.contract.manifest import CLIMATOLOGY_NAME
from tfrecords_builder.contract.schema import MANIFEST_NAME
from tfrecords_builder.cutting import (
    base_manifest,
    check_config,
    check_first_day,
    describe_region,
    open_source,
    plan_splits,
    static_of,
)
from tfrecords_builder.options import BuildConfig, default_workers, parse_args
from tfrecords_builder.shards import (
    MB,
    ShardJob,
    Totals,
    collect,
    plan_shards,
    prepare_output,
    remove_temporaries,
    source_record,
)
from tfrecords_builder.writer import COMPRESSIONS, SHARD_RE, publish

__all__ = ["BuildConfig", "build", "default_workers", "main", "parse_args", "summary"]


def _run(tasks, job, totals, inputs, workers):
    """Run the shard tasks (into `totals`) on `workers` threads and the checksums on one more.

    The checksums, a read of every input file, overlap the shards instead of following them;
    they come back in file order.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool, ThreadPoolExecutor(max_workers=1) as checksums:
        shard_futures = {pool.submit(job, task): index for index, task in enumerate(tasks)}
        file_futures = [checksums.submit(source_record, path) for path in inputs]
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
    if config.runner not in beam_runner.RUNNERS:
        raise BuildError(f"runner {config.runner!r} is not one of {', '.join(beam_runner.RUNNERS)}")
    if not remote.is_url(config.out):
        files.check_folder(config.out)
    return cut


def build(config, command=()):
    """Build the TFRecords and manifest described by `config`; return the manifest.

    Every check that needs no input (Beam's options included) comes before the output
    folder is locked, the inputs' before anything is written there.
    """
    cut = check_build(config)
    if remote.is_url(config.out):
        return _build_to_url(config, command)
    if any(remote.is_url(spec) for spec in config.inputs):
        config = replace(config, inputs=tuple(_local_input(spec) for spec in config.inputs))
        cut = check_build(config)
    run = _build_here
    if config.runner == "beam":
        try:
            from tfrecords_builder.beam_pipeline import build_with_beam
        except ModuleNotFoundError as err:
            if err.name != "apache_beam":
                raise
            raise BuildError("--runner beam needs Apache Beam: pip install hsr-keras[beam]") from None
        beam_runner.check_pipeline_options(config.beam_args)
        run = build_with_beam
    with files.FolderLock(config.out, command=" ".join(command) or "tfrecords_builder"):
        return run(cut, command)


def _local_input(spec):
    """An input as the readers take it: a netCDF or GRIB file on a bucket is copied to the cache first.

    Zarr store URLs (gs://) stay URLs: the Zarr reader reads them through fsspec itself.
    """
    if not remote.is_url(spec) or Path(spec).suffix.lower() not in NETCDF_SUFFIXES + GRIB_SUFFIXES:
        return spec
    return str(remote.fetch_input(spec))


def _build_to_url(config, command):
    """The build into a local staging folder under the cache, then published to the URL `config.out`, manifest last.

    Remote Beam runners would write the launcher's staging folder from their workers: refused
    (DirectRunner runs on this machine, so it stages here like the local runner).
    """
    runner = next((arg.split("=", 1)[1] for arg in config.beam_args if arg.startswith("--runner=")), None)
    if config.runner == "beam" and runner != "DirectRunner":
        raise BuildError(
            f"--out {config.out} with --beam-runner {runner}: a bucket output is staged on this machine, which the "
            "workers cannot write; use DirectRunner, or --out a folder every worker mounts and copy it to the bucket"
        )
    remote.filesystem(config.out)  # a protocol without its package: one line, before any work
    inputs = tuple(_local_input(spec) for spec in config.inputs)
    staging = remote.cache_root() / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    local = Path(tempfile.mkdtemp(prefix="build-", dir=staging))
    try:
        manifest = build(replace(config, inputs=inputs, out=str(local / "build")), command)
        remote.publish_folder(local / "build", config.out, owned=_build_file)
    finally:
        files.remove(local)
    return manifest


def _build_file(name):
    """Whether a file at a build's URL belongs to the build: an earlier build's shards and manifest are replaced."""
    return name in (MANIFEST_NAME, CLIMATOLOGY_NAME) or SHARD_RE.match(name) is not None


def _build_here(cut, command):
    """The build on this machine's threads (`--runner local`)."""
    config = cut.config
    out_dir = Path(config.out)
    with open_source(config.inputs, cut) as source:
        region = describe_region(source, cut)
        plans = plan_splits(source, cut)
        check_first_day(source, cut, plans)
        static, static_record = static_of(source, cut)
        progress = tqdm(total=0, unit="day", desc="building", disable=True if config.quiet else None, delay=1)
        job = ShardJob(cut, source, region, out_dir, progress)
        tasks = plan_shards(job, plans)
        prepare_output(out_dir)
        progress.total = sum(len(task.days) for task in tasks)
        totals = Totals(cut, region, tasks, job.patches.count)
        try:
            with progress, files.reporting_full_disk(out_dir, job.bytes_at_most(tasks), "needed at most"):
                sources = _run(tasks, job, totals, source.paths, config.workers)
                manifest = base_manifest(cut, source, region, command)
                if static_record:
                    manifest["static"] = static_record
                renames = collect(manifest, cut, plans, totals, out_dir, job.owner)
                manifest["sources"] = sources
                publish(out_dir, renames, manifest, static)
        finally:
            remove_temporaries(out_dir, tasks, job.owner)
    return manifest


def summary(manifest, out_dir):
    lines = []
    for name, split in manifest["splits"].items():
        lines.append(
            f"{name:5s} {split['start']}..{split['end']}: {split['days']} days, {split['examples']} examples "
            f"in {len(split['shards'])} shards ({split['bytes'] / MB:.1f} MiB), {split['skipped_count']} skipped"
        )
    patches = manifest["patches"]
    if patches.get("dropped_cells"):
        height, width = patches["size"]
        lines.append(
            f"patches: {patches['count']} of {height}x{width} grid points every {patches['stride'][0]} cover "
            f"{patches['coverage']:.1%} of the domain; {patches['dropped_cells']} grid points are in no patch"
        )
    manifest_path = remote.join(out_dir, MANIFEST_NAME) if remote.is_url(out_dir) else Path(out_dir) / MANIFEST_NAME
    lines.append(f"wrote {manifest_path}")
    return "\n".join(lines)


def main(argv=None):
    """Command line entry point; returns the exit status (see `tfrecords_builder.contract.console`)."""
    return run_command(_command, sys.argv[1:] if argv is None else list(argv))


def _command(argv):
    config = parse_args(argv)
    set_quiet(config.quiet)
    manifest = build(config, command=["python", "-m", "tfrecords_builder", *argv])
    if not config.quiet:
        print(summary(manifest, config.out))
    return 0
