"""netCDF inputs opened safely from many threads: one lock, and one open handle per file.

Two faults of the native libraries crash the interpreter (a segfault, no traceback) when
threads in one process open inputs, as Beam's multi_threading workers and Dataflow's worker
threads do:

- netCDF-C and the HDF5 library it bundles are not thread-safe, and xarray reads a netCDF4
  file's metadata (each variable's filters) outside its own lock. One re-entrant lock, held
  around the whole open and handed to xarray for every read and close, puts every netCDF call
  made through this module in line.
- HDF5 crashes when a netCDF4 file holding a string variable (the 2024+ CDS files have
  `expver`) is open twice at once and one handle is closed (HDFGroup/hdf5#5359,
  Unidata/netcdf4-python#1444). So each file is opened once per process: every caller gets a
  view of the one dataset, and the file closes when the last view does.
"""

import os
import threading

import xarray as xr

LOCK = threading.RLock()
_open = {}  # file identity -> [the dataset, how many views are open]


def _identity(path):
    """A file as the operating system knows it: a file rewritten since it was opened is another one."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def open_netcdf(path):
    """A lazily read view of the netCDF file at `path`; its `close()` closes the file once no view needs it."""
    key = _identity(path)
    with LOCK:
        entry = _open.get(key)
        if entry is None:
            entry = [xr.open_dataset(path, engine="netcdf4", cache=False, lock=LOCK), 0]
            _open[key] = entry
        entry[1] += 1
        view = entry[0].copy()  # shares the lazy arrays; a copy does not close the file
        view.set_close(lambda: _release(key))
        return view


def _release(key):
    with LOCK:
        entry = _open[key]
        entry[1] -= 1
        if entry[1] == 0:
            del _open[key]
            entry[0].close()


def open_files():
    """How many netCDF files this process holds open through this module (for tests)."""
    with LOCK:
        return len(_open)
