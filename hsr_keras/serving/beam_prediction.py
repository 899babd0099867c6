"""`predict --runner beam`: the Zarr predict as an Apache Beam pipeline with RunInference, for decades of data.

The launcher does what the local predict does before predicting (`prediction.predict`: checks,
the sequences, the store's header or the resume state, all in one line on bad input), then runs
one element per unfinished chunk (a sequence of one member) through:

1. `ReadChunk`: the chunk's LR sequence [levels, T, h, w] from the inputs, opened once per
   worker; elements are `(ChunkKey, lr)`.
2. `RunInference(HsrModelHandler)`: Beam loads the model once per worker (a SavedModel or a
   `.keras` generator, through predict's own loaders) and batches elements; each sequence is
   predicted by `model_functions.predict_sequence`, the local predict's own code, so the numbers are
   the same bytes.
3. `WriteChunk`: the chunk's region into the store and then its marker (`zarr_store.SequenceWriter`),
   so a killed pipeline is resumed by the same command, as the local one is.
4. `Finish`, once every chunk is written: the store marked complete and consolidated.

Beam's `TFModelHandlerTensor` is not used: it loads with `tf.keras.models.load_model`, which
Keras 3 refuses for a SavedModel, needs tensorflow_hub, and calls the model on the stacked batch,
where a region is predicted in cross-faded tiles. Beam's `KeyedModelHandler` is not used either:
the key (member, sequence) picks a member's noise stream, so the handler needs it. The store must
be a folder every worker and the launcher see, as for the Beam build (docs/cloud.md).
"""

import dataclasses
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from hsr_keras.serving import model_functions, zarr_store
from tfrecords_builder.contract.beam_runner import run_pipeline


@dataclasses.dataclass(frozen=True)
class ChunkKey:
    """Where a chunk goes: its member (None: the best estimate), sequence index, first time index and times."""

    member: int | None
    index: int
    start: int
    times: np.ndarray


@dataclasses.dataclass(frozen=True)
class Job:
    """What the workers need, all picklable: the inputs, the model and the options of the launcher's predict."""

    paths: list  # of Path
    variable: str
    meta: dict
    grid: tuple  # model_functions.predict_sequence's (scale, keep_rows, tile, overlap, batch_size, wrap)
    kind: str
    model_path: Path
    clip: bool
    members: int | None
    seed: int
    out: str
    dims: tuple


class ReadChunk(beam.DoFn):
    """ChunkKey -> (ChunkKey, lr [levels, T, h, w] float32, latitude ascending)."""

    def __init__(self, job):
        self.job, self.source = job, None

    def setup(self):
        from tfrecords_builder.contract.era5.reader import Era5Source

        meta = self.job.meta
        self.source = Era5Source(
            self.job.paths, self.job.variable, meta["levels"], meta["lat_bounds"], meta["lon_bounds"]
        )

    def process(self, key):
        yield key, self.source.read(key.times)

    def teardown(self):
        if self.source is not None:
            self.source.close()


class HsrModelHandler(ModelHandler):
    """RunInference's handler: examples `(ChunkKey, lr)`, predictions `(ChunkKey, [fine field per level])`."""

    def __init__(self, job):
        # One sequence per call: its tiles already fill the model's batches (--batch-size), and its
        # fine fields are 64 times its size.
        super().__init__(max_batch_size=1)
        self.job = job

    def load_model(self):
        from hsr_keras.serving.saved_model import use_tensorflow_backend

        use_tensorflow_backend()
        job = self.job
        if job.members is None:
            return model_functions.load_model_function(job.kind, job.model_path, job.clip)
        return model_functions.load_member_function(job.kind, job.model_path, job.clip)

    def run_inference(self, batch, model, inference_args=None):
        job = self.job
        for key, lr in batch:
            fields = model_functions.predict_sequence(
                model, lr, key.times, job.meta, job.grid, key.index, key.member, job.seed
            )
            yield key, list(fields)

    def get_num_bytes(self, batch):
        return sum(lr.nbytes for _, lr in batch)

    def get_metrics_namespace(self):
        return "hsr_keras_predict"


class WriteChunk(beam.DoFn):
    """(ChunkKey, fields) -> 1: the chunk's region written into the store, then its marker."""

    def __init__(self, job):
        self.job, self.writer = job, None

    def setup(self):
        self.writer = zarr_store.SequenceWriter(self.job.out, self.job.variable, self.job.dims, ())

    def process(self, element):
        key, fields = element
        length = len(key.times)
        for k, hr in enumerate(fields):
            self.writer[model_functions.field_at(self.job.meta, key.start, length, k, key.member)] = hr
        self.writer.finish(key.member, key.index, key.start, length)
        yield 1


def chunk_keys(sequences, members, done):
    """The keys of the chunks not yet written (`done`: the finished chunks' marker names), in predict's order."""
    starts = np.cumsum([0] + [len(s) for s in sequences[:-1]])
    keys = []
    for member in [None] if members is None else range(members):
        for index, (start, times) in enumerate(zip(starts, sequences, strict=True)):
            if zarr_store.SequenceWriter.name(member, index) not in done:
                keys.append(ChunkKey(member, index, int(start), times))
    return keys


def make_pipeline(options, job, keys):
    """Steps 1 to 4 as a `beam.Pipeline` on the runner of `options`, not yet run."""
    pipeline = beam.Pipeline(options=options)
    (
        pipeline
        | "Chunks" >> beam.Create(keys)
        | "Spread" >> beam.Reshuffle()
        | "Read" >> beam.ParDo(ReadChunk(job))
        | "Predict" >> RunInference(HsrModelHandler(job))
        | "Write" >> beam.ParDo(WriteChunk(job))
        | "Count" >> beam.CombineGlobally(sum)
        | "Finish" >> beam.Map(lambda _, out: zarr_store.finish_store(out), out=job.out)
    )
    return pipeline


def predict_with_beam(beam_args, job, sequences, done):
    """Predict the chunks not in `done` into the started store `job.out` on the runner of `beam_args`.

    Returns the number of chunks written.
    """
    keys = chunk_keys(sequences, job.members, done)
    run_pipeline(make_pipeline(PipelineOptions(list(beam_args)), job, keys))
    return len(keys)
