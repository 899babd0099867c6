"""The processes of a run across processes, read from environment variables; imports nothing heavy.

`--strategy multi-worker` (TensorFlow) reads `TF_CONFIG` (`read_task`); `--strategy
data-parallel` (JAX) reads Keras' `KERAS_DISTRIBUTION_*` variables (`read_processes`).

`tf.distribute.MultiWorkerMirroredStrategy` reads `TF_CONFIG` itself, but a wrong one makes it
wait for workers that never come or fail deep in gRPC; here it is checked first, in one line
that says what to fix (`TrainingError`, exit status 2), and it tells the trainer whether this
process is the chief, the one worker that writes the run folder (docs/scale.md).

A `TF_CONFIG` looks like::

    {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}

The chief is the task of type "chief" when the cluster has one, else worker 0 (TensorFlow's rule).

A JAX run across processes sets, on every process (docs/scale.md)::

    KERAS_DISTRIBUTION_JOB_ADDRESSES=host1:12345,host2:12345   # the first is the coordinator
    KERAS_DISTRIBUTION_NUM_PROCESSES=2
    KERAS_DISTRIBUTION_PROCESS_ID=0                            # 1 on host2

Process 0 is the chief. Without the three variables the run is one process.
"""

import json
import os
from dataclasses import dataclass

from hsr_keras.training.run_folder import TrainingError

TF_CONFIG = "TF_CONFIG"
TASK_TYPES = ("chief", "worker")
JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"


# The strategies that run on one Keras backend only: (backend, what they are).
BACKENDS = {
    "multi-worker": ("tensorflow", "TensorFlow's MultiWorkerMirroredStrategy"),
    "data-parallel": ("jax", "Keras' DataParallel over JAX devices"),
}


def check_backend(strategy, backend):
    """`TrainingError` (one line) when `strategy` does not run on the Keras `backend` of this process."""
    needed, what = BACKENDS.get(strategy, (backend, None))
    if backend != needed:
        other = "; under TensorFlow use 'mirrored' or 'multi-worker'" if needed == "jax" else ""
        raise TrainingError(
            f"--strategy {strategy} is {what}: it needs KERAS_BACKEND={needed} (this process runs {backend}{other})"
        )


@dataclass(frozen=True)
class Task:
    """This process in the cluster: its type ("chief", "worker" or JAX's "process"), its index, the number of
    workers and whether it is the chief."""

    type: str
    index: int
    workers: int

    @property
    def chief(self):
        return self.type == "chief" or (self.index == 0 and not self._has_chief)

    _has_chief: bool = False

    @property
    def name(self):
        return f"{self.type} {self.index}"


def read_task(environ=None):
    """This process's `Task` from `TF_CONFIG`; `TrainingError` when it is missing or names this worker wrongly."""
    environ = os.environ if environ is None else environ
    text = environ.get(TF_CONFIG)
    if not text:
        raise TrainingError(
            f"--strategy multi-worker needs the {TF_CONFIG} environment variable describing the cluster and this "
            "worker (see docs/scale.md)"
        )
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise TrainingError(f"{TF_CONFIG} is not JSON ({err.msg} at character {err.pos}): see docs/scale.md") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise TrainingError(f'{TF_CONFIG} needs a "cluster" and a "task" object. Received: {TF_CONFIG}={text}')
    unknown = sorted(set(cluster) - set(TASK_TYPES))
    if unknown or not all(isinstance(v, list) and v for v in cluster.values()):
        raise TrainingError(
            f"{TF_CONFIG}'s cluster must map 'chief' and 'worker' to lists of host:port. Received: cluster={cluster}"
        )
    kind, index = task.get("type"), task.get("index")
    if (
        kind not in cluster
        or not isinstance(index, int)
        or isinstance(index, bool)
        or not 0 <= index < len(cluster[kind])
    ):
        hosts = {k: len(v) for k, v in cluster.items()}
        raise TrainingError(
            f"{TF_CONFIG}'s task names no member of its cluster ({hosts}): task={task}; give this worker its "
            "own type and index"
        )
    workers = sum(len(v) for v in cluster.values())
    return Task(kind, index, workers, _has_chief="chief" in cluster)


def read_processes(environ=None):
    """This process of a JAX run across processes (a `Task` of type "process"), or None for one process.

    Reads `KERAS_DISTRIBUTION_JOB_ADDRESSES`, `_NUM_PROCESSES` and `_PROCESS_ID` (the variables
    `keras.distribution.initialize` reads); `TrainingError` when some are set and others not, or
    when they disagree. A count of 1 is one process.
    """
    environ = os.environ if environ is None else environ
    names = (JOB_ADDRESSES, NUM_PROCESSES, PROCESS_ID)
    values = {name: environ.get(name, "").strip() for name in names}
    if not any(values.values()):
        return None
    missing = [name for name in names if not values[name]]
    if missing:
        raise TrainingError(
            f"--strategy data-parallel across processes needs {', '.join(names)} on every process; "
            f"{' and '.join(missing)} not set (see docs/scale.md)"
        )
    count, index = _whole(NUM_PROCESSES, values[NUM_PROCESSES]), _whole(PROCESS_ID, values[PROCESS_ID])
    if count < 1 or not 0 <= index < count:
        raise TrainingError(
            f"{PROCESS_ID} must be one of 0..{NUM_PROCESSES}-1 and {NUM_PROCESSES} at least 1. Received: "
            f"{NUM_PROCESSES}={count}, {PROCESS_ID}={index}"
        )
    addresses = values[JOB_ADDRESSES].split(",")
    if len(addresses) not in (1, count) or not all(_is_address(a) for a in addresses):
        raise TrainingError(
            f"{JOB_ADDRESSES} must be host:port of the coordinator (process 0), or of all {count} processes, "
            f"comma-separated. Received: {JOB_ADDRESSES}={values[JOB_ADDRESSES]}"
        )
    return None if count == 1 else Task("process", index, count)


def _whole(name, text):
    try:
        return int(text)
    except ValueError:
        raise TrainingError(f"{name} must be a whole number. Received: {name}={text}") from None


def _is_address(text):
    host, _, port = text.strip().rpartition(":")
    return bool(host) and port.isdigit()


def free_ports(count):
    """`count` TCP ports free on localhost now: for several processes of one run on one host."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def local_tf_config(ports, index):
    """The `TF_CONFIG` of worker `index` of a cluster of workers on localhost `ports` (worker 0 the chief)."""
    return json.dumps(
        {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    )
