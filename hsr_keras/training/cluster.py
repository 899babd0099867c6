"""The cluster of a multi-worker run, read from the `TF_CONFIG` environment variable; imports nothing heavy.

`tf.distribute.MultiWorkerMirroredStrategy` reads `TF_CONFIG` itself, but a wrong one makes it
wait for workers that never come or fail deep in gRPC; here it is checked first, in one line
that says what to fix (`TrainingError`, exit status 2), and it tells the trainer whether this
process is the chief, the one worker that writes the run folder (docs/scale.md).

A `TF_CONFIG` looks like::

    {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}

The chief is the task of type "chief" when the cluster has one, else worker 0 (TensorFlow's rule).
"""

import json
import os
from dataclasses import dataclass

from hsr_keras.training.run_folder import TrainingError

TF_CONFIG = "TF_CONFIG"
TASK_TYPES = ("chief", "worker")


@dataclass(frozen=True)
class Task:
    """This process in the cluster: its type, its index, the number of workers and whether it is the chief."""

    type: str
    index: int
    workers: int

    @property
    def chief(self):
        return self.type == "chief" or (self.type == "worker" and self.index == 0 and not self._has_chief)

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
