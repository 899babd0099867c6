"""`--strategy multi-worker`: MultiWorkerMirroredStrategy across local processes, and its refusals.

The training tests start real processes (`python -m hsr_keras.fit`), two workers on free
localhost ports, since a strategy's collectives are set up once per process (and this test
process already has two logical CPU devices).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import history_rows, write_config

from hsr_keras import fit
from hsr_keras.training import cluster

ROOT = Path(__file__).resolve().parent.parent
# Deterministic networks: no stem noise; no residual block (the generator's batch norm would
# normalise each worker's half batch by its own statistics, not the global batch's).
EXACT = dict(noise_stddev=0.0, num_res_blocks=0, epochs=2)


def fit_argv(build, config, out, strategy):
    return ["--data", str(build), "--config", str(config), "--out", str(out), "--strategy", strategy, "--quiet"]


def start(argv, tf_config_value=None, scratch=None):
    """`python -m hsr_keras.fit argv` as a process; its temporary folders under `scratch` (a killed worker leaves its own)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    if scratch is not None:
        scratch.mkdir(exist_ok=True)
        env["TMPDIR"] = str(scratch)
    env.pop("TF_CONFIG", None)
    if tf_config_value is not None:
        env["TF_CONFIG"] = tf_config_value
    return start_fit(argv, env)


def start_fit(argv, env):
    """`python -m hsr_keras.fit argv` as a process with the environment `env`, its output kept."""
    command = [sys.executable, "-m", "hsr_keras.fit", *argv]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process, timeout=600):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return process.returncode, out, err


def run_workers(build, config, outs):
    """Two workers, each with its own --out (worker 0 is the chief); returns their (code, stdout, stderr)."""
    ports = cluster.free_ports(2)
    workers = [
        start(fit_argv(build, config, out, "multi-worker"), cluster.local_tf_config(ports, i))
        for i, out in enumerate(outs)
    ]
    return [finish(w) for w in workers]


def generator_weights(out):
    from hsr_keras.models.model_files import load_generator

    return load_generator(out / "generator.keras").get_weights()


@pytest.mark.slow
def test_two_workers_train_as_one_process_on_the_global_batch(small_build, tmp_path):
    # The config's batch_size (4) is the global batch: each worker takes 2 samples of it.
    config = write_config(tmp_path / "tiny.json", **EXACT)
    chief, other = tmp_path / "chief", tmp_path / "other"
    results = run_workers(small_build, config, [chief, other])
    for code, _, err in results:
        assert code == 0, err
    assert "worker 1 done" in results[1][1]
    assert not other.exists()  # the other worker wrote nothing in its --out
    assert (chief / "evaluation.json").exists() and not (chief / "backup").exists()

    single = tmp_path / "single"
    code, _, err = finish(start(fit_argv(small_build, config, single, "default")))
    assert code == 0, err
    # Measured: weights within 1.5e-8 (float32 sums in another order); the logged losses within 6e-5 relative.
    for a, b in zip(generator_weights(single), generator_weights(chief), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    one, two = (np.loadtxt(out / "history.csv", delimiter=",", skiprows=1) for out in (single, chief))
    np.testing.assert_allclose(one, two, rtol=1e-3, atol=1e-6)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "value, message",
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{cluster: 1}", "TF_CONFIG is not JSON"),
        (json.dumps({"cluster": {"worker": ["localhost:1"]}}), 'needs a "cluster" and a "task" object'),
        (
            json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}),
            "names no member",
        ),
        (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}), "names no member"),
        (json.dumps({"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}), "'chief' and 'worker'"),
    ],
)
def test_a_wrong_tf_config_is_one_line_and_writes_nothing(small_build, tmp_path, capsys, monkeypatch, value, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if value is not None:
        monkeypatch.setenv("TF_CONFIG", value)
    out = tmp_path / "out"
    code = fit.main(fit_argv(small_build, write_config(tmp_path / "tiny.json"), out, "multi-worker"))
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_multi_worker_needs_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", cluster.local_tf_config([1], 0))
    out = tmp_path / "out"
    assert fit.main(["--out", str(out), "--strategy", "multi-worker", "--quiet"]) == 2
    assert "give --data" in capsys.readouterr().err
    assert not out.exists()


def test_multi_worker_under_jax_is_refused(small_build, tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "jax", "TF_CONFIG": cluster.local_tf_config([1], 0)}
    argv = fit_argv(small_build, write_config(tmp_path / "tiny.json"), out, "multi-worker")
    done = subprocess.run([sys.executable, "-m", "hsr_keras.fit", *argv], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "needs KERAS_BACKEND=tensorflow" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_the_chief_is_worker_0_unless_the_cluster_has_one():
    workers = {"worker": ["a:1", "b:1"]}
    task = cluster.read_task({"TF_CONFIG": json.dumps({"cluster": workers, "task": {"type": "worker", "index": 0}})})
    assert task.chief and task.workers == 2 and task.name == "worker 0"
    with_chief = {"chief": ["c:1"], **workers}
    task = cluster.read_task({"TF_CONFIG": json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})})
    assert not task.chief and task.workers == 3
    task = cluster.read_task({"TF_CONFIG": json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}})})
    assert task.chief


def test_help_lists_the_strategies_one_line_each(capsys):
    with pytest.raises(SystemExit):
        fit.main(["--help"])
    lines = capsys.readouterr().out.splitlines()
    for name in ("default", "mirrored", "multi-worker"):
        assert any(line.strip().startswith(f"{name} ") for line in lines), name


@pytest.mark.slow
def test_a_killed_worker_resumes_with_the_chief_from_the_backup(small_build, tmp_path):
    # Both workers see the same --out (a shared folder): the other worker restores the chief's backup.
    import time

    config = write_config(tmp_path / "tiny.json", **{**EXACT, "epochs": 4})
    out = tmp_path / "run"
    ports = cluster.free_ports(2)
    workers = [
        start(fit_argv(small_build, config, out, "multi-worker"), cluster.local_tf_config(ports, i), tmp_path / "tmp")
        for i in range(2)
    ]
    metadata = out / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 300
    while not metadata.exists() and time.monotonic() < deadline and workers[0].poll() is None:
        time.sleep(0.1)
    assert metadata.exists(), finish(workers[0])[2]
    for worker in reversed(workers):  # the other worker dies; the job is restarted, the chief with it
        worker.kill()
        worker.wait()
    backed_up = json.loads(metadata.read_text())["epoch"]
    assert 1 <= backed_up < 4

    ports = cluster.free_ports(2)
    workers = [
        start(fit_argv(small_build, config, out, "multi-worker"), cluster.local_tf_config(ports, i), tmp_path / "tmp")
        for i in range(2)
    ]
    for code, _, err in [finish(w, timeout=300) for w in workers]:
        assert code == 0, err
    assert [row["epoch"] for row in history_rows(out)] == ["0", "1", "2", "3"]
    assert (out / "evaluation.json").exists() and not (out / "backup").exists()
