"""Evaluation of models and interpolation baselines on one split, streamed batch by batch.

Every method is a function from LR [B, T, h, w] to HR [B, T, H, W] (%RH, numpy); each
batch updates one `MetricAccumulator` per method, so memory does not grow with the
number of days.
"""

import numpy as np

from hsr_keras import interpolation
from hsr_keras.metrics import MetricAccumulator


def load_generator(path):
    """A generator saved by `fit` (`.keras`)."""
    import keras

    import hsr_keras.layers  # noqa: F401  (registers the custom layers for deserialisation)

    return keras.saving.load_model(path, compile=False)


def model_method(model, batch_size=16):
    """Wrap a Keras generator as a method: numpy LR in, numpy HR out, float32."""

    def predict(lr):
        return model.predict(lr[..., None].astype("float32"), batch_size=batch_size, verbose=0)[..., 0]

    return predict


def interpolation_method(name, manifest, aligned=True):
    """Interpolation from the LR points' true coordinates (aligned) or a naive image resize."""
    grid = manifest["grid"]
    if aligned:
        return lambda lr: interpolation.upsample_aligned(
            lr, grid["lr_lat"], grid["lr_lon"], grid["lat"], grid["lon"], name
        )
    return lambda lr: interpolation.upsample_resize(lr, manifest["scale"], name)


def evaluate_methods(data, split, methods, batch_size=32, climatology_level=None):
    """Metric card of each method on a split.

    Args:
        data: build folder or loaded manifest.
        split: split name.
        methods: {name: callable or interpolation method name (aligned)}.
        batch_size: days per streamed batch.
        climatology_level: level (hPa) whose training climatology gives the anomaly ACC;
            defaults to the manifest's first level.

    Returns:
        {"split", "days", "methods": {name: {metric: value}}}
    """
    from hsr_keras.data import make_dataset
    from tfrecords_builder.manifest import read_manifest

    manifest = data if isinstance(data, dict) else read_manifest(data)
    methods = {
        name: interpolation_method(method, manifest) if isinstance(method, str) else method
        for name, method in methods.items()
    }
    climatology = _climatology(manifest, climatology_level)
    accumulators = {name: MetricAccumulator(climatology=climatology) for name in methods}
    for lr, hr in make_dataset(manifest, split, batch_size).as_numpy_iterator():
        lr, hr = lr[..., 0], hr[..., 0]
        for name, method in methods.items():
            accumulators[name].update(np.asarray(method(lr), dtype="float64"), hr.astype("float64"))
    results = {name: acc.result() for name, acc in accumulators.items()}
    days = next(iter(results.values()))["days"] if results else 0
    return {"split": split, "days": int(days), "methods": results}


def _climatology(manifest, level):
    clim = manifest.get("climatology") or {}
    if not clim:
        return None
    key = str(level if level is not None else manifest["levels"][0])
    key = key if key in clim else next(iter(clim))
    return np.asarray(clim[key], dtype="float64")
