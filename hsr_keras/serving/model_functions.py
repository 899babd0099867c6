"""A model as a function of numpy fields, and one daily sequence predicted with it: the core of `predict`.

`prediction.predict` (files into netCDF or Zarr on this machine) and `beam_prediction` (the Zarr
predict on a Beam runner) both load the model through here and predict each sequence with
`predict_sequence`, so the two give the same numbers.
"""

import os

import numpy as np

from hsr_keras.models import model_files
from hsr_keras.models.model_files import OUTPUT_NAME, SAVED_MODEL
from hsr_keras.serving.saved_model import best_estimate, serving_function, signature_inputs
from hsr_keras.serving.tiling import predict_field
from tfrecords_builder.contract.era5.humidity import implausibility
from tfrecords_builder.contract.errors import InputError


class PredictError(InputError):
    """Bad input to `predict`; the command line prints it and exits with status 2."""


def load_member_function(kind, path, clip_negative=False):
    """`(lr [B, T, h, w, 1], seed) -> hr [B, T, s*h, s*w, 1]`: one member per field, or None without noise.

    Through the export's SAMPLE_SIGNATURE (a SavedModel) or the same traced function built from
    the `.keras` generator (`saved_model.sampling_function`): both give the same numbers.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from hsr_keras.models.model_files import MEMBERS_NAME
    from hsr_keras.serving.saved_model import sampling_function

    if kind == SAVED_MODEL:
        sample = model_files.saved_model_sampler(path)
        if sample is None:
            return None

        def run(lr, seed):
            return sample(lr, seed, 1)[:, 0]

    else:
        generator = model_files.load_generator(path)
        function = sampling_function(generator)
        if function is None:
            return None
        names = [name for name, _, _ in signature_inputs(generator)]

        def run(lr, seed):
            feed = model_files.signature_feed(lr)
            once = [tf.constant(seed, tf.int64), tf.constant(1, tf.int32)]
            return function(*(feed[name] for name in names), *once)[MEMBERS_NAME].numpy()[:, 0]

    if not clip_negative:
        return run
    return lambda lr, seed: np.maximum(run(lr, seed), 0.0)


def member_stream(run_member, seed, *where):
    """A model function (numpy LR -> HR) drawing member noise from a stream of `seed` and `where`.

    `where` (member, sequence, level) picks the stream; every call (a batch of tiles) takes the
    next seed of it, so no two tiles, fields or members share their noise, and the same `seed`
    gives the same bytes.
    """
    calls = iter(range(2**31))

    def run(lr):
        state = np.random.SeedSequence([int(seed), *map(int, where), next(calls)]).generate_state(1, np.uint32)
        return run_member(lr, int(state[0]))

    return run


def load_model_function(kind, path, clip_negative=False):
    """numpy lr [B, T, h, w, 1] float32 -> numpy hr [B, T, s*h, s*w, 1] float32, %RH in and out.

    A model with extra inputs takes the dict of its signature's inputs by name (`model_files.signature_feed`).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    if kind == SAVED_MODEL:
        run = model_files.saved_model_predictor(path)
        estimate = None
    else:
        generator = model_files.load_generator(path)
        serve = serving_function(generator)
        estimate = best_estimate(generator)
        names = [name for name, _, _ in signature_inputs(generator)]

        def run(lr):
            feed = model_files.signature_feed(lr)
            return serve(*(feed[name] for name in names))[OUTPUT_NAME].numpy()

    if not clip_negative:
        clipped = run
    else:

        def clipped(lr):
            return np.maximum(run(lr), 0.0)

    clipped.best_estimate = estimate  # what the model returns, for the output's comment (None: the export says)
    return clipped


def field_at(meta, start, length, level, member=None):
    """The output variable's index of one level's field of the sequence at times `start`.. `start + length`."""
    at = (slice(start, start + length),) if meta.get("surface") else (slice(start, start + length), level)
    return at if member is None else (member, *at)


def predict_sequence(run, lr, sequence, meta, grid, index, member=None, seed=0, extras=None):
    """Yield each level's fine field [T, H, W] of one sequence, rows in the output's order; the input checked first.

    `lr` is the sequence's [levels, T, h, w], latitude ascending; `grid` is (scale, keep_rows,
    tile, overlap, batch_size, wrap); `extras` the model's extra inputs of the sequence
    (`_extras_reader`), or None. `predict` and the Beam path (`beam_prediction`) both predict
    through here, so they give the same numbers.
    """
    from tfrecords_builder.contract.era5.reader import level_words

    scale, keep_rows, tile, overlap, batch_size, wrap = grid
    for k, level in enumerate(meta["levels"]):
        where = level_words(level).removeprefix("at ")
        if not np.isfinite(lr[k]).all():
            bad = np.datetime64(int(sequence[np.flatnonzero(~np.isfinite(lr[k]).all(axis=(1, 2)))[0]]), "s")
            raise PredictError(f"the input has missing or non-finite values at {bad}, {where}: fill or drop them")
        problem = implausibility(lr[k])
        if problem:
            day = np.datetime64(int(sequence[0]), "s").astype("datetime64[D]")
            raise PredictError(f"the input {where} on {day} is not relative humidity: {problem}")
        model = run if member is None else member_stream(run, seed, member, index, k)
        hr = predict_field(model, lr[k], scale, tile, overlap, batch_size, wrap, extras)[:, keep_rows]
        if not np.isfinite(hr).all():
            raise PredictError(
                f"the model produced non-finite values at {np.datetime64(int(sequence[0]), 's')}, {where}"
            )
        yield hr[:, ::-1] if meta["descending_lat"] else hr
