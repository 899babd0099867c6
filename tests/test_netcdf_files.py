"""netCDF inputs opened from many threads: one handle per file, closed with its last view, no crash."""

import subprocess
import sys

import numpy as np
from era5_samples import LAT, LON, hourly, known_values, write_era5

from tfrecords_builder.contract.era5.netcdf_files import open_files, open_netcdf

# In a child process, since the faults this guards against kill the interpreter (a segfault):
# threads that open, read and close inputs at once, as Beam's multi_threading workers do, and
# handles of one netCDF4 file with a string variable (`expver`) closed out of order.
OPEN_READ_CLOSE = """
import random
import sys
from concurrent.futures import ThreadPoolExecutor

from tfrecords_builder.contract.era5.reader import open_dataset

def open_and_read(path):
    ds, kind = open_dataset(path)
    mean = float(ds["r"][0].values.mean())
    ds.close()
    return f"{kind} {mean:.4f}"

with ThreadPoolExecutor(8) as pool:
    print("\\n".join(sorted(set(pool.map(open_and_read, sys.argv[1:] * 40)))))

random.seed(0)
held = [open_dataset(sys.argv[-1])[0] for _ in range(4)]
for _ in range(200):
    held.pop(random.randrange(len(held))).close()
    held.append(open_dataset(sys.argv[-1])[0])
    float(held[0]["r"][0].values.mean())
"""


def test_threads_open_read_and_close_netcdf3_and_netcdf4_inputs_at_once(tmp_path):
    times = hourly("2020-01-01", 2)
    classic = write_era5(tmp_path / "classic.nc", times, style="classic")
    new = write_era5(tmp_path / "new.nc", times, style="new")  # with the CDS string variable expver
    run = subprocess.run(
        [sys.executable, "-c", OPEN_READ_CLOSE, str(classic), str(new)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    mean = known_values(times.values[:1], LAT, LON).mean()  # one line per file: every read gave the same values
    assert run.stdout.split("\n")[:-1] == [f"netcdf3 {mean:.4f}", f"netcdf4 {mean:.4f}"]


def test_views_share_one_open_file_that_closes_with_the_last_view(tmp_path):
    path = write_era5(tmp_path / "new.nc", hourly("2020-01-01", 1), style="new")
    before = open_files()
    first, second = open_netcdf(path), open_netcdf(path)
    assert open_files() == before + 1
    first.close()
    first.close()  # a second close of a view changes nothing
    assert open_files() == before + 1
    np.testing.assert_allclose(second["r"][0, 0].values, known_values(second["valid_time"].values[:1], LAT, LON)[0])
    second.close()
    assert open_files() == before


def test_a_file_rewritten_since_it_was_opened_is_opened_afresh(tmp_path):
    times = hourly("2020-01-01", 1)
    path = write_era5(tmp_path / "era5.nc", times, style="new")
    old = open_netcdf(path)
    write_era5(tmp_path / "rewritten.nc", times, style="new", values=np.zeros((len(times), 1, len(LAT), len(LON))))
    (tmp_path / "rewritten.nc").replace(path)
    new = open_netcdf(path)
    assert float(new["r"].max()) == 0.0 and float(old["r"].max()) > 0.0
    old.close()
    new.close()
