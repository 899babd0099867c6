"""`python -m hsr_keras.export`: a trained generator as a SavedModel for TF Serving.

Writes `<out>/<name>/<version>/` (default `saved_models/hsr/<next version>/`), the layout
TF Serving loads, with the signatures:

    serving_default:  lr  float32 [batch, time, h, w, 1]          (%RH, every dim free)
                   -> hr  float32 [batch, time, scale*h, scale*w, 1]  (%RH)
    sample:           lr  float32 [batch, time, h, w, 1], seed int64 [], members int32 []
                   -> members float32 [batch, members, time, scale*h, scale*w, 1]  (%RH)

`serving_default` is the best estimate: the generator in inference mode (its noise off), or,
for a generator whose noise is on in inference (`noise: texture`), the mean of 8 members drawn
with seed 0, the ensemble mean its content loss trains. `sample` (generators with noise only)
draws N members; the same input and seed give the same members.

Normalisation with the training statistics happens inside the graph, so clients send and
receive relative humidity in %. The output is not clipped at 100 % (ERA5 relative humidity
is taken over ice in cold air and exceeds 100 %) and, by default, not at 0 either
(`--clip-negative` adds max(hr, 0) to the graph).

`assets/hsr_manifest.json` in the version folder holds what a client needs: scale, units,
variable, levels, the HR and LR grid spacing and how HR cells sit on LR points, the
degradation, the training statistics, the step hours of a sequence, the model's config and
the code version. A version folder appears only complete: the export is written to a hidden
temporary folder, loaded back and checked against the Keras model, then renamed. Before any
of that the output folder must be writable and the generator sound (finite weights, finite
values on a probe); a temporary folder left by an export that was killed is removed by the
next export into the same folder.

Exit status: 0 written, 2 bad input (one line `error: ...`), 1 an internal error, 130 interrupted.
"""

import argparse
import os
import re
import sys
import tempfile

from hsr_keras.models import model_files
from hsr_keras.models.model_files import (
    ASSET_NAME,
    GENERATOR_FILE,
    INPUT_NAME,
    MEMBERS_NAME,
    OUTPUT_NAME,
    SAMPLE_SIGNATURE,
    SEED_NAME,
    SIGNATURE,
)
from tfrecords_builder.contract import remote
from tfrecords_builder.contract.console import run_command, set_quiet
from tfrecords_builder.contract.schema import MANIFEST_NAME


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hsr_keras.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model",
        help=f"generator .keras file, or a fit output folder holding {GENERATOR_FILE}; either may be a URL (gs://, "
        "s3://, memory://: copied to the cache first)",
    )
    parser.add_argument(
        "--manifest",
        help="the training data's build folder or its manifest.json (default: looked up beside the model: "
        "manifest.json, data/tfrecords/manifest.json of a demo fit, or the build recorded in run.json); a URL is "
        "copied to the cache first",
    )
    parser.add_argument(
        "--out",
        default="saved_models",
        help="root of the exports, or a URL (exported here, then the version folder uploaded, saved_model.pb last). "
        "Default: saved_models",
    )
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
    return run_command(_run, argv)


def _run(argv):
    args = parse_args(argv)
    set_quiet(args.quiet)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from hsr_keras.serving.saved_model import export, use_tensorflow_backend

    use_tensorflow_backend()
    if remote.is_url(args.out):  # a protocol without its package: one line, before any download
        remote.filesystem(args.out)
    model, manifest = fetch_model(args.model, args.manifest)
    if remote.is_url(args.out):
        target, info, diff = _export_to_url(args, model, manifest)
    else:
        target, info, diff = export(model, manifest, args.out, args.name, args.version, args.clip_negative)
    if not args.quiet:
        print(f"SavedModel written to {target}")
        print(
            f"  signature {SIGNATURE!r}: {INPUT_NAME} float32 [batch, time, h, w, 1] %RH -> "
            f"{OUTPUT_NAME} float32 [batch, time, {info['scale']}*h, {info['scale']}*w, 1] %RH: "
            f"{info['best_estimate']}"
        )
        if info.get("sample_signature"):
            print(
                f"  signature {SAMPLE_SIGNATURE!r}: {INPUT_NAME}, {SEED_NAME} int64, {MEMBERS_NAME} int32 -> "
                f"{MEMBERS_NAME} float32 [batch, members, time, {info['scale']}*h, {info['scale']}*w, 1] %RH"
            )
        print(f"  checked against the Keras model: max |diff| {diff:.2g} %RH; asset assets/{ASSET_NAME}")
        print(
            f"  serve: tensorflow_model_server --rest_api_port=8501 --model_name={args.name} "
            f"--model_base_path={remote.join(args.out, args.name) if remote.is_url(args.out) else target.parent.resolve()}"
        )
    return 0


def fetch_model(model, manifest):
    """A model and a manifest given as URLs, copied to the cache: a .keras file or a fit folder, a build.

    A fit folder published by `fit` names a build on a bucket by its URL in run.json: that build
    is the manifest when none is given.
    """
    if remote.is_url(model):
        if model.rstrip("/").endswith(".keras"):
            model = remote.fetch_input(model)
        else:
            model = remote.fetch_copy(model)
            data = model_files.read_json(model / model_files.RUN_FILE).get("data")
            if manifest is None and isinstance(data, str) and remote.is_url(data):
                manifest = data
    if manifest is not None and remote.is_url(manifest):
        manifest = remote.fetch_build(manifest.rstrip("/").removesuffix(f"/{MANIFEST_NAME}"))
    return model, manifest


def _export_to_url(args, model, manifest):
    """The export into a local staging folder, its version folder published to `--out URL/--name/<version>`.

    The version is checked against (or chosen from) the URL's listing; saved_model.pb is uploaded last.
    """
    from hsr_keras.serving.saved_model import ExportError, export

    base = remote.join(args.out, args.name)
    fs, root = remote.filesystem(base)
    taken = {int(name.split("/")[0]) for name in remote.listing(fs, root) if re.fullmatch(r"[0-9]+/.+", name)}
    if args.version in taken:
        raise ExportError(f"version {args.version} already exists at {base}: choose another --version or omit it")
    version = args.version or max(taken, default=0) + 1
    staging = remote.cache_root() / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="export-", dir=staging) as local:
        target, info, diff = export(model, manifest, local, args.name, version, args.clip_negative)
        remote.publish_folder(target, remote.join(base, str(version)), marker="saved_model.pb")
    return remote.join(base, str(version)), info, diff


if __name__ == "__main__":
    sys.exit(main())
