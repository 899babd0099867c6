"""What a build is asked to do: `BuildConfig`, and the command line that fills it, one group per concern.

`python -m tfrecords_builder --help` shows the options in these groups: inputs (which files and
which variable), grid (region, patches, levels, steps, scale, degradation), splits (date
ranges), output (folder, shard size, compression, threads) and Beam (the runner and its
options). Each group is added by its own function, so adding an option touches one of them
and `BuildConfig`.
"""

import argparse
import os
from dataclasses import dataclass, field

from tfrecords_builder.contract.beam_runner import BEAM_OPTIONS, add_beam_options, beam_args
from tfrecords_builder.contract.era5.reader import is_surface
from tfrecords_builder.contract.inputs import STATIC_CHOICES
from tfrecords_builder.contract.schema import SCALES
from tfrecords_builder.sequences import DEGRADATIONS
from tfrecords_builder.writer import COMPRESSIONS


def default_workers():
    return min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class BuildConfig:
    """Everything a build depends on; the defaults are the paper's protocol (section 3)."""

    inputs: tuple
    out: str
    variable: str = "r"
    levels: tuple = (300,)  # () for a single-level target (r2m)
    lat: tuple = (37.0, 52.75)
    lon: tuple = (105.0, 120.75)
    region_name: str | None = None
    patch_size: int | None = None
    patch_stride: int | None = None
    steps: int = 8
    interval_hours: int = 3
    scale: int = 8
    degradation: str = "stride"
    allow_implausible: bool = False  # build a target that is not plausible relative humidity, with a warning
    predictors: tuple = ()  # LR predictors: "t@300", "2t", ... (`extras.parse_predictor`)
    static: tuple = ()  # HR static fields: "orography", "lsm", "latlon" (`contract.inputs.STATIC_CHOICES`)
    time_encoding: bool = False  # sin/cos of hour and day of year as model inputs (computed, not stored)
    train: str = "2019-01-01:2020-12-31"
    val: str = "2021-01-01:2021-12-31"
    test: str = "2022-01-01:2022-10-31"
    shard_mb: float = 64.0
    compression: str = "deflate"
    workers: int = field(default_factory=default_workers)
    quiet: bool = False
    runner: str = "local"
    beam_args: tuple = ()  # Beam pipeline options, e.g. ("--runner=DirectRunner", "--direct_num_workers=2")


DEFAULTS = BuildConfig(inputs=(), out="")


def _input_options(parser):
    group = parser.add_argument_group("inputs")
    group.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="ERA5 files, quoted glob patterns or folders of .nc/.grib files: netCDF in the classic or 2024+ CDS "
        "layout, or GRIB (needs pip install hsr-keras[grib]); or Zarr stores in the ARCO-ERA5 layout, a local "
        "*.zarr folder or a gs:// URL (needs hsr-keras[zarr], and [gcs] for gs://)",
    )
    group.add_argument(
        "--variable",
        "--target",
        dest="variable",
        default=DEFAULTS.variable,
        help="the target: the variable to read (short or ARCO long name), in %% or as a fraction (its units attribute says which); "
        "r is derived from t and q where an input has no r. Levels in Pa and t, q in other units are converted. "
        "r2m: 2 m relative humidity, a single-level target derived from 2 m temperature and dewpoint (2t/t2m, "
        "2d/d2m), without --levels",
    )
    group.add_argument(
        "--allow-implausible",
        action="store_true",
        help="build even when the field is not plausible relative humidity (more than 10%% of the values outside "
        "-1..130 %%, or a constant field), with a warning; without it such a build is refused",
    )


def _extra_options(parser):
    group = parser.add_argument_group("model inputs beyond the target (a schema 3 build; docs/inputs.md)")
    group.add_argument(
        "--predictors",
        nargs="+",
        default=[],
        metavar="VAR[@HPA]",
        help="other ERA5 variables as LR inputs, degraded like the target: VAR@LEVEL on pressure levels (t@300 "
        "q@300 u@300 v@300 z@500; t K, q kg/kg, u/v m s-1, z m2 s-2, r %%) or single-level fields (2t, 2d, sp, "
        "msl, tcwv); each read from the inputs that hold it",
    )
    group.add_argument(
        "--static",
        nargs="+",
        default=[],
        choices=tuple(STATIC_CHOICES),
        help="HR fields of each patch, written once to static.npy: orography (surface geopotential z / g, m) and "
        "lsm (land-sea mask) from a single-levels or invariant file among the inputs, on the target's grid; "
        "latlon (latitude, sin and cos of longitude)",
    )
    group.add_argument(
        "--time-encoding",
        action="store_true",
        help="the model also takes sin and cos of the hour of day and of the day of year (computed from each "
        "record's times, nothing stored)",
    )


def _grid_options(parser):
    group = parser.add_argument_group("grid: where and when a sample lies, and its LR counterpart")
    group.add_argument(
        "--levels",
        nargs="+",
        type=float,
        default=None,
        metavar="HPA",
        help="pressure levels; one record per region, day and level (default: 300; none for --variable r2m, "
        "which has no levels)",
    )
    group.add_argument(
        "--lat",
        nargs=2,
        type=float,
        default=list(DEFAULTS.lat),
        metavar=("MIN", "MAX"),
        help="latitude bounds in degrees north, inclusive, snapped to grid points",
    )
    group.add_argument(
        "--lon",
        nargs=2,
        type=float,
        default=list(DEFAULTS.lon),
        metavar=("MIN", "MAX"),
        help="longitude bounds in degrees east, inclusive, snapped to grid points; MIN above MAX runs across "
        "0/360 (350 10)",
    )
    group.add_argument(
        "--region-name",
        default=DEFAULTS.region_name,
        help="region id stored in each record; None: from the bounds, e.g. lat37-52.75_lon105-120.75",
    )
    group.add_argument(
        "--patch-size",
        type=int,
        default=DEFAULTS.patch_size,
        metavar="CELLS",
        help="cut the region (up to the whole globe) into patches of CELLS x CELLS HR grid points, a record "
        "per patch, day and level; a multiple of the scale. None: the whole region is one sample",
    )
    group.add_argument(
        "--patch-stride",
        type=int,
        default=DEFAULTS.patch_stride,
        metavar="CELLS",
        help="grid points from one patch to the next, a multiple of the scale; None: the patch size. Rows and "
        "columns that do not fill a patch are dropped and counted in the manifest",
    )
    group.add_argument("--steps", type=int, default=DEFAULTS.steps, help="time steps per day, from 00 UTC")
    group.add_argument("--interval-hours", type=int, default=DEFAULTS.interval_hours, help="hours between steps")
    group.add_argument("--scale", type=int, choices=SCALES, default=DEFAULTS.scale, help="HR/LR resolution ratio")
    group.add_argument(
        "--degradation",
        choices=DEGRADATIONS,
        default=DEFAULTS.degradation,
        help="LR from HR: stride takes every scale-th point (the paper's), block_mean "
        "averages each scale x scale block",
    )


def _split_options(parser):
    group = parser.add_argument_group("splits: inclusive date ranges START:END")
    group.add_argument(
        "--train", default=DEFAULTS.train, help="training dates; statistics and climatology come from them"
    )
    for name in ("val", "test"):
        group.add_argument(
            f"--{name}", default=getattr(DEFAULTS, name), help=f"{name} dates; '' or none omits the split"
        )


def _output_options(parser):
    group = parser.add_argument_group("output")
    group.add_argument(
        "-o",
        "--out",
        required=True,
        default=argparse.SUPPRESS,
        help="output folder for the shards and manifest.json (an earlier build there is replaced), or a URL "
        "(gs://, s3://, memory://: built in a local staging folder, then uploaded, manifest.json last; docs/cloud.md)",
    )
    group.add_argument(
        "--shard-mb",
        type=float,
        default=DEFAULTS.shard_mb,
        help="target shard size in MiB of uncompressed records; decides the shard count",
    )
    group.add_argument(
        "--compression",
        choices=tuple(COMPRESSIONS),
        default=DEFAULTS.compression,
        help="how the GZIP shards are compressed: deflate (smallest), huffman (about 5x faster, a third larger on "
        "ERA5) or store (fastest, half as large again); all read alike",
    )
    group.add_argument(
        "--workers", type=int, default=DEFAULTS.workers, help="threads writing shards in parallel (the local runner)"
    )
    group.add_argument("--quiet", action="store_true", help="no progress bar and no summary")


def _beam_options(parser):
    add_beam_options(
        parser,
        "Beam: the same build on a Beam runner's workers",
        "local: a thread pool on this machine; beam: an Apache Beam pipeline (pip install hsr-keras[beam]) "
        "with the same shards and manifest, on the workers of --beam-runner",
    )


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_builder",
        description=(
            "Turn ERA5 relative humidity (netCDF, GRIB or Zarr such as ARCO-ERA5; derived from t and q where r is "
            "absent) into sharded GZIP TFRecords of region-days or patch-days (HR fields and their LR counterparts) "
            "plus manifest.json with grid, patches, training statistics and climatology."
        ),
        epilog="`python -m tfrecords_builder synthetic --help` writes synthetic ERA5-like files for demos and tests; "
        "`python -m tfrecords_builder download --help` fetches ERA5 from the Climate Data Store.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for add in (_input_options, _extra_options, _grid_options, _split_options, _output_options, _beam_options):
        add(parser)
    return parser


def parse_args(argv):
    """The `BuildConfig` of a command line; Beam's options (named, --beam-option, unknown) go to Beam with `--runner beam`."""
    parser = make_parser()
    args, unknown = parser.parse_known_args(argv)
    beam = beam_args(args, unknown, parser)
    skip = ("beam_runner", "beam_option", *BEAM_OPTIONS)
    values = {name: getattr(args, name) for name in vars(args) if name not in skip}
    if values["levels"] is None:  # --levels not given: the variable's default (no level for a 2 m target)
        values["levels"] = () if is_surface(args.variable) else DEFAULTS.levels
    for name in ("inputs", "levels", "lat", "lon", "predictors", "static"):
        values[name] = tuple(values[name])
    return BuildConfig(**values, beam_args=beam)
