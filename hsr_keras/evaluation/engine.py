"""The evaluation engine: ways to get HR fields from LR ones, scored on one split, streamed.

A `Method` wraps a Keras generator (sampled as an ensemble with its Gaussian noise on, if
asked), an exported SavedModel, or an interpolation baseline. `evaluate_methods` streams a
split of a `tfrecords_builder` build batch by batch through one `MethodScores` per method: the
metric card of `hsr_keras.scoring.metrics` (all in %RH on the HR grid) over the split and per month,
the radially averaged power spectrum and its power over the truth's in two bands above the LR
grid's Nyquist wavenumber, and for ensembles the fair CRPS and the spread. Memory
does not grow with the number of days. `hsr_keras.evaluation.reports` writes the results.
"""

import math
import re

import numpy as np
from tqdm import tqdm

from hsr_keras.evaluation.method_scores import MethodScores, SpectrumAccumulator
from hsr_keras.models import model_files
from hsr_keras.scoring import interpolation
from hsr_keras.scoring.spectra import band_power_ratios, power_bands
from tfrecords_builder.contract.errors import InputError

# `hsr_keras.scoring.metrics` (Keras) is imported where it is used, so that `python -m hsr_keras.evaluate
# --help` and the command's argument checks run without starting TensorFlow.

# Baseline key -> (table label, interpolation method, aligned).
BASELINES = {
    "lanczos": ("Lanczos (aligned)", "lanczos", True),
    "bilinear": ("Bilinear (aligned)", "bilinear", True),
    "bicubic": ("Bicubic (aligned)", "bicubic", True),
    "lanczos-naive": ("Lanczos (naive resize)", "lanczos", False),
    "bilinear-naive": ("Bilinear (naive resize)", "bilinear", False),
    "bicubic-naive": ("Bicubic (naive resize)", "bicubic", False),
}
BASELINE_GROUPS = {
    "aligned": ("lanczos", "bilinear", "bicubic"),
    "naive": ("lanczos-naive", "bilinear-naive", "bicubic-naive"),
    "all": tuple(BASELINES),
    "none": (),
}
REFERENCE = BASELINES["bicubic"][0]
"""The method every model is measured against (the paper: 3.38x lower MSE than bicubic)."""

COMPARISON_MODEL = "model"
COMPARISON_REFERENCE = REFERENCE.lower()
"""The two rows of `fit`'s end-of-training comparison (`compare_with_bicubic`)."""

MAP_DAYS = 3
"""Days, evenly spread over the split, whose fields are kept for the sample maps by default."""


class EvaluationError(InputError):
    """Bad input to the evaluation; the commands print it on one line and exit with 2."""


# ----------------------------------------------------------------------------- methods


class Method:
    """A way to get HR fields from LR ones: numpy `[B, T, h, w]` in, `[B, T, H, W]` out (%RH).

    Args:
        name: the row label.
        predict: callable LR -> HR.
        info: JSON-serialisable description (kind, source, settings) for results.json.
        sampler: optional callable `(lr, n) -> [n, B, T, H, W]` drawing `n` members.
        samples: members to draw per prediction (1: `predict` only). Defaults to 1.
        inputs: the inputs `predict` and `sampler` take, by an export signature's names
            (`stream_split`'s): ("lr",), the LR field alone, or more: then they take the dict
            of `lr` and the build's extra inputs. Defaults to ("lr",).
    """

    def __init__(self, name, predict, info=None, sampler=None, samples=1, inputs=("lr",)):
        self.name = name
        self.predict = predict
        self.info = dict(info or {})
        self.sampler = sampler
        self.samples = int(samples) if sampler is not None else 1
        self.inputs = tuple(inputs)

    @property
    def takes_extras(self):
        return len(self.inputs) > 1

    def __call__(self, lr):
        return self.predict(lr)


def _predict_batches(model, batch_size):
    def predict(lr):
        x = model_feed(lr, time_features=True)
        step = max(int(batch_size), 1)
        count = len(x["lr"]) if isinstance(x, dict) else len(x)
        parts = [np.asarray(model.predict_on_batch(_rows(x, slice(i, i + step)))) for i in range(0, count, step)]
        return np.concatenate(parts)[..., 0]

    return predict


def model_feed(x, time_features=False):
    """A model's input from numpy LR fields `[B, T, h, w]`, or from their dict with the extra inputs.

    The dict (`stream_split`'s names: `lr`, `predictors`, `time` seconds, `static`) becomes a
    generator's (`time_features=True`: the contract's encodings of the times) or an export
    signature's named inputs (`time` as it is).
    """
    from tfrecords_builder.contract.inputs import time_features as encode

    if not isinstance(x, dict):
        return np.asarray(x, dtype="float32")[..., None]
    feed = {name: value for name, value in x.items() if name != "time"}
    feed["lr"] = np.asarray(x["lr"], dtype="float32")[..., None]
    if "time" in x:
        feed.update({"time_features": encode(x["time"])} if time_features else {"time": x["time"]})
    return feed


def _rows(x, rows):
    return {name: value[rows] for name, value in x.items()} if isinstance(x, dict) else x[rows]


def stochastic_generator(model, seed=0):
    """`hsr_keras.models.sampling.sampler`: `model` drawing a new member per inference call, or None without noise.

    A model that cannot be cloned layer by layer (a subclassed model) is an `EvaluationError`.
    """
    from hsr_keras.models import sampling

    try:
        return sampling.sampler(model, seed)
    except Exception as err:  # subclassed models cannot be cloned layer by layer
        raise EvaluationError(
            f"cannot sample {model.name!r} with its noise on (--samples): {err}".splitlines()[0]
        ) from err


def keras_model_method(model, name, batch_size=16, samples=1, seed=0, info=None):
    """A Keras generator as a `Method` (inference mode); with `samples > 1`, an ensemble of noise draws.

    The draws are seeded (`sampling.reseed` with `seed`), so an evaluation gives the same numbers
    when repeated. A generator whose noise is on in inference (`NoiseInjection`) is scored on one
    member with `samples=1`.
    """
    from hsr_keras.models import sampling

    info = dict(info or {}, kind="model", samples=int(samples))
    extras = [name.replace("time_features", "time") for name in model_files.generator_inputs(model)]
    if sampling.samples_in_inference(model):
        sampling.reseed(model, seed)
    predict = _predict_batches(model, batch_size)
    if samples <= 1:
        info["stochastic"] = sampling.samples_in_inference(model)
        if info["stochastic"]:
            info["note"] = "noise on in inference: one member scored (--samples N scores the mean of N)"
        return Method(name, predict, info, inputs=extras)
    noisy = stochastic_generator(model, seed)
    info["stochastic"] = noisy is not None
    if noisy is None:
        info["note"] = "no noise layer: the samples are identical (spread 0, CRPS = MAE)"
        return as_ensemble(Method(name, predict, info, inputs=extras), samples)
    sampling.reseed(noisy, seed)
    draw = _predict_batches(noisy, batch_size)

    def sampler(lr, n):
        return np.stack([draw(lr) for _ in range(n)])

    return Method(name, predict, info, sampler=sampler, samples=samples, inputs=extras)


def as_ensemble(method, samples):
    """A deterministic method as an ensemble of `samples` identical members (spread 0, CRPS = MAE), or itself for 1."""
    if samples <= 1 or method.samples > 1:
        return method

    def sampler(lr, n):
        pred = method.predict(lr)
        return np.broadcast_to(pred, (n,) + np.shape(pred))

    info = dict(method.info, samples=int(samples))
    return Method(method.name, method.predict, info, sampler=sampler, samples=samples, inputs=method.inputs)


def saved_model_method(path, name, samples=1, seed=0):
    """An exported SavedModel as a method: its serving signature, and with `samples > 1` its `sample` signature.

    Each batch's members come from their own seed (`seed` and the batch's number), so an
    evaluation repeats exactly. An export without a `sample` signature gives identical members.
    """
    run = model_files.saved_model_predictor(path)
    info = {"kind": "saved_model", "path": str(path), "samples": int(samples)}
    extras = run.inputs

    def predict(lr):
        return run(model_feed(lr))[..., 0]

    method = Method(name, predict, info, inputs=extras)
    draw = model_files.saved_model_sampler(path) if samples > 1 else None
    info["stochastic"] = draw is not None
    if draw is None:
        return as_ensemble(method, samples)
    batches = iter(range(2**31))

    def sampler(lr, n):
        state = np.random.SeedSequence([int(seed), next(batches)]).generate_state(1, np.uint32)
        members = draw(model_feed(lr), int(state[0]), n)[..., 0]
        return np.moveaxis(members, 1, 0)  # [B, N, ...] -> [N, B, ...]

    return Method(name, predict, info, sampler=sampler, samples=samples, inputs=extras)


def interpolation_method(name, manifest, aligned=True):
    """Interpolation from the LR points' true coordinates (aligned) or a naive image resize.

    Every patch of a build has the same LR points relative to its HR cells, so the first
    patch's coordinates serve all of them (a single region is the one patch).
    """
    from tfrecords_builder.contract.patches import patch_coords

    grid = patch_coords(manifest, 0)
    if aligned:
        return lambda lr: interpolation.upsample_aligned(
            lr, grid["lr_lat"], grid["lr_lon"], grid["lat"], grid["lon"], name
        )
    return lambda lr: interpolation.upsample_resize(lr, manifest["scale"], name)


def baseline_methods(keys, manifest):
    """`Method`s of baseline keys (see `BASELINES`), in the given order."""
    methods = []
    for key in keys:
        label, kernel, aligned = BASELINES[key]
        info = {"kind": "interpolation", "kernel": kernel, "placement": "aligned" if aligned else "naive resize"}
        methods.append(Method(label, interpolation_method(kernel, manifest, aligned), info))
    return methods


def parse_baselines(text):
    """Baseline keys from a comma/space separated list of keys and group names (order kept)."""
    keys = []
    for item in str(text).replace(",", " ").split():
        item = item.strip().lower()
        if item in BASELINE_GROUPS:
            keys.extend(BASELINE_GROUPS[item])
        elif item in BASELINES:
            keys.append(item)
        else:
            raise EvaluationError(
                f"unknown baseline {item!r}: choose from {', '.join(BASELINES)} or the groups "
                f"{', '.join(BASELINE_GROUPS)}"
            )
    return list(dict.fromkeys(keys))


def load_model_method(name, path, batch_size=8, samples=1, seed=0):
    """A `Method` for a model argument (see `model_files`); `ModelFileError` when it cannot be used."""
    kind, resolved = model_files.resolve(path)
    info = {"path": str(resolved), "config": model_files.fit_config(path)}
    if kind == model_files.SAVED_MODEL:
        method = saved_model_method(resolved, name, samples, seed)
        method.info.update(info)
        return method
    model = model_files.load_generator(resolved)
    info["params"] = int(model.count_params())
    return keras_model_method(model, name, batch_size, samples, seed, info)


def check_batching(batch_size, samples):
    """Days per batch and members per model must be positive."""
    if batch_size < 1 or samples < 1:
        raise EvaluationError(f"--batch-size and --samples must be >= 1. Received: {batch_size}, {samples}")


def check_members_fit(manifest, batch_size, samples):
    """The members of one streamed batch must fit the memory (`hsr_keras.models.memory`); `EvaluationError` naming --samples."""
    from hsr_keras.models import memory

    if samples <= 1:
        return
    short = memory.shortfall(memory.evaluation_bytes(manifest["hr_shape"], batch_size, samples))
    if short:
        what = f"{samples} members x {batch_size} days of {' x '.join(map(str, manifest['hr_shape']))} HR fields"
        raise EvaluationError(memory.limit_text("--samples", samples, *short, what + "; or --batch-size"))


# ----------------------------------------------------------------------------- streaming


def stream_split(manifest, split, batch_size, level=None, extras=False):
    """Batches `(lr [B,T,h,w], hr [B,T,H,W], time [B,T] int64 s, patch [B])` of a split, streamed (no cache).

    Records are read in shard order with their time stamps; with `level`, only the records
    of that pressure level. A damaged shard met while reading raises `hsr_keras.training.data.ShardError`
    naming it. With `extras`, each batch has a fifth item: the build's extra inputs by an export
    signature's names (`predictors` [B,T,h,w,P], `time` [B,T], `static` [B,H,W,S]; {} without).
    """
    import tensorflow as tf

    from hsr_keras.training.data import PARALLELISM, PREFETCH, read_errors, split_files, without_autotune
    from tfrecords_builder.contract.inputs import input_names, load_static, predictor_count
    from tfrecords_builder.contract.schema import COMPRESSION, parse_example

    files = split_files(manifest, split)
    hr_shape, lr_shape = manifest["hr_shape"], manifest["lr_shape"]
    names = input_names(manifest) if extras else []
    static = tf.constant(load_static(manifest)) if "static" in names else None

    def parse(serialized):
        return parse_example(serialized, hr_shape, lr_shape, predictors=predictor_count(manifest))

    def at_level(record):
        return tf.abs(record["level"] - float(level)) < 1e-3

    def fields(record):
        out = record["lr"], record["hr"], record["time"], record["patch"]
        if not extras:
            return out
        named = {}
        if "predictors" in names:
            named["predictors"] = record["predictors"]
        if "time_features" in names:  # the times: the model's feed computes their features
            named["time"] = record["time"]
        if static is not None:
            named["static"] = tf.gather(static, record["patch"])
        return (*out, named)

    ds = tf.data.TFRecordDataset(files, compression_type=COMPRESSION)
    ds = ds.map(parse, num_parallel_calls=PARALLELISM, deterministic=True)
    if level is not None:
        ds = ds.filter(at_level)
    ds = without_autotune(ds.map(fields).batch(batch_size).prefetch(PREFETCH))

    def batches():
        with read_errors(manifest, split):  # a damaged shard: one line naming it, not a traceback
            yield from ds.as_numpy_iterator()

    return batches()


def month_of(seconds):
    """'YYYY-MM' of a time stamp in seconds since 1970 UTC."""
    return str(np.datetime64(int(seconds), "s").astype("datetime64[M]"))


def day_of(seconds):
    """'YYYY-MM-DD' of a time stamp in seconds since 1970 UTC."""
    return str(np.datetime64(int(seconds), "s").astype("datetime64[D]"))


def training_climatology(manifest, level):
    """The training climatology of a level (the anomaly ACC's reference), or None without one.

    `[T, H, W]`, or `[patch, T, H, W]` for a build of several patches (one per patch position).
    """
    clim = manifest.get("climatology") or {}
    if not clim:
        return None
    levels = manifest.get("levels") or []
    candidates = [str(level)] if level is not None else []
    if level is not None:
        candidates += [str(int(level)) if float(level).is_integer() else str(level), str(float(level))]
    candidates += [str(v) for v in levels[:1]] + list(clim)
    key = next(k for k in candidates if k in clim)
    return np.asarray(clim[key], dtype="float64")


# ----------------------------------------------------------------------------- evaluation


def _as_methods(methods, manifest):
    out = []
    for name, method in methods.items() if isinstance(methods, dict) else ((m.name, m) for m in methods):
        if isinstance(method, str):
            method = Method(
                name,
                interpolation_method(method, manifest),
                {"kind": "interpolation", "kernel": method, "placement": "aligned"},
            )
        elif not isinstance(method, Method):
            method = Method(name, method, {"kind": "callable"})
        method.name = name
        out.append(method)
    return out


def _predict(method, lr, hr):
    """(prediction, members or None) of a method on a batch, checked against the HR shape."""
    members = None
    if method.samples > 1:
        members = np.asarray(method.sampler(lr, method.samples), dtype="float64")
        pred = members.mean(axis=0)
    else:
        pred = np.asarray(method(lr), dtype="float64")
    if pred.shape != hr.shape:
        raise EvaluationError(
            f"method {method.name!r} returns fields shaped {tuple(pred.shape)} for HR shaped "
            f"{tuple(hr.shape)}: was it trained for another scale?"
        )
    return pred, members


def check_map_dates(dates, manifest, split, level=None):
    """Each of `dates` must be a YYYY-MM-DD day of the split that has records (at `level`): else `EvaluationError`."""
    record = manifest["splits"][split]
    level = level if level is not None else (manifest.get("levels") or [None])[0]
    for text in dates:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(text)):
            raise EvaluationError(f"--map-dates {text!r} is not a day like 2022-01-31")
        try:
            day = str(np.datetime64(text, "D"))
        except ValueError:
            raise EvaluationError(f"--map-dates {text!r} is not a day like 2022-01-31") from None
        start, end = record.get("start"), record.get("end")
        if start and end and not start <= day <= end:
            raise EvaluationError(f"--map-dates {day} is outside split {split!r} ({start} to {end}): choose days in it")
        skipped = [
            entry
            for entry in record.get("skipped") or []
            if entry.get("date") == day and "patch" not in entry and (level is None or entry.get("level") == level)
        ]
        if skipped:
            raise EvaluationError(
                f"--map-dates {day} was skipped by the build ({skipped[0].get('reason')}): split {split!r} has no "
                "record of it; choose another day"
            )


def _map_days(total_days, map_days, map_dates):
    """Indices of the days kept for the maps when no explicit dates are given."""
    if map_dates or not map_days or map_days <= 0:
        return set()
    positions = np.linspace(0, max(total_days - 1, 0), int(map_days)).round()
    return {int(i) for i in np.unique(positions)}


# Over 80 lines, half of them the docstring of the report it returns; the loop streams every batch
# through every method once, so memory does not grow with the split.
def evaluate_methods(
    data,
    split,
    methods,
    batch_size=32,
    climatology_level=None,
    *,
    map_days=MAP_DAYS,
    map_dates=None,
    map_step=None,
    verbose=False,
):
    """Metric card of each method on a split, streamed; also per month, spectra and map fields.

    Args:
        data: build folder or loaded manifest.
        split: split name.
        methods: {name: `Method`, callable LR -> HR, or an aligned interpolation name}, or a
            list of `Method`s. Order is kept.
        batch_size: days per streamed batch.
        climatology_level: pressure level (hPa) evaluated: only its records are read, and its
            training climatology gives the anomaly ACC. Defaults to the manifest's first
            level.
        map_days: number of days, evenly spread over the split, whose fields are kept for
            the sample maps. Defaults to `MAP_DAYS`.
        map_dates: explicit 'YYYY-MM-DD' days for the maps (instead of `map_days`).
        map_step: time step of the maps. Defaults to the middle step of a day.
        verbose: print progress.

    Returns:
        {"split", "level", "days", "months", "methods": {name: scores},
         "monthly": {name: {month: scores}},
         "bands": {name: {latitude band: scores}} (a build of several patches; else {}),
         "spectra": {"wavenumber", "frames", "truth", "methods": {name: power},
                     "power_bands": {"power_near" | "power_mid" | "power_far": [first, last wavenumber]}},
         "maps": [{"date", "time", "lr", "truth", "patch", "predictions": {name}}]}
        Months are 'YYYY-MM' of each day's first time step; a patch's band is that of its
        centre (`tfrecords_builder.contract.patches.LATITUDE_BANDS`). Spectra are the frame means of
        `radial_power_spectrum`; an ensemble adds "<name> (members)" (every member's frames:
        the members' texture, which the ensemble mean smooths away).
        Scores hold the `MetricAccumulator` results (with the lattice where `lattice_scale`
        gives one; of the ensemble mean for an ensemble), "power_near", "power_mid" and
        "power_far" (`hsr_keras.scoring.spectra.band_power_ratios` of the method's spectrum; in
        the split's scores only), plus for ensembles the scores of
        `method_scores.EnsembleAccumulator` ("crps", "spread", "spread_skill", "rank_flatness",
        "rank_histogram", "members", "member_lattice") and "member_power_near|mid|far" (the
        members' spectrum over the truth's; split only). Memory does not grow with the number of days.
    """
    from tfrecords_builder.contract.manifest import read_manifest

    manifest = data if isinstance(data, dict) else read_manifest(data)
    if split not in manifest["splits"]:
        raise EvaluationError(f"split {split!r} is not in the manifest; it has {sorted(manifest['splits'])}")
    methods = _as_methods(methods, manifest)
    _check_inputs(methods, manifest)
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise EvaluationError(f"method names must be unique. Received: {names}")
    levels = manifest.get("levels") or []
    level = climatology_level if climatology_level is not None else (levels[0] if levels else None)
    filter_level = level if len(levels) > 1 or climatology_level is not None else None
    climatology = training_climatology(manifest, level)
    per_patch = climatology is not None and climatology.ndim == 4
    band_of = _patch_bands(manifest)
    total_days = manifest["splits"][split].get("days", manifest["splits"][split].get("examples", 0))
    steps = manifest["hr_shape"][0]
    step = steps // 2 if map_step is None else int(map_step)
    if not 0 <= step < steps:
        raise EvaluationError(f"map step {step} is outside the {steps} steps of a day")
    wanted_dates = set(map_dates or ())
    wanted_index = _map_days(total_days, map_days, map_dates)

    fixed = None if per_patch else climatology
    scale = lattice_scale(manifest)
    scores = {m.name: MethodScores(fixed, ensemble=m.samples > 1, scale=scale) for m in methods}
    truth_spectrum = SpectrumAccumulator()
    maps = []
    seen = 0
    progress = tqdm(unit="day", desc=f"evaluating {split}", disable=not verbose or None, delay=1)
    for lr, hr, time, patch, extras in stream_split(manifest, split, batch_size, filter_level, extras=True):
        hr = hr.astype("float64")
        months, bands = {}, {}
        for row, stamps in enumerate(time):
            months.setdefault(month_of(stamps[0]), []).append(row)
            if band_of:
                bands.setdefault(band_of[int(patch[row])], []).append(row)
        batch_climatology = climatology[patch] if per_patch else None
        keep = [row for row in range(len(hr)) if seen + row in wanted_index or day_of(time[row][0]) in wanted_dates]
        batch_maps = [_map_entry(lr, hr, time, patch, row, step) for row in keep]
        truth_spectrum.update(hr)
        for method in methods:
            pred, members = _predict(method, {"lr": lr, **extras} if method.takes_extras else lr, hr)
            scores[method.name].update(pred, hr, months, members, bands, batch_climatology)
            for entry, row in zip(batch_maps, keep):
                entry["predictions"][method.name] = pred[row, step].astype("float32")
        maps.extend(batch_maps)
        seen += len(hr)
        progress.update(len(hr))
    progress.close()
    if seen == 0:
        raise EvaluationError(f"split {split!r} has no records" + (f" at level {level}" if filter_level else ""))
    undrawn = sorted(wanted_dates - {entry["date"] for entry in maps})
    if undrawn:
        raise EvaluationError(f"--map-dates {', '.join(undrawn)}: split {split!r} has no record of these days")

    spectrum, power = _spectra(manifest, truth_spectrum, scores)
    monthly = {name: s.monthly_result() for name, s in scores.items()}
    return {
        "split": split,
        "level": level,
        "days": int(seen),
        "months": sorted({month for per in monthly.values() for month in per}),
        "methods": {name: {**s.result(), **power[name]} for name, s in scores.items()},
        "monthly": monthly,
        "bands": {name: s.band_result() for name, s in scores.items()} if band_of else {},
        "spectra": spectrum,
        "maps": maps,
    }


def _check_inputs(methods, manifest):
    """Every input a method takes must be one the build has: else an `EvaluationError` naming it."""
    from tfrecords_builder.contract.inputs import input_names

    available = {name.replace("time_features", "time") for name in input_names(manifest)}
    for method in methods:
        missing = [name for name in ("predictors", "time", "static") if name in method.inputs and name not in available]
        if missing:
            raise EvaluationError(
                f"{method.name!r} was trained with extra inputs, but the build in "
                f"{manifest.get('_dir', 'the manifest')} has no {', '.join(missing)}: evaluate it on a build made "
                "with them"
            )


def _map_entry(lr, hr, time, patch, row, step):
    """One day's fields for the sample maps; the methods' predictions are added as they come."""
    return {
        "date": day_of(time[row][0]),
        "time": str(np.datetime64(int(time[row][step]), "s")),
        "lr": lr[row, step].astype("float32"),
        "truth": hr[row, step].astype("float32"),
        "patch": int(patch[row]),
        "predictions": {},
    }


def _spectra(manifest, truth_spectrum, scores):
    """The report's "spectra" (truth, each method, one member of each ensemble) and each method's band power ratios."""
    wavebands = power_bands(min(manifest["hr_shape"][1:]), manifest["scale"])
    spectrum = {
        "wavenumber": truth_spectrum.wavenumbers.tolist(),
        "frames": truth_spectrum.frames,
        "truth": truth_spectrum.result().tolist(),
        "methods": {name: s.spectrum.result().tolist() for name, s in scores.items()},
        "power_bands": {name: list(band) for name, band in wavebands.items()},
    }
    power = {
        name: band_power_ratios(spectrum["wavenumber"], spectrum["methods"][name], spectrum["truth"], wavebands)
        for name in scores
    }
    for name, s in scores.items():
        if s.member_spectrum is not None:
            members = s.member_spectrum.result()
            spectrum["methods"][f"{name} (members)"] = members.tolist()
            ratios = band_power_ratios(spectrum["wavenumber"], members, spectrum["truth"], wavebands)
            power[name].update({f"member_{band}": ratio for band, ratio in ratios.items()})
    return spectrum, power


def lattice_scale(manifest):
    """The LR stride at which the lattice is measured, or None where the build has no sample points.

    A "stride" build's LR values are its HR points at rows and columns multiple of the scale,
    in every patch (patches start at multiples of it); a "block_mean" build keeps no HR point,
    so no point can be smoother for having been kept. Fields of two LR rows or columns or fewer
    have no whole LR cell of interior points (`metrics.phase_roughness`).
    """
    scale = int(manifest["scale"])
    if manifest.get("degradation") != "stride" or min(manifest["hr_shape"][1:]) <= 2 * scale:
        return None
    return scale


def _patch_bands(manifest):
    """{patch: latitude band of its centre} for a build of several patches; {} for one region."""
    from tfrecords_builder.contract.patches import latitude_band, patch_coords

    count = manifest.get("patches", {}).get("count", 1)
    if count <= 1:
        return {}
    return {k: latitude_band(float(np.mean(patch_coords(manifest, k)["lat"]))) for k in range(count)}


def add_reference_ratio(report, reference=REFERENCE):
    """Adds "mse_ratio" (reference MSE / method MSE) to every method's scores when possible."""
    methods = report["methods"]
    if reference not in methods:
        return report
    ref = methods[reference]["mse"]
    for scores in methods.values():
        scores["mse_ratio"] = ref / scores["mse"] if scores["mse"] > 0 else math.inf
    return report


def compare_with_bicubic(generator_path, data, split, batch_size):
    """`fit`'s end-of-training check: the saved generator's metric card on a split beside aligned bicubic.

    A generator that samples in inference is scored as its best estimate is served: the mean of
    `serving.saved_model.BEST_ESTIMATE_MEMBERS` members, with the ensemble scores beside.
    """
    from hsr_keras.models import sampling
    from hsr_keras.serving.saved_model import BEST_ESTIMATE_MEMBERS

    generator = model_files.load_generator(generator_path)
    samples = BEST_ESTIMATE_MEMBERS if sampling.samples_in_inference(generator) else 1
    methods = {
        COMPARISON_MODEL: keras_model_method(generator, COMPARISON_MODEL, batch_size, samples),
        COMPARISON_REFERENCE: "bicubic",
    }
    report = evaluate_methods(data, split, methods, map_days=0)
    return {key: report[key] for key in ("split", "days", "methods")}
