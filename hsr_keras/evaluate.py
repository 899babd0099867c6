"""`python -m hsr_keras.evaluate`: the paper's Table 3 on any split, with its figures.

Scores trained generators and interpolation baselines with the metric card of
`hsr_keras.metrics` (all in %RH on the HR grid) on one split of a `tfrecords_builder` build,
and writes into `--out`:

    table.md, table.csv   Table 3 layout: one row per method; MSE, MAE, SSIM, PSNR, ACC, TCC,
                          then PSNR (pooled), bias, ACC (anomaly), the ratio of aligned
                          bicubic's MSE to the method's, and CRPS / spread for ensembles
    monthly.csv, monthly.png    per-month means of each metric per method (paper Fig. 9);
                          a day belongs to the month of its first time step
    spectra.csv, spectra.png    radially averaged power spectrum of each method and of the
                          truth, averaged over every frame of the split (log-log)
    maps/<date>.png       LR, truth, each method and its error on shared colour scales with
                          lat/lon axes, for a few fixed days (paper Fig. 10)
    results.json          every number above and what produced it: the metric card, the
                          manifest path and sha256, split, level, models (with the config.json
                          of their fit folder), code version and the command line

Baselines (`--baselines`, comma separated): bilinear, bicubic, lanczos interpolate from the LR
points' true coordinates onto the HR grid ("aligned", the fair baselines); bilinear-naive,
bicubic-naive, lanczos-naive are a plain image resize, which misplaces a stride-8 grid by 3.5
HR cells ("naive resize", kept to show the difference); "aligned", "naive", "all" (default)
and "none" name groups.

The split is streamed batch by batch through metric accumulators: memory does not grow with
the number of days.

Stochastic generators: the paper's generator adds Gaussian noise after its stem, which Keras
applies only when the model is called with training=True; that would also switch batch
normalisation to batch statistics. With `--samples N` (N > 1) each model is cloned with its
`GaussianNoise` layers replaced by an always-on noise layer, every other layer (and weight)
shared and called in inference mode, so batch norm keeps its moving statistics. The table
then scores the ensemble mean and adds the fair CRPS and the spread of the N members. A
model without noise layers gives N identical members (spread 0, CRPS = MAE).
"""

import argparse
import csv
import datetime
import json
import math
import os
import sys
from pathlib import Path

import keras
import numpy as np

from hsr_keras import interpolation
from hsr_keras.metrics import (
    METRIC_CARD,
    PEAK,
    SSIM_K1,
    SSIM_K2,
    SSIM_SIGMA,
    SSIM_WINDOW,
    MetricAccumulator,
    crps_ensemble,
    ensemble_spread,
    radial_power_spectrum,
)
from hsr_keras.provenance import code_version, sha256_of

GENERATOR_FILE = "generator.keras"

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

# (key, header) of the table, in the paper's Table 3 order, then the extra columns.
TABLE_COLUMNS = (
    ("mse", "MSE"),
    ("mae", "MAE"),
    ("ssim", "SSIM"),
    ("psnr", "PSNR"),
    ("acc", "ACC"),
    ("tcc", "TCC"),
    ("psnr_pooled", "PSNR (pooled)"),
    ("bias", "bias"),
    ("acc_anomaly", "ACC (anomaly)"),
    ("mse_ratio", "Bicubic MSE / MSE"),
    ("crps", "CRPS"),
    ("spread", "spread"),
)

TABLE_CAPTION = (
    "Metric card of `hsr_keras.metrics`, %RH on the HR grid. "
    "MSE, MAE, bias: means over every point of a day, then over days. "
    "PSNR: the paper's style, per-frame PSNR with peak 100 %RH averaged over the frames of a day, "
    "then over days (inf when a frame is reproduced exactly). "
    "PSNR (pooled): PSNR of the MSE pooled over every point of the split. "
    "SSIM: Gaussian window 11, sigma 1.5, data range 100 %RH, per frame, averaged. "
    "ACC: paper eq. 12, spatial correlation per frame, averaged over frames and days; "
    "ACC (anomaly): the same on anomalies from the training climatology. "
    "TCC: paper eq. 13, per-point correlation over the steps of a day, averaged over points and days. "
    "Bicubic MSE / MSE: aligned bicubic's MSE over the method's (the paper's WGAN-GP: 3.38). "
    "CRPS, spread: ensemble scores when a model is sampled several times (the other columns then "
    "score the ensemble mean). "
    "(aligned): interpolated from the LR points' true coordinates; (naive resize): an image resize "
    "that misplaces a stride-s grid by (s-1)/2 HR cells."
)


class EvaluationError(ValueError):
    """Bad input to the evaluation; the command line prints it on one line and exits with 2."""


# ----------------------------------------------------------------------------- methods


def load_generator(path):
    """A generator saved by `fit` (`.keras`)."""
    import hsr_keras.layers  # noqa: F401  (registers the custom layers for deserialisation)

    return keras.saving.load_model(path, compile=False)


class Method:
    """A way to get HR fields from LR ones: numpy `[B, T, h, w]` in, `[B, T, H, W]` out (%RH).

    Args:
        name: the row label.
        predict: callable LR -> HR.
        info: JSON-serialisable description (kind, source, settings) for results.json.
        sampler: optional callable `(lr, n) -> [n, B, T, H, W]` drawing `n` members.
        samples: members to draw per prediction (1: `predict` only). Defaults to 1.
    """

    def __init__(self, name, predict, info=None, sampler=None, samples=1):
        self.name = name
        self.predict = predict
        self.info = dict(info or {})
        self.sampler = sampler
        self.samples = int(samples) if sampler is not None else 1

    def __call__(self, lr):
        return self.predict(lr)


def _predict_batches(model, batch_size):
    def predict(lr):
        x = np.asarray(lr, dtype="float32")[..., None]
        step = max(int(batch_size), 1)
        parts = [np.asarray(model.predict_on_batch(x[i : i + step])) for i in range(0, len(x), step)]
        return np.concatenate(parts)[..., 0]

    return predict


def model_method(model, batch_size=16):
    """Wrap a Keras generator as a deterministic method (inference mode): numpy LR in, HR out."""
    return Method(getattr(model, "name", "model"), _predict_batches(model, batch_size), {"kind": "model"})


@keras.saving.register_keras_serializable(package="hsr_keras")
class SamplingGaussianNoise(keras.layers.Layer):
    """Adds N(0, stddev) noise on every call, whatever `training` says (evaluation sampling).

    Args:
        stddev: float. Standard deviation of the noise.
        seed: int or None. Seed of the draws. Defaults to None.
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.stddev = float(stddev)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        noise = keras.random.normal(
            keras.ops.shape(inputs), stddev=self.stddev, dtype=inputs.dtype, seed=self.seed_generator
        )
        return inputs + noise

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"stddev": self.stddev, "seed": self.seed})
        return config


def stochastic_generator(model, seed=0):
    """A copy of `model` whose Gaussian noise is active in inference mode, or None if it has none.

    Every layer but `keras.layers.GaussianNoise` is the same object (same weights); noise
    layers are replaced by one that always adds its noise. Calling the copy in inference
    mode (`predict`, `training=False`) therefore samples the generator's noise while batch
    normalisation uses its moving statistics, which `training=True` would not.
    """
    found = []

    def clone(layer):
        if isinstance(layer, keras.layers.GaussianNoise):
            found.append(layer.name)
            return SamplingGaussianNoise(layer.stddev, seed=seed + len(found), name=layer.name)
        return layer

    try:
        sampler = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except Exception as err:  # subclassed models cannot be cloned layer by layer
        raise EvaluationError(
            f"cannot sample {model.name!r} with its noise on (--samples): {err}".splitlines()[0]
        ) from err
    return sampler if found else None


def keras_model_method(model, name, batch_size=16, samples=1, seed=0, info=None):
    """A Keras generator as a `Method`; with `samples > 1`, an ensemble of noise draws."""
    info = dict(info or {}, kind="model", samples=int(samples))
    predict = _predict_batches(model, batch_size)
    if samples <= 1:
        info["stochastic"] = False
        return Method(name, predict, info)
    noisy = stochastic_generator(model, seed)
    info["stochastic"] = noisy is not None
    if noisy is None:
        info["note"] = "no GaussianNoise layer: the samples are identical (spread 0, CRPS = MAE)"

        def sampler(lr, n):
            pred = predict(lr)
            return np.broadcast_to(pred, (n,) + pred.shape)
    else:
        draw = _predict_batches(noisy, batch_size)

        def sampler(lr, n):
            return np.stack([draw(lr) for _ in range(n)])

    return Method(name, predict, info, sampler=sampler, samples=samples)


def saved_model_method(path, name):
    """A TF Serving SavedModel (`serving_default`: lr [B,T,h,w,1] -> hr) as a deterministic method."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if "serving_default" not in loaded.signatures:
        raise EvaluationError(f"{path} is a SavedModel without a serving_default signature")
    signature = loaded.signatures["serving_default"]

    def predict(lr):
        out = signature(tf.constant(np.asarray(lr, dtype="float32")[..., None]))
        value = out["hr"] if "hr" in out else next(iter(out.values()))
        return value.numpy()[..., 0]

    predict._keep = loaded  # keep the SavedModel's variables alive
    return Method(name, predict, {"kind": "saved_model", "path": str(path), "samples": 1})


def interpolation_method(name, manifest, aligned=True):
    """Interpolation from the LR points' true coordinates (aligned) or a naive image resize."""
    grid = manifest["grid"]
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


def resolve_model_path(path):
    """(kind, path) of a model argument.

    Accepts a `.keras` file, a fit output folder (its generator.keras), a SavedModel version
    folder, or an export folder `saved_models/<name>/` (its highest numbered version).
    """
    path = Path(path)
    if path.is_dir():
        if (path / GENERATOR_FILE).is_file():
            return "keras", path / GENERATOR_FILE
        if (path / "saved_model.pb").is_file():
            return "saved_model", path
        versions = [p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
        if versions:  # saved_models/<name>/: the latest version, as TF Serving serves it
            return "saved_model", max(versions, key=lambda p: int(p.name))
        raise EvaluationError(
            f"{path} is a folder without {GENERATOR_FILE} or saved_model.pb: give a generator .keras, "
            "a fit output folder or a SavedModel version folder"
        )
    if not path.is_file():
        raise EvaluationError(f"no such model: {path}")
    if path.suffix != ".keras":
        raise EvaluationError(f"{path} is not a Keras model file (.keras)")
    return "keras", path


def _model_config(path):
    """The config.json of a fit output beside a generator, or None."""
    for candidate in (path / "config.json", path.parent / "config.json"):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except (OSError, ValueError):
                return None
    return None


def load_model_method(name, path, batch_size=8, samples=1, seed=0):
    """A `Method` for `--model NAME=PATH`; `EvaluationError` when it cannot be loaded."""
    kind, resolved = resolve_model_path(path)
    info = {"path": str(resolved), "config": _model_config(Path(path))}
    try:
        if kind == "saved_model":
            method = saved_model_method(resolved, name)
            method.info.update(info)
            return method
        model = load_generator(resolved)
    except EvaluationError:
        raise
    except Exception as err:  # zip, JSON and deserialisation errors come in many types
        raise EvaluationError(f"cannot load the model {resolved}: {err}".splitlines()[0]) from err
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 5:
        raise EvaluationError(
            f"{resolved} is not a generator: expected one input [batch, time, h, w, 1], it takes "
            f"{[tuple(t.shape) for t in model.inputs]}"
        )
    info["params"] = int(model.count_params())
    return keras_model_method(model, name, batch_size, samples, seed, info)


def parse_model_arg(text):
    """`NAME=PATH` (or a bare PATH, named after its folder or file) -> (name, path)."""
    if "=" in text:
        name, path = text.split("=", 1)
        name, path = name.strip(), path.strip()
        if not name or not path:
            raise EvaluationError(f"--model takes NAME=PATH. Received: {text!r}")
        return name, path
    path = Path(text)
    return (path.parent.name if path.name == GENERATOR_FILE else path.stem or path.name), text


# ----------------------------------------------------------------------------- streaming


def stream_split(manifest, split, batch_size, level=None):
    """Batches `(lr [B,T,h,w], hr [B,T,H,W], time [B,T] int64 s)` of a split, streamed (no cache).

    Records are read in shard order with their time stamps; with `level`, only the records
    of that pressure level.
    """
    import tensorflow as tf

    from hsr_keras.data import split_files
    from tfrecords_builder.schema import COMPRESSION, parse_example

    files = split_files(manifest, split)
    hr_shape, lr_shape = manifest["hr_shape"], manifest["lr_shape"]

    def parse(serialized):
        return parse_example(serialized, hr_shape, lr_shape)

    def at_level(record):
        return tf.abs(record["level"] - float(level)) < 1e-3

    def fields(record):
        return record["lr"], record["hr"], record["time"]

    ds = tf.data.TFRecordDataset(files, compression_type=COMPRESSION)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if level is not None:
        ds = ds.filter(at_level)
    ds = ds.map(fields)
    return ds.batch(batch_size).prefetch(2).as_numpy_iterator()


def month_of(seconds):
    """'YYYY-MM' of a time stamp in seconds since 1970 UTC."""
    return str(np.datetime64(int(seconds), "s").astype("datetime64[M]"))


def day_of(seconds):
    return str(np.datetime64(int(seconds), "s").astype("datetime64[D]"))


class EnsembleAccumulator:
    """Running means over days of the fair CRPS and the spread of ensembles (numpy)."""

    def __init__(self):
        self.crps = 0.0
        self.spread = 0.0
        self.days = 0

    def update(self, members, true):
        self.crps += float(np.sum(crps_ensemble(members, true)))
        self.spread += float(np.sum(ensemble_spread(members, true)))
        self.days += int(np.shape(true)[0])

    def result(self):
        return {"crps": self.crps / self.days, "spread": self.spread / self.days}


class SpectrumAccumulator:
    """Sum over frames of the radially averaged power spectrum; `result()` is the frame mean."""

    def __init__(self):
        self.wavenumbers = None
        self.power = None
        self.frames = 0

    def update(self, fields):
        fields = np.asarray(fields)
        frames = int(np.prod(fields.shape[:-2]))
        k, power = radial_power_spectrum(fields)
        if self.power is None:
            self.wavenumbers, self.power = k, np.zeros_like(power)
        self.power += power * frames
        self.frames += frames

    def result(self):
        return self.power / self.frames


def _climatology(manifest, level):
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


def _check_prediction(method, pred, hr):
    if pred.shape != hr.shape:
        raise EvaluationError(
            f"method {method.name!r} returns fields shaped {tuple(pred.shape)} for HR shaped "
            f"{tuple(hr.shape)}: was it trained for another scale?"
        )


def evaluate_methods(
    data,
    split,
    methods,
    batch_size=32,
    climatology_level=None,
    *,
    map_days=3,
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
            the sample maps. Defaults to 3.
        map_dates: explicit 'YYYY-MM-DD' days for the maps (instead of `map_days`).
        map_step: time step of the maps. Defaults to the middle step of a day.
        verbose: print progress.

    Returns:
        {"split", "level", "days", "months", "methods": {name: scores},
         "monthly": {name: {month: scores}},
         "spectra": {"wavenumber", "frames", "truth", "methods": {name: power}},
         "maps": [{"date", "time", "lr", "truth", "predictions": {name}}]}
        Months are 'YYYY-MM' of each day's first time step. Spectra are the frame means of
        `radial_power_spectrum`; an ensemble adds "<name> (one sample)" (one member's
        texture, which the ensemble mean smooths away).
        Scores hold the `MetricAccumulator` results, plus "crps" and "spread" for
        ensembles. Memory does not grow with the number of days.
    """
    from tfrecords_builder.manifest import read_manifest

    manifest = data if isinstance(data, dict) else read_manifest(data)
    if split not in manifest["splits"]:
        raise EvaluationError(f"split {split!r} is not in the manifest; it has {sorted(manifest['splits'])}")
    methods = _as_methods(methods, manifest)
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise EvaluationError(f"method names must be unique. Received: {names}")
    levels = manifest.get("levels") or []
    level = climatology_level if climatology_level is not None else (levels[0] if levels else None)
    filter_level = level if len(levels) > 1 or climatology_level is not None else None
    climatology = _climatology(manifest, level)
    total_days = manifest["splits"][split].get("days", manifest["splits"][split].get("examples", 0))
    steps = manifest["hr_shape"][0]
    step = steps // 2 if map_step is None else int(map_step)
    if not 0 <= step < steps:
        raise EvaluationError(f"map step {step} is outside the {steps} steps of a day")
    wanted_dates = set(map_dates or ())
    wanted_index = set()
    if not map_dates and map_days and map_days > 0:
        positions = np.linspace(0, max(total_days - 1, 0), int(map_days)).round()
        wanted_index = {int(i) for i in np.unique(positions)}

    overall = {m.name: MetricAccumulator(climatology=climatology) for m in methods}
    monthly = {m.name: {} for m in methods}
    ensembles = {m.name: EnsembleAccumulator() for m in methods if m.samples > 1}
    ensembles_monthly = {name: {} for name in ensembles}
    spectra = {m.name: SpectrumAccumulator() for m in methods}
    truth_spectrum = SpectrumAccumulator()
    member_spectra = {name: SpectrumAccumulator() for name in ensembles}
    maps = []
    seen = 0
    for lr, hr, time in stream_split(manifest, split, batch_size, filter_level):
        hr = hr.astype("float64")
        months = [month_of(t[0]) for t in time]
        groups = {}
        for row, month in enumerate(months):
            groups.setdefault(month, []).append(row)
        keep = [row for row in range(len(hr)) if seen + row in wanted_index or day_of(time[row][0]) in wanted_dates]
        batch_maps = [
            {
                "date": day_of(time[row][0]),
                "time": str(np.datetime64(int(time[row][step]), "s")),
                "lr": lr[row, step].astype("float32"),
                "truth": hr[row, step].astype("float32"),
                "predictions": {},
            }
            for row in keep
        ]
        truth_spectrum.update(hr)
        for method in methods:
            members = None
            if method.samples > 1:
                members = np.asarray(method.sampler(lr, method.samples), dtype="float64")
                pred = members.mean(axis=0)
            else:
                pred = np.asarray(method(lr), dtype="float64")
            _check_prediction(method, pred, hr)
            overall[method.name].update(pred, hr)
            spectra[method.name].update(pred)
            for month, rows in groups.items():
                acc = monthly[method.name].setdefault(month, MetricAccumulator(climatology=climatology))
                acc.update(pred[rows], hr[rows])
            if members is not None:
                ensembles[method.name].update(members, hr)
                member_spectra[method.name].update(members[0])
                for month, rows in groups.items():
                    ens = ensembles_monthly[method.name].setdefault(month, EnsembleAccumulator())
                    ens.update(members[:, rows], hr[rows])
            for entry, row in zip(batch_maps, keep):
                entry["predictions"][method.name] = pred[row, step].astype("float32")
        maps.extend(batch_maps)
        seen += len(hr)
        if verbose:
            print(f"\r{seen} days evaluated", end="", file=sys.stderr, flush=True)
    if verbose:
        print(file=sys.stderr)
    if seen == 0:
        raise EvaluationError(f"split {split!r} has no records" + (f" at level {level}" if filter_level else ""))

    results = {}
    for method in methods:
        scores = overall[method.name].result()
        if method.name in ensembles:
            scores.update(ensembles[method.name].result())
        results[method.name] = scores
    by_month = {}
    for method in methods:
        by_month[method.name] = {}
        for month in sorted(monthly[method.name]):
            scores = monthly[method.name][month].result()
            if method.name in ensembles:
                scores.update(ensembles_monthly[method.name][month].result())
            by_month[method.name][month] = scores
    spectrum = {
        "wavenumber": truth_spectrum.wavenumbers.tolist(),
        "frames": truth_spectrum.frames,
        "truth": truth_spectrum.result().tolist(),
        "methods": {m.name: spectra[m.name].result().tolist() for m in methods},
    }
    for name, acc in member_spectra.items():
        spectrum["methods"][f"{name} (one sample)"] = acc.result().tolist()
    return {
        "split": split,
        "level": level,
        "days": int(seen),
        "months": sorted({m for per in by_month.values() for m in per}),
        "methods": results,
        "monthly": by_month,
        "spectra": spectrum,
        "maps": maps,
    }


# ----------------------------------------------------------------------------- tables


def add_reference_ratio(report, reference=REFERENCE):
    """Adds "mse_ratio" (reference MSE / method MSE) to every method's scores when possible."""
    methods = report["methods"]
    if reference not in methods:
        return report
    ref = methods[reference]["mse"]
    for scores in methods.values():
        scores["mse_ratio"] = ref / scores["mse"] if scores["mse"] > 0 else math.inf
    return report


def table_columns(report):
    """The (key, header) columns of the table: the paper's six, the extras, ensemble scores if any."""
    present = set().union(*(scores.keys() for scores in report["methods"].values()))
    return [
        (key, header)
        for key, header in TABLE_COLUMNS
        if key in present or key in ("mse", "mae", "ssim", "psnr", "acc", "tcc")
    ]


def _number_text(value, finite_format):
    """'' for None, 'nan' / 'inf' / '-inf' for non-finite values, else `finite_format(value)`."""
    if value is None:
        return ""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return finite_format(value)


def format_number(value, digits=3):
    """Fixed-point text; 'inf', '-inf' and 'nan' for non-finite values; '' for None."""
    return _number_text(value, lambda v: f"{v:.{digits}f}")


def _caption(report):
    where = f"split {report['split']!r}, {report['days']} days"
    if report.get("level") is not None:
        where += f", {report['level']:g} hPa"
    return f"Table 3 layout ({where}). {TABLE_CAPTION}"


def format_table(report, markdown=True):
    """The table as Markdown (or aligned plain text for a terminal)."""
    columns = table_columns(report)
    headers = ["method"] + [header for _, header in columns]
    rows = [
        [name] + [format_number(scores.get(key)) if key in scores else "-" for key, _ in columns]
        for name, scores in report["methods"].items()
    ]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows + [headers]) for i in range(len(headers))]

    def fmt(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def write_tables(report, out):
    """Writes table.md (caption + Markdown table) and table.csv (full precision) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    columns = table_columns(report)
    (out / "table.md").write_text(f"{_caption(report)}\n\n{format_table(report)}\n")
    with (out / "table.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method"] + [key for key, _ in columns])
        for name, scores in report["methods"].items():
            writer.writerow([name] + [_csv_number(scores.get(key)) for key, _ in columns])
    return out / "table.md", out / "table.csv"


def _csv_number(value):
    return _number_text(value, repr)


def write_monthly(report, out):
    """monthly.csv: one row per (method, month) with every metric."""
    path = Path(out) / "monthly.csv"
    keys = [key for key, _ in TABLE_COLUMNS if key != "mse_ratio"] + ["days"]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "month"] + keys)
        for name, per in report["monthly"].items():
            for month, scores in per.items():
                writer.writerow([name, month] + [_csv_number(scores.get(key)) for key in keys])
    return path


def write_spectra(report, out):
    """spectra.csv: wavenumber and the mean power of the truth and of each method."""
    path = Path(out) / "spectra.csv"
    power = {"truth": report["spectra"]["truth"], **report["spectra"]["methods"]}
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["wavenumber"] + list(power))
        for i, k in enumerate(report["spectra"]["wavenumber"]):
            writer.writerow([k] + [repr(float(p[i])) for p in power.values()])
    return path


def jsonable(value):
    """Replaces non-finite floats by the strings 'inf', '-inf', 'nan' (strict JSON), recursively."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else format_number(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


def json_number(value):
    """Inverse of `jsonable` for one number: 'inf' / 'nan' strings back to floats."""
    return float(value) if isinstance(value, str) else value


# ----------------------------------------------------------------------------- provenance


def metric_card():
    return {
        "metrics": METRIC_CARD,
        "peak_and_data_range": PEAK,
        "ssim": {"window": SSIM_WINDOW, "sigma": SSIM_SIGMA, "k1": SSIM_K1, "k2": SSIM_K2},
        "units": "%RH on the HR grid",
        "psnr_columns": {
            "psnr": "paper style: per-frame PSNR averaged over frames, then days",
            "psnr_pooled": "PSNR of the MSE pooled over every point of the split",
        },
    }


# ----------------------------------------------------------------------------- command


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hsr_keras.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="build folder holding manifest.json (or the manifest itself)")
    parser.add_argument("--split", default="test", help="split to evaluate. Default: test")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a trained generator: a .keras file, a fit output folder (its generator.keras and config.json), "
        "a SavedModel version folder or saved_models/<name>/ (latest version); repeat for several. "
        "NAME is the table row",
    )
    parser.add_argument(
        "--baselines",
        default="all",
        help="comma-separated interpolation baselines: bilinear, bicubic, lanczos (aligned), "
        "bilinear-naive, bicubic-naive, lanczos-naive (image resize), or the groups aligned, naive, "
        "all, none. Default: all",
    )
    parser.add_argument("--out", default="runs/evaluate", help="output folder. Default: runs/evaluate")
    parser.add_argument("--batch-size", type=int, default=8, help="days per streamed batch. Default: 8")
    parser.add_argument(
        "--samples",
        type=int,
        default=1,
        help="draws per model with its Gaussian noise active (batch norm stays in inference mode); "
        "> 1 scores the ensemble mean and adds CRPS and spread. Default: 1 (noise off)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise draws. Default: 0")
    parser.add_argument("--level", type=float, help="pressure level (hPa) to evaluate. Default: the build's first")
    parser.add_argument(
        "--maps", type=int, default=3, help="days, evenly spread over the split, drawn as maps (0: none). Default: 3"
    )
    parser.add_argument("--map-dates", nargs="+", metavar="YYYY-MM-DD", help="draw these days instead")
    parser.add_argument("--map-step", type=int, help="time step of a day drawn in the maps. Default: the middle one")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tfrecords_builder.manifest import ManifestError

    try:
        run(args, argv=sys.argv[1:] if argv is None else list(argv))
    except (EvaluationError, ManifestError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def run(args, argv=None):
    """Evaluates per `args` (see `parse_args`), writes every output; returns the report."""
    from tfrecords_builder.manifest import manifest_path, read_manifest

    if args.batch_size < 1 or args.samples < 1:
        raise EvaluationError(f"--batch-size and --samples must be >= 1. Received: {args.batch_size}, {args.samples}")
    manifest = read_manifest(args.data)
    if args.split not in manifest["splits"]:
        raise EvaluationError(f"split {args.split!r} is not in the manifest; it has {sorted(manifest['splits'])}")
    levels = manifest.get("levels") or []
    if args.level is not None and levels and not any(abs(args.level - v) < 1e-3 for v in levels):
        raise EvaluationError(f"level {args.level:g} is not in the build; it has {levels}")
    keys = parse_baselines(args.baselines)
    model_specs = [parse_model_arg(text) for text in args.model]
    names = [name for name, _ in model_specs]
    if len(set(names)) != len(names):
        raise EvaluationError(f"model names must be unique. Received: {names}")
    for _, path in model_specs:  # check every path before loading any model
        resolve_model_path(path)
    methods = baseline_methods(keys, manifest)
    for name, path in model_specs:
        methods.append(load_model_method(name, path, args.batch_size, args.samples, args.seed))
    if not methods:
        raise EvaluationError("nothing to evaluate: give --model NAME=PATH and/or --baselines")
    if not args.quiet and len(levels) > 1 and args.level is None:
        print(f"note: the build has levels {levels}; evaluating {levels[0]:g} hPa (use --level)", file=sys.stderr)

    report = evaluate_methods(
        manifest,
        args.split,
        methods,
        args.batch_size,
        args.level,
        map_days=args.maps,
        map_dates=args.map_dates,
        map_step=args.map_step,
        verbose=not args.quiet,
    )
    add_reference_ratio(report)
    out = Path(args.out)
    files = write_outputs(report, manifest, out)
    manifest_file = manifest_path(args.data)
    results = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": ["python", "-m", "hsr_keras.evaluate"] + list(argv if argv is not None else []),
        "code_version": code_version(),
        "data": {
            "manifest": str(manifest_file.resolve()),
            "manifest_sha256": sha256_of(manifest_file),
            "split": report["split"],
            "level": report["level"],
            "days": report["days"],
            "months": report["months"],
        },
        "settings": {
            "batch_size": args.batch_size,
            "samples": args.samples,
            "seed": args.seed,
            "baselines": keys,
            "map_step": args.map_step,
            "maps": args.maps,
            "map_dates": args.map_dates,
            "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        },
        "metric_card": metric_card(),
        "table_caption": _caption(report),
        "reference": REFERENCE if REFERENCE in report["methods"] else None,
        "methods": {m.name: m.info for m in methods},
        "scores": report["methods"],
        "monthly": report["monthly"],
        "spectra": report["spectra"],
        "maps": [{"date": m["date"], "time": m["time"]} for m in report["maps"]],
        "files": sorted(str(p.relative_to(out)) for p in files + [out / "results.json"]),
    }
    (out / "results.json").write_text(json.dumps(jsonable(results), indent=1) + "\n")
    report["results"] = results
    if not args.quiet:
        print(f"\n{_caption(report)}\n")
        print(format_table(report, markdown=False))
        print(f"\nOutputs in {out}/: {', '.join(results['files'][:6])}{', ...' if len(results['files']) > 6 else ''}")
    return report


def write_outputs(report, manifest, out):
    """Tables, per-month CSV and figure, spectra CSV and figure, sample maps; returns the paths."""
    from hsr_keras import evaluation_plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = list(write_tables(report, out))
    files.append(write_monthly(report, out))
    files.append(write_spectra(report, out))
    files.append(
        evaluation_plots.plot_monthly(
            report["monthly"], out / "monthly.png", title=f"split {report['split']!r}: monthly means"
        )
    )
    frames = report["spectra"]["frames"]
    files.append(
        evaluation_plots.plot_spectra(
            report["spectra"], out / "spectra.png", title=f"split {report['split']!r}, mean over {frames} frames"
        )
    )
    for entry in report["maps"]:
        files.append(evaluation_plots.plot_method_maps(entry, manifest, out / "maps" / f"{entry['date']}.png"))
    return files


if __name__ == "__main__":
    sys.exit(main())
