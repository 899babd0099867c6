"""The exit-code policy and the filter that keeps TensorFlow's native start-up lines off stderr."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tfrecords_builder.contract import console
from tfrecords_builder.contract.errors import BuildError, InputError

ROOT = Path(__file__).resolve().parents[1]

NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1795994873.804092    5155 port.cc:153] oneDNN custom operations are on.",
    b"I0000 00:00:1795994873.804413    5155 cudart_stub.cc:31] Could not find cuda drivers on your machine",
    b"E0000 00:00:1795994926.977822    6096 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow",
    b"E0000 00:00:1795998912.123456    7001 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: Mutation::Apply",
]
KEPT = [
    b"E0000 00:00:1795994926.977822    6096 tfrecord_writer.cc:52] disk full",
    b"F0000 00:00:1.0  1 core.cc:1] Check failed: shape",
    b"error: the shard train-00000-of-00001 is truncated",
    b"Traceback (most recent call last):",
]


@pytest.mark.parametrize("line", NOISE)
def test_noise_pattern_drops_startup_lines(line):
    assert console.NATIVE_NOISE.match(line)


@pytest.mark.parametrize("line", KEPT)
def test_noise_pattern_keeps_everything_else(line):
    assert not console.NATIVE_NOISE.match(line)


def _stderr_of(code, env=None):
    import os

    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=300,
    )
    return run.returncode, run.stderr


STARTUP = """
    import os, sys
    from tfrecords_builder.contract.console import quiet_native_logs
    {install}
    import tensorflow as tf
    tf.constant(1.0) + 1.0
    print("a python line", file=sys.stderr)
    os.write(2, b"E0000 00:00:1.0  1 real.cc:1] a real native error\\n")
    raise SystemExit(3)
"""


def test_filter_drops_tensorflow_startup_and_keeps_the_rest():
    code, err = _stderr_of(STARTUP.format(install="quiet_native_logs()"))
    assert code == 3
    assert err.splitlines() == ["a python line", "E0000 00:00:1.0  1 real.cc:1] a real native error"]


def test_without_the_filter_tensorflow_is_noisy():
    # The reason the filter exists: the same start-up without it prints native lines that no
    # environment variable of TensorFlow 2.21 silences (TF_CPP_MIN_LOG_LEVEL=2 is set here).
    code, err = _stderr_of(STARTUP.format(install=""), env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    assert code == 3
    noisy = [line for line in err.splitlines() if console.NATIVE_NOISE.match(line.encode())]
    if not noisy:
        pytest.skip("this TensorFlow build printed no native start-up lines")
    assert "a python line" in err


def test_tracebacks_still_reach_stderr():
    code, err = _stderr_of(
        """
        from tfrecords_builder.contract.console import quiet_native_logs
        quiet_native_logs()
        import tensorflow
        raise RuntimeError("a bug")
        """
    )
    assert code == 1
    assert "Traceback (most recent call last)" in err and "RuntimeError: a bug" in err


def test_run_command_exit_codes(capsys):
    def body(result):
        if isinstance(result, BaseException):
            raise result
        return result

    assert console.run_command(body, 0) == 0
    assert console.run_command(body, None) == 0
    assert console.run_command(body, BuildError("no  such\n variable")) == 2
    assert capsys.readouterr().err == "error: no such variable\n"
    assert console.run_command(body, InputError("bad")) == 2
    assert console.run_command(body, PermissionError(13, "Permission denied", "/ro")) == 2
    assert "Permission denied: '/ro'" in capsys.readouterr().err
    assert console.run_command(body, KeyboardInterrupt()) == 130
    assert capsys.readouterr().err == "interrupted: nothing was published\n"
    with pytest.raises(RuntimeError):  # a bug keeps its traceback (exit 1 from Python)
        console.run_command(body, RuntimeError("bug"))
