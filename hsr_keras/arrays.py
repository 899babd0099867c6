"""Small datasets in memory: region-day sequences as numpy arrays, with no TFRecords and no TensorFlow.

For data that fit in memory (a few years of one region: 2 years of 64x64 days are 0.2 GB),
`load_arrays` reads ERA5 files with the builder's reader, and `synthetic_arrays` draws
synthetic ERA5-like fields in memory (no files, no netCDF library). Both cut the fields into
the same samples as `python -m tfrecords_builder`: one sample per complete UTC day and level
(a day with a missing step or a NaN is skipped and reported), the same LR degradation, and
statistics and climatology from the train split only. The result trains with
`hsr_keras.fit.train` under any Keras backend.

Example:
    >>> data = synthetic_arrays("2019-01-01", "2019-03-31", train="2019-01-01:2019-02-28",
    ...                         val="2019-03-01:2019-03-31", test="none")
    >>> lr, hr, time = data.train           # [N, 8, 8, 8], [N, 8, 64, 64], [N, 8]
    >>> data.manifest["stats"]["std"]       # what the model normalises with
"""

import os
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tfrecords_builder import build as builder
from tfrecords_builder import reader, sequences
from tfrecords_builder.errors import BuildError
from tfrecords_builder.stats import Climatology, RunningStats


class Split(NamedTuple):
    """One split's samples in %RH, day by day (and level by level within a day)."""

    lr: np.ndarray  # float32 [N, T, h, w]
    hr: np.ndarray  # float32 [N, T, H, W]
    time: np.ndarray  # datetime64[s] [N, T]

    def model_inputs(self):
        """(lr, hr) with the channel axis the models take: [N, T, h, w, 1], [N, T, H, W, 1]."""
        return self.lr[..., None], self.hr[..., None]


@dataclass(frozen=True)
class InMemoryData:
    """The splits of a dataset held in memory and the manifest facts training needs.

    `manifest` has the keys of a build's manifest.json that describe the data (`scale`,
    `hr_shape`, `lr_shape`, `grid` with `lat`/`lon`/`lr_lat`/`lr_lon`, `stats` of the train
    split, `climatology`, `levels`, `step_hours`, `splits` with counts and skipped days), but
    no shard files and no `_dir`.
    """

    manifest: dict
    train: Split
    val: Split | None = None
    test: Split | None = None


def load_arrays(inputs, **options):
    """ERA5 relative humidity -> `InMemoryData`, cut into days as `python -m tfrecords_builder` does.

    Args:
        inputs: ERA5 files, glob patterns or folders (netCDF in either CDS layout, or GRIB),
            as for the builder; or one `xarray.Dataset` already in memory (e.g. from
            `tfrecords_builder.synthetic.synthetic_dataset`).
        **options: any field of `tfrecords_builder.build.BuildConfig` but `inputs`, `out`,
            `shard_mb`, `workers` and `quiet`: `variable`, `levels`, `lat`, `lon`,
            `region_name`, `steps`, `interval_hours`, `scale`, `degradation`, and the
            `train`, `val`, `test` date ranges ("START:END"; "none" omits val or test).
            Defaults to the builder's, i.e. the paper's protocol.

    Returns:
        `InMemoryData` with float32 arrays in %RH.

    Raises:
        tfrecords_builder.errors.BuildError: for bad input (missing variable, wrong units,
            region outside the grid, a split without complete days...), as the builder.
    """
    dataset = _is_dataset(inputs)
    if not dataset and isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files = () if dataset else tuple(reader.expand_inputs(inputs))
    config = builder.BuildConfig(inputs=files, out="", **options)
    hours = sequences.step_hours(config.steps, config.interval_hours)
    splits = builder.parse_splits(config)
    if config.scale not in sequences.SCALES:
        raise BuildError(f"scale {config.scale} is not one of {', '.join(map(str, sequences.SCALES))}")
    if config.degradation not in sequences.DEGRADATIONS:
        raise BuildError(f"degradation {config.degradation!r} is not one of {', '.join(sequences.DEGRADATIONS)}")
    levels = sorted({float(level) for level in config.levels})
    if dataset:
        source = _DatasetSource(inputs, config.variable, levels, config.lat, config.lon)
    else:
        source = reader.Era5Source(files, config.variable, levels, config.lat, config.lon)
    with source:
        sequences.check_divisible(len(source.lat), len(source.lon), config.scale)
        lat, lon = source.lat, source.lon
        region = config.region_name or f"lat{lat[0]:g}-{lat[-1]:g}_lon{lon[0]:g}-{lon[-1]:g}"
        hr_shape = [len(hours), len(lat), len(lon)]
        lr_shape = [len(hours), len(lat) // config.scale, len(lon) // config.scale]
        manifest = builder._manifest(config, (), levels, hours, region, source, hr_shape, lr_shape)
        manifest["splits"], arrays = {}, {}
        stats, climatology = RunningStats(), Climatology(len(levels), hr_shape)
        for name, (start, end) in splits.items():
            days, skipped = sequences.plan_days(source.times, start, end, hours)
            skipped = [(day, level, reason) for day, reason in skipped for level in levels]
            samples = []
            for day, level, hr, lr, times, reason in _day_samples(source, days, levels, hours, config):
                if reason:
                    skipped.append((day, level, reason))
                    continue
                samples.append((lr, hr, times))
                if name == "train":
                    stats.update(hr)
                    climatology.update(levels.index(level), hr)
            skipped.sort(key=lambda entry: (entry[0], entry[1]))
            if not samples:
                raise builder._no_days(name, start, end, [(day, reason) for day, _, reason in skipped])
            lr, hr, times = (np.stack(column) for column in zip(*samples))
            arrays[name] = Split(lr, hr, times.astype("datetime64[s]"))
            manifest["splits"][name] = {
                "start": str(start),
                "end": str(end),
                "examples": len(samples),
                "days": len({t[0] // 86400 for t in times.tolist()}),
                "skipped": [{"date": str(d), "level": builder._level_value(lv), "reason": r} for d, lv, r in skipped],
                "skipped_count": len(skipped),
            }
    manifest["stats"] = stats.as_dict()
    means = climatology.means()
    manifest["climatology"] = {str(builder._level_value(lv)): means[i].tolist() for i, lv in enumerate(levels)}
    return InMemoryData(manifest=manifest, **arrays)


def synthetic_arrays(start, end, *, seed=0, **options):
    """Synthetic ERA5-like days drawn in memory (`synthetic.synthetic_dataset`), as `load_arrays` cuts them.

    Args:
        start, end: first and last day drawn ("YYYY-MM-DD"), both included.
        seed: seed of the synthetic weather. Defaults to 0.
        **options: as for `load_arrays`; `lat`, `lon`, `levels` and `interval_hours` also
            set what is drawn, so nothing outside the region is generated.
    """
    from tfrecords_builder.synthetic import synthetic_dataset

    config = builder.BuildConfig(inputs=(), out="", **options)
    dataset = synthetic_dataset(
        start,
        end,
        lat_bounds=config.lat,
        lon_bounds=config.lon,
        levels=config.levels,
        interval_hours=config.interval_hours,
        seed=seed,
    )
    return load_arrays(dataset, **options)


def _day_samples(source, days, levels, hours, config):
    """(day, level, hr, lr, times, skip reason or None) per day and level, as the builder writes them."""
    for day in days:
        times = sequences.day_times(day, hours)
        block = source.read(times)
        for index, level in enumerate(levels):
            hr = block[index]
            reason = sequences.nan_reason(hr, hours)
            lr = None if reason else sequences.degrade(hr, config.scale, config.degradation)
            yield day, level, hr, lr, times, reason


def _is_dataset(inputs):
    import xarray as xr

    return isinstance(inputs, xr.Dataset)


class _DatasetSource:
    """`reader.Era5Source`'s interface (`lat`, `lon`, `resolution`, `times`, `read`) over an in-memory dataset."""

    def __init__(self, dataset, variable, levels, lat_bounds, lon_bounds):
        name = "the in-memory dataset"
        da = reader._normalise(dataset, variable, name)
        lat, lon = da["latitude"].values.astype(np.float64), da["longitude"].values.astype(np.float64)
        dlat = reader.grid_spacing(lat, "latitude", name)
        dlon = reader.grid_spacing(lon, "longitude", name)
        if abs(dlat - dlon) > reader.GRID_TOLERANCE * dlat:
            raise BuildError(f"{name} has latitude spacing {dlat:g} but longitude spacing {dlon:g}")
        lat_sel = reader.region_slice(lat, lat_bounds, dlat, "latitude", name)
        lon_sel = reader.region_slice(lon, lon_bounds, dlon, "longitude", name)
        level_idx = reader._level_indices(da["level"].values.astype(np.float64), levels, name)
        da = da.isel(latitude=lat_sel, longitude=lon_sel, level=level_idx)
        self.lat, self.lon, self.resolution = np.round(lat[lat_sel], 6), np.round(lon[lon_sel], 6), round(dlat, 6)
        seconds = da["time"].values.astype("datetime64[s]").astype(np.int64)
        order = np.argsort(seconds, kind="stable")
        self.times = seconds[order]
        self._values = np.asarray(da.values, dtype=np.float32)[order]  # [time, level, lat, lon]
        self._row = {t: i for i, t in enumerate(self.times.tolist())}

    def read(self, times):
        """float32 [levels, T, H, W] at `times` (seconds since 1970)."""
        rows = [self._row[int(t)] for t in times]
        return self._values[rows].transpose(1, 0, 2, 3)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._values = None
