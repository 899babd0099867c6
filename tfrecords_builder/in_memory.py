"""Small datasets in memory: region-day sequences as numpy arrays (`contract.arrays`), with no TFRecords and no TensorFlow.

For data that fit in memory (a few years of one region: 2 years of 64x64 days are 0.2 GB),
`load_arrays` reads ERA5 files or Zarr stores, and `synthetic_arrays` draws synthetic
ERA5-like fields in memory (no files, no netCDF library). Both cut the fields with the
builder's own steps (`tfrecords_builder.cutting`), so they give the samples of `python -m
tfrecords_builder`: one per complete UTC day, level and patch (a day with a missing step or
a patch with a NaN is skipped and reported), the same LR degradation, and statistics and
climatology from the train split only. The result trains with `hsr_keras.training.trainer.train`
under any Keras backend.

Example:
    >>> data = synthetic_arrays("2019-01-01", "2019-03-31", train="2019-01-01:2019-02-28",
    ...                         val="2019-03-01:2019-03-31", test="none")
    >>> lr, hr, time = data.train           # [N, 8, 8, 8], [N, 8, 64, 64], [N, 8]
    >>> data.manifest["stats"]["std"]       # what the model normalises with
"""

import numpy as np

from tfrecords_builder.contract.arrays import InMemoryData, Split
from tfrecords_builder.cutting import (
    Tally,
    base_manifest,
    check_config,
    check_first_day,
    cut_day,
    describe_region,
    open_source,
    patches_of,
    plan_splits,
    split_record,
    training_facts,
)
from tfrecords_builder.extras import static_fields, static_file
from tfrecords_builder.options import BuildConfig


def load_arrays(inputs, **options):
    """ERA5 relative humidity -> `InMemoryData`, cut into days as `python -m tfrecords_builder` does.

    Args:
        inputs: ERA5 files, glob patterns or folders (netCDF in either CDS layout, or GRIB),
            Zarr stores (a local *.zarr folder or a gs:// URL in the ARCO-ERA5 layout), as
            for the builder; or one `xarray.Dataset` already in memory (e.g. from
            `tfrecords_builder.synthetic.synthetic_dataset`).
        **options: any field of `tfrecords_builder.options.BuildConfig` but `inputs`, `out`,
            `shard_mb`, `compression`, `workers` and `quiet`: `variable`, `predictors`,
            `static`, `time_encoding`, `levels`, `lat`,
            `lon`, `region_name`, `patch_size`, `patch_stride`, `steps`, `interval_hours`,
            `scale`, `degradation`, `allow_implausible`, and the `train`, `val`, `test` date
            ranges ("START:END"; "none" omits val or test). Defaults to the builder's, i.e.
            the paper's protocol.

    Returns:
        `InMemoryData` with float32 arrays in %RH; with `predictors`, their LR arrays per split
        and with `static`, the array a build writes to static.npy (its manifest record is the
        build's; no file is written).

    Raises:
        tfrecords_builder.contract.errors.BuildError: for bad input (missing variable, wrong units,
            a field that is not plausible relative humidity, region outside the grid, a split
            without complete days...), as the builder.
    """
    cut = check_config(BuildConfig(inputs=(), out="", **options))
    arrays, patch, predictors, static = {}, {}, {}, None
    with open_source(inputs, cut) as source:
        region = describe_region(source, cut)
        patches = patches_of(source, cut)
        plans = plan_splits(source, cut)
        check_first_day(source, cut, plans)
        manifest = base_manifest(cut, source, region)
        if cut.static:
            static, channels = static_fields(
                source.inputs, cut.static, source.target, (cut.config.lat, cut.config.lon), patches
            )
            manifest["static"] = static_file(static, channels)[1]
        manifest["splits"] = {}
        for name, (days, skipped_days) in plans.items():
            tally = Tally(cut, region, training=name == "train", patches=patches.count)
            samples = []
            for day in days:
                times, day_samples = cut_day(source, day, cut, patches)
                samples += [(s.lr, s.hr, times, s.patch, s.predictors) for s in tally.add(day, day_samples)]
            manifest["splits"][name] = split_record(name, cut, skipped_days, tally)
            lr, hr, times, patch[name], extra = zip(*samples)
            lr, hr, times, patch[name] = (np.stack(column) for column in (lr, hr, times, patch[name]))
            arrays[name] = Split(lr, hr, times.astype("datetime64[s]"))
            if cut.predictors:
                predictors[name] = np.stack(extra)
            if name == "train":
                manifest.update(training_facts(tally, cut))
    return InMemoryData(manifest=manifest, patch=patch, predictors=predictors or None, static=static, **arrays)


def synthetic_arrays(start, end, *, seed=0, terrain=False, **options):
    """Synthetic ERA5-like days drawn in memory (`synthetic.synthetic_dataset`), as `load_arrays` cuts them.

    Args:
        start, end: first and last day drawn ("YYYY-MM-DD"), both included.
        seed: seed of the synthetic weather. Defaults to 0.
        terrain: a world with orography and upslope moistening, with the predictors t, q, u,
            v, z and the static fields for `predictors` and `static` (`synthetic_dataset`).
            Defaults to False.
        **options: as for `load_arrays`; `lat`, `lon`, `levels` and `interval_hours` also
            set what is drawn, so nothing outside the region is generated.
    """
    from tfrecords_builder.synthetic import synthetic_dataset

    config = BuildConfig(inputs=(), out="", **options)
    dataset = synthetic_dataset(
        start,
        end,
        lat_bounds=config.lat,
        lon_bounds=config.lon,
        levels=config.levels,
        interval_hours=config.interval_hours,
        seed=seed,
        terrain=terrain,
    )
    return load_arrays(dataset, **options)
