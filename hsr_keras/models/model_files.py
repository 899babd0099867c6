"""Trained models on disk: the file names, what a model argument may be, and loading one.

`evaluate`, `export` and `predict` take a model as any of:

    a generator `.keras` file        what `fit` saves as GENERATOR_FILE
    a fit output folder              its GENERATOR_FILE, with CONFIG_FILE and RUN_FILE beside it
    a SavedModel version folder      `export`'s `<out>/<name>/<version>/` (SAVED_MODEL_FILE, and the
                                     asset ASSET_NAME describing the model)
    an export base folder            `<out>/<name>/`: its highest version, as TF Serving serves it

Keras, TensorFlow (and numpy) are imported only when a model is loaded, so that `export` can
choose the Keras backend before anything imports Keras, and the commands answer `--help` at once.
"""

import json
import re
from pathlib import Path

from tfrecords_builder.contract import files
from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.inputs import EXTRA_INPUT_NAMES
from tfrecords_builder.contract.schema import MANIFEST_NAME

GENERATOR_FILE = "generator.keras"
CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
SAVED_MODEL_FILE = "saved_model.pb"
# The exported SavedModel: the signature lr [B, T, h, w, 1] -> hr [B, T, s*h, s*w, 1] (%RH), the best
# estimate; for a generator with noise also SAMPLE_SIGNATURE lr, seed, members -> members
# [B, N, T, s*h, s*w, 1] (%RH); and an asset file with what a client needs to know (see
# `hsr_keras.serving.saved_model.model_info`).
SIGNATURE = "serving_default"
INPUT_NAME = "lr"
OUTPUT_NAME = "hr"
SAMPLE_SIGNATURE = "sample"
SEED_NAME = "seed"
MEMBERS_NAME = "members"
TIME_NAME = "time"  # int64 seconds since 1970 UTC: a signature's input for a generator of time features
ASSET_NAME = "hsr_manifest.json"
FORMAT = "hsr-keras-export"
FORMAT_VERSION = 1
# Where `fit` without --data builds its demo data, relative to its output folder (`make_demo_data`).
DEMO_DATA = Path("data") / "tfrecords"

KERAS = "keras"
SAVED_MODEL = "saved_model"


class ModelFileError(InputError):
    """A model argument that cannot be used; the commands print it on one line and exit with 2."""


def existing_versions(base):
    """The numbered version folders under an export base folder, ascending."""
    return sorted(version_folders(base))


def version_folders(base):
    """{version: its folder} under an export base folder; TF Serving reads "007" as version 7, and so does this."""
    base = Path(base)
    if not base.is_dir():
        return {}
    return {int(p.name): p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"[0-9]+", p.name)}


def resolve(path, saved_model=True):
    """(kind, path) of a model argument: (KERAS, the .keras file) or (SAVED_MODEL, the version folder).

    With `saved_model=False` only a generator `.keras` or a fit output folder is accepted (export).
    Raises `ModelFileError` with a one-line reason.
    """
    path = Path(path)
    if path.is_dir():
        if (path / GENERATOR_FILE).is_file():
            return KERAS, path / GENERATOR_FILE
        if not saved_model:
            raise ModelFileError(
                f"{path} is a folder without {GENERATOR_FILE}: give a generator .keras or a fit output folder"
            )
        if (path / SAVED_MODEL_FILE).is_file():
            return SAVED_MODEL, path
        versions = {v: folder for v, folder in version_folders(path).items() if (folder / SAVED_MODEL_FILE).is_file()}
        if versions:
            return SAVED_MODEL, versions[max(versions)]
        raise ModelFileError(
            f"{path} is a folder without {GENERATOR_FILE} and holds neither a SavedModel ({SAVED_MODEL_FILE}) "
            "nor versions of one: give a generator .keras, a fit output folder or a SavedModel folder"
        )
    if not path.is_file():
        raise ModelFileError(f"no such model file: {path}")
    if path.suffix != ".keras":
        raise ModelFileError(f"{path} is not a Keras model file (.keras)")
    return KERAS, path


def read_json(path):
    """The JSON object in a file, or {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def fit_config(path):
    """The CONFIG_FILE `fit` wrote beside a generator (`path` is the .keras file or its folder), or None."""
    path = Path(path)
    for candidate in (path / CONFIG_FILE, path.parent / CONFIG_FILE):
        if candidate.is_file():
            return read_json(candidate) or None
    return None


def find_manifest(generator_path):
    """The data manifest a generator was trained on, when it can be found beside it; else None.

    Looks for the manifest beside the generator, then the demo data of `fit` without --data,
    then the build folder `fit` recorded in its RUN_FILE ("data").
    """
    folder = Path(generator_path).parent
    candidates = [folder / MANIFEST_NAME, folder / DEMO_DATA / MANIFEST_NAME]
    data = read_json(folder / RUN_FILE).get("data")
    if isinstance(data, str):
        candidates.append(Path(data) / MANIFEST_NAME)
    return next((c for c in candidates if c.is_file()), None)


def load_manifest(manifest, generator_path=None):
    """The checked data manifest from `manifest` (a build folder or file), else the one beside the generator."""
    from tfrecords_builder.contract.manifest import read_manifest

    if manifest is None:
        manifest = find_manifest(generator_path) if generator_path is not None else None
        if manifest is None:
            raise ModelFileError(
                f"no data manifest found beside {generator_path}: pass --manifest BUILD_FOLDER (or its {MANIFEST_NAME})"
            )
    return read_manifest(manifest)


def load_generator(path):
    """A generator `.keras` file as a Keras model, checked to take an LR input [batch, time, h, w, 1] (and known extras)."""
    import zipfile

    import keras

    import hsr_keras.layers  # noqa: F401  (registers the custom layers for deserialisation)

    if not zipfile.is_zipfile(path):  # Keras calls a truncated or corrupt file "not found"
        raise ModelFileError(
            f"cannot load the generator {path}: not a .keras file (a zip archive); truncated or corrupt?"
        )
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # zip, JSON, h5 and deserialisation errors come in many types
        raise ModelFileError(f"cannot load the generator {path}: {err}".splitlines()[0]) from err
    lr = next((t for t in model.inputs if len(model.inputs) == 1 or t.name == "lr"), None)
    unknown = set(generator_inputs(model)) - set(EXTRA_INPUT_NAMES) - {"lr"}
    if lr is None or len(lr.shape) != 5 or lr.shape[-1] != 1 or (len(model.inputs) > 1 and unknown):
        raise ModelFileError(
            f"{path} is not a generator: expected an input [batch, time, h, w, 1] (and extra inputs named "
            f"{', '.join(EXTRA_INPUT_NAMES)}), it takes {[(t.name, tuple(t.shape)) for t in model.inputs]}"
        )
    return model


def generator_inputs(model):
    """The names of a generator's inputs, `lr` first then the contract's order: ["lr"] for a generator of the LR field alone."""
    if len(model.inputs) == 1:
        return ["lr"]
    names = {t.name for t in model.inputs}
    return ["lr", *(name for name in EXTRA_INPUT_NAMES if name in names), *sorted(names - {"lr", *EXTRA_INPUT_NAMES})]


def read_export_info(folder):
    """The asset file of an exported SavedModel version folder (scale, grid, time steps, ...)."""
    asset = Path(folder) / "assets" / ASSET_NAME
    try:
        info = json.loads(asset.read_text())
    except (OSError, ValueError) as err:
        raise ModelFileError(
            f"{folder} is a SavedModel without a readable assets/{ASSET_NAME}: export it with "
            f"`python -m hsr_keras.export` ({err})"
        ) from err
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ModelFileError(f"{asset} is not an hsr-keras export manifest")
    return info


def signature_feed(x):
    """A signature's keyword tensors from numpy: `lr` alone, or the named inputs (TIME_NAME int64, the rest float32)."""
    import numpy as np
    import tensorflow as tf

    named = x if isinstance(x, dict) else {INPUT_NAME: x}
    return {
        name: tf.constant(np.asarray(value, dtype="int64" if name == TIME_NAME else "float32"))
        for name, value in named.items()
    }


def saved_model_predictor(folder):
    """The SIGNATURE of a SavedModel as a numpy function: lr [B, T, h, w, 1] -> hr [B, T, s*h, s*w, 1], %RH.

    An export with extra inputs takes them by name instead: a dict of `lr` and those (`signature_feed`).
    """
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(folder))
    except Exception as err:  # missing files, bad protobufs and graph errors come in many types
        raise ModelFileError(f"cannot load the SavedModel {folder}: {err}".splitlines()[0]) from err
    if SIGNATURE not in loaded.signatures:
        raise ModelFileError(f"{folder} is a SavedModel without a {SIGNATURE} signature")
    signature = loaded.signatures[SIGNATURE]

    def predict(lr):
        out = signature(**signature_feed(lr))
        return (out[OUTPUT_NAME] if OUTPUT_NAME in out else next(iter(out.values()))).numpy()

    predict.saved_model = loaded  # the signature reads the SavedModel's variables: keep them alive
    predict.inputs = sorted(signature.structured_input_signature[1])  # INPUT_NAME alone, or with extras
    return predict


def saved_model_sampler(folder):
    """The SAMPLE_SIGNATURE of a SavedModel as a numpy function `(lr, seed, members) -> [B, N, T, H, W, 1]`, or None.

    None when the export has no such signature (a generator without noise, or an export made
    before it existed).
    """
    import tensorflow as tf

    loaded = saved_model_predictor(folder).saved_model
    if SAMPLE_SIGNATURE not in loaded.signatures:
        return None
    signature = loaded.signatures[SAMPLE_SIGNATURE]

    def sample(lr, seed, members):
        out = signature(
            **signature_feed(lr),
            **{SEED_NAME: tf.constant(seed, tf.int64), MEMBERS_NAME: tf.constant(members, tf.int32)},
        )
        return out[MEMBERS_NAME].numpy()

    sample.saved_model = loaded
    return sample


def save_generator(generator, path):
    """`generator.save(path)`, published whole: a `.keras` temporary beside it (Keras wants the suffix), then a rename."""
    with files.publishing(path) as temporary:
        generator.save(temporary)
