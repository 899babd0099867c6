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
"""

import argparse
import contextlib
import datetime
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from hsr_keras.export import (
    ASSET_NAME,
    FORMAT,
    INPUT_NAME,
    OUTPUT_NAME,
    SIGNATURE,
    ExportError,
    existing_versions,
    load_keras_generator,
    load_manifest,
    model_info,
    resolve_generator,
    serving_function,
    use_tensorflow_backend,
)

DEFAULT_TILE = 16
DEFAULT_OVERLAP = 4
DEFAULT_BATCH = 8
COMPRESSION_LEVEL = 4
SPACING_TOLERANCE = 1e-3  # relative, as the reader's grid checks
REFERENCE = (
    "Li, Wang, Wang, Han (2024), Super-resolution reconstruction of humidity fields based on "
    "Wasserstein generative adversarial network with gradient penalty"
)


# ----------------------------------------------------------------------------- the model


def resolve_model(model, manifest=None):
    """(kind, path, info): a SavedModel version folder ("savedmodel") or a generator .keras ("keras").

    The info (the export's asset, or the same facts computed from the data manifest) is read
    without loading the network, so bad input is reported before TensorFlow starts.
    """
    path = Path(model)
    if path.is_dir() and not (path / "saved_model.pb").is_file():
        versions = existing_versions(path)
        versions = [v for v in versions if (path / str(v) / "saved_model.pb").is_file()]
        if versions:  # a model base folder as TF Serving takes it: use the highest version
            path = path / str(versions[-1])
    if path.is_dir() and (path / "saved_model.pb").is_file():
        asset = path / "assets" / ASSET_NAME
        try:
            info = json.loads(asset.read_text())
        except (OSError, ValueError) as err:
            raise ExportError(
                f"{path} is a SavedModel without a readable assets/{ASSET_NAME}: export it with "
                f"`python -m hsr_keras.export` ({err})"
            ) from err
        if info.get("format") != FORMAT:
            raise ExportError(f"{asset} is not an hsr-keras export manifest")
        return "savedmodel", path, info
    if path.is_dir() and not (path / "generator.keras").is_file():
        raise ExportError(f"{path} holds neither a SavedModel (saved_model.pb), versions of one, nor generator.keras")
    generator = resolve_generator(path)
    return "keras", generator, model_info(load_manifest(manifest, generator))


def load_model_function(kind, path, clip_negative=False):
    """numpy lr [B, T, h, w, 1] float32 -> numpy hr [B, T, s*h, s*w, 1] float32, %RH in and out."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if kind == "savedmodel":
        try:
            signature = tf.saved_model.load(str(path)).signatures[SIGNATURE]
        except (KeyError, OSError, tf.errors.OpError) as err:
            raise ExportError(f"cannot load the SavedModel {path}: {err}".splitlines()[0]) from err

        def run(lr):
            return signature(**{INPUT_NAME: tf.constant(lr)})[OUTPUT_NAME].numpy()

    else:
        serve = serving_function(load_keras_generator(path)[0])

        def run(lr):
            return serve(tf.constant(lr))[OUTPUT_NAME].numpy()

    if not clip_negative:
        return run
    return lambda lr: np.maximum(run(lr), 0.0)


# ----------------------------------------------------------------------------- grid and tiles


def fine_coords(lr_coords, scale, offset_cells=0.0):
    """Fine-grid coordinates of an ascending regular LR axis: scale*n points at spacing/scale.

    Fine point `scale*k + j` lies at `lr_coords[k] + (j + offset_cells) * spacing / scale`.
    """
    lr_coords = np.asarray(lr_coords, dtype=np.float64)
    spacing = float(np.median(np.diff(lr_coords))) if lr_coords.size > 1 else 0.0
    fine = spacing / scale
    coords = lr_coords[0] + (np.arange(scale * lr_coords.size) + offset_cells) * fine
    return np.round(coords, 6)


def window_starts(n, tile, overlap):
    """Start indices of windows of `min(tile, n)` points covering `n` points, overlapping by >= `overlap`."""
    if n <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


def blend_margin(overlap):
    """LR points discarded at a tile's inner edges: about a quarter of the overlap (1 for 2 to 5)."""
    return (overlap + 2) // 4


def ramp(length, scale, overlap, left, right):
    """A tile's weights along one axis (HR cells), for inner edges on the `left` and/or `right`.

    At an inner edge the outer `blend_margin(overlap)` LR points get weight 0 (they see the
    tile's edge: zero padding, and an interpolating skip clamped beyond the last LR point),
    then the weight rises linearly to 1 across the rest of the overlap. Two neighbours that
    overlap by `overlap` LR points get weights summing to one everywhere in the overlap.
    """
    weights = np.ones(length)
    if overlap <= 0:
        return weights
    margin = blend_margin(overlap) * scale
    width = (overlap * scale) - 2 * margin
    distance = np.arange(length, dtype=np.float64)  # HR cells from the left edge
    if width > 0:
        up = np.clip((distance - margin + 0.5) / width, 0.0, 1.0)
    else:
        up = (distance >= margin).astype(np.float64)
    if left:
        weights = np.minimum(weights, up)
    if right:
        weights = np.minimum(weights, up[::-1])
    return weights


def predict_field(run, lr, scale, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP, batch_size=DEFAULT_BATCH, wrap=False):
    """Super-resolve one sequence `lr` [T, h, w] (%RH, latitude ascending) in blended tiles.

    Args:
        run: model function, numpy [B, T, h, w, 1] -> [B, T, s*h, s*w, 1].
        lr: float32 [T, h, w].
        scale: the model's factor.
        tile: LR points per tile side.
        overlap: LR points shared by neighbouring tiles: `blend_margin(overlap)` dropped at
            each inner edge, the rest cross-faded linearly.
        batch_size: tiles per model call.
        wrap: the longitude axis is a full circle: pad it periodically by `overlap` points.

    Returns:
        float32 [T, s*h, s*w].
    """
    lr = np.asarray(lr, dtype=np.float32)
    pad = min(overlap, lr.shape[2]) if wrap else 0
    if pad:
        lr = np.concatenate([lr[:, :, -pad:], lr, lr[:, :, :pad]], axis=2)
    steps, h, w = lr.shape
    th, tw = min(tile, h), min(tile, w)
    windows = [(i, j) for i in window_starts(h, tile, overlap) for j in window_starts(w, tile, overlap)]
    total = np.zeros((steps, scale * h, scale * w), np.float64)
    weight = np.zeros((scale * h, scale * w), np.float64)
    for first in range(0, len(windows), batch_size):
        chunk = windows[first : first + batch_size]
        batch = np.stack([lr[:, i : i + th, j : j + tw] for i, j in chunk])[..., None]
        hr = np.asarray(run(batch))
        expected = (len(chunk), steps, scale * th, scale * tw, 1)
        if hr.shape != expected:
            raise ExportError(f"the model returned shape {hr.shape} for input {batch.shape}; expected {expected}")
        for (i, j), tile_hr in zip(chunk, hr[..., 0]):
            wy = ramp(scale * th, scale, overlap, i > 0, i + th < h)
            wx = ramp(scale * tw, scale, overlap, j > 0, j + tw < w)
            window = np.outer(wy, wx)
            rows, cols = slice(scale * i, scale * (i + th)), slice(scale * j, scale * (j + tw))
            total[:, rows, cols] += window * tile_hr
            weight[rows, cols] += window
    if not (weight > 0).all():  # cannot happen for 0 <= overlap < tile: a bug, not bad input
        raise RuntimeError(f"tiles of {tile} with overlap {overlap} leave cells of a {h}x{w} field uncovered")
    out = (total / weight).astype(np.float32)
    if pad:
        out = out[:, :, scale * pad : -scale * pad]
    return out


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


def describe_input(path, variable, levels=None):
    """Names, orientation, attributes, levels and extent of the first input file (the output mirrors them)."""
    from tfrecords_builder.reader import DIMS, RENAMES, open_variable

    ds, da = open_variable(path, variable)
    try:
        raw = {}
        for dim in DIMS:
            names = [dim] + [old for old, new in RENAMES.items() if new == dim]
            raw[dim] = next(name for name in names if name in ds.variables)
        file_levels = ds[raw["level"]].values.reshape(-1)
        if levels is None:
            levels = [float(x) for x in file_levels]
        time_encoding = ds[raw["time"]].encoding
        lat = ds[raw["latitude"]].values
        return {
            "names": raw,
            "descending_lat": bool(lat.size > 1 and lat[0] > lat[-1]),
            "lat_bounds": (float(da["latitude"].min()), float(da["latitude"].max())),
            "lon_bounds": (float(da["longitude"].min()), float(da["longitude"].max())),
            "levels": [float(x) for x in levels],
            "level_dtype": file_levels.dtype if np.issubdtype(file_levels.dtype, np.number) else np.dtype("f8"),
            "level_attrs": dict(ds[raw["level"]].attrs),
            "time_attrs": dict(ds[raw["time"]].attrs),
            "time_units": time_encoding.get("units"),
            "time_calendar": time_encoding.get("calendar"),
            "var_attrs": {k: v for k, v in da.attrs.items() if k not in ("coordinates", "_FillValue", "missing_value")},
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
        raise ExportError(
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
):
    """Super-resolve ERA5 files with a model and write the netCDF `out`; returns a summary dict."""
    from tfrecords_builder.reader import Era5Source, expand_inputs

    if tile < 2:
        raise ExportError(f"--tile must be at least 2 LR points. Received: {tile}")
    if not 0 <= overlap < tile:
        raise ExportError(f"--overlap must be >= 0 and smaller than --tile ({tile}). Received: {overlap}")
    if batch_size < 1:
        raise ExportError(f"--batch-size must be at least 1. Received: {batch_size}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists: pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise ExportError(f"the folder of {out} does not exist")
    files = expand_inputs(inputs)
    if out.resolve() in files:
        raise ExportError(f"--out {out} is one of the inputs")
    kind, model_path, info = resolve_model(model, manifest)
    variable = variable or info["variable"]
    meta = describe_input(files[0], variable, levels)
    scale = int(info["scale"])
    time_info = info["time"]
    steps = int(time_info["steps_per_day"])

    with Era5Source(files, variable, meta["levels"], meta["lat_bounds"], meta["lon_bounds"]) as source:
        check_spacing(float(source.resolution), info, files[0])
        sequences = select_sequences(
            source.times, steps, int(time_info["interval_hours"]), time_info["step_hours"], all_times
        )
        if not sequences:
            hours = ", ".join(f"{h:02d}" for h in time_info["step_hours"])
            raise ExportError(
                f"no time in the input falls on the model's step hours ({hours} UTC): pass --all-times to use every time"
            )
        offset = float(info["grid"].get("hr_offset_cells", 0.0))
        lat = fine_coords(source.lat, scale, offset)
        lon = fine_coords(source.lon, scale, offset)
        keep_rows = np.flatnonzero((lat >= -90.0 - 1e-6) & (lat <= 90.0 + 1e-6))
        wrap = len(source.lon) > 1 and abs(len(source.lon) * source.resolution - 360.0) < SPACING_TOLERANCE * 360.0
        model_clips = bool(info.get("clip_negative"))
        run = load_model_function(kind, model_path, clip_negative and not model_clips)
        info = {**info, "clip_negative": model_clips or clip_negative}
        times = np.concatenate(sequences)
        summary = {
            "out": str(out),
            "model": str(model_path),
            "files": len(files),
            "times": int(times.size),
            "times_in_files": int(source.times.size),
            "sequences": len(sequences),
            "sequence_lengths": sorted({len(s) for s in sequences}),
            "levels": meta["levels"],
            "lr_shape": [len(source.lat), len(source.lon)],
            "hr_shape": [int(keep_rows.size), int(lon.size)],
            "dropped_rows_beyond_poles": int(lat.size - keep_rows.size),
        }
        if verbose:
            _print_plan(summary, info, all_times)
            untrained = [x for x in meta["levels"] if not any(abs(x - float(t)) < 1e-6 for t in info.get("levels", []))]
            if untrained:
                trained = ", ".join(f"{float(x):g}" for x in info.get("levels", []))
                print(
                    f"note: the model was trained on {trained} hPa; also predicting {', '.join(f'{x:g}' for x in untrained)} hPa"
                )
        tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
        try:
            with _open_output(tmp, meta, info, variable, times, lat[keep_rows], lon, model_path, command) as var:
                _fill(var, run, source, sequences, meta, scale, keep_rows, tile, overlap, batch_size, wrap, verbose)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    if verbose:
        print(f"wrote {out}")
    return summary


def _print_plan(summary, info, all_times):
    hours = ",".join(f"{h:02d}" for h in info["time"]["step_hours"])
    how = "every time (--all-times)" if all_times else f"the model's step hours {hours} UTC"
    print(
        f"{summary['times']} of {summary['times_in_files']} times ({how}) in {summary['sequences']} sequences of "
        f"{'/'.join(map(str, summary['sequence_lengths']))} steps, levels {', '.join(f'{x:g}' for x in summary['levels'])} hPa; "
        f"LR {summary['lr_shape'][0]}x{summary['lr_shape'][1]} -> HR {summary['hr_shape'][0]}x{summary['hr_shape'][1]}"
    )
    if summary["dropped_rows_beyond_poles"]:
        print(f"dropped {summary['dropped_rows_beyond_poles']} fine rows beyond the poles")


def _fill(var, run, source, sequences, meta, scale, keep_rows, tile, overlap, batch_size, wrap, verbose):
    from tqdm import tqdm

    flip = meta["descending_lat"]
    start = 0
    with tqdm(
        total=len(sequences) * len(meta["levels"]), unit="field", desc="predicting", disable=not verbose, delay=1
    ) as bar:
        for sequence in sequences:
            lr = source.read(sequence)  # [levels, T, h, w], latitude ascending
            for k, level in enumerate(meta["levels"]):
                if not np.isfinite(lr[k]).all():
                    bad = np.datetime64(int(sequence[np.flatnonzero(~np.isfinite(lr[k]).all(axis=(1, 2)))[0]]), "s")
                    raise ExportError(
                        f"the input has missing or non-finite values at {bad}, {level:g} hPa: fill or drop them"
                    )
                hr = predict_field(run, lr[k], scale, tile, overlap, batch_size, wrap)[:, keep_rows]
                if not np.isfinite(hr).all():
                    raise ExportError(
                        f"the model produced non-finite values at {np.datetime64(int(sequence[0]), 's')}, {level:g} hPa"
                    )
                var[start : start + len(sequence), k] = hr[:, ::-1] if flip else hr
                bar.update()
            start += len(sequence)


@contextlib.contextmanager
def _open_output(path, meta, info, variable, times, lat, lon, model_path, command):
    """Create the CF netCDF with its coordinates and an empty variable; yields the variable."""
    import netCDF4

    names = meta["names"]
    if meta["descending_lat"]:
        lat = lat[::-1]
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        for dim, size in (
            ("time", len(times)),
            ("level", len(meta["levels"])),
            ("latitude", len(lat)),
            ("longitude", len(lon)),
        ):
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
        lvar = nc.createVariable(names["level"], meta["level_dtype"], (names["level"],))
        lvar.setncatts(
            {
                "long_name": "pressure level",
                **_plain(meta["level_attrs"]),
                "standard_name": "air_pressure",
                "units": meta["level_attrs"].get("units", "hPa"),
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
        dims = tuple(names[d] for d in ("time", "level", "latitude", "longitude"))
        var = nc.createVariable(
            variable,
            "f4",
            dims,
            zlib=True,
            complevel=COMPRESSION_LEVEL,
            shuffle=True,
            chunksizes=(1, 1, len(lat), len(lon)),
        )
        attrs = {**_plain(meta["var_attrs"]), "units": meta["var_attrs"].get("units", "%")}
        attrs["comment"] = (
            f"Super-resolved {info['scale']}x from a {info['grid']['lr_resolution_deg']:g} deg grid to "
            f"{info['grid']['hr_resolution_deg']:g} deg by the hsr-keras generator {model_path}; "
            + ("values below 0 clipped to 0" if info.get("clip_negative") else "not clipped")
            + " (values above 100 % are real: ERA5 takes relative humidity over ice in cold air)"
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
            "hsr_training_levels": ", ".join(f"{x:g}" for x in info.get("levels", [])),
        }
    )
    return attrs


# ----------------------------------------------------------------------------- command line


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hsr_keras.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", help="LR ERA5 netCDF files, folders of them or glob patterns")
    parser.add_argument(
        "--model",
        required=True,
        help="SavedModel version folder (saved_models/hsr/1), a model base folder (its highest version), "
        "a generator .keras or a fit output folder",
    )
    parser.add_argument(
        "--manifest",
        help="with a .keras model: the training data's build folder or manifest.json (default: looked up beside "
        "the model); ignored for a SavedModel, which carries its own",
    )
    parser.add_argument("--out", required=True, help="output netCDF file")
    parser.add_argument("--variable", help="variable to read and write (default: the model's, 'r')")
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
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists (default: refuse)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser.parse_args(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = "python -m hsr_keras.predict " + shlex.join(argv)
    try:
        use_tensorflow_backend()
        predict(
            args.inputs,
            args.model,
            args.out,
            args.manifest,
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
        )
    except (ValueError, OSError) as err:  # ExportError, BuildError, ManifestError, file system errors
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
