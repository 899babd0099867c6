"""tfrecords_builder: ERA5 in, sharded TFRecords and a manifest out (`python -m tfrecords_builder`).

`contract/` is what the builder and `hsr_keras` agree on, and all that `hsr_keras` imports of
the builder: the ERA5 inputs both read, the record schema, the manifest, patch coordinates,
errors and exit codes, and how files are published. Modules of the earlier flat layout still
import from their old names (`MOVED`).
"""

from tfrecords_builder.contract import moved

MOVED = {
    "tfrecords_builder.console": "tfrecords_builder.contract.console",
    "tfrecords_builder.errors": "tfrecords_builder.contract.errors",
    "tfrecords_builder.grid": "tfrecords_builder.contract.era5.grid",
    "tfrecords_builder.humidity": "tfrecords_builder.contract.era5.humidity",
    "tfrecords_builder.manifest": "tfrecords_builder.contract.manifest",
    "tfrecords_builder.netcdf_files": "tfrecords_builder.contract.era5.netcdf_files",
    "tfrecords_builder.patches": "tfrecords_builder.contract.patches",
    "tfrecords_builder.reader": "tfrecords_builder.contract.era5.reader",
    "tfrecords_builder.schema": "tfrecords_builder.contract.schema",
}
moved.install(MOVED)
