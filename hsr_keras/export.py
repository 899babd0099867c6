"""`python -m hsr_keras.export`: a trained generator as a SavedModel for TF Serving.

Writes `<out>/<name>/<version>/` (default `saved_models/hsr/<next version>/`), the layout
TF Serving loads, with one signature:

    serving_default:  lr  float32 [batch, time, h, w, 1]          (%RH, every dim free)
                   -> hr  float32 [batch, time, scale*h, scale*w, 1]  (%RH)

Normalisation with the training statistics happens inside the graph, so clients send and
receive relative humidity in %. The output is not clipped at 100 % (ERA5 relative humidity
is taken over ice in cold air and exceeds 100 %) and, by default, not at 0 either
(`--clip-negative` adds max(hr, 0) to the graph).

`assets/hsr_manifest.json` in the version folder holds what a client needs: scale, units,
variable, levels, the HR and LR grid spacing and how HR cells sit on LR points, the
degradation, the training statistics, the step hours of a sequence, the model's config and
the code version. A version folder appears only complete: the export is written to a hidden
temporary folder, loaded back and checked against the Keras model, then renamed.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from hsr_keras.provenance import code_version, sha256_of

ASSET_NAME = "hsr_manifest.json"
FORMAT = "hsr-keras-export"
FORMAT_VERSION = 1
SIGNATURE = "serving_default"
INPUT_NAME = "lr"
OUTPUT_NAME = "hr"
GENERATOR_FILE = "generator.keras"
# Probe used to check the written SavedModel against the Keras model before publishing it.
# The tolerances (%RH) catch a broken export, not rounding: graph and eager execution may pick
# other kernels (TF32 convolutions on recent GPUs, float16 under mixed precision). On CPU in
# float32 the two agree to about 4e-6 %RH.
PROBE_SHAPE = (1, 2, 3, 4, 1)
PROBE_TOLERANCE = {"float32": 0.05, "mixed": 1.0}


class ExportError(ValueError):
    """Bad input to `export` or `predict`; the command line prints it and exits with status 2."""


# ----------------------------------------------------------------------------- model and manifest


def use_tensorflow_backend():
    """Export runs Keras models inside `tf.function`: make sure Keras uses TensorFlow.

    Before Keras is imported this sets `KERAS_BACKEND=tensorflow` (a JAX default on a GPU box
    would otherwise break the export); afterwards another backend is an `ExportError`.
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


def resolve_generator(path):
    """A generator `.keras` file, or the `generator.keras` inside a fit output folder."""
    path = Path(path)
    if path.is_dir():
        if not (path / GENERATOR_FILE).is_file():
            raise ExportError(
                f"{path} is a folder without {GENERATOR_FILE}: give a generator .keras or a fit output folder"
            )
        return path / GENERATOR_FILE
    if not path.is_file():
        raise ExportError(f"no such model file: {path}")
    if path.suffix != ".keras":
        raise ExportError(f"{path} is not a Keras model file (.keras)")
    return path


def find_manifest(generator_path):
    """The data manifest of a fit output, when it can be found beside the generator; else None.

    Looks for `manifest.json` beside the generator, the demo layout of `fit` without `--data`
    (`data/tfrecords/manifest.json`), and a `data` or `manifest` entry (top level or under
    `notes`) in the fit folder's `config.json` or `run.json`.
    """
    folder = Path(generator_path).parent
    candidates = [folder / "manifest.json", folder / "data" / "tfrecords" / "manifest.json"]
    for name in ("config.json", "run.json"):
        info = _read_json(folder / name)
        for source in (info, info.get("notes") if isinstance(info.get("notes"), dict) else {}):
            for key in ("manifest", "data"):
                if isinstance(source.get(key), str):
                    found = Path(source[key])
                    found = found if found.is_absolute() else folder / found
                    candidates.append(found / "manifest.json" if found.is_dir() or found.suffix != ".json" else found)
    return next((c for c in candidates if c.is_file()), None)


def _read_json(path):
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_manifest(manifest, generator_path=None):
    """The checked data manifest from `--manifest`, or the one found beside the generator."""
    from tfrecords_builder.manifest import read_manifest

    if manifest is None:
        manifest = find_manifest(generator_path) if generator_path is not None else None
        if manifest is None:
            raise ExportError(
                f"no data manifest found beside {generator_path}: pass --manifest BUILD_FOLDER (or its manifest.json)"
            )
    return read_manifest(manifest)


def load_keras_generator(path):
    """(model, path of the .keras file) for a generator file or a fit folder; `ExportError` when unreadable."""
    use_tensorflow_backend()
    from hsr_keras.evaluate import load_generator

    path = resolve_generator(path)
    try:
        model = load_generator(path)
    except Exception as err:  # zip, JSON, h5 and deserialisation errors come in many types
        raise ExportError(f"cannot load the generator {path}: {err}".splitlines()[0]) from err
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 5 or model.inputs[0].shape[-1] != 1:
        raise ExportError(
            f"{path} is not a generator: expected one input [batch, time, h, w, 1], it takes "
            f"{[tuple(t.shape) for t in model.inputs]}"
        )
    return model, path


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
                }
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


def _model_section(model, generator_path):
    section = {"name": model.name, "parameters": int(model.count_params())}
    if generator_path is not None:
        path = Path(generator_path)
        section["source"] = {"path": str(path.resolve()), "sha256": sha256_of(path)}
        section["training_config"] = _read_json(path.parent / "config.json") or None
    section["keras_config"] = json.loads(model.to_json())
    return section


# ----------------------------------------------------------------------------- SavedModel


def serving_function(model, clip_negative=False):
    """`tf.function` lr [B, T, h, w, 1] float32 -> {"hr": [B, T, s*h, s*w, 1] float32}, all dims free."""
    import tensorflow as tf

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, None, None, 1], tf.float32, name=INPUT_NAME)],
        autograph=False,
        reduce_retracing=True,
    )
    def serve(lr):
        hr = tf.cast(model(lr, training=False), tf.float32)
        if clip_negative:
            hr = tf.maximum(hr, 0.0)
        return {OUTPUT_NAME: hr}

    return serve


def save_servable(model, folder, info):
    """Write the SavedModel of `model` with its asset file into `folder` (which must not exist)."""
    import tensorflow as tf

    serve = serving_function(model, info["clip_negative"])
    with tempfile.TemporaryDirectory() as tmp:
        asset = Path(tmp) / ASSET_NAME
        asset.write_text(json.dumps(info, indent=1) + "\n")
        root = tf.Module()
        # Track the tf.Variables the traced graph captures, not the Keras variables wrapping
        # them (nor the Keras object graph): the SavedModel is then a plain TensorFlow graph
        # that loads without Keras or hsr_keras, and the graph-mode loader TF Serving and
        # saved_model_cli use restores exactly the variables the signature reads. (Tracking
        # `model.variables` writes each variable twice and leaves the ones the graph reads
        # uninitialised there, although `tf.saved_model.load` works.)
        root.generator_variables = list(serve.get_concrete_function().variables)
        root.hsr_manifest = tf.saved_model.Asset(str(asset))
        root.serve = serve
        tf.saved_model.save(root, str(folder), signatures={SIGNATURE: serve})


def verify_servable(folder, model, clip_negative=False):
    """Load `folder` back and compare its signature with the Keras model on a probe; max |diff| in %RH."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    probe = rng.uniform(0.0, 120.0, PROBE_SHAPE).astype("float32")
    expected = np.asarray(model(probe, training=False), dtype="float32")
    if clip_negative:
        expected = np.maximum(expected, 0.0)
    # Load as TF Serving does: the MetaGraph in a session, variables restored by its saver,
    # the signature's tensors fed and fetched by name.
    tf1 = tf.compat.v1
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # the v1 loader's deprecation notice
    try:
        with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as session:
            meta_graph = tf1.saved_model.loader.load(session, [tf1.saved_model.tag_constants.SERVING], str(folder))
            signature = meta_graph.signature_def[SIGNATURE]
            got = session.run(signature.outputs[OUTPUT_NAME].name, {signature.inputs[INPUT_NAME].name: probe})
    except tf.errors.OpError as err:
        lines = [line.strip() for line in err.message.splitlines() if line.strip()]
        message = next((line for line in lines if "error:" not in line.lower()[-20:]), lines[0] if lines else "")
        raise ExportError(f"the written SavedModel does not run when loaded as TF Serving loads it: {message}") from err
    finally:
        logger.setLevel(level)
    if got.shape != expected.shape:
        raise ExportError(f"the written SavedModel returns shape {got.shape}, the Keras model {expected.shape}")
    diff = float(np.max(np.abs(got - expected)))
    mixed = any(getattr(layer, "compute_dtype", "float32") in ("float16", "bfloat16") for layer in model.layers)
    tolerance = PROBE_TOLERANCE["mixed" if mixed else "float32"]
    if not diff <= tolerance:
        raise ExportError(
            f"the written SavedModel differs from the Keras model by {diff:g} %RH on a probe (tolerance {tolerance:g})"
        )
    if not (Path(folder) / "assets" / ASSET_NAME).is_file():
        raise ExportError(f"the asset {ASSET_NAME} is missing from the written SavedModel")
    return diff


def check_scale(model, scale):
    """The model's upsampling factor must be the manifest's."""
    import numpy as np

    h, w = PROBE_SHAPE[2:4]
    out = model(np.full(PROBE_SHAPE, 50.0, "float32"), training=False)
    if tuple(out.shape) != (PROBE_SHAPE[0], PROBE_SHAPE[1], scale * h, scale * w, 1):
        raise ExportError(
            f"the model maps LR {PROBE_SHAPE[1:4]} to {tuple(out.shape)[1:4]}, but the manifest's scale is {scale}: "
            "is the manifest that of the model's training data?"
        )


def existing_versions(base):
    base = Path(base)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and re.fullmatch(r"\d+", p.name))


def publish(tmp, base, version):
    """Rename the finished `tmp` folder to `base/<version>`; with `version=None`, to the next free number."""
    auto = version is None
    for _ in range(100):
        number = (max(existing_versions(base), default=0) + 1) if auto else version
        target = Path(base) / str(number)
        if target.exists():
            if auto:
                continue
            raise ExportError(f"version {number} already exists at {target}: choose another --version or omit it")
        try:
            os.rename(tmp, target)  # atomic; fails if another export took the number meanwhile
            return target
        except OSError:
            if not auto or not target.exists():
                raise
    raise ExportError(f"could not find a free version number under {base}")


def export(model_path, manifest=None, out="saved_models", name="hsr", version=None, clip_negative=False, verbose=True):
    """Export a generator to `out/name/version/`; returns (path, info)."""
    if version is not None and version < 1:
        raise ExportError(f"--version must be a positive integer (TF Serving's version folders). Received: {version}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
        raise ExportError(f"--name must be letters, digits, '_', '-' or '.' (a folder name). Received: {name!r}")
    generator_path = resolve_generator(model_path)
    base = Path(out) / name
    if version is not None and (base / str(version)).exists():
        raise ExportError(
            f"version {version} already exists at {base / str(version)}: choose another --version or omit it"
        )
    manifest = load_manifest(manifest, generator_path)
    model, generator_path = load_keras_generator(generator_path)
    check_scale(model, int(manifest["scale"]))
    _warn_stats(model, manifest)
    info = model_info(manifest, model, generator_path, clip_negative)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=base))  # not a number: TF Serving ignores it
    try:
        shutil.rmtree(tmp)  # tf.saved_model.save creates the folder
        save_servable(model, tmp, info)
        diff = verify_servable(tmp, model, clip_negative)
        target = publish(tmp, base, version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if verbose:
        print(f"SavedModel written to {target}")
        print(
            f"  signature {SIGNATURE!r}: {INPUT_NAME} float32 [batch, time, h, w, 1] %RH -> "
            f"{OUTPUT_NAME} float32 [batch, time, {info['scale']}*h, {info['scale']}*w, 1] %RH"
        )
        print(f"  checked against the Keras model: max |diff| {diff:.2g} %RH; asset assets/{ASSET_NAME}")
        print(
            f"  serve: tensorflow_model_server --rest_api_port=8501 --model_name={name} "
            f"--model_base_path={base.resolve()}"
        )
    return target, info


def _warn_stats(model, manifest):
    """A model normalised with other statistics than the manifest's was trained on other data."""
    layers = [layer for layer in model.layers if type(layer).__name__ == "Standardize"]
    mean = manifest["stats"].get("mean")
    if layers and mean is not None and abs(float(layers[0].mean) - float(mean)) > 1e-3 * max(abs(float(mean)), 1.0):
        print(
            f"warning: the model normalises with mean {layers[0].mean:g}, the manifest's training mean is "
            f"{float(mean):g}: is the manifest that of the model's training data?",
            file=sys.stderr,
        )


# ----------------------------------------------------------------------------- command line


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hsr_keras.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help=f"generator .keras file, or a fit output folder holding {GENERATOR_FILE}")
    parser.add_argument(
        "--manifest",
        help="the training data's build folder or its manifest.json (default: looked up beside the model: "
        "manifest.json, data/tfrecords/manifest.json of a demo fit, or a 'data' entry in config.json)",
    )
    parser.add_argument("--out", default="saved_models", help="root of the exports. Default: saved_models")
    parser.add_argument(
        "--name", default="hsr", help="model name, the folder under --out (TF Serving's --model_name). Default: hsr"
    )
    parser.add_argument(
        "--version",
        type=int,
        help="version number, the folder under --out/--name (default: one more than the highest existing version, 1 for the first)",
    )
    parser.add_argument(
        "--clip-negative",
        action="store_true",
        help="clip outputs below 0 %%RH to 0 inside the graph (default: no clipping; never clipped at 100 %%)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        use_tensorflow_backend()
        export(args.model, args.manifest, args.out, args.name, args.version, args.clip_negative, verbose=not args.quiet)
    except (ValueError, OSError) as err:  # ExportError, ManifestError and file system errors
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
