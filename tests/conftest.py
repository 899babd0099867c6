"""Shared test setup: quiet TensorFlow, two logical CPU devices, seeds and precision reset, and the test data.

The builds and runs the tests share are made once per test process (session fixtures) by the
helpers of `tiny_build` and `tiny_runs`; tests that change one work on a copy.
"""

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices so MirroredStrategy can be tested without a GPU. This must
# happen before TensorFlow's runtime starts, hence at import time of the conftest.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

# A real ERA5 file as the CDS delivers it, kept in the repository (see tests/data/README.md).
REAL_ERA5 = Path(__file__).resolve().parent / "data" / "era5" / "met-accf-pl.nc"


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Every test starts from the same seed (Python, numpy, the backend) and the float32 policy."""
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def real_era5():
    if not REAL_ERA5.exists():
        pytest.fail(f"the real ERA5 sample is missing: {REAL_ERA5} (see tests/data/README.md)")
    return REAL_ERA5


@pytest.fixture
def read_only_folder(tmp_path):
    """An existing folder nothing can be written into, whoever runs the tests.

    File modes do not stop root (CI runs as root), so for root this is `/sys`, which the
    kernel keeps read-only for everyone; otherwise a temporary folder without write permission.
    """
    if os.geteuid() == 0:
        yield Path("/sys")
        return
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    yield folder
    folder.chmod(0o700)


@pytest.fixture
def small_disk(tmp_path):
    """`mount(size)`: a new folder on a tmpfs of `size` (e.g. "300k"), a disk that really fills; unmounted after.

    Mounting needs root; elsewhere the test is skipped (the injected-fault tests of the same
    cases run everywhere). `fill(folder, leave)` takes all but `leave` bytes of its disk.
    """
    mounted = []

    def mount(size):
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root")
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder, leave):
    """Write `folder`/filler until `leave` bytes of its disk are free; delete it to free the space again."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    (Path(folder) / "filler").write_bytes(bytes(max(free - leave, 0)))
    return Path(folder) / "filler"


@pytest.fixture
def dead_pid():
    """The id of a process that has exited (and been reaped): what a killed writer leaves in its temporaries."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def live_pid():
    """The id of a process that runs while the test does."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


# ----------------------------------------------------------------------------- shared data


@pytest.fixture(scope="session")
def small_build(tmp_path_factory):
    """Synthetic files and their scale-8 build (12 train days, 4 val days): what training tests train on."""
    from tiny_runs import make_build

    return make_build(tmp_path_factory.mktemp("small_build"))


@pytest.fixture(scope="session")
def search_build(tmp_path_factory):
    """A tiny scale-4 build of random fields, one shard per split: what a search's trials train on."""
    from tiny_runs import write_build

    return write_build(tmp_path_factory.mktemp("search") / "tfrecords")


@pytest.fixture(scope="session")
def search_base_file(tmp_path_factory):
    """The base config file of a tiny search (`tiny_runs.TINY_SEARCH`)."""
    import json

    from tiny_runs import TINY_SEARCH

    path = tmp_path_factory.mktemp("search_base") / "base.json"
    path.write_text(json.dumps(TINY_SEARCH))
    return path


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A scale-4 build with a two-month test split, a noisy paper generator as a fit folder, an SRCNN `.keras`."""
    from tiny_build import make_tiny

    return make_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def sharded_build(tmp_path_factory):
    """A tiny build whose test split has 4 shards of one day each (for damaged-shard tests: use the copy)."""
    from tiny_build import make_sharded_build

    return make_sharded_build(tmp_path_factory.mktemp("shards"))


@pytest.fixture
def sharded_build_copy(sharded_build, tmp_path):
    """A copy of `sharded_build` a test may damage."""
    import shutil

    return Path(shutil.copytree(sharded_build, tmp_path / "data"))


@pytest.fixture(scope="session")
def predict_setup(tmp_path_factory):
    """A fit folder of a tiny generator (scale 8) and one day of synthetic LR input on its 2-degree grid."""
    from test_export import make_fit_folder

    from tfrecords_builder import synthetic

    root = tmp_path_factory.mktemp("predict-faults")
    fit = make_fit_folder(root / "fit")
    grid = dict(lat_bounds=(30.0, 44.0), lon_bounds=(100.0, 114.0), resolution=2.0, levels=(300,))
    lr = synthetic.write_synthetic(root / "lr", "2019-01-01", "2019-01-01", per="all", interval_hours=3, **grid)[0]
    return {"fit": fit, "lr": lr}
