"""Where a WGAN-GP iteration's time goes: each part of the training step timed on its own.

For one preset and batch size, under the Keras backend of KERAS_BACKEND (JAX or TensorFlow),
times each component as its own compiled function (`jax.jit`, or `tf.function` with the
`jit_compile` that `fit` resolves to), on synthetic days of the paper's shapes (LR 8x8, HR
64x64, 8 steps a day): the median over `--repeats` calls after `--warmup` calls:

  G forward              the generator in training mode (the critic update makes fakes with it)
  G forward+backward     gradient of the L1 content loss with respect to G's weights
  D forward              the critic on HR days
  D forward+backward     gradient of the mean score with respect to D's weights
  penalty                D forward, its gradient with respect to the input, and the gradient of
                         the penalty with respect to D's weights (the double backward)
  G Adam / D Adam        one optimizer update of each network's weights
  of which: ...          layout parts, timed alone at their real shapes (forward+backward):
                         G's PixelShuffle stages (reshape-transpose-reshape), G's and D's ConvGRU
                         (the loop over time)

and a whole iteration (`train_on_batch`: critic update with the penalty, then generator
update). Each component's share is its time times its calls per iteration (critic_steps x
G forward, 2 x critic_steps + 1 x D forward+backward: real, fake, and the generator's
adversarial term) over the whole iteration; "rest" is what the sum leaves (losses, metrics,
dispatch; negative when the fused step beats its separately compiled parts).

Each backend runs in its own process. `--baseline REV` also runs the code of a git revision
(`git archive` of hsr_keras/ and tfrecords_builder/ into a temporary folder, put first on
PYTHONPATH), alternating the runs, to compare before and after a change on one machine:

    PYTHONPATH=. python benchmarks/bench_components.py                      # demo, both backends
    PYTHONPATH=. python benchmarks/bench_components.py --preset paper --batch-size 1 --repeats 3
    PYTHONPATH=. python benchmarks/bench_components.py --baseline main --backends jax
"""

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ("jax", "tensorflow")
LR_SHAPE, HR_SHAPE = (8, 8, 8, 1), (8, 64, 64, 1)


def median_ms(fn, warmup, repeats):
    """Median wall time of `fn()` in milliseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def layer_inputs(model, layers, x):
    """The arrays each of `layers` receives when `model` runs on `x` (inference mode)."""
    import keras

    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    outputs = probe(x, training=False)
    return [keras.ops.convert_to_numpy(out) for out in (outputs if len(layers) > 1 else [outputs])]


class JaxParts:
    """Components as `jax.jit` functions of the networks' stateless calls."""

    def __init__(self, gan):
        import jax

        self.jax = jax
        self.gan = gan

    @staticmethod
    def _state(model):
        return [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]

    def _run(self, fn, *args):
        compiled = self.jax.jit(fn)
        return lambda: self.jax.block_until_ready(compiled(*args))

    def forward(self, model, x):
        trainable, fixed = self._state(model)
        return self._run(lambda t, n, x: model.stateless_call(t, n, x, training=True)[0], trainable, fixed, x)

    def forward_backward(self, model, x, loss):
        trainable, fixed = self._state(model)

        def objective(t, n, x):
            return loss(model.stateless_call(t, n, x, training=True)[0])

        return self._run(self.jax.grad(objective), trainable, fixed, x)

    def penalty(self, critic, x_hat, penalty):
        trainable, fixed = self._state(critic)

        def score_sum(x, t, n):
            return self.jax.numpy.sum(critic.stateless_call(t, n, x, training=True)[0].astype("float32"))

        def objective(t, n, x):
            return penalty(self.jax.grad(score_sum)(x, t, n))

        return self._run(self.jax.grad(objective), trainable, fixed, x_hat)

    def optimizer(self, optimizer, model):
        trainable, _ = self._state(model)
        grads = [self.jax.numpy.full_like(w, 1e-3) for w in trainable]
        values = [v.value for v in optimizer.variables]
        return self._run(lambda v, g, t: optimizer.stateless_apply(v, g, t), values, grads, trainable)

    def layer_forward_backward(self, layer, x):
        trainable, fixed = self._state(layer)

        kwargs = {"training": True} if "training" in inspect.signature(layer.call).parameters else {}

        def objective(t, x):
            out = layer.stateless_call(t, fixed, x, **kwargs)[0]
            return self.jax.numpy.sum(out.astype("float32"))

        return self._run(self.jax.grad(objective, argnums=(0, 1)), trainable, x)


class TensorFlowParts:
    """Components as `tf.function`s with gradient tapes, compiled as `fit` compiles its step."""

    def __init__(self, gan):
        import tensorflow as tf

        self.tf = tf
        self.gan = gan
        self.jit_compile = bool(gan.jit_compile)

    def _run(self, fn, *args):
        compiled = self.tf.function(fn, jit_compile=self.jit_compile)
        # The penalty has no gradient for the score's bias: None leaves are skipped.
        return lambda: [t.numpy() for t in self.tf.nest.flatten(compiled(*args)) if t is not None]

    def forward(self, model, x):
        return self._run(lambda x: model(x, training=True), x)

    def forward_backward(self, model, x, loss):
        def fn(x):
            with self.tf.GradientTape() as tape:
                value = loss(model(x, training=True))
            return tape.gradient(value, model.trainable_variables)

        return self._run(fn, x)

    def penalty(self, critic, x_hat, penalty):
        tf = self.tf

        def fn(x):
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    score = tf.reduce_sum(tf.cast(critic(x, training=True), "float32"))
                value = penalty(inner.gradient(score, x))
            return outer.gradient(value, critic.trainable_variables)

        return self._run(fn, x_hat)

    def optimizer(self, optimizer, model):
        grads = [self.tf.fill(w.shape, 1e-3) for w in model.trainable_variables]

        def fn():
            optimizer.apply(grads, model.trainable_variables)
            return optimizer.iterations

        return self._run(fn)

    def layer_forward_backward(self, layer, x):
        tf = self.tf

        def fn(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = tf.reduce_sum(tf.cast(layer(x, training=True), "float32"))
            return tape.gradient(value, [x] + layer.trainable_variables)

        return self._run(fn, x)


def measure(preset, batch_size, warmup, repeats, precision):
    """Every component in this process, under the current backend: a JSON-ready dict."""
    import keras
    import numpy as np
    from keras import ops

    from hsr_keras.layers import ConvGRU, PixelShuffle
    from hsr_keras.models import losses
    from hsr_keras.training.config import PRESETS
    from hsr_keras.training.trainer import build_gan

    backend = keras.backend.backend()
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(precision)
    config = PRESETS[preset].replace(batch_size=batch_size, precision=precision)
    manifest = {"scale": 8, "stats": {"mean": 55.0, "std": 25.0}}
    gan = build_gan(config, manifest, steps_per_epoch=100)
    generator, critic = gan.generator, gan.critic
    rng = np.random.default_rng(0)
    lr = rng.uniform(0, 100, (batch_size, *LR_SHAPE)).astype("float32")
    hr = rng.uniform(0, 100, (batch_size, *HR_SHAPE)).astype("float32")
    parts = JaxParts(gan) if backend == "jax" else TensorFlowParts(gan)

    def content(fake):
        return ops.mean(losses.content_l1(fake, ops.convert_to_tensor(hr), 25.0))

    def score(out):
        return ops.mean(ops.cast(out, "float32"))

    def penalty(grads):
        return ops.mean(losses.gradient_penalty(grads))

    c = config.critic_steps
    g_passes, d_passes = c + 1, 3 * c + 1  # forward passes of each network per iteration
    components = [
        ("G forward", c, parts.forward(generator, lr)),
        ("G forward+backward", 1, parts.forward_backward(generator, lr, content)),
        ("D forward+backward", 2 * c + 1, parts.forward_backward(critic, hr, score)),
        ("penalty (double backward)", c, parts.penalty(critic, hr, penalty)),
        ("G Adam update", 1, parts.optimizer(gan.g_optimizer, generator)),
        ("D Adam update", c, parts.optimizer(gan.d_optimizer, critic)),
    ]
    extra = [("D forward", 0, parts.forward(critic, hr))]
    shuffles = [layer for layer in generator.layers if isinstance(layer, PixelShuffle)]
    layout = []
    for name, model, wanted, passes in [
        ("G PixelShuffle stages", generator, shuffles, g_passes),
        ("G ConvGRU", generator, [generator.get_layer("conv_gru")], g_passes),
        ("D ConvGRU", critic, [critic.get_layer("conv_gru")], d_passes),
    ]:
        if not wanted or not isinstance(wanted[0], (PixelShuffle, ConvGRU)):
            continue
        inputs = layer_inputs(model, wanted, lr if model is generator else hr)
        fns = [parts.layer_forward_backward(layer, x) for layer, x in zip(wanted, inputs)]
        layout.append((name, passes, lambda fns=fns: [fn() for fn in fns]))

    rows = []
    for kind, group in (("component", components), ("extra", extra), ("layout", layout)):
        for name, calls, fn in group:
            rows.append({"kind": kind, "name": name, "calls": calls, "ms": median_ms(fn, warmup, repeats)})

    def iteration():
        logs = gan.train_on_batch(lr, hr, return_dict=True)
        float(logs["g_loss"])  # wait for the step to finish

    whole = median_ms(iteration, warmup, repeats)
    keras.mixed_precision.set_global_policy("float32")
    return {
        "backend": backend,
        "preset": preset,
        "batch": batch_size,
        "precision": precision,
        "iteration_ms": whole,
        "rows": rows,
        "jit_compile": bool(gan.jit_compile),
        "versions": f"keras {keras.__version__}",
    }


def format_table(result, label=""):
    whole = result["iteration_ms"]
    head = (
        f"{label}{result['backend']}, preset {result['preset']}, batch {result['batch']}, {result['precision']}"
        f" (jit_compile={result['jit_compile']}; {result['versions']})"
    )
    lines = [head, f"{'component':<28} {'ms/call':>9} {'calls':>6} {'ms/iter':>9} {'share':>7}"]
    total = 0.0
    for row in result["rows"]:
        per_iteration = row["ms"] * row["calls"]
        prefix = "  of which " if row["kind"] == "layout" else ""
        share = f"{100 * per_iteration / whole:6.1f}%" if row["calls"] else "      -"
        lines.append(f"{prefix + row['name']:<28} {row['ms']:9.2f} {row['calls']:>6} {per_iteration:9.2f} {share}")
        if row["kind"] == "component":
            total += per_iteration
    lines.append(f"{'sum of components':<28} {'':>9} {'':>6} {total:9.2f} {100 * total / whole:6.1f}%")
    lines.append(f"{'rest':<28} {'':>9} {'':>6} {whole - total:9.2f} {100 * (whole - total) / whole:6.1f}%")
    lines.append(f"{'whole iteration':<28} {whole:9.2f} {1:>6} {whole:9.2f} {100.0:6.1f}%")
    lines.append(f"{'days/s':<28} {result['batch'] / whole * 1000:9.2f}")
    return "\n".join(lines)


def export_revision(revision, folder):
    """hsr_keras/ and tfrecords_builder/ of a git revision, written under `folder`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "hsr_keras", "tfrecords_builder"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_isolated(backend, code, args):
    """`measure` in a fresh process with `backend` and `code` (a folder) first on PYTHONPATH."""
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join([str(code), str(REPO)])}
    if backend == "jax":
        env.setdefault("JAX_PLATFORMS", "cpu")
    one = [args.preset, args.batch_size, args.warmup, args.repeats, args.precision]
    proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(one)], env=env, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"{backend} run failed:\n{proc.stderr[-3000:]}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo", help="a preset of hsr_keras.training.config.PRESETS. Default: demo")
    parser.add_argument("--batch-size", type=int, default=8, help="Default: 8")
    parser.add_argument("--precision", default="float32", help="Default: float32")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (compilation). Default: 2")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls; the median is shown. Default: 10")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="Default: both")
    parser.add_argument("--baseline", help="a git revision whose code runs too, for a before/after comparison")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one run in this process, as JSON
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.repeats < 1:
        parser.error("--warmup and --repeats must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.one:
        # A functional model called with a bare array instead of its named input's structure warns.
        warnings.filterwarnings("ignore", "The structure of `inputs` doesn't match")
        print(json.dumps(measure(*json.loads(args.one))))
        return 0
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; medians of {args.repeats} calls after {args.warmup}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        codes = [("current", REPO)]
        if args.baseline:
            codes.insert(0, (args.baseline, export_revision(args.baseline, Path(tmp))))
        for backend in args.backends:
            for label, code in codes:
                result = run_isolated(backend, code, args)
                result["code"] = label
                results.append(result)
                print("\n" + format_table(result, f"[{label}] "), flush=True)
            if args.baseline:
                before, after = results[-2]["iteration_ms"], results[-1]["iteration_ms"]
                print(f"\n{backend}: whole iteration {before:.1f} -> {after:.1f} ms ({before / after:.2f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
