"""`--strategy data-parallel`: Keras' DataParallel under JAX over two fake CPU devices or two processes, and its refusals.

This session runs the TensorFlow backend and JAX sees its devices once per process, so the JAX
runs are subprocesses: `XLA_FLAGS=--xla_force_host_platform_device_count=2` (set before JAX is
imported) gives one process two CPU devices; two processes join through `KERAS_DISTRIBUTION_*`.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_multi_worker import finish, fit_argv, generator_weights, start_fit
from tiny_runs import write_config

from hsr_keras import fit
from hsr_keras.training import cluster
from hsr_keras.training.run_folder import TrainingError

ROOT = Path(__file__).resolve().parent.parent
TWO_DEVICES = "--xla_force_host_platform_device_count=2"
ENV_NAMES = (cluster.JOB_ADDRESSES, cluster.NUM_PROCESSES, cluster.PROCESS_ID)


def jax_env(devices_flag=None, **extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    for name in (*ENV_NAMES, "XLA_FLAGS"):
        env.pop(name, None)
    if devices_flag:
        env["XLA_FLAGS"] = devices_flag
    return {**env, **extra}


# ----------------------------------------------------------------------------- one process, two devices


def two_device_worker(folder):
    """In a subprocess with two CPU devices: the same tiny run on one device and data-parallel on both."""
    import jax

    from hsr_keras.models.model_files import load_generator
    from hsr_keras.training import trainer
    from hsr_keras.training.config import PRESETS
    from tfrecords_builder import in_memory

    data = in_memory.synthetic_arrays(
        "2019-01-01",
        "2019-01-10",
        train="2019-01-01:2019-01-08",
        val="2019-01-09:2019-01-10",
        test="none",
        lat=(40.0, 43.75),
        lon=(110.0, 113.75),
        interval_hours=3,
    )
    # The demo config's networks, small: stem noise and a residual block's batch norm included.
    config = PRESETS["demo"].replace(
        filters=8,
        num_res_blocks=1,
        upsample_filters=8,
        num_post_blocks=0,
        se_ratio=4,
        critic_filters=8,
        critic_res_blocks=0,
        critic_post_blocks=0,
        batch_size=2,
        epochs=2,
        plot_every=2,
        plot_samples=2,
        loss_weights={"lattice": 0.0},
    )
    weights = {}
    for strategy in ("default", "data-parallel"):
        result = trainer.train(config, data, folder / strategy, strategy=strategy, verbose=0)
        weights[strategy] = [np.asarray(w) for w in load_generator(result["generator_path"]).get_weights()]
        np.savetxt(folder / f"{strategy}.csv", np.loadtxt(folder / strategy / "history.csv", delimiter=",", skiprows=1))
    np.savez(
        folder / "weights.npz",
        devices=len(jax.devices()),
        **{f"{s}_{i}": w for s, ws in weights.items() for i, w in enumerate(ws)},
    )


@pytest.mark.slow  # two tiny runs of two epochs: about a minute on 2 CPU cores
def test_two_devices_train_as_one_device_on_the_global_batch(tmp_path):
    pytest.importorskip("jax")
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_data_parallel as t; "
    code += f"from pathlib import Path; t.two_device_worker(Path({str(tmp_path)!r}))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=jax_env(TWO_DEVICES), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    saved = np.load(tmp_path / "weights.npz")
    assert int(saved["devices"]) == 2
    one = [saved[k] for k in sorted((k for k in saved if k.startswith("default_")), key=lambda k: int(k[8:]))]
    two = [saved[k] for k in sorted((k for k in saved if k.startswith("data-parallel_")), key=lambda k: int(k[14:]))]
    assert len(one) == len(two) > 0
    # Measured: within 1.5e-8 (float32 sums in another order). JAX computes the global batch as one
    # program: the batch norm's statistics and the stem noise are those of one device.
    for a, b in zip(one, two, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        np.loadtxt(tmp_path / "default.csv"), np.loadtxt(tmp_path / "data-parallel.csv"), rtol=1e-4, atol=1e-6
    )


# ----------------------------------------------------------------------------- refusals


def test_data_parallel_under_tensorflow_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert fit.main(["--out", str(out), "--strategy", "data-parallel", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "needs KERAS_BACKEND=jax" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize(
    "flag, extra, message",
    [
        (TWO_DEVICES, {}, "does not split evenly over the 2 devices"),
        (
            None,
            {cluster.NUM_PROCESSES: "2"},
            "KERAS_DISTRIBUTION_JOB_ADDRESSES and KERAS_DISTRIBUTION_PROCESS_ID not set",
        ),
    ],
)
def test_a_bad_data_parallel_run_is_one_line_and_writes_nothing(tmp_path, flag, extra, message):
    pytest.importorskip("jax")
    out = tmp_path / "out"
    argv = ["--out", str(out), "--strategy", "data-parallel", "--batch-size", "3", "--quiet"]
    code, _, err = finish(start_fit(argv, jax_env(flag, **extra)), timeout=300)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()  # the demo data neither


@pytest.mark.parametrize(
    "values, message",
    [
        (("localhost:1",), "not set"),
        (("localhost:1", "two", "0"), "KERAS_DISTRIBUTION_NUM_PROCESSES must be a whole number"),
        (("localhost:1", "2", "2"), "must be one of 0..KERAS_DISTRIBUTION_NUM_PROCESSES-1"),
        (("localhost", "2", "0"), "must be host:port"),
        (("a:1,b:1,c:1", "2", "1"), "must be host:port"),
    ],
)
def test_odd_distribution_variables_are_refused(values, message):
    with pytest.raises(TrainingError, match=message.replace(".", r"\.")):
        cluster.read_processes(dict(zip(ENV_NAMES, values)))


def test_processes_are_read_from_the_keras_variables():
    assert cluster.read_processes({}) is None
    assert cluster.read_processes(dict(zip(ENV_NAMES, ("a:1", "1", "0")))) is None  # one process
    task = cluster.read_processes(dict(zip(ENV_NAMES, ("a:1,b:1", "2", "1"))))
    assert (task.type, task.index, task.workers, task.chief, task.name) == ("process", 1, 2, False, "process 1")
    assert cluster.read_processes(dict(zip(ENV_NAMES, ("a:1", "2", "0")))).chief


# ----------------------------------------------------------------------------- two processes


@pytest.fixture(scope="module")
def two_process_runs(small_build, tmp_path_factory):
    """Two processes (one CPU device each, global batch 4) and one process; their folders and outputs."""
    pytest.importorskip("jax")
    folder = tmp_path_factory.mktemp("processes")
    config = write_config(folder / "tiny.json", noise_stddev=0.0, num_res_blocks=0, epochs=2)
    port = cluster.free_ports(1)[0]
    outs = [folder / "chief", folder / "other"]
    processes = [
        start_fit(
            fit_argv(small_build, config, out, "data-parallel"),
            jax_env(None, **dict(zip(ENV_NAMES, (f"localhost:{port}", "2", str(i))))),
        )
        for i, out in enumerate(outs)
    ]
    results = [finish(p, timeout=600) for p in processes]
    single = folder / "single"
    results.append(finish(start_fit(fit_argv(small_build, config, single, "default"), jax_env()), timeout=600))
    return outs + [single], results


@pytest.mark.slow
def test_two_processes_train_and_only_process_0_writes(two_process_runs):
    (chief, other, _), results = two_process_runs
    for code, _, err in results:
        assert code == 0, err[-4000:]
    assert "process 1 done: the chief writes" in results[1][1]
    assert not other.exists()
    assert (chief / "evaluation.json").exists() and not (chief / "backup").exists()


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="measured: the generator weights of 2 processes differ from 1 process by up to 4e-4 after 6 steps "
    "(one process with 2 devices: 1.5e-8); cause not found (docs/scale.md)",
)
def test_two_processes_train_as_one_process_on_the_global_batch(two_process_runs):
    (chief, _, single), results = two_process_runs
    assert all(code == 0 for code, _, _ in results)
    for a, b in zip(generator_weights(single), generator_weights(chief), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_help_lists_data_parallel(capsys):
    with pytest.raises(SystemExit):
        fit.main(["--help"])
    assert any(line.strip().startswith("data-parallel ") for line in capsys.readouterr().out.splitlines())
