"""The build as an Apache Beam pipeline: `python -m tfrecords_builder ... --runner beam [Beam options]`.

The local build runs its shard jobs on one machine's threads; this runs the same jobs on a
Beam runner's workers (DirectRunner's processes here, Dataflow's machines in the cloud), for
builds that one machine cannot finish in time, e.g. global ERA5 over decades and levels.
It writes the same shards, byte for byte, and the same manifest:

1. On the launching machine, as the local build does (`build`): check the request and the
   pipeline options (`check_pipeline_options`: an unknown runner or option, or a bad value,
   is one line before anything starts, where Beam would warn, drop or print its usage), open the
   inputs, check the first training day, plan the splits and the shards (`plan_build`; `shards.plan_shards`: runs of consecutive days, so
   the plan alone decides which record goes to which shard and in what order), and prepare
   the output folder. Bad input stops here, with the local build's one-line errors, before
   any worker starts.
2. `WriteShard`: one element per shard, reshuffled over the workers. A worker opens the
   inputs once and runs `shards.ShardJob` on each shard: it reads the shard's days (a time
   chunk of the netCDF files or the Zarr store), cuts days and patches, degrades, and writes
   the records with `writer.ShardWriter` under the shard's temporary name. A retried shard
   rewrites that file from its start, so a retry neither drops nor duplicates records.
   Beam's WriteToTFRecord is not used: it would choose which records go to which file and in
   what order, and it has no huffman or store compression.
3. `TotalsFn`, a CombineFn, merges the shards' tallies (`cutting.Tally`) exactly: counts and
   skipped samples are sums and lists; the statistics (`stats.RunningStats`) are merged in
   shard order as the local build merges them, so they are the same numbers; the
   climatology's float64 sums are added in the order the shards finish (sums of float32
   values, which float64 adds exactly unless a sum needs more than 53 bits).
4. `Publish`, once every shard and input checksum is done: renames the shards and writes the
   manifest last (`writer.publish`), so a pipeline that fails or is killed earlier leaves no
   manifest and no published shard; the launcher then removes its temporaries.

Steps 2 to 4 are `make_pipeline`'s graph, the same for every runner; docs/cloud.md has the
launch lines for Dataflow, Flink and Spark and what of them is checked offline
(tests/test_beam_cloud.py translates the graph with DataflowRunner's own code, not submitted).
The output folder must be one that every worker and the launcher see (a local folder for
DirectRunner; for Dataflow a file system mounted on every worker): a bucket --out is refused.
"""

import contextlib
import copy
import dataclasses
import json
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from tfrecords_builder.contract import files
from tfrecords_builder.contract.beam_runner import run_pipeline
from tfrecords_builder.contract.errors import BuildError
from tfrecords_builder.contract.schema import MANIFEST_NAME
from tfrecords_builder.cutting import (
    base_manifest,
    check_first_day,
    describe_region,
    open_source,
    plan_splits,
    static_of,
)
from tfrecords_builder.shards import (
    ShardJob,
    Totals,
    collect,
    plan_shards,
    prepare_output,
    remove_temporaries,
    source_record,
)
from tfrecords_builder.stats import RunningStats
from tfrecords_builder.writer import publish


class WriteShard(beam.DoFn):
    """The DoFn of step 2: (task index, `ShardTask`) -> (task index, split, `Tally`), the shard written."""

    def __init__(self, cut, inputs, out_dir, owner):
        self.cut, self.inputs, self.out_dir, self.owner = cut, inputs, out_dir, owner
        self.source = self.job = None

    def setup(self):
        self.source = open_source(self.inputs, self.cut)
        region = describe_region(self.source, self.cut)
        self.job = ShardJob(self.cut, self.source, region, self.out_dir, owner=self.owner)

    def process(self, element):
        index, task = element
        yield index, task.split, self.job(task)

    def teardown(self):
        if self.source is not None:
            self.source.close()


class TotalsFn(beam.CombineFn):
    """The CombineFn of step 3: shard tallies -> a `shards.Totals`, as the local build's.

    The accumulator is {split: Tally} merged in any order, and {task index: [RunningStats]} (the
    target's, then each predictor's) of the train shards, folded in task order at the end so
    the statistics do not depend on the order in which shards finish.
    """

    def __init__(self, cut, region, tasks, patches):
        self.cut, self.region, self.tasks, self.patches = cut, region, tasks, patches

    def create_accumulator(self):
        return {}, {}, set()

    def add_input(self, accumulator, element):
        index, split, tally = element
        tallies, stats, kept = accumulator
        if tally.stats is not None:  # a copy: merging into the split's tally changes its own
            stats[index] = [copy.copy(s) for s in (tally.stats, *tally.predictor_stats)]
        if tally.examples:
            kept.add(index)
        if split in tallies:
            tallies[split].merge(tally)
        else:
            tallies[split] = tally
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for tallies, stats, kept in accumulators:
            for split, tally in tallies.items():
                if split in merged[0]:
                    merged[0][split].merge(tally)
                else:
                    merged[0][split] = tally
            merged[1].update(stats)
            merged[2].update(kept)
        return merged

    def extract_output(self, accumulator):
        tallies, stats, kept = accumulator
        totals = Totals(self.cut, self.region, [], self.patches)
        totals.tallies.update(tallies)
        if "train" in totals.tallies:
            train = totals.tallies["train"]
            train.stats = RunningStats()
            train.predictor_stats = [RunningStats() for _ in train.predictor_stats]
            for index in sorted(stats):
                for merged, shard in zip((train.stats, *train.predictor_stats), stats[index]):
                    merged.merge(shard)
        for index in sorted(kept):
            totals.kept[self.tasks[index].split].append(self.tasks[index])
        return totals


def publish_build(totals, sources, manifest, cut, plans, out_dir, owner, static=None):
    """Step 4: the manifest's splits, statistics and sources; then the shards (and static.npy, `static`) renamed and
    the manifest last."""
    renames = collect(manifest, cut, plans, totals, out_dir, owner)
    manifest["sources"] = [record for _, record in sorted(sources, key=lambda item: item[0])]
    publish(out_dir, renames, manifest, static)


def _checksum(item):
    index, path = item
    return index, source_record(path)


@dataclasses.dataclass
class BeamPlan:
    """What the launcher decides before any worker starts (step 1): the shard tasks and the manifest's facts."""

    cut: object
    region: dict
    plans: dict
    tasks: list
    job: ShardJob
    inputs: list
    manifest: dict
    static: bytes | None = None  # static.npy of a build with --static


def plan_build(cut, command=()):
    """Step 1 on the launching machine: open the inputs, check the first day, plan the splits and shards."""
    config = cut.config
    with open_source(config.inputs, cut) as source:
        region = describe_region(source, cut)
        plans = plan_splits(source, cut)
        check_first_day(source, cut, plans)
        static, static_record = static_of(source, cut)
        job = ShardJob(cut, source, region, Path(config.out))
        tasks = plan_shards(job, plans)
        manifest = base_manifest(cut, source, region, command)
        if static_record:
            manifest["static"] = static_record
        inputs = list(source.paths)
    return BeamPlan(cut, region, plans, tasks, job, inputs, manifest, static)


def build_with_beam(cut, command=()):
    """`build.build` on a Beam runner: the same shards and manifest; returns the manifest."""
    config = cut.config
    out_dir = Path(config.out)
    options = PipelineOptions(list(config.beam_args))
    plan = plan_build(cut, command)
    prepare_output(out_dir)
    try:
        with files.reporting_full_disk(out_dir, plan.job.bytes_at_most(plan.tasks), "needed at most"):
            run_pipeline(make_pipeline(options, plan))
    finally:
        remove_temporaries(out_dir, plan.tasks, plan.job.owner)
    with contextlib.suppress(OSError, ValueError):
        return json.loads((out_dir / MANIFEST_NAME).read_text())
    raise BuildError(f"the Beam pipeline finished without writing {out_dir / MANIFEST_NAME}")


def make_pipeline(options, plan):
    """Steps 2 to 4 as a `beam.Pipeline` on the runner of `options`, not yet run."""
    job = plan.job
    pipeline = beam.Pipeline(options=options)
    sources = pipeline | "Inputs" >> beam.Create(list(enumerate(plan.inputs))) | "Checksums" >> beam.Map(_checksum)
    (
        pipeline
        | "Shards" >> beam.Create(list(enumerate(plan.tasks)))
        | "Spread" >> beam.Reshuffle()
        | "Write shards" >> beam.ParDo(WriteShard(plan.cut, plan.inputs, job.out_dir, job.owner))
        | "Totals" >> beam.CombineGlobally(TotalsFn(plan.cut, plan.region, plan.tasks, job.patches.count))
        | "Publish"
        >> beam.Map(
            publish_build,
            beam.pvalue.AsList(sources),
            manifest=plan.manifest,
            static=plan.static,
            cut=plan.cut,
            plans=plan.plans,
            out_dir=job.out_dir,
            owner=job.owner,
        )
    )
    return pipeline
