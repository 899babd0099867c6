"""Cutting ERA5 into samples: the one home of the rules that a build and the in-memory path share.

`build.build` writes the samples to TFRecords, `tfrecords_builder.in_memory` keeps them as numpy
arrays; both take these steps, so their samples and manifests cannot drift apart:

1. `check_config(config)`: the step hours, split dates and levels a `build.BuildConfig` asks
   for, as a `Cut`, or a `BuildError` for a bad request.
2. `open_source(inputs, cut)`: a `reader.Era5Source` over ERA5 files, Zarr stores or an
   in-memory `xarray.Dataset`; `describe_region(source, cut)`: the domain's name and
   sample shapes; `patches_of(source, cut)`: the `patches.PatchGrid` of its samples;
   `base_manifest(...)`: the manifest keys that describe the data.
3. `plan_splits(source, cut)`: each split's complete days and the days skipped for a
   missing step; `check_first_day(source, cut, plans)`: the first training day must be
   plausible relative humidity, so wrong units stop a build before any shard is written.
4. `cut_day(source, day, cut)`: one `Sample` per level and patch, LR degraded from HR, or
   the reason it is skipped (a NaN); a `Tally` counts what was kept and skipped and, for
   the train split, the statistics and climatology (per patch position).
5. `split_record(...)` and `training_facts(...)`: the manifest's split records, statistics
   and climatology; a split with too many values outside -1..130 %RH, or a constant train
   split, is refused there, before anything is published (`--allow-implausible` warns instead).
"""

import importlib.metadata
import logging
import os
from typing import NamedTuple

import numpy as np
import xarray as xr

from tfrecords_builder.contract.era5.humidity import IMPLAUSIBLE_SHARE, PLAUSIBLE_PERCENT, implausibility
from tfrecords_builder.contract.era5.reader import SURFACE_LEVEL, Era5Source, expand_inputs, is_surface, level_words
from tfrecords_builder.contract.errors import BuildError
from tfrecords_builder.contract.patches import patch_grid
from tfrecords_builder.contract.schema import INPUTS_SCHEMA_VERSION, SCALES, SCHEMA_VERSION, SPLITS
from tfrecords_builder.extras import (
    ExtraSource,
    check_predictor_times,
    check_static,
    open_predictors,
    parse_predictors,
    predictor_records,
    static_fields,
    static_file,
)
from tfrecords_builder.sequences import (
    DEGRADATIONS,
    day_times,
    degrade,
    lr_coords,
    nan_reason,
    plan_days,
    step_hours,
)
from tfrecords_builder.stats import Climatology, RunningStats

log = logging.getLogger(__name__)


class Cut(NamedTuple):
    """A checked request: the config, step hours of a day, {split: (first day, last day)}, levels (hPa, sorted),
    the LR predictors (`extras.Predictor`s) and the `--static` choices."""

    config: object
    hours: list
    splits: dict
    levels: list
    predictors: tuple = ()
    static: tuple = ()

    @property
    def extras(self):
        """Whether the build has inputs beyond the target (schema 3)."""
        return bool(self.predictors or self.static or self.config.time_encoding)


class Region(NamedTuple):
    """The domain's name (stored in each record) and the shapes [T, H, W] of a sample's (patch's) HR and LR fields."""

    name: str
    hr_shape: list
    lr_shape: list


class Sample(NamedTuple):
    """One patch-day at one level: HR and LR in %RH, or the reason it is skipped (then `lr` is None)."""

    level: float
    hr: np.ndarray  # float32 [T, H, W]
    lr: np.ndarray | None  # float32 [T, h, w]
    reason: str | None  # e.g. "NaN at 06:00"
    patch: int = 0  # index in the build's `PatchGrid`
    predictors: np.ndarray | None = None  # float32 [T, h, w, P] (a build with --predictors)


def parse_splits(config):
    """{split: (first day, last day)} of the splits not omitted; an error for bad or overlapping ranges."""
    splits = {}
    for name in SPLITS:
        text = getattr(config, name)
        if text is None or text.strip().lower() in ("", "none"):
            continue
        try:
            start, end = (np.datetime64(part.strip(), "D") for part in text.split(":"))
        except ValueError:
            raise BuildError(f"--{name} {text!r} is not START:END with dates like 2019-01-01:2020-12-31") from None
        if end < start:
            raise BuildError(f"--{name} {text!r} ends before it starts")
        splits[name] = (start, end)
    if "train" not in splits:
        raise BuildError("the train split is required: statistics and climatology come from it")
    ordered = sorted(splits.items(), key=lambda item: item[1][0])
    for (a, (_, a_end)), (b, (b_start, _)) in zip(ordered, ordered[1:]):
        if b_start <= a_end:
            raise BuildError(f"splits {a} ({getattr(config, a)}) and {b} ({getattr(config, b)}) overlap")
    return splits


def check_config(config):
    """The `Cut` that `config` (a `build.BuildConfig`) asks for; a `BuildError` for a bad request."""
    hours = step_hours(config.steps, config.interval_hours)
    splits = parse_splits(config)
    if config.scale not in SCALES:
        raise BuildError(f"scale {config.scale} is not one of {', '.join(map(str, SCALES))}")
    if config.degradation not in DEGRADATIONS:
        raise BuildError(f"degradation {config.degradation!r} is not one of {', '.join(DEGRADATIONS)}")
    lo, hi = config.lat  # longitude west of east runs across 0/360 (350 10), see `grid`
    if lo > hi:
        raise BuildError(f"latitude bounds {lo:g} to {hi:g}: the minimum is above the maximum")
    if config.patch_size is None and config.patch_stride is not None:
        raise BuildError("--patch-stride needs --patch-size")
    if config.patch_size is not None:  # checked again against the domain by `patches_of`
        patch_grid(config.patch_size, config.patch_size, config.scale, config.patch_size, config.patch_stride)
    extras = (parse_predictors(config.predictors), check_static(config.static))
    if is_surface(config.variable):
        if config.levels:
            given = " ".join(f"{float(level):g}" for level in config.levels)
            raise BuildError(
                f"--levels {given}: {config.variable} is a single-level field (2 m above the surface); give no --levels"
            )
        return Cut(config, hours, splits, [SURFACE_LEVEL], *extras)
    levels = sorted({float(level) for level in config.levels})
    return Cut(config, hours, splits, levels, *extras)


def open_source(inputs, cut):
    """The `Era5Source` of the cut's variable, levels and region; with predictors or static fields an
    `extras.ExtraSource`, which reads each variable from the inputs that hold it.

    `inputs`: ERA5 files, glob patterns or folders (one, or a list), or one `xarray.Dataset`.
    """
    if isinstance(inputs, xr.Dataset):
        inputs = [inputs]
    else:
        inputs = expand_inputs([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)
    config = cut.config
    if not (cut.predictors or cut.static):
        return Era5Source(inputs, config.variable, cut.levels, config.lat, config.lon)
    target = Era5Source(inputs, config.variable, cut.levels, config.lat, config.lon, optional=True)
    try:
        predictors = open_predictors(inputs, cut.predictors, target, (config.lat, config.lon))
    except BaseException:
        target.close()
        raise
    return ExtraSource(target, predictors, inputs)


def patches_of(source, cut):
    """The `PatchGrid` of an open source's domain; a `BuildError` when the patches (or the scale) do not fit."""
    config = cut.config
    return patch_grid(len(source.lat), len(source.lon), config.scale, config.patch_size, config.patch_stride)


def describe_region(source, cut):
    """The `Region` of an open source; a `BuildError` when the scale does not divide a patch or a patch does not fit.

    Unless the config names it, the domain is named by its bounds, e.g. lat37-52.75_lon105-120.75.
    """
    lat, lon, scale = source.lat, source.lon, cut.config.scale
    grid = patches_of(source, cut)
    name = cut.config.region_name or f"lat{lat[0]:g}-{lat[-1]:g}_lon{lon[0]:g}-{lon[-1]:g}"
    steps = len(cut.hours)
    return Region(name, [steps, grid.height, grid.width], [steps, grid.height // scale, grid.width // scale])


def no_days_error(name, start, end, skipped):
    """The error for an empty split; `skipped` [(day, reason)] says why, when the data had days there."""
    why = f" ({len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
    return BuildError(f"split {name} has no complete days between {start} and {end}{why}")


def plan_splits(source, cut):
    """{split: (complete days, [(day, reason)] skipped for a missing step)}; an error for a split with no day."""
    plans = {name: plan_days(source.times, start, end, cut.hours) for name, (start, end) in cut.splits.items()}
    for name, (days, skipped) in plans.items():
        if not days:
            raise no_days_error(name, *cut.splits[name], skipped)
    if cut.predictors:
        times = [day_times(day, cut.hours) for days, _ in plans.values() for day in days]
        check_predictor_times(source.predictors, cut.predictors, np.concatenate(times))
    return plans


def refuse_implausible(problem, where, config):
    """A target that cannot be relative humidity: a `BuildError`, or a warning with `--allow-implausible`."""
    message = f"{config.variable} {where} is not plausible relative humidity: {problem}"
    if config.allow_implausible:
        log.warning("warning: %s (built anyway: --allow-implausible)", message)
        return
    raise BuildError(
        f"{message}; check the units of the inputs' levels and variables, or pass --allow-implausible to build anyway"
    )


def check_first_day(source, cut, plans):
    """Refuse a first training day that cannot be relative humidity: wrong units stop the build before it writes."""
    day = plans["train"][0][0]
    for level, field in zip(cut.levels, source.read(day_times(day, cut.hours))):
        problem = implausibility(field)
        if problem:
            refuse_implausible(problem, f"{level_words(level)} on {day}", cut.config)


def cut_day(source, day, cut, patches=None):
    """(seconds since 1970 of the day's steps, one `Sample` per level and patch: level by level, patch by patch).

    `patches`: the source's `PatchGrid` (`patches_of`), found again when None.
    """
    patches = patches_of(source, cut) if patches is None else patches
    times = day_times(day, cut.hours)
    extras = _day_predictors(source, times, cut, patches) if cut.predictors else [(None, None)] * patches.count
    samples = []
    for level, field in zip(cut.levels, source.read(times)):
        for index, hr in enumerate(patches.cut(field)):
            predictors, reason = extras[index]
            reason = nan_reason(hr, cut.hours) or reason
            lr = None if reason else degrade(hr, cut.config.scale, cut.config.degradation)
            samples.append(Sample(level, hr, lr, reason, index, None if reason else predictors))
    return times, samples


def _day_predictors(source, times, cut, patches):
    """[(LR predictors [T, h, w, P] or None, the reason to skip)] of each patch: degraded as the target is."""
    config, result = cut.config, []
    for part in patches.cut(source.read_predictors(times)):  # [P, T, H, W] each
        reasons = [(p, nan_reason(channel, cut.hours)) for p, channel in zip(cut.predictors, part)]
        bad = next(((p, reason) for p, reason in reasons if reason), None)
        if bad:
            result.append((None, f"{bad[1]} in predictor {bad[0].name}"))
        else:
            lr = [degrade(channel, config.scale, config.degradation) for channel in part]
            result.append((np.stack(lr, axis=-1), None))
    return result


class Tally:
    """Samples kept and skipped over some days of a split; for the train split also its statistics.

    A build keeps one per shard and merges them in shard order (so the numbers do not depend
    on the number of threads); the in-memory path keeps one per split. `patches`: how many
    patches a day has at each level; the climatology is kept per level and patch.
    """

    def __init__(self, cut, region, training, patches=1):
        self.examples = self.days = 0
        self.values = self.outside = 0  # HR values kept, and those outside PLAUSIBLE_PERCENT
        self.patches = patches
        self.skipped = []  # (day, level, patch, reason)
        self.stats = RunningStats() if training else None
        self.predictor_stats = [RunningStats() for _ in cut.predictors] if training else None
        self.climatology = Climatology(len(cut.levels) * patches, region.hr_shape) if training else None

    def add(self, day, samples):
        """Count one day's samples (all of `cut_day`'s, in its order); return those kept."""
        kept = []
        for index, sample in enumerate(samples):  # index: level index * patches + patch
            if sample.reason:
                self.skipped.append((day, sample.level, sample.patch, sample.reason))
                continue
            kept.append(sample)
            self.values += sample.hr.size
            self.outside += int(
                np.count_nonzero((sample.hr < PLAUSIBLE_PERCENT[0]) | (sample.hr > PLAUSIBLE_PERCENT[1]))
            )
            if self.stats is not None:
                self.stats.update(sample.hr)
                self.climatology.update(index, sample.hr)
                for k, stats in enumerate(self.predictor_stats):
                    stats.update(sample.predictors[..., k])
        self.examples += len(kept)
        self.days += bool(kept)
        return kept

    def merge(self, other):
        """Add a later run's tally (of the same split) to this one."""
        self.examples += other.examples
        self.days += other.days
        self.values += other.values
        self.outside += other.outside
        self.skipped += other.skipped
        if other.stats is not None:
            self.stats.merge(other.stats)
            self.climatology.merge(other.climatology)
            for mine, theirs in zip(self.predictor_stats, other.predictor_stats):
                mine.merge(theirs)


def level_value(level):
    """300.0 -> 300, so manifest levels and climatology keys read "300"."""
    return int(level) if float(level).is_integer() else float(level)


def split_record(name, cut, skipped_days, tally):
    """The manifest's record of a split, but its files: dates, counts, skipped samples in date and level order.

    `skipped_days` [(day, reason)] are the days `plan_splits` skipped (each skips every
    level and patch); a `BuildError` when the split kept no sample, or when too many of its
    values lie outside `PLAUSIBLE_PERCENT` (`refuse_implausible`). With several patches an
    entry of one patch says which; one of a skipped day, which covers them all, does not.
    """
    start, end = cut.splits[name]
    everywhere = [(day, level, None, reason) for day, reason in skipped_days for level in cut.levels]
    skipped = sorted(everywhere + tally.skipped, key=lambda entry: (entry[0], entry[1], entry[2] or 0))
    if not tally.examples:
        raise no_days_error(name, start, end, [(day, reason) for day, _, _, reason in skipped])
    if tally.outside > IMPLAUSIBLE_SHARE * tally.values:
        low, high = PLAUSIBLE_PERCENT
        problem = f"{tally.outside / tally.values:.1%} of its values lie outside {low:g}..{high:g} %RH"
        refuse_implausible(problem, f"in split {name}", cut.config)
    entries = []
    for day, level, patch, reason in skipped:
        entry = {"date": str(day), "level": level_value(level), "reason": reason}
        if tally.patches > 1 and patch is not None:
            entry["patch"] = patch
        entries.append(entry)
    return {
        "start": str(start),
        "end": str(end),
        "examples": tally.examples,
        "days": tally.days,
        "skipped": entries,
        "skipped_count": len(tally.skipped) + len(everywhere) * tally.patches,
    }


def training_facts(tally, cut):
    """The manifest's `stats` and `climatology` (per level; per level and patch with several), from the train split.

    A train split of one value everywhere is refused (`refuse_implausible`): no model can be normalised by it.
    """
    stats = tally.stats.as_dict()
    if not stats["std"] > 0:
        refuse_implausible(f"it is constant ({stats['mean']:g} % everywhere)", "in the train split", cut.config)
    means = tally.climatology.means().reshape(len(cut.levels), tally.patches, *tally.climatology.sums.shape[1:])
    if tally.patches == 1:  # lists, as every build before patches wrote them
        climatology = {str(level_value(level)): means[i, 0].tolist() for i, level in enumerate(cut.levels)}
    else:  # float32 arrays [patch, T, H, W]: millions of values, see `manifest.write_manifest`
        climatology = {str(level_value(level)): means[i].astype(np.float32) for i, level in enumerate(cut.levels)}
    facts = {"stats": stats, "climatology": climatology}
    if cut.predictors:
        facts["predictors"] = predictor_records(cut.predictors, tally.predictor_stats)
    return facts


def static_of(source, cut):
    """(the bytes of static.npy, the manifest's `static` record) of a build with `--static`, else (None, None).

    Read before any shard is written, so a static field on another grid stops the build at once.
    """
    if not cut.static:
        return None, None
    config = cut.config
    static, channels = static_fields(
        source.inputs, cut.static, source.target, (config.lat, config.lon), patches_of(source, cut)
    )
    return static_file(static, channels)


def _version():
    try:
        return importlib.metadata.version("hsr-keras")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def base_manifest(cut, source, region, command=()):
    """The manifest keys that describe the data (see `manifest.py`): all but splits, statistics and sources."""
    config, lat, lon = cut.config, source.lat, source.lon
    scale = config.scale
    lr_lat, lr_lon = (lr_coords(c[: len(c) - len(c) % scale], scale, config.degradation) for c in (lat, lon))
    extras = {"time_encoding": True} if config.time_encoding else {}
    return {
        "schema_version": INPUTS_SCHEMA_VERSION if cut.extras else SCHEMA_VERSION,
        **extras,
        "created_by": f"tfrecords_builder {_version()}",
        "command": list(command),
        "variable": config.variable,
        "units": "%",
        "levels": [level_value(level) for level in cut.levels],
        **({"level_type": "surface"} if is_surface(config.variable) else {}),
        "region": {
            "name": region.name,
            "lat_min": float(lat[0]),
            "lat_max": float(lat[-1]),
            "lon_min": float(lon[0]),
            "lon_max": float(lon[-1]),
        },
        "steps_per_day": len(cut.hours),
        "interval_hours": config.interval_hours,
        "step_hours": cut.hours,
        "scale": config.scale,
        "degradation": config.degradation,
        "hr_shape": region.hr_shape,
        "lr_shape": region.lr_shape,
        "grid": {
            "lat": lat.tolist(),
            "lon": lon.tolist(),
            "lr_lat": lr_lat.tolist(),
            "lr_lon": lr_lon.tolist(),
            "resolution_deg": source.resolution,
        },
        "patches": patches_of(source, cut).describe(lat, lon),
    }
