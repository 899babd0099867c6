"""The built-in demo data: synthetic ERA5-like files and their TFRecord build, made by the builder's own commands.

`python -m hsr_keras.fit` without `--data` (and `compare`, `tune`, the notebook) trains on
six months of synthetic humidity: four to train on, one to validate, one to test. They are
made the way a user makes data, by running `python -m tfrecords_builder synthetic` and then
`python -m tfrecords_builder` in a child process: `hsr_keras` knows the builder only through
its commands and its data contract (`tfrecords_builder.contract`).
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from hsr_keras.training.run_folder import TrainingError
from tfrecords_builder.contract.console import EXIT_BAD_INPUT, EXIT_INTERRUPTED
from tfrecords_builder.contract.schema import MANIFEST_NAME

# Six months of synthetic files, four months to train on, one to validate, one to test.
DEMO_DATES = {
    "synthetic": ("2019-01-01", "2019-06-30"),
    "train": "2019-01-01:2019-04-30",
    "val": "2019-05-01:2019-05-31",
    "test": "2019-06-01:2019-06-30",
}
SPLITS = ("train", "val", "test")


def make_demo_data(folder, verbose=True):
    """Synthetic ERA5-like netCDF and its TFRecord build under `folder` (reused when present).

    Returns the build folder, `folder/tfrecords`. `verbose` shows the builder's progress bars
    and summary. Raises `TrainingError` with the builder's one-line error when it fails.
    """
    folder = Path(folder)
    tfrecords = folder / "tfrecords"
    if (tfrecords / MANIFEST_NAME).exists():
        return tfrecords
    era5 = folder / "era5"
    start, end = DEMO_DATES["synthetic"]
    if not any(era5.glob("*.nc")):
        run_builder(
            ["synthetic", "--out", str(era5), "--start", start, "--end", end, "--interval-hours", "3", "--seed", "0"],
            verbose,
        )
    splits = [f"--{split}={DEMO_DATES[split]}" for split in SPLITS]
    run_builder([str(era5), "--out", str(tfrecords), *splits, *([] if verbose else ["--quiet"])], verbose)
    return tfrecords


def run_builder(argv, verbose=True):
    """`python -m tfrecords_builder *argv` in a child process; its output shown when `verbose`, else kept.

    The child finds the builder where this process does, installed or not. Its exit status
    carries over: 2 (bad input) as a `TrainingError` with its message, 130 as an interrupt.
    """
    root = str(Path(importlib.util.find_spec("tfrecords_builder").origin).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "tfrecords_builder", *argv]
    kept = None if verbose else subprocess.PIPE
    done = subprocess.run(command, env=env, stdout=kept, stderr=kept, text=True)
    if done.returncode == 0:
        return
    if done.returncode == EXIT_INTERRUPTED:
        raise KeyboardInterrupt
    said = (done.stderr or "").strip().splitlines()
    message = said[-1].removeprefix("error: ") if said else "see the builder's message above"
    if done.returncode == EXIT_BAD_INPUT:
        raise TrainingError(f"making the demo data under {argv[argv.index('--out') + 1]}: {message}")
    raise RuntimeError(f"{' '.join(command)} failed with exit status {done.returncode}: {message}")
