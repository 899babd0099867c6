"""Exporting a generator for TF Serving: the signature functions, the asset file, the checked export.

An export is a SavedModel with the signature SIGNATURE: INPUT_NAME float32
[batch, time, h, w, 1] -> OUTPUT_NAME float32 [batch, time, scale*h, scale*w, 1], both in %RH
(normalisation happens inside the graph), the best estimate: the generator in inference mode,
or for a generator that samples in inference (`noise: texture`) the mean of
BEST_ESTIMATE_MEMBERS members drawn with seed 0 (the ensemble mean the content loss trains). A
generator with noise also gets SAMPLE_SIGNATURE: INPUT_NAME, SEED_NAME int64 [], MEMBERS_NAME
int32 [] -> MEMBERS_NAME float32 [batch, members, time, scale*h, scale*w, 1] %RH, N members
drawn from the seed (the same seed and input give the same members). The asset file
ASSET_NAME holds `model_info`.

A generator with extra inputs (`tfrecords_builder.contract.inputs`) has them in both signatures
beside INPUT_NAME, each by name and in physical units (`signature_inputs`): `predictors`
float32 [batch, time, h, w, P], TIME_NAME int64 [batch, time] seconds since 1970-01-01 UTC
(from which the signature computes the time features), `static` float32 [batch, scale*h,
scale*w, S]; `model_info` lists each channel with its units.
`export` checks the output folder and the generator (finite weights, finite values on a probe,
the manifest's scale) before writing anything, writes to a hidden temporary folder beside the
version folders (`files.temporary_path`: TF Serving ignores it; one left by a killed export is
removed by the next export into the same folder), loads it back as TF Serving does, compares it
with the Keras model and only then renames it to its version folder. `predict` runs a `.keras`
generator through the same `serving_function`, so both model kinds give the same numbers.
"""

import datetime
import json
import os
import re
import sys
import tempfile
from pathlib import Path

from hsr_keras.models import model_files
from hsr_keras.models.model_files import (
    ASSET_NAME,
    FORMAT,
    FORMAT_VERSION,
    INPUT_NAME,
    MEMBERS_NAME,
    OUTPUT_NAME,
    SAMPLE_SIGNATURE,
    SEED_NAME,
    SIGNATURE,
    TIME_NAME,
    existing_versions,
    fit_config,
    version_folders,
)
from hsr_keras.models.provenance import code_version
from tfrecords_builder.contract import files
from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.inputs import input_names, static_channels

# Probe used to check the written SavedModel against the Keras model before publishing it.
# The tolerances (%RH) catch a broken export, not rounding: graph and eager execution may pick
# other kernels (TF32 convolutions on recent GPUs, float16 under mixed precision). On CPU in
# float32 the two agree to about 4e-6 %RH.
PROBE_SHAPE = (1, 2, 3, 4, 1)
PROBE_TOLERANCE = {"float32": 0.05, "mixed": 1.0}
DIVERGED_HINT = "did training diverge? Export a generator saved before it did, or train again"
BEST_ESTIMATE_MEMBERS = 8
"""Members averaged by the SIGNATURE of a generator that samples in inference (seed 0)."""
PROBE_SEED, PROBE_MEMBERS = 3, 2


class ExportError(InputError):
    """Bad input to an export (or to running a generator as served); the commands print it and exit with 2."""


def use_tensorflow_backend():
    """Export and predict run Keras models inside `tf.function`: make sure Keras uses TensorFlow.

    Before Keras is imported this sets `KERAS_BACKEND=tensorflow` (a JAX default on a GPU box
    would otherwise break the export); afterwards another backend is a `ExportError`.
    """
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"
        return
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"exporting needs Keras on the TensorFlow backend; this process uses {keras.backend.backend()!r}: "
            "run with KERAS_BACKEND=tensorflow"
        )


def best_estimate(model):
    """What the SIGNATURE of `model` returns, in words (the asset file and the export's summary)."""
    from hsr_keras.models import sampling

    if sampling.samples_in_inference(model):
        return f"the mean of {BEST_ESTIMATE_MEMBERS} members drawn with seed 0 (the ensemble mean)"
    return "the generator in inference mode, its noise off (one deterministic field)"


def model_info(manifest, model=None, generator_path=None, clip_negative=False):
    """What a client of an exported model needs to know, from the data manifest (the asset file).

    Returns a JSON-serialisable dict: scale, variable, units, levels, `grid` (HR and LR
    spacing and `hr_offset_cells`: HR cell `scale*k + j` of an axis lies at LR point `k`'s
    coordinate plus `(j + hr_offset_cells)` HR spacings, with latitude ascending; 0 for stride
    sampling, `-(scale-1)/2` for block means), degradation, training statistics, the step hours
    of a sequence, the clipping of the output, the model's config and the code version.
    """
    grid = manifest["grid"]
    scale = int(manifest["scale"])
    hr_res = float(grid["resolution_deg"])
    offset = 0.0
    if grid.get("lat") and grid.get("lr_lat"):
        offset = round((float(grid["lat"][0]) - float(grid["lr_lat"][0])) / hr_res, 6)
    steps = manifest.get("steps_per_day", manifest["hr_shape"][0])
    interval = manifest.get("interval_hours", 24 // steps if 24 % steps == 0 else 1)
    extras = _extra_inputs_info(manifest)
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "signature": {
            "name": SIGNATURE,
            "inputs": {
                INPUT_NAME: {
                    "dtype": "float32",
                    "shape": [-1, -1, -1, -1, 1],
                    "units": "%",
                    "layout": "[batch, time, lat (ascending, row 0 = south), lon, 1]",
                },
                **extras,
            },
            "outputs": {
                OUTPUT_NAME: {
                    "dtype": "float32",
                    "shape": [-1, -1, -1, -1, 1],
                    "units": "%",
                    "layout": f"[batch, time, {scale}*lat, {scale}*lon, 1]",
                }
            },
        },
        "sample_signature": None
        if model is None or not _has_sampler(model)
        else {
            "name": SAMPLE_SIGNATURE,
            "inputs": {
                INPUT_NAME: {"dtype": "float32", "shape": [-1, -1, -1, -1, 1], "units": "%"},
                **extras,
                SEED_NAME: {"dtype": "int64", "shape": [], "meaning": "the same seed and input give the same members"},
                MEMBERS_NAME: {"dtype": "int32", "shape": [], "meaning": "members N to draw (>= 1)"},
            },
            "outputs": {
                MEMBERS_NAME: {
                    "dtype": "float32",
                    "shape": [-1, -1, -1, -1, -1, 1],
                    "units": "%",
                    "layout": f"[batch, members, time, {scale}*lat, {scale}*lon, 1]",
                }
            },
        },
        "best_estimate": None if model is None else best_estimate(model),
        "output_clip": "below 0 %RH clipped to 0; never at 100"
        if clip_negative
        else "none (values above 100 % are real)",
        "clip_negative": bool(clip_negative),
        "variable": manifest.get("variable", "r"),
        "units": manifest.get("units", "%"),
        "levels": manifest.get("levels", []),
        "scale": scale,
        "degradation": manifest.get("degradation", "stride"),
        "grid": {
            "hr_resolution_deg": hr_res,
            "lr_resolution_deg": round(hr_res * scale, 9),
            "hr_offset_cells": offset,
            "convention": (
                "latitude ascending; along each axis HR cell scale*k+j lies at lr_coord[k] + "
                "(j + hr_offset_cells) * hr_resolution_deg"
            ),
            "training_region": manifest.get("region"),
            "hr_shape": manifest["hr_shape"],
            "lr_shape": manifest["lr_shape"],
        },
        "time": {
            "steps_per_day": steps,
            "interval_hours": interval,
            "step_hours": manifest.get("step_hours", [k * interval for k in range(steps)]),
        },
        "stats": manifest["stats"],
        "data": {
            "manifest": str(Path(manifest["_dir"]) / "manifest.json") if "_dir" in manifest else None,
            "schema_version": manifest.get("schema_version"),
            "created_by": manifest.get("created_by"),
            "command": manifest.get("command"),
        },
        "code_version": code_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if model is not None:
        info["model"] = _model_section(model, generator_path)
    return info


def _extra_inputs_info(manifest):
    """The signature's extra inputs of a build, by name, with each channel's units (none without extras)."""
    scale = int(manifest["scale"])
    names = input_names(manifest)
    info = {}
    if "predictors" in names:
        info["predictors"] = {
            "dtype": "float32",
            "shape": [-1, -1, -1, -1, len(manifest["predictors"])],
            "units": "each channel's own (physical, not standardised)",
            "layout": "[batch, time, lat, lon, channel] on the LR grid of lr",
            "channels": [{"name": p["name"], "units": p["units"]} for p in manifest["predictors"]],
        }
    if "time_features" in names:
        info[TIME_NAME] = {
            "dtype": "int64",
            "shape": [-1, -1],
            "units": "seconds since 1970-01-01T00:00:00 UTC",
            "layout": "[batch, time]: the valid time of each step; the signature computes sin/cos of the hour "
            "of day and of the day of year from it",
        }
    if "static" in names:
        channels = static_channels(manifest)
        info["static"] = {
            "dtype": "float32",
            "shape": [-1, -1, -1, len(channels)],
            "units": "each channel's own (physical, not standardised)",
            "layout": f"[batch, {scale}*lat, {scale}*lon, channel] on the output HR grid",
            "channels": [{"name": c["name"], "units": c["units"]} for c in channels],
        }
    return info


def signature_inputs(model):
    """The signatures' inputs of a generator, in order: (name, dtype, shape) with free batch, time and grid.

    INPUT_NAME, then the generator's extra inputs, TIME_NAME int64 seconds in place of its time features.
    """
    shapes = {t.name: tuple(t.shape) for t in model.inputs}
    inputs = [(INPUT_NAME, "float32", (None, None, None, None, 1))]
    for name in model_files.generator_inputs(model)[1:]:
        if name == "time_features":
            inputs.append((TIME_NAME, "int64", (None, None)))
        else:
            inputs.append((name, "float32", (None,) * (len(shapes[name]) - 1) + shapes[name][-1:]))
    return inputs


def generator_feed(model, named):
    """What the generator takes, from the signature's tensors by name: lr alone, or its named inputs.

    The time features are computed from TIME_NAME (`contract.inputs.tf_time_features`), as
    the training pipeline computes them.
    """
    import tensorflow as tf

    from tfrecords_builder.contract.inputs import tf_time_features

    if len(model.inputs) == 1:
        return named[INPUT_NAME]
    # Tensors all (Keras refuses a dict of numpy arrays and tensors mixed).
    feed = {name: tf.convert_to_tensor(value) for name, value in named.items() if name != TIME_NAME}
    if TIME_NAME in named:
        feed["time_features"] = tf_time_features(named[TIME_NAME])
    return feed


def _model_section(model, generator_path):
    section = {"name": model.name, "parameters": int(model.count_params())}
    if generator_path is not None:
        path = Path(generator_path)
        section["source"] = {"path": str(path.resolve()), "sha256": files.sha256_of(path)}
        section["training_config"] = fit_config(path)
    section["keras_config"] = json.loads(model.to_json())
    return section


# ----------------------------------------------------------------------------- SavedModel


def _has_sampler(model):
    from hsr_keras.models import sampling

    return sampling.has_noise(model)


def draw_members(sampler, lr, seed, members):
    """`members` members of every LR field, `[B, N, T, H, W, 1]` float32: the batch repeated N times, one call.

    `lr`: the LR field, or the generator's named inputs (`generator_feed`), all repeated alike.

    The noise of `sampler` (`hsr_keras.models.sampling`) is bound to stream 0 of `seed` for the
    call; each of the B x N repeated fields gets its own draws, so member n of field b is the
    same for the same input, seed and N (TensorFlow; inside or outside a `tf.function`).
    """
    import tensorflow as tf

    from hsr_keras.models import sampling

    batch = tf.shape(lr[INPUT_NAME] if isinstance(lr, dict) else lr)[0]
    repeated = tf.nest.map_structure(lambda t: tf.repeat(t, members, axis=0), lr)  # field-major: b * N + n
    hr = tf.cast(sampling.seeded_call(sampler, repeated, seed), tf.float32)
    return tf.reshape(hr, tf.concat([tf.stack([batch, tf.cast(members, tf.int32)]), tf.shape(hr)[1:]], axis=0))


def serving_function(model, clip_negative=False):
    """`tf.function` lr [B, T, h, w, 1] float32 -> {"hr": [B, T, s*h, s*w, 1] float32}, all dims free: the best estimate.

    The generator in inference mode, or for one that samples in inference (`NoiseInjection`)
    the mean of BEST_ESTIMATE_MEMBERS members drawn with seed 0 (`best_estimate`). A generator
    with extra inputs takes them too, by name (`signature_inputs`).
    """
    import tensorflow as tf

    from hsr_keras.models import sampling

    averaged = sampling.samples_in_inference(model)
    specs = _specs(model)

    @tf.function(input_signature=specs, autograph=False, reduce_retracing=True)
    def serve(*inputs):
        x = generator_feed(model, {spec.name: value for spec, value in zip(specs, inputs)})
        if averaged:
            seed = tf.constant(0, tf.int64)
            hr = tf.reduce_mean(draw_members(model, x, seed, tf.constant(BEST_ESTIMATE_MEMBERS)), axis=1)
        else:
            hr = tf.cast(model(x, training=False), tf.float32)
        if clip_negative:
            hr = tf.maximum(hr, 0.0)
        return {OUTPUT_NAME: hr}

    return serve


def sampling_function(model, clip_negative=False):
    """`tf.function` (lr, seed int64 [], members int32 []) -> {"members": [B, N, T, s*h, s*w, 1]}; None without noise.

    `members` must be >= 1 (an `InvalidArgumentError` otherwise). The paper's stem noise is
    sampled through `sampling.sampler`'s copy (batch normalisation in inference mode).
    """
    import tensorflow as tf

    from hsr_keras.models import sampling

    sampler = sampling.sampler(model)
    if sampler is None:
        return None
    specs = _specs(model)
    extra = [tf.TensorSpec([], tf.int64, name=SEED_NAME), tf.TensorSpec([], tf.int32, name=MEMBERS_NAME)]

    @tf.function(input_signature=specs + extra, autograph=False, reduce_retracing=True)
    def sample(*inputs):
        *inputs, seed, members = inputs
        x = generator_feed(model, {spec.name: value for spec, value in zip(specs, inputs)})
        check = tf.debugging.assert_positive(members, message="members must be >= 1")
        with tf.control_dependencies([check]):
            hr = draw_members(sampler, x, seed, members)
        if clip_negative:
            hr = tf.maximum(hr, 0.0)
        return {MEMBERS_NAME: hr}

    sample.sampler = sampler  # a copy for the stem noise: keep it alive with the function
    return sample


def _specs(model):
    import tensorflow as tf

    return [tf.TensorSpec(shape, dtype, name=name) for name, dtype, shape in signature_inputs(model)]


def save_servable(model, folder, info):
    """Write the SavedModel of `model` with its asset file into `folder` (which must not exist)."""
    import tensorflow as tf

    serve = serving_function(model, info["clip_negative"])
    sample = sampling_function(model, info["clip_negative"])
    signatures = {SIGNATURE: serve}
    if sample is not None:
        signatures[SAMPLE_SIGNATURE] = sample
    with tempfile.TemporaryDirectory() as tmp:
        asset = Path(tmp) / ASSET_NAME
        asset.write_text(json.dumps(info, indent=1) + "\n")
        root = tf.Module()
        # Track the tf.Variables the traced graphs capture, not the Keras variables wrapping
        # them (nor the Keras object graph): the SavedModel is then a plain TensorFlow graph
        # that loads without Keras or hsr_keras, and the graph-mode loader TF Serving and
        # saved_model_cli use restores exactly the variables the signatures read. (Tracking
        # `model.variables` writes each variable twice and leaves the ones the graph reads
        # uninitialised there, although `tf.saved_model.load` works.)
        captured = {}
        for function in signatures.values():
            for variable in function.get_concrete_function().variables:
                captured.setdefault(id(variable), variable)
        root.generator_variables = list(captured.values())
        root.hsr_manifest = tf.saved_model.Asset(str(asset))
        root.serve = serve
        if sample is not None:
            root.sample = sample
        tf.saved_model.save(root, str(folder), signatures=signatures)


def verify_servable(folder, model, clip_negative=False):
    """Load `folder` back and compare its signature with the Keras model on a probe; max |diff| in %RH."""
    import numpy as np
    import tensorflow as tf

    probe = probe_inputs(model)
    expected = expected_best_estimate(model, probe)
    if clip_negative:
        expected = np.maximum(expected, 0.0)
    sample = sampling_function(model, clip_negative)
    sample_expected = None
    if sample is not None:
        sample_expected = np.asarray(sample(*probe.values(), PROBE_SEED, PROBE_MEMBERS)[MEMBERS_NAME])
    # Load as TF Serving does: the MetaGraph in a session, variables restored by its saver,
    # the signature's tensors fed and fetched by name.
    tf1 = tf.compat.v1
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # the v1 loader's deprecation notice
    try:
        with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as session:
            meta_graph = tf1.saved_model.loader.load(session, [tf1.saved_model.tag_constants.SERVING], str(folder))
            signature = meta_graph.signature_def[SIGNATURE]
            feed = {signature.inputs[name].name: value for name, value in probe.items()}
            got = session.run(signature.outputs[OUTPUT_NAME].name, feed)
            sampled = None
            if sample_expected is not None:
                signature = meta_graph.signature_def[SAMPLE_SIGNATURE]
                feed = {**probe, SEED_NAME: PROBE_SEED, MEMBERS_NAME: PROBE_MEMBERS}
                feed = {signature.inputs[name].name: value for name, value in feed.items()}
                sampled = session.run(signature.outputs[MEMBERS_NAME].name, feed)
    except tf.errors.OpError as err:
        lines = [line.strip() for line in err.message.splitlines() if line.strip()]
        message = next((line for line in lines if "error:" not in line.lower()[-20:]), lines[0] if lines else "")
        raise ExportError(f"the written SavedModel does not run when loaded as TF Serving loads it: {message}") from err
    finally:
        logger.setLevel(level)
    if got.shape != expected.shape:
        raise ExportError(f"the written SavedModel returns shape {got.shape}, the Keras model {expected.shape}")
    if not np.isfinite(expected).all():
        raise ExportError(
            f"the generator gives non-finite values (NaN or inf) on a probe of 0 to 120 %RH: {DIVERGED_HINT}"
        )
    if not np.isfinite(got).all():
        raise ExportError("the written SavedModel gives non-finite values (NaN or inf) where the Keras model does not")
    diff = float(np.max(np.abs(got - expected)))
    mixed = any(getattr(layer, "compute_dtype", "float32") in ("float16", "bfloat16") for layer in model.layers)
    tolerance = PROBE_TOLERANCE["mixed" if mixed else "float32"]
    if not diff <= tolerance:
        raise ExportError(
            f"the written SavedModel differs from the Keras model by {diff:g} %RH on a probe (tolerance {tolerance:g})"
        )
    if sample_expected is not None:
        _check_members(sampled, sample_expected, tolerance)
    if not (Path(folder) / "assets" / ASSET_NAME).is_file():
        raise ExportError(f"the asset {ASSET_NAME} is missing from the written SavedModel")
    return diff


def expected_best_estimate(model, probe):
    """What SIGNATURE should return for `probe` (the signature's inputs by name), computed eagerly (numpy float32)."""
    import numpy as np

    from hsr_keras.models import sampling

    x = generator_feed(model, probe)
    if not sampling.samples_in_inference(model):
        return np.asarray(model(x, training=False), dtype="float32")
    repeated = {name: np.repeat(value, BEST_ESTIMATE_MEMBERS, axis=0) for name, value in probe.items()}
    members = np.asarray(sampling.seeded_call(model, generator_feed(model, repeated), 0), dtype="float32")
    batch = len(probe[INPUT_NAME])
    return members.reshape(batch, BEST_ESTIMATE_MEMBERS, *members.shape[1:]).mean(axis=1)


def _check_members(got, expected, tolerance):
    """The SavedModel's sample signature against the function it was traced from: shape, values, distinct members."""
    import numpy as np

    if got.shape != expected.shape:
        raise ExportError(
            f"the written {SAMPLE_SIGNATURE} signature returns shape {got.shape}, expected {expected.shape}"
        )
    if not np.isfinite(got).all():
        raise ExportError(f"the written {SAMPLE_SIGNATURE} signature gives non-finite values (NaN or inf)")
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= tolerance:
        raise ExportError(f"the written {SAMPLE_SIGNATURE} signature differs from the Keras model by {diff:g} %RH")


def check_finite_weights(model, path):
    """Every weight of the generator (trainable or not: batch-norm statistics too) must be finite."""
    import numpy as np

    bad = [variable.path for variable in model.weights if not np.isfinite(np.asarray(variable)).all()]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise ExportError(
            f"the generator {path} has non-finite weights (NaN or inf in {bad[0]}{more}): {DIVERGED_HINT}"
        )


def probe_input():
    """The random LR field (0 to 120 %RH, PROBE_SHAPE) an export is checked on."""
    import numpy as np

    return np.random.default_rng(0).uniform(0.0, 120.0, PROBE_SHAPE).astype("float32")


def probe_inputs(model, scale=None):
    """The signature's inputs an export is checked on, by name: `probe_input`, and for the extras values
    spread around the generator's own statistics, times in 2019 (`scale`: the model's, from its static pooling).
    """
    import numpy as np

    rng = np.random.default_rng(1)
    batch, steps, h, w, _ = PROBE_SHAPE
    probe = {INPUT_NAME: probe_input()}
    for name, _, _ in signature_inputs(model)[1:]:
        if name == TIME_NAME:
            probe[name] = np.tile(1546300800 + 10800 * np.arange(steps, dtype="int64"), (batch, 1))
            continue
        layer = model.get_layer(f"standardize_{name}")
        mean, std = np.asarray(layer.mean, "float32"), np.asarray(layer.std, "float32")
        if name == "static":
            scale = scale or model.get_layer("static_pool").pool_size[0]
            grid = (batch, scale * h, scale * w)
        else:
            grid = (batch, steps, h, w)
        probe[name] = (mean + std * rng.uniform(-1.5, 1.5, (*grid, len(mean)))).astype("float32")
    return probe


def check_scale(model, scale):
    """The model's upsampling factor must be the manifest's, and its outputs on the probes finite."""
    import numpy as np

    h, w = PROBE_SHAPE[2:4]
    probe = probe_inputs(model, scale)
    out = model(generator_feed(model, {**probe, INPUT_NAME: np.full(PROBE_SHAPE, 50.0, "float32")}), training=False)
    if tuple(out.shape) != (PROBE_SHAPE[0], PROBE_SHAPE[1], scale * h, scale * w, 1):
        raise ExportError(
            f"the model maps LR {PROBE_SHAPE[1:4]} to {tuple(out.shape)[1:4]}, but the manifest's scale is {scale}: "
            "is the manifest that of the model's training data?"
        )
    probed = model(generator_feed(model, probe), training=False)
    for name, values in (("a field of 50 %RH", out), ("a probe of 0 to 120 %RH", probed)):
        if not np.isfinite(np.asarray(values)).all():
            raise ExportError(f"the generator gives non-finite values (NaN or inf) for {name}: {DIVERGED_HINT}")


# ----------------------------------------------------------------------------- version folders


def check_version_free(base, version):
    """`version` must not be taken by a folder of `base`, whatever its zero padding (TF Serving reads 007 as 7)."""
    taken = version_folders(base).get(version)
    if taken is not None:
        raise ExportError(f"version {version} already exists at {taken}: choose another --version or omit it")


def publish(tmp, base, version):
    """Rename the finished `tmp` folder to `base/<version>`; with `version=None`, to the next free number."""
    if version is not None:
        check_version_free(base, version)
    for _ in range(100):
        number = version if version is not None else max(existing_versions(base), default=0) + 1
        target = Path(base) / str(number)
        try:
            os.rename(tmp, target)  # atomic; fails if another export took the number meanwhile
            return target
        except OSError:
            if version is not None or not target.exists():
                raise
    raise ExportError(f"could not find a free version number under {base}")


def export(model_path, manifest=None, out="saved_models", name="hsr", version=None, clip_negative=False):
    """Exports a generator to `out/name/version/`, checked before it appears.

    Args:
        model_path: a generator .keras or a fit output folder.
        manifest: the training data's build folder or manifest (default: found beside the model).
        out: root of the exports.
        name: model name, the folder under `out`.
        version: version number (default: one more than the highest existing one).
        clip_negative: clip outputs below 0 %RH inside the graph.

    Returns:
        (version folder, asset info, max |SavedModel - Keras model| on the probe in %RH).
    """
    if version is not None and version < 1:
        raise ExportError(f"--version must be a positive integer (TF Serving's version folders). Received: {version}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
        raise ExportError(f"--name must be letters, digits, '_', '-' or '.' (a folder name). Received: {name!r}")
    _, generator_path = model_files.resolve(model_path, saved_model=False)
    base = Path(out) / name
    if version is not None:
        check_version_free(base, version)
    files.check_folder(base, "--out/--name")
    manifest = model_files.load_manifest(manifest, generator_path)
    with files.FolderLock(base, command=f"export of {generator_path}"):  # one export at a time into a model's folder
        use_tensorflow_backend()
        model = model_files.load_generator(generator_path)
        check_finite_weights(model, generator_path)
        check_scale(model, int(manifest["scale"]))
        check_stats(model, manifest)
        info = model_info(manifest, model, generator_path, clip_negative)
        files.remove_stale(base)
        # Not a number, so TF Serving ignores it; the host and pid say whose it is.
        tmp = files.temporary_path(base / "export")
        try:
            with files.reporting_full_disk(base):
                save_servable(model, tmp, info)
                diff = verify_servable(tmp, model, clip_negative)
                files.sync(tmp)
            target = publish(tmp, base, version)
        finally:
            files.remove(tmp)
    return target, info, diff


def check_stats(model, manifest):
    """A model normalised with other statistics than the manifest's was trained on other data: refused.

    The export's asset would describe another build's grid and statistics to every client.
    """
    taken, built = model_files.generator_inputs(model), input_names(manifest)
    if taken != built:
        raise ExportError(
            f"the model takes the inputs {', '.join(taken)}, but the build in {manifest.get('_dir', 'the manifest')} "
            f"has {', '.join(built)}: pass --manifest with the build the model was trained on"
        )
    layers = [  # the target's: not those of the extra inputs (`standardize_predictors`, `standardize_static`)
        layer
        for layer in model.layers
        if type(layer).__name__ == "Standardize" and not layer.name.startswith("standardize_")
    ]
    if not layers:
        return
    for name in ("mean", "std"):
        expected, got = manifest["stats"].get(name), float(getattr(layers[0], name))
        if expected is not None and abs(got - float(expected)) > 1e-3 * max(abs(float(expected)), 1.0):
            where = manifest.get("_dir", "the manifest")
            raise ExportError(
                f"the model normalises with {name} {got:g}, but the training {name} in {where} is {float(expected):g}: "
                "that is the manifest of another build; pass --manifest with the build the model was trained on"
            )
