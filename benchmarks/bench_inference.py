"""What users of a trained model pay: days per second through `predict`, the SavedModel and aligned bicubic.

Three ways to super-resolve a year of demo-size days (8 steps of 8 x 8 LR points -> 64 x 64):

- `predict`: `python -m hsr_keras.predict` on a year of LR netCDF, timed as a whole process
  (start-up, reading, tiles, writing the CF netCDF), with the SavedModel and with the `.keras`;
- the SavedModel as TF Serving uses it: a fresh process that loads it with TensorFlow alone and
  calls its signature, at batch 1 and 32, float32 and bfloat16 weights, with and without XLA
  (`jit_compile`) for the serving function;
- aligned bicubic interpolation (`hsr_keras.scoring.interpolation`), the baseline, in numpy.

The generator is the `demo` preset's, untrained (speed does not depend on the weights). Medians
of `--repeats`, after a warm-up call:

    PYTHONPATH=. python benchmarks/bench_inference.py --out /tmp/bench-inference --repeats 5
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
# The demo region on its LR grid: 8 x 8 points 2 degrees apart (the model's 0.25 degrees x 8).
LR_REGION = dict(lat_bounds=(37.0, 51.0), lon_bounds=(105.0, 119.0), resolution=2.0, interval_hours=3)

SERVE = """
import json, statistics, sys, time
import numpy as np, tensorflow as tf
folder, batch, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start = time.perf_counter()
signature = tf.saved_model.load(folder).signatures["serving_default"]
loaded = time.perf_counter() - start
lr = tf.constant(np.random.default_rng(0).uniform(0, 100, (batch, 8, 8, 8, 1)).astype("float32"))
start = time.perf_counter()
signature(lr=lr)["hr"].numpy()
first = time.perf_counter() - start
times = []
for _ in range(repeats):
    start = time.perf_counter()
    signature(lr=lr)["hr"].numpy()
    times.append(time.perf_counter() - start)
print(json.dumps({"load_s": loaded, "first_call_s": first, "call_s": statistics.median(times)}))
"""


def make_model(work):
    """The demo preset's generator as `.keras`, a build manifest for it, and its exports."""
    import keras

    from hsr_keras.models.networks import build_networks
    from hsr_keras.serving.saved_model import export
    from hsr_keras.training.config import PRESETS
    from hsr_keras.training.demo_data import make_demo_data

    data = make_demo_data(work / "data", verbose=False)
    manifest = json.loads((data / "manifest.json").read_text())
    exports = {}
    for precision in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(precision)
        keras.utils.set_random_seed(0)
        generator, _ = build_networks(
            PRESETS["demo"], manifest["scale"], manifest["stats"]["mean"], manifest["stats"]["std"]
        )
        path = work / f"generator-{precision}.keras"
        generator.save(path)
        exports[precision], _, _ = export(path, data, out=work / "saved_models", name=precision)
    keras.mixed_precision.set_global_policy("float32")
    exports["float32 + XLA"] = jit_export(work / "generator-float32.keras", data, work / "saved_models" / "xla" / "1")
    return data, work / "generator-float32.keras", exports


def jit_export(generator_path, data, folder):
    """The float32 export with an XLA-compiled serving function (the same graph, `jit_compile=True`)."""
    import tensorflow as tf

    from hsr_keras.models import model_files
    from hsr_keras.models.model_files import INPUT_NAME, SIGNATURE
    from hsr_keras.serving.saved_model import serving_function

    model = model_files.load_generator(generator_path)
    plain = serving_function(model)
    serve = tf.function(
        plain.python_function,
        input_signature=[tf.TensorSpec([None, None, None, None, 1], tf.float32, name=INPUT_NAME)],
        jit_compile=True,
    )
    root = tf.Module()
    root.generator_variables = list(serve.get_concrete_function().variables)
    root.serve = serve
    tf.saved_model.save(root, str(folder), signatures={SIGNATURE: serve})
    return folder


def serve_in_fresh_process(folder, batch, repeats):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # TensorFlow alone, as TF Serving
    done = subprocess.run(
        [sys.executable, "-c", SERVE, str(folder), str(batch), str(repeats)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_predict(lr_file, model, manifest, out, repeats):
    argv = [sys.executable, "-m", "hsr_keras.predict", str(lr_file), "--model", str(model), "--out", str(out)]
    argv += ["--overwrite", "--quiet"] + (["--manifest", str(manifest)] if manifest else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, env=env, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_bicubic(days, repeats):
    import numpy as np

    from hsr_keras.scoring.interpolation import upsample_aligned

    lr = np.random.default_rng(0).uniform(0, 100, (days, 8, 8, 8))
    lr_lat, lr_lon = np.arange(8) * 2.0, np.arange(8) * 2.0
    hr_lat, hr_lon = np.arange(64) * 0.25, np.arange(64) * 0.25
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        upsample_aligned(lr, lr_lat, lr_lon, hr_lat, hr_lon, "bicubic")
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="/tmp/bench-inference", help="work folder (data, models, outputs)")
    parser.add_argument("--days", type=int, default=365, help="days of LR data for predict and bicubic")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)

    import numpy as np

    from tfrecords_builder.synthetic import write_synthetic

    data, keras_model, exports = make_model(work)
    end = str(np.datetime64("2019-01-01") + np.timedelta64(args.days - 1, "D"))
    lr_file = work / "lr" / "year.nc"
    if not lr_file.exists():
        import xarray as xr

        (written,) = write_synthetic(work / "lr", "2019-01-01", end, per="all", seed=1, **LR_REGION)
        # On the 2-degree grid some synthetic days hold more ice-supersaturated air than predict's
        # plausibility band lets through; speed does not depend on the values, so they are capped.
        with xr.open_dataset(written) as ds:
            capped = ds.load().assign(r=ds["r"].clip(0.0, 125.0))
        capped.to_netcdf(lr_file)
        written.unlink()

    rows = []
    for name, folder in exports.items():
        for batch in (1, 32):
            got = serve_in_fresh_process(folder, batch, args.repeats)
            rows.append((f"SavedModel {name}, batch {batch}", batch / got["call_s"], got))
    for label, model, manifest in (
        ("predict, SavedModel", exports["float32"], None),
        ("predict, .keras", keras_model, data),
    ):
        seconds = time_predict(lr_file, model, manifest, work / "hr.nc", args.repeats)
        rows.append((f"{label} (whole process, {args.days} days)", args.days / seconds, {"process_s": seconds}))
    seconds = time_bicubic(args.days, args.repeats)
    rows.append((f"aligned bicubic, numpy ({args.days} days at once)", args.days / seconds, {"call_s": seconds}))

    print(f"\n{'what':<58} {'days/s':>10}  details")
    for label, rate, details in rows:
        shown = ", ".join(f"{k} {v:.3g}" for k, v in details.items())
        print(f"{label:<58} {rate:>10.1f}  {shown}")


if __name__ == "__main__":
    main()
