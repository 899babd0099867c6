"""Super-resolving ERA5 netCDF files with a trained generator into one CF netCDF file.

`predict` reads coarse relative humidity (`tfrecords_builder.contract.era5.reader`), groups its times into
the model's daily sequences (`select_sequences`), super-resolves each field in blended tiles
(`hsr_keras.serving.tiling`) with an exported SavedModel or a `.keras` generator (its best
estimate, or with `members` N members along a CF `realization` dimension, drawn one at a time
from `seed`), and writes the fine grid with the input's names and attributes (CF-1.8, float32,
zlib), published whole. A model trained on the 2 m target r2m reads 2 m temperature and dewpoint
(`2t`/`t2m`, `2d`/`d2m`), derives r2m as the builder does, and writes `r2m` (CF attributes of
2 metre relative humidity, a scalar `height` coordinate of 2 m) without a level dimension.
Published whole
(`tfrecords_builder.contract.files`: a temporary beside it, renamed when complete). The output
is checked before any work, and temporaries of predicts that were killed are removed. The
command line is `python -m hsr_keras.predict`.
"""

import contextlib
import datetime
import logging
from pathlib import Path

import numpy as np

from hsr_keras.models import model_files
from hsr_keras.models.model_files import SAVED_MODEL
from hsr_keras.serving import extra_inputs, zarr_store
from hsr_keras.serving.model_functions import (
    PredictError,
    field_at,
    load_member_function,
    load_model_function,
    predict_sequence,
)
from hsr_keras.serving.saved_model import model_info
from hsr_keras.serving.tiling import DEFAULT_BATCH, DEFAULT_OVERLAP, DEFAULT_TILE, fine_coords
from tfrecords_builder.contract import files

log = logging.getLogger(__name__)

COMPRESSION_LEVEL = 4
SPACING_TOLERANCE = 1e-3  # relative, as the reader's grid checks
REFERENCE = (
    "Li, Wang, Wang, Han (2024), Super-resolution reconstruction of humidity fields based on "
    "Wasserstein generative adversarial network with gradient penalty"
)


# ----------------------------------------------------------------------------- the model


def resolve_model(model, manifest=None):
    """(kind, path, info) of `--model`: a SavedModel version folder or a generator .keras (see `model_files`).

    The info (the export's asset, or the same facts computed from the data manifest) is read
    without loading the network, so bad input is reported before TensorFlow starts.
    """
    kind, path = model_files.resolve(model)
    if kind == SAVED_MODEL:
        return kind, path, model_files.read_export_info(path)
    return kind, path, model_info(model_files.load_manifest(manifest, path))


# ----------------------------------------------------------------------------- time


def select_sequences(times, steps, interval_hours, step_hours, all_times=False):
    """Group time stamps (sorted seconds since 1970) into model sequences; returns a list of arrays.

    Default: the stamps at `step_hours` (UTC), one sequence per day, split where a step is
    missing. `all_times`: every stamp, in consecutive chunks of `steps`.
    """
    times = np.asarray(times, dtype=np.int64)
    if all_times:
        return [times[k : k + steps] for k in range(0, len(times), steps)]
    on_step = np.isin(times % 86400, np.asarray(step_hours, dtype=np.int64) * 3600)
    sequences, current = [], []
    for t in times[on_step].tolist():
        if current and (
            t // 86400 != current[-1] // 86400 or t - current[-1] != interval_hours * 3600 or len(current) == steps
        ):
            sequences.append(np.array(current, dtype=np.int64))
            current = []
        current.append(t)
    if current:
        sequences.append(np.array(current, dtype=np.int64))
    return sequences


# ----------------------------------------------------------------------------- input files


SURFACE_ATTRS = {
    "r2m": {"standard_name": "relative_humidity", "long_name": "2 metre relative humidity", "units": "%"},
}
"""CF attributes of a single-level target's output (the input holds other variables: 2t and 2d)."""


def describe_input(path, variable, levels=None):
    """Names, orientation, attributes, levels and extent of the first input file (the output mirrors them).

    A single-level target (r2m) has the one level `SURFACE_LEVEL` and no level in the file:
    `surface` is True, `names` has no "level", and the attributes are `SURFACE_ATTRS`'.
    """
    from tfrecords_builder.contract.era5.reader import (
        DIMS,
        RENAMES,
        SURFACE_LEVEL,
        is_surface,
        open_field,
        open_variable,
    )

    surface = is_surface(variable)
    if surface:
        if levels:
            given = ", ".join(f"{float(x):g}" for x in levels)
            raise PredictError(
                f"--level {given}: {variable} is a single-level field (2 m above the surface); give no --level"
            )
        ds, field = open_field(path, variable, path)
        da = next(iter(field.arrays.values()))[0]
    else:
        ds, da = open_variable(path, variable)
    try:
        raw = {}
        for dim in DIMS:
            names = [dim] + [old for old, new in RENAMES.items() if new == dim]
            found = next((name for name in names if name in ds.variables), None)
            if found is not None or not surface:
                raw[dim] = found
        if surface:
            levels, file_levels, level_attrs = [SURFACE_LEVEL], np.zeros(1), {}
            var_attrs = dict(SURFACE_ATTRS.get(variable, {}))
        else:
            file_levels = ds[raw["level"]].values.reshape(-1)
            level_attrs = dict(ds[raw["level"]].attrs)
            var_attrs = {k: v for k, v in da.attrs.items() if k not in ("coordinates", "_FillValue", "missing_value")}
        if levels is None:  # in hPa, whatever the file's units (the reader converts them)
            levels = [float(x) for x in da["level"].values]
        time_encoding = ds[raw["time"]].encoding
        lat = ds[raw["latitude"]].values
        return {
            "surface": surface,
            "names": raw,
            "descending_lat": bool(lat.size > 1 and lat[0] > lat[-1]),
            "lat_bounds": (float(da["latitude"].min()), float(da["latitude"].max())),
            "lon_bounds": (float(da["longitude"].min()), float(da["longitude"].max())),
            "levels": [float(x) for x in levels],
            "level_dtype": file_levels.dtype if np.issubdtype(file_levels.dtype, np.number) else np.dtype("f8"),
            "level_attrs": level_attrs,
            "time_attrs": dict(ds[raw["time"]].attrs),
            "time_units": time_encoding.get("units"),
            "time_calendar": time_encoding.get("calendar"),
            "var_attrs": var_attrs,
            "global_attrs": dict(ds.attrs),
        }
    finally:
        ds.close()


def check_spacing(resolution, info, path):
    """The LR grid spacing must be the model's HR spacing x scale."""
    expected = float(info["grid"]["lr_resolution_deg"])
    hr = float(info["grid"]["hr_resolution_deg"])
    if abs(resolution - expected) > SPACING_TOLERANCE * expected:
        hint = ""
        if abs(resolution - hr) <= SPACING_TOLERANCE * hr:
            hint = f"; this is the model's fine grid: give every {info['scale']}th point"
        raise PredictError(
            f"{path} has grid spacing {resolution:g} deg, but the model takes {expected:g} deg "
            f"({hr:g} deg x scale {info['scale']}){hint}"
        )


def encode_times(seconds, units, calendar):
    """CF numbers, units and calendar for the times, in the input's units when they fit."""
    from xarray.coding.times import encode_cf_datetime

    dates = np.asarray(seconds, dtype="datetime64[s]").astype("datetime64[ns]")
    try:
        num, units, calendar = encode_cf_datetime(dates, units, calendar)
    except Exception:  # units the encoder cannot use: fall back to plain seconds
        num, units, calendar = encode_cf_datetime(dates, "seconds since 1970-01-01", "proleptic_gregorian")
    num = np.asarray(num)
    if np.issubdtype(num.dtype, np.floating) and np.all(num == np.round(num)):
        num = num.astype(np.int64)
    return num, units, calendar


# ----------------------------------------------------------------------------- the command


def predict(
    inputs,
    model,
    out,
    manifest=None,
    variable=None,
    levels=None,
    tile=DEFAULT_TILE,
    overlap=DEFAULT_OVERLAP,
    batch_size=DEFAULT_BATCH,
    all_times=False,
    clip_negative=False,
    overwrite=False,
    command=None,
    verbose=True,
    members=None,
    seed=0,
    beam_args=None,
    static_file=None,
):
    """Super-resolve ERA5 files with a model and write the netCDF `out`; returns a summary dict.

    A model trained with extra inputs gets them (`extra_inputs`): its predictors from the same
    files, the time of each step, its static fields from `static_file`; one it needs and they
    lack is a `PredictError` naming it, before anything is written.

    Without `members` the output is the model's best estimate (its serving signature). With
    `members` N >= 1, N members of the generator's noise along a CF `realization` dimension
    (first), drawn one at a time (memory does not grow with N) from `seed`: the same seed gives
    the same bytes. A model without noise is refused (`PredictError` naming --members) before
    anything is written. With `beam_args` (Beam's argv, e.g. `["--runner=DirectRunner"]`) a Zarr
    `out` is predicted on that Beam runner (`beam_prediction`), into the same store.
    """
    from tfrecords_builder.contract.era5.reader import Era5Source, expand_inputs

    if members is not None and (isinstance(members, bool) or not isinstance(members, int) or members < 1):
        raise PredictError(f"--members must be an integer >= 1. Received: {members}")
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise PredictError(f"--seed must be an integer in 0 .. 2**32 - 1. Received: {seed}")
    if tile < 2:
        raise PredictError(f"--tile must be at least 2 LR points. Received: {tile}")
    if not 0 <= overlap < tile:
        raise PredictError(f"--overlap must be >= 0 and smaller than --tile ({tile}). Received: {overlap}")
    if batch_size < 1:
        raise PredictError(f"--batch-size must be at least 1. Received: {batch_size}")
    zarr_out = zarr_store.is_zarr(out)
    if beam_args and not zarr_out:
        raise PredictError(f"--runner beam writes a Zarr store: give an --out ending in .zarr. Received: {out}")
    out = zarr_store.check_store(out, overwrite) if zarr_out else files.check_file(out, overwrite)
    paths = expand_inputs(inputs)
    if out.resolve() in paths:
        raise PredictError(f"--out {out} is one of the inputs")
    kind, model_path, info = resolve_model(model, manifest)
    if members is not None and kind == SAVED_MODEL and not info.get("sample_signature"):
        raise PredictError(
            f"--members {members} needs a model with noise: the export {model_path} has no sample signature "
            "(a generator without noise, or exported before hsr-keras had one: export it again)"
        )
    wanted = extra_inputs.needed(info)
    extra_inputs.check_static_file(wanted, static_file, model_path, PredictError)
    variable = variable or info["variable"]
    meta = describe_input(paths[0], variable, levels)
    if zarr_out:  # refuse to resume into a store of another run before any work
        options = [variable, meta["levels"], tile, overlap, batch_size, all_times, clip_negative, members, seed]
        options += [str(Path(static_file).resolve())] if static_file is not None else []
        print_ = zarr_store.fingerprint(paths, model_path, options)
        done = zarr_store.resume_state(out, print_, overwrite)
        if done == zarr_store.COMPLETE:
            log.info("%s is complete: nothing left to predict (pass --overwrite to predict it again)", out)
            return {"out": str(out), "model": str(model_path), "files": len(paths), "written_sequences": 0}
    scale = int(info["scale"])
    time_info = info["time"]
    steps = int(time_info["steps_per_day"])

    with contextlib.ExitStack() as stack:
        source = stack.enter_context(
            Era5Source(paths, variable, meta["levels"], meta["lat_bounds"], meta["lon_bounds"])
        )
        check_spacing(float(source.resolution), info, paths[0])
        sequences = select_sequences(
            source.times, steps, int(time_info["interval_hours"]), time_info["step_hours"], all_times
        )
        if not sequences:
            hours = ", ".join(f"{h:02d}" for h in time_info["step_hours"])
            raise PredictError(
                f"no time in the input falls on the model's step hours ({hours} UTC): pass --all-times to use every time"
            )
        offset = float(info["grid"].get("hr_offset_cells", 0.0))
        lat = fine_coords(source.lat, scale, offset)
        lon = fine_coords(source.lon, scale, offset)
        extras_of = _extras_reader(stack, wanted, paths, meta, source, static_file, lat, lon)
        if beam_args and extras_of is not None:
            raise PredictError(
                "--runner beam predicts with models that take the LR field alone: this one takes extra inputs "
                "(predictors, times or static fields); predict it without --runner beam"
            )
        keep_rows = np.flatnonzero((lat >= -90.0 - 1e-6) & (lat <= 90.0 + 1e-6))
        wrap = len(source.lon) > 1 and abs(len(source.lon) * source.resolution - 360.0) < SPACING_TOLERANCE * 360.0
        model_clips = bool(info.get("clip_negative"))
        clip = clip_negative and not model_clips
        if members is None:
            run = load_model_function(kind, model_path, clip)
            info = {**info, "best_estimate": run.best_estimate or info.get("best_estimate")}
        else:
            run = load_member_function(kind, model_path, clip)
            if run is None:
                raise PredictError(
                    f"--members {members} needs a model with noise: the generator {model_path} has none "
                    "(no noise layer: it gives one field per input)"
                )
        info = {**info, "clip_negative": model_clips or clip_negative}
        times = np.concatenate(sequences)
        summary = {
            "out": str(out),
            "model": str(model_path),
            "files": len(paths),
            "times": int(times.size),
            "times_in_files": int(source.times.size),
            "sequences": len(sequences),
            "sequence_lengths": sorted({len(s) for s in sequences}),
            "levels": meta["levels"],
            "lr_shape": [len(source.lat), len(source.lon)],
            "hr_shape": [int(keep_rows.size), int(lon.size)],
            "dropped_rows_beyond_poles": int(lat.size - keep_rows.size),
            "members": members,
            "seed": seed if members is not None else None,
        }
        _log_plan(summary, info, all_times)
        untrained = [x for x in meta["levels"] if not any(abs(x - float(t)) < 1e-6 for t in info.get("levels", []))]
        if untrained:
            trained = ", ".join(f"{float(x):g}" for x in info.get("levels", []))
            also = ", ".join(f"{x:g}" for x in untrained)
            log.info("note: the model was trained on %s hPa; also predicting %s hPa", trained, also)
        files.remove_stale(out.parent)
        fields = (source, sequences, meta, scale, keep_rows, tile, overlap, batch_size, wrap, verbose, extras_of)
        if zarr_out:
            header = (meta, info, variable, times, lat[keep_rows], lon, model_path, command, members)
            if beam_args:
                grid = (scale, keep_rows, tile, overlap, batch_size, wrap)
                job = dict(paths=paths, variable=variable, meta=meta, grid=grid, kind=kind, model_path=model_path)
                job.update(clip=clip, members=members, seed=seed)
                summary["written_sequences"] = _predict_beam(beam_args, out, header, fields, job, print_, done, steps)
            else:
                summary["written_sequences"] = _predict_zarr(
                    out, header, fields, run, print_, done, steps, members, seed
                )
            return summary
        # float32, before compression
        needed = 4 * times.size * len(meta["levels"]) * keep_rows.size * lon.size * (members or 1)
        with files.publishing(out) as tmp, files.reporting_full_disk(out.parent, needed, "needed at most"):
            opened = _open_output(tmp, meta, info, variable, times, lat[keep_rows], lon, model_path, command, members)
            with opened as var:
                _fill_all(var, run, fields, members, seed)
    return summary


def _extras_reader(stack, wanted, paths, meta, source, static_file, lat, lon):
    """`sequence -> {name: array}` of the model's extra inputs (`predict_field`'s `extras`), or None without any.

    The predictor files are opened on `stack`; the static fields are read once, here.
    """
    if not wanted:
        return None
    predictors = None
    if wanted.get("predictors"):
        bounds = (meta["lat_bounds"], meta["lon_bounds"])
        grid = (source.lat, source.lon)
        predictors = stack.enter_context(
            extra_inputs.predictor_sources(wanted["predictors"], paths, *bounds, grid, PredictError)
        )
    static = None
    if wanted.get("static"):
        static = extra_inputs.read_static(static_file, wanted["static"], lat, lon, PredictError)

    def extras_of(sequence):
        extras = {}
        if predictors is not None:
            extras["predictors"] = extra_inputs.read_predictors(predictors, sequence)
        if wanted.get("time"):
            extras["time"] = np.asarray(sequence, dtype=np.int64)
        if static is not None:
            extras["static"] = static
        return extras

    return extras_of


def _fill_all(var, run, fields, members, seed):
    """`_fill` once for the best estimate, or once per member with `members`."""
    if members is None:
        _fill(var, run, *fields)
    else:
        for member in range(members):
            _fill(var, run, *fields, member=member, seed=seed)


def _predict_zarr(out, header, fields, run, print_, done, steps, members, seed):
    """Predict into the Zarr store `out`, skipping the sequences `done` names (None: start afresh).

    Returns the number of regions this run wrote.
    """
    dims, done = _open_store(out, header, print_, done, steps, members)
    writer = zarr_store.SequenceWriter(out, header[2], dims, done)
    try:
        with files.reporting_full_disk(out.parent):
            _fill_all(writer, run, fields, members, seed)
            zarr_store.finish_store(out)
    except KeyboardInterrupt:
        log.warning("%s is incomplete: the same command resumes it", out)
        raise
    return writer.written


def _open_store(out, header, print_, done, steps, members):
    """(dimension names, finished chunks) of the store `out`: started afresh when `done` is None, else resumed."""
    meta = header[0]
    if done is None:

        def write_header(path):
            with _open_output(path, *header):
                pass

        chunks = (steps,) + (() if meta.get("surface") else (1,)) + (header[4].size, header[5].size)
        if members is not None:
            chunks = (1, *chunks)
        return zarr_store.start_store(out, write_header, header[2], chunks, print_), set()
    import zarr

    log.info("resuming %s: %d sequences already written", out, len(done))
    return tuple(zarr.open_array(str(out), path=header[2], mode="r").metadata.dimension_names), done


def _predict_beam(beam_args, out, header, fields, job, print_, done, steps):
    """`_predict_zarr` on a Beam runner (`beam_prediction`); returns the number of regions written."""
    from hsr_keras.serving import beam_prediction

    dims, done = _open_store(out, header, print_, done, steps, job["members"])
    job = beam_prediction.Job(out=str(out), dims=dims, **job)
    try:
        with files.reporting_full_disk(out.parent):
            return beam_prediction.predict_with_beam(beam_args, job, fields[1], done)
    except KeyboardInterrupt:
        log.warning("%s is incomplete: the same command resumes it", out)
        raise


def _log_plan(summary, info, all_times):
    hours = ",".join(f"{h:02d}" for h in info["time"]["step_hours"])
    how = "every time (--all-times)" if all_times else f"the model's step hours {hours} UTC"
    log.info(
        f"{summary['times']} of {summary['times_in_files']} times ({how}) in {summary['sequences']} sequences of "
        f"{'/'.join(map(str, summary['sequence_lengths']))} steps, {_levels_words(summary['levels'])}; "
        f"LR {summary['lr_shape'][0]}x{summary['lr_shape'][1]} -> HR {summary['hr_shape'][0]}x{summary['hr_shape'][1]}"
    )
    if summary["dropped_rows_beyond_poles"]:
        log.info("dropped %d fine rows beyond the poles", summary["dropped_rows_beyond_poles"])


def _levels_words(levels):
    from tfrecords_builder.contract.era5.reader import SURFACE_LEVEL

    if list(levels) == [SURFACE_LEVEL]:
        return "2 m above the surface"
    return f"levels {', '.join(f'{x:g}' for x in levels)} hPa"


def _fill(
    var,
    run,
    source,
    sequences,
    meta,
    scale,
    keep_rows,
    tile,
    overlap,
    batch_size,
    wrap,
    verbose,
    extras_of=None,
    member=None,
    seed=0,
):
    """Predict every field into `var`; with `member`, that realization, `run` taking `(lr, seed)` (`member_stream`).

    `extras_of(sequence)`: the model's extra inputs of a sequence (`_extras_reader`), or None.

    When `var` is a Zarr store's `SequenceWriter`, sequences it has finished are skipped and
    each other one is written as a region once its levels are predicted.
    """
    from tqdm import tqdm

    writer = var if isinstance(var, zarr_store.SequenceWriter) else None
    grid = (scale, keep_rows, tile, overlap, batch_size, wrap)
    start = 0
    desc = "predicting" if member is None else f"member {member + 1}"
    with tqdm(total=len(sequences) * len(meta["levels"]), unit="field", desc=desc, disable=not verbose, delay=1) as bar:
        for index, sequence in enumerate(sequences):
            if writer is not None and writer.skip(member, index):
                start += len(sequence)
                bar.update(len(meta["levels"]))
                continue
            lr = source.read(sequence)  # [levels, T, h, w], latitude ascending
            extras = extras_of(sequence) if extras_of is not None else None
            for k, hr in enumerate(predict_sequence(run, lr, sequence, meta, grid, index, member, seed, extras)):
                var[field_at(meta, start, len(sequence), k, member)] = hr
                bar.update()
            if writer is not None:
                writer.finish(member, index, start, len(sequence))
            start += len(sequence)


@contextlib.contextmanager
def _open_output(path, meta, info, variable, times, lat, lon, model_path, command, members=None):
    """Create the CF netCDF with its coordinates and an empty variable; yields the variable.

    With `members`, the variable has a leading `realization` dimension (CF standard name
    "realization") numbered 0 .. members - 1.
    """
    import netCDF4

    names = meta["names"]
    if meta["descending_lat"]:
        lat = lat[::-1]
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        if members is not None:
            nc.createDimension("realization", members)
            rvar = nc.createVariable("realization", "i4", ("realization",))
            rvar.setncatts(
                {
                    "standard_name": "realization",
                    "long_name": "ensemble member drawn from the generator's noise",
                    "units": "1",
                }
            )
            rvar[:] = np.arange(members, dtype=np.int32)
        surface = meta.get("surface", False)
        for dim, size in (
            ("time", len(times)),
            ("level", None if surface else len(meta["levels"])),
            ("latitude", len(lat)),
            ("longitude", len(lon)),
        ):
            if size is not None:
                nc.createDimension(names[dim], size)
        num, units, calendar = encode_times(times, meta["time_units"], meta["time_calendar"])
        tvar = nc.createVariable(names["time"], num.dtype, (names["time"],))
        tvar.setncatts(
            {
                **_plain(meta["time_attrs"]),
                "standard_name": "time",
                "long_name": "time",
                "units": units,
                "calendar": calendar,
                "axis": "T",
            }
        )
        tvar[:] = num
        if surface:  # a CF scalar coordinate: the field lies 2 m above the surface
            hvar = nc.createVariable("height", "f8", ())
            hvar.setncatts(
                {"standard_name": "height", "long_name": "height", "units": "m", "positive": "up", "axis": "Z"}
            )
            hvar.assignValue(2.0)
        else:
            lvar = nc.createVariable(names["level"], meta["level_dtype"], (names["level"],))
            lvar.setncatts(
                {
                    "long_name": "pressure level",
                    **_plain(meta["level_attrs"]),
                    "standard_name": "air_pressure",
                    "units": "hPa",
                    "positive": "down",
                    "axis": "Z",
                }
            )
            lvar[:] = np.asarray(meta["levels"]).astype(meta["level_dtype"])
        for dim, values, units, axis in (
            ("latitude", lat, "degrees_north", "Y"),
            ("longitude", lon, "degrees_east", "X"),
        ):
            cvar = nc.createVariable(names[dim], "f8", (names[dim],))
            cvar.setncatts({"standard_name": dim, "long_name": dim, "units": units, "axis": axis})
            cvar[:] = values
        dims = tuple(names[d] for d in (("time",) if surface else ("time", "level")) + ("latitude", "longitude"))
        chunks = (1,) * (len(dims) - 2) + (len(lat), len(lon))
        if members is not None:
            dims, chunks = ("realization", *dims), (1, *chunks)
        var = nc.createVariable(
            variable,
            "f4",
            dims,
            zlib=True,
            complevel=COMPRESSION_LEVEL,
            shuffle=True,
            chunksizes=chunks,
        )
        attrs = {**_plain(meta["var_attrs"]), "units": "%"}  # what the model gives, whatever the input's units
        if surface:
            attrs["coordinates"] = "height"
        attrs["comment"] = (
            f"Super-resolved {info['scale']}x from a {info['grid']['lr_resolution_deg']:g} deg grid to "
            f"{info['grid']['hr_resolution_deg']:g} deg by the hsr-keras generator {model_path}; "
            + ("values below 0 clipped to 0" if info.get("clip_negative") else "not clipped")
            + " (values above 100 % are real: ERA5 takes relative humidity over ice in cold air)"
            + (
                f"; {members} members of the generator's noise along realization"
                if members is not None
                else f"; the model's best estimate: {info.get('best_estimate') or 'its inference output'}"
            )
        )
        var.setncatts(attrs)
        nc.setncatts(_global_attrs(meta["global_attrs"], info, model_path, command))
        yield var


def _plain(attrs):
    """Attributes netCDF4 can write (no None, no objects)."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, (str, int, float, np.number, np.ndarray, list, tuple)) and not key.startswith("_"):
            out[key] = value
    return out


def _global_attrs(source_attrs, info, model_path, command):
    version = info.get("code_version", {}) or {}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    line = f"{now}: {command or 'hsr_keras.predict'}"
    history = str(source_attrs.get("history", "")).rstrip()
    attrs = {k: v for k, v in _plain(source_attrs).items() if k not in ("Conventions", "history", "source", "title")}
    ours = f"hsr-keras {version.get('version', '')} super-resolution ({model_path})".replace("  ", " ")
    attrs.update(
        {
            "Conventions": "CF-1.8",
            "title": f"{info['variable']} super-resolved {info['scale']}x with a WGAN-GP generator",
            "source": f"{ours}; input: {source_attrs['source']}" if source_attrs.get("source") else ours,
            "history": f"{history}\n{line}" if history else line,
            "references": REFERENCE,
            "hsr_scale": int(info["scale"]),
            "hsr_degradation": str(info.get("degradation", "")),
            "hsr_training_levels": "surface (2 m)"
            if info.get("variable") in SURFACE_ATTRS
            else ", ".join(f"{x:g}" for x in info.get("levels", [])),
        }
    )
    return attrs
