"""Data-parallel training on several machines: tf.distribute.MultiWorkerMirroredStrategy.

Every worker runs the same training loop on the same data with the same seeds, so all of
them build identical weights and walk the same shuffled order. Each global batch is split
by rows (worker w takes rows w, w + W, ...); each worker computes gradients on its rows,
the gradients are averaged across workers by collective all-reduce (embedding gradients
stay sparse: only the touched rows travel, all-gathered), and every worker applies the same
update, so the weights stay identical without a parameter server. The cluster comes from
`TF_CONFIG`; only the chief (worker 0) writes the artifact.

What it does not do: embedding tables are replicated on every worker (see docs/SCALING.md
for ParameterServerStrategy when they outgrow one machine), and the in-batch softmax sees
only each worker's own rows as negatives.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from recsys.artifacts.errors import ConfigError


@dataclass
class Cluster:
    strategy: tf.distribute.Strategy
    index: int      # this worker's task index
    workers: int    # number of workers

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def read_tf_config(environ=os.environ) -> tuple[int, int]:
    """(task index, number of workers) from TF_CONFIG; ConfigError with one line when unusable."""
    text = environ.get("TF_CONFIG")
    if not text:
        raise ConfigError('--distributed needs TF_CONFIG, e.g. {"cluster": {"worker": ["host1:port", '
                          '"host2:port"]}, "task": {"type": "worker", "index": 0}}')
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"TF_CONFIG is not a cluster spec with cluster.worker and task.index ({e})") from None
    if not isinstance(workers, list) or not workers or not all(isinstance(w, str) for w in workers):
        raise ConfigError("TF_CONFIG: cluster.worker must be a non-empty list of host:port strings")
    if set(config["cluster"]) - {"worker"}:
        raise ConfigError("TF_CONFIG: only `worker` tasks are used (MultiWorkerMirroredStrategy has no "
                          "chief, ps or evaluator tasks here)")
    if task.get("type") != "worker" or not 0 <= index < len(workers):
        raise ConfigError(f"TF_CONFIG: task must be a worker with index in 0..{len(workers) - 1}")
    return index, len(workers)


def connect() -> Cluster:
    """Join the cluster TF_CONFIG describes (blocks until every worker is up)."""
    index, workers = read_tf_config()
    return Cluster(tf.distribute.MultiWorkerMirroredStrategy(), index, workers)


def check_same_data(cluster: Cluster, fingerprint: str) -> None:
    """ConfigError unless every worker loaded the same data set: different files would give
    different vocabularies, hence different weight shapes, and the collectives would hang."""
    mine = tf.constant([int(fingerprint[:15], 16)], tf.int64)  # 60 bits of the data's sha256

    @tf.function
    def gather():
        return cluster.strategy.run(lambda: tf.distribute.get_replica_context().all_gather(mine, axis=0))

    everyone = gather().numpy().tolist()
    if len(set(everyone)) != 1:
        raise ConfigError(f"worker {cluster.index}: the workers loaded different data sets (fingerprints "
                          f"{[format(f, '015x') for f in everyone]}); give every worker the same --data")


def barrier(cluster: Cluster) -> None:
    """Return once every worker has called this (a one-number all-reduce). Called after the chief
    has written the version, so no worker leaves while the chief still works: TensorFlow would
    log the early leaver as a lost worker on the chief's stderr."""
    one = tf.constant([1], tf.int32)

    @tf.function
    def meet():
        return cluster.strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("sum", one))

    meet()


def shard(batch: dict[str, np.ndarray], index: int, workers: int) -> dict[str, np.ndarray]:
    """This worker's rows of a global batch: rows index, index + workers, ..."""
    return {k: v[index::workers] for k, v in batch.items()}


def all_reduce_mean(values):
    """Average a list of tensors / IndexedSlices (None kept) over the workers, in replica context."""
    ctx = tf.distribute.get_replica_context()
    present = [i for i, v in enumerate(values) if v is not None]
    reduced = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, [values[i] for i in present])
    out = list(values)
    for i, v in zip(present, reduced):
        out[i] = v
    return out


def fingerprint(weights) -> str:
    """sha256 of all weights' bytes: equal on every worker when they trained one model."""
    h = hashlib.sha256()
    for w in weights:
        h.update(np.ascontiguousarray(np.asarray(w)).tobytes())
    return h.hexdigest()
