"""A build's shards: the plan (which days go to which shard), the job that writes one, and their totals.

The local build (`build`) runs the shard jobs on a thread pool, the Beam build
(`beam_pipeline`) on a runner's workers; both plan, write and collect through this module,
so they write the same bytes. Shards are written under temporary names owned by the process
that launched the build (`files.temporary_path`), which renames them all when every one is
complete (`writer.publish`) or removes them when the build fails.
"""

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfrecords_builder.contract import files
from tfrecords_builder.contract.era5.reader import is_store
from tfrecords_builder.contract.manifest import shard_record
from tfrecords_builder.contract.schema import serialize_example, shard_name
from tfrecords_builder.cutting import Tally, cut_day, patches_of, split_record, training_facts
from tfrecords_builder.sequences import day_times
from tfrecords_builder.writer import FRAME_BYTES, ShardWriter, shard_runs

MB = 2**20


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
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": files.sha256_of(path)}


def shard_temporary(out_dir, task, owner):
    """Where `task`'s shard is written until the build publishes it; `owner`: (host, pid) of the launcher."""
    host, pid = owner
    return files.temporary_path(Path(out_dir) / task.name, pid=pid, host=host)


def this_process():
    """(host, pid) of this process: the owner of the temporaries of a build it launches."""
    return files.host_tag(), os.getpid()


class _Cancelled(Exception):
    """Another shard failed; this one stops early (its error is the one reported)."""


class ShardJob:
    """Writes one shard's days: read, skip incomplete patches, degrade, serialise, compress.

    Run by the local thread pool and by the Beam pipeline's workers alike, so both write the
    same bytes; `owner` is the (host, pid) of the process that launched the build, which
    names the temporaries (`shard_temporary`). Defaults to this process.
    """

    def __init__(self, cut, source, region, out_dir, progress=None, owner=None):
        self.cut, self.source, self.region = cut, source, region
        self.out_dir, self.progress = out_dir, progress
        self.owner = owner or this_process()
        self.patches = patches_of(source, cut)
        # A record names its patch only when there are several: one patch gives the records of schema 1.
        corners = self.patches.corners(source.lat, source.lon)
        self.patch_features = [(k, *corner) for k, corner in enumerate(corners)] if len(corners) > 1 else None
        self.cancel = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, task):
        tally = Tally(self.cut, self.region, training=task.split == "train", patches=self.patches.count)
        with ShardWriter(shard_temporary(self.out_dir, task, self.owner), self.cut.config.compression) as writer:
            for day in task.days:
                if self.cancel.is_set():
                    raise _Cancelled
                times, samples = cut_day(self.source, day, self.cut, self.patches)
                for s in tally.add(day, samples):
                    patch = self.patch_features and self.patch_features[s.patch]
                    writer.write(serialize_example(s.hr, s.lr, times, s.level, self.region.name, patch, s.predictors))
                if self.progress is not None:
                    with self._lock:
                        self.progress.update(1)
        return tally

    def day_bytes(self, day):
        """Bytes in a shard of one day's records (every level and patch), uncompressed."""
        return self.record_bytes(day) * len(self.cut.levels) * self.patches.count

    def bytes_at_most(self, tasks):
        """What the shards of `tasks` take at most: their records uncompressed (GZIP makes them smaller)."""
        return sum(len(task.days) for task in tasks) * self.day_bytes(tasks[0].days[0])

    def record_bytes(self, day):
        """Bytes in a shard of one record of the domain's last patch at the last level on `day`."""
        cut, region = self.cut, self.region
        patch = self.patch_features and self.patch_features[-1]
        times = day_times(day, cut.hours)
        predictors = np.zeros((*region.lr_shape, len(cut.predictors))) if cut.predictors else None
        example = serialize_example(
            np.zeros(region.hr_shape), np.zeros(region.lr_shape), times, cut.levels[-1], region.name, patch, predictors
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


def plan_shards(job, plans):
    """The shard tasks of every split, in split order: runs of consecutive days of about --shard-mb each.

    The plan alone decides which records go to which shard, so every runner writes the same shards.
    """
    config = job.cut.config
    day_bytes = job.day_bytes(plans["train"][0][0])
    tasks = []
    for name, (days, _) in plans.items():
        runs = shard_runs(days, day_bytes, config.shard_mb * MB)
        tasks += [ShardTask(name, i, len(runs), run) for i, run in enumerate(runs)]
    return tasks


def prepare_output(out_dir):
    """Create the output folder, check that it takes files, and remove what a killed build left there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not files.writable(out_dir):
        raise OSError(f"cannot write into {out_dir}: the folder is read-only")
    files.remove_stale(out_dir)


def remove_temporaries(out_dir, tasks, owner):
    """After a failure all of a build's temporaries; after success its empty shards."""
    for task in tasks:
        with contextlib.suppress(OSError):  # never hide the error that stopped the build
            shard_temporary(out_dir, task, owner).unlink(missing_ok=True)


def collect(manifest, cut, plans, totals, out_dir, owner):
    """Fill in splits, stats and climatology from the splits' tallies; return the shard renames.

    Shards left empty (every day of their run skipped) are dropped and the others renumbered.
    """
    renames, manifest["splits"] = [], {}
    for name in cut.splits:
        kept = [shard_temporary(out_dir, task, owner) for task in totals.kept[name]]
        record = split_record(name, cut, plans[name][1], totals.tallies[name])
        names = [shard_name(name, i, len(kept)) for i in range(len(kept))]
        renames += list(zip(kept, names))
        shard_files = [shard_record(temp, shard) for temp, shard in zip(kept, names)]
        manifest["splits"][name] = {
            **record,
            "shards": names,
            "bytes": sum(f["bytes"] for f in shard_files),
            "shard_files": shard_files,  # what `hsr_keras.training.data.check_shards` compares before reading
        }
        if name == "train":
            manifest.update(training_facts(totals.tallies[name], cut))
    return renames
