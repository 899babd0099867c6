"""`python -m hsr_keras.predict`: coarse ERA5 relative humidity in, a super-resolved netCDF out.

Input: ERA5 netCDF file(s) of relative humidity on a coarse regular grid (any region and
length; either CDS style: classic `time, level` or 2024+ `valid_time, pressure_level`),
whose spacing is the model's LR spacing (the training grid spacing x scale, e.g. 2.0 deg for
8x from 0.25 deg). Model: an exported SavedModel (`saved_models/hsr/1`, or `saved_models/hsr`
for its highest version; the grid facts come from its `assets/hsr_manifest.json`), or a
generator `.keras` (or fit output folder) with its data manifest.

Output: one CF-1.8 netCDF4 file on the fine grid, float32 with zlib compression, the variable
named and attributed as in the input, time and level copied, `history` appended with the
command. Along each axis the fine grid starts at the first LR point and has scale*n points
at spacing LR spacing / scale (the stride-sampling convention of training: LR point k sits on
HR cell scale*k; a model trained on block means shifts the grid by -(scale-1)/2 fine cells so
LR points sit at block centres). Rows beyond the poles are dropped; latitude keeps the input's
order (ERA5: north to south).

Time: the model was trained on sequences of one UTC day (e.g. 8 steps at 00, 03, ..., 21 UTC).
Only the times at the model's step hours are used (an hourly file is sampled every 3 h), and
each day's steps form one sequence; a day with missing steps is split at the gaps and each
shorter piece is predicted with its own length (the model accepts any number of steps).
`--all-times` uses every time in the files instead, in consecutive chunks of the model's
sequence length.

Space: the field is predicted in tiles of `--tile` x `--tile` LR points overlapping by
`--overlap` points, so memory stays bounded on any region. Where tiles overlap, each drops the
outer quarter of the overlap (at least 1 LR point for overlaps of 2 or more: the cells that
see the tile's edge) and the rest is cross-faded linearly (weights summing to one), so no
seams show; a region no larger than one tile is predicted in one piece, exactly as the model
does. The generator's attention blocks pool over the whole tile, so tiled and untiled
predictions agree closely but not exactly. A global longitude circle is padded periodically,
so the dateline gets context from both sides.

Output: checked before any work (not a folder, its folder writable, not one of the inputs,
absent unless --overwrite); locked while it is written (`.<out>.lock` beside it: a second
predict into the same file is refused at once, others in the folder are not held up); written
to `.<out>.<host>.<pid>.part` beside it and renamed when complete, so `--out` appears whole or
not at all; a full disk is one line. A temporary left by a predict that was killed is removed
by the next predict into the same folder. Input levels in Pa and relative humidity given as a
fraction are converted (their units attributes say so); an input that is not plausible
relative humidity is refused.

Zarr: an --out ending in `.zarr` writes a Zarr store with the same variables, coordinates and
attributes, chunked as one chunk of the model's sequence length along time (a day), one level,
the whole fine grid and one realization; each sequence is written as it is predicted. A store
left by a killed predict is resumed by the same command (same inputs, model and options; any
other is refused: --overwrite starts afresh). The store is complete when its attribute
`complete` is true and its metadata are consolidated. See docs/serving.md.

Ensembles: by default the output is the model's best estimate (its `serving_default`: the
generator with its noise off, or for a generator whose noise is on in inference the mean of 8
members). `--members N` writes N members of the generator's noise instead, along a leading CF
`realization` dimension (0 .. N-1), drawn one at a time (memory does not grow with N) through
the export's `sample` signature or the same function of a `.keras` generator; `--seed` picks
them: the same seed gives the same bytes. A model without noise is refused. Where tiles
overlap, two independent draws are cross-faded, which lowers the spread there.

Beam: `--runner beam` predicts into a .zarr store on a Beam runner (`--beam-runner`,
DirectRunner by default; Dataflow, Flink, Spark with the builder's options) with RunInference:
the same store, bytes and resume as the local Zarr predict, without a progress bar. See
docs/serving.md.

Extra inputs: a model trained on a build with predictors, time encodings or static fields
(docs/model.md) reads its predictors (`t@300`, ...) from the same input files as the target,
computes the time features from the files' times, and takes its static fields from
`--static-file` (the ERA5 invariants z and lsm on the output's fine grid). A model asked to
predict without an input it was trained with: one line naming the variable and the file, exit 2,
nothing written.

Exit status: 0 written, 2 bad input (one line `error: ...`), 1 an internal error, 130 interrupted.
"""

import argparse
import shlex
import sys
from pathlib import Path

from hsr_keras.serving.tiling import DEFAULT_BATCH, DEFAULT_OVERLAP, DEFAULT_TILE
from tfrecords_builder.contract import beam_runner, files, remote
from tfrecords_builder.contract.console import run_command, set_quiet

# ----------------------------------------------------------------------------- command line


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hsr_keras.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        help="LR ERA5 netCDF files, folders of them or glob patterns; or file URLs (gs://, s3://, memory://: copied "
        "to the cache first)",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="SavedModel version folder (saved_models/hsr/1), a model base folder (its highest version), "
        "a generator .keras or a fit output folder; any of them as a URL (copied to the cache first)",
    )
    parser.add_argument(
        "--manifest",
        help="with a .keras model: the training data's build folder or manifest.json (default: looked up beside "
        "the model); ignored for a SavedModel, which carries its own",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="output netCDF file, or a Zarr store for a name ending in .zarr (resumed after a kill); or a URL "
        "(written in the cache, uploaded when complete; docs/cloud.md)",
    )
    parser.add_argument("--variable", help="variable to read and write (default: the model's, 'r')")
    parser.add_argument(
        "--static-file",
        help="for a model trained with static fields: an invariant netCDF on the output's fine grid with z "
        "(surface geopotential, m**2 s**-2) and lsm (land-sea mask)",
    )
    parser.add_argument(
        "--level",
        type=float,
        action="append",
        dest="levels",
        metavar="HPA",
        help="pressure level in hPa, repeatable (default: every level in the first file)",
    )
    parser.add_argument(
        "--tile", type=int, default=DEFAULT_TILE, help=f"LR points per tile side. Default: {DEFAULT_TILE}"
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        help="LR points shared by neighbouring tiles: a quarter of it is dropped at each inner tile edge, the rest "
        f"cross-faded linearly; 0 butts tiles together. Default: {DEFAULT_OVERLAP}",
    )
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH, help=f"tiles per model call. Default: {DEFAULT_BATCH}"
    )
    parser.add_argument(
        "--all-times",
        action="store_true",
        help="use every time in the files, in chunks of the model's sequence length "
        "(default: only the model's step hours, one sequence per day)",
    )
    parser.add_argument(
        "--clip-negative",
        action="store_true",
        help="clip values below 0 %%RH to 0 (default: no clipping; never clipped at 100 %%)",
    )
    parser.add_argument(
        "--members",
        type=int,
        metavar="N",
        help="write N members of the generator's noise along a CF realization dimension "
        "(default: the model's single best estimate)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the members (--members). Default: 0")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if it exists (default: refuse; a .zarr store of the same run is resumed)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    beam_runner.add_beam_options(
        parser,
        "Beam: the Zarr predict on a Beam runner's workers (RunInference)",
        "local: this process; beam: an Apache Beam pipeline (pip install hsr-keras[beam]) writing the same .zarr "
        "store, resumable alike, on the workers of --beam-runner",
    )
    args, unknown = parser.parse_known_args(argv)
    args.beam_args = beam_runner.beam_args(args, unknown, parser)
    return args


def main(argv=None):
    return run_command(_run, list(sys.argv[1:] if argv is None else argv))


def _run(argv):
    args = parse_args(argv)
    set_quiet(args.quiet)
    command = "python -m hsr_keras.predict " + shlex.join(argv)
    from hsr_keras.export import fetch_model
    from hsr_keras.serving.prediction import PredictError, predict
    from hsr_keras.serving.saved_model import use_tensorflow_backend

    use_tensorflow_backend()
    from hsr_keras.serving import zarr_store

    if args.beam_args:  # before any input is read
        try:
            import apache_beam  # noqa: F401
        except ModuleNotFoundError:
            raise PredictError("--runner beam needs Apache Beam: pip install hsr-keras[beam]") from None
        beam_runner.check_pipeline_options(args.beam_args)
    out_url = args.out if remote.is_url(args.out) else None
    out = _staging_output(args) if out_url else args.out
    if zarr_store.is_zarr(out):  # before the lock, which would make a missing folder
        zarr_store.check_store(out, args.overwrite)
    else:
        files.check_file(out, args.overwrite)
    inputs = [str(remote.fetch_input(spec)) if remote.is_url(spec) else spec for spec in args.inputs]
    model, manifest = fetch_model(args.model, args.manifest)
    with files.file_lock(out, command=command):  # a second predict into the same file is refused at once
        predict(
            inputs,
            model,
            out,
            manifest,
            args.variable,
            args.levels,
            args.tile,
            args.overlap,
            args.batch_size,
            args.all_times,
            args.clip_negative,
            args.overwrite,
            command,
            verbose=not args.quiet,
            members=args.members,
            seed=args.seed,
            beam_args=args.beam_args,
            static_file=args.static_file,
        )
        if out_url:
            _publish_output(out, out_url)
    if not args.quiet:
        print(f"wrote {args.out}")
    return 0


def _staging_output(args):
    """--out URL: where this machine writes it first (in the cache; a killed Zarr predict resumes there).

    Refused in one line: a URL that holds something (without --overwrite), and a remote Beam
    runner, whose workers cannot write this machine's staging folder.
    """
    from hsr_keras.serving.prediction import PredictError

    runner = next((arg.split("=", 1)[1] for arg in args.beam_args if arg.startswith("--runner=")), "DirectRunner")
    if runner != "DirectRunner":
        raise PredictError(
            f"--out {args.out} with --beam-runner {runner}: a bucket output is staged on this machine, which the "
            "workers cannot write; use DirectRunner, or --out a folder every worker mounts"
        )
    fs, path = remote.filesystem(args.out)
    if fs.exists(path) and not args.overwrite:
        raise files.OutputError(f"{args.out} exists: pass --overwrite to replace it")
    folder = remote.staging_folder("predictions", args.out)
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / args.out.rstrip("/").rsplit("/", 1)[-1])


def _publish_output(local, url):
    """Upload the finished output: a netCDF file whole, a Zarr store with its root metadata last; then drop the copy."""
    local = Path(local)
    if local.is_dir():
        marker = "zarr.json" if (local / "zarr.json").is_file() else ".zmetadata"
        remote.publish_folder(local, url, marker=marker)
    else:
        remote.publish_file(local, url)
    files.remove(local)


if __name__ == "__main__":
    sys.exit(main())
