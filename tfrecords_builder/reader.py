"""One variable at some levels over one region of many ERA5 inputs, read a day at a time.

Inputs are netCDF or GRIB files, Zarr stores or `xarray.Dataset`s in memory (e.g.
`synthetic.synthetic_dataset`); `stores` opens each one lazily and brings it to one shape,
`grid` finds the region's points in it. Only the selected region, levels and times are ever
read, so a year of hourly global data never has to fit in memory.
"""

from collections import defaultdict
from pathlib import Path

import numpy as np
import xarray as xr

from tfrecords_builder.errors import BuildError
from tfrecords_builder.grid import GRID_TOLERANCE, grid_spacing, longitude_selection, region_slice
from tfrecords_builder.stores import IN_MEMORY, SHORT_NAMES, is_url, open_field


def level_indices(input_levels, levels, name):
    """Index in `input_levels` of each requested level (hPa); a `BuildError` for one the data lack."""
    indices = []
    for level in levels:
        hits = np.flatnonzero(np.isclose(input_levels, level, rtol=0, atol=1e-6))
        if hits.size == 0:
            have = ", ".join(f"{x:g}" for x in input_levels)
            raise BuildError(f"level {level:g} hPa is not in {name} (it has {have})")
        indices.append(int(hits[0]))
    return indices


def input_name(item):
    """How messages and the manifest name an input: its `Path`, its URL, or `IN_MEMORY`."""
    if isinstance(item, xr.Dataset):
        return IN_MEMORY
    return item if is_url(item) else Path(item)


class Era5Source:
    """One variable at some levels over one region of ERA5 inputs, read on demand.

    `inputs` holds file paths, Zarr store paths or URLs (opened lazily) or `xarray.Dataset`s;
    all pass the same checks, region snapping and level selection. `variable` may be a CDS
    short name (r) or an ARCO-ERA5 long one (relative_humidity). Attributes after opening:
    `lat`, `lon` (ascending, float64; longitudes continue past 360 across the 0/360 meridian),
    `resolution` (degrees), `levels` (hPa, as requested), `paths` (the inputs' names) and
    `times` (sorted int64 seconds since 1970, all inputs). `read(times)` returns float32
    [levels, T, H, W] with NaN where the data have no value.
    """

    def __init__(self, inputs, variable, levels, lat_bounds, lon_bounds):
        inputs = list(inputs)
        self.paths = [input_name(item) for item in inputs]
        self.variable = SHORT_NAMES.get(variable, variable)
        self.levels = [float(x) for x in levels]
        self._datasets, self._fields = [], []
        self.lat = self.lon = self.resolution = None
        try:
            for item, name in zip(inputs, self.paths):
                self._add(item, name, lat_bounds, lon_bounds)
            self._index_times()
        except BaseException:
            self.close()
            raise

    def _add(self, item, name, lat_bounds, lon_bounds):
        dataset, field = open_field(item, self.variable, name)
        if dataset is not None:
            self._datasets.append(dataset)
        lat, lon = field.lat, field.lon
        dlat, dlon = grid_spacing(lat, "latitude", name), grid_spacing(lon, "longitude", name)
        if abs(dlat - dlon) > GRID_TOLERANCE * dlat:
            raise BuildError(
                f"{name} has latitude spacing {dlat:g} but longitude spacing {dlon:g}; cells must be square"
            )
        lat_sel = region_slice(lat, lat_bounds, dlat, "latitude", name)
        lon_pieces, lon = longitude_selection(lon, lon_bounds, dlon, name)
        self._fields.append(field.select(lat_sel, lon_pieces, level_indices(field.levels, self.levels, name)))
        lat, lon = np.round(lat[lat_sel], 6), np.round(lon, 6)
        if self.lat is None:
            self.lat, self.lon, self.resolution = lat, lon, round(dlat, 6)
        elif (
            lat.shape != self.lat.shape
            or lon.shape != self.lon.shape
            or not (
                np.allclose(lat, self.lat, rtol=0, atol=GRID_TOLERANCE * dlat)
                and np.allclose(lon, self.lon, rtol=0, atol=GRID_TOLERANCE * dlon)
            )
        ):
            raise BuildError(f"the region's grid in {name} differs from that in {self.paths[0]}")

    def _index_times(self):
        """`times` of all inputs, sorted, and where each one is; a `BuildError` for a time in two inputs."""
        seconds = [field.seconds for field in self._fields]
        owner = np.concatenate([np.full(len(s), i) for i, s in enumerate(seconds)])
        row = np.concatenate([np.arange(len(s)) for s in seconds])
        seconds = np.concatenate(seconds)
        order = np.argsort(seconds, kind="stable")
        self.times, self._owner, self._row = seconds[order], owner[order], row[order]
        twice = np.flatnonzero(np.diff(self.times) == 0)
        if twice.size:
            first, second = (self.paths[self._owner[i]] for i in (twice[0], twice[0] + 1))
            if first == second:
                raise BuildError(f"time {np.datetime64(int(self.times[twice[0]]), 's')} appears twice in {first}")
            raise BuildError(
                f"time {np.datetime64(int(self.times[twice[0]]), 's')} appears twice: in {first} and in {second}"
            )

    def read(self, times):
        """Values at `times` (seconds since 1970, each one in `self.times`): float32 [levels, T, H, W]."""
        out = np.empty((len(self.levels), len(times), len(self.lat), len(self.lon)), np.float32)
        at = np.searchsorted(self.times, np.asarray(times, dtype=np.int64))
        by_input = defaultdict(list)
        for slot, k in enumerate(at.tolist()):
            by_input[int(self._owner[k])].append((int(self._row[k]), slot))
        for f, pairs in by_input.items():
            pairs.sort()
            rows, slots = zip(*pairs)
            try:
                block = self._fields[f].read(rows)
            except BuildError:
                raise
            except Exception as err:  # a damaged chunk surfaces only when it is read
                raise BuildError(f"cannot read {self.paths[f]}: {err}") from err
            out[:, list(slots)] = block.transpose(1, 0, 2, 3)
        return out

    def close(self):
        for ds in self._datasets:
            ds.close()
        self._datasets, self._fields = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
