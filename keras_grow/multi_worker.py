"""Several workers: Keras' `fit` under `MultiWorkerMirroredStrategy`, and
the chief's word on growth.

Keras 3.15's TensorFlow trainer fails in the first step of `fit` under
`tf.distribute.MultiWorkerMirroredStrategy` (keras-team/keras#20585), in
two places, both for bookkeeping and not for training:

1. Before the first step it builds the model from a batch that it
   all-reduces across workers (`strategy.reduce("MEAN", batch)`); the
   collective cannot take the per-replica batch of a one-device worker.
   A `GrowableModel` builds from this worker's own first batch instead
   (`first_local_batch`): only its shapes matter.
2. After each step it averages the logged scalars across workers with
   `strategy.reduce("MEAN", value, axis=0)`, an axis a scalar lacks. A
   `GrowableModel` logs each scalar as a vector of one element under
   several workers (`one_element_logs`), which that reduction averages
   across workers into the scalar Keras expects.

The gradients were never the problem: Keras' optimizer all-reduces them,
so every worker applies the same update. What keeps the workers one model
through growth is that every growth decision, and every value it puts
into the grown net, is the same on each: Firefly's scores and GradMax's
and TINY's measures are averaged across workers, and a grown body starts
from the chief's weights (`from_chief`), whatever the method computed on
each worker's own data.

Every function here is the identity on one worker, so none of it costs
anything without several.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_grow import keras_compat


def is_multi_worker(strategy):
    """Whether `strategy` spans several worker processes."""
    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and strategy.num_replicas_in_sync > len(strategy.extended.worker_devices)


def is_chief(strategy):
    """Whether this process is the chief: the `chief` task where the cluster
    has one, else worker 0 (the worker that writes checkpoints and exports,
    as in Keras' own multi-worker callbacks). True on one worker."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return not has_chief and resolver.task_type == "worker" and resolver.task_id == 0


def first_local_batch(batch, strategy):
    """This worker's first replica's part of a distributed `batch`: what a
    model is built from (workaround 1 of the module docstring)."""

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return keras.tree.map_structure(local, batch)


def one_element_logs(logs, strategy):
    """`logs` (a train or test step's scalars) as vectors of one element
    under several workers, so that Keras' cross-worker `"MEAN"` reduction
    along axis 0 averages them (workaround 2 of the module docstring);
    unchanged otherwise."""
    if not is_multi_worker(strategy):
        return logs

    def vector(value):
        value = tf.convert_to_tensor(value)
        return tf.reshape(value, [1]) if value.shape.rank == 0 else value

    return keras.tree.map_structure(vector, logs)


def reduce_over_replicas(strategy, arrays, op, contribute):
    """The sum or mean over `strategy`'s replicas of what each contributes,
    in one collective, on every worker (the one cross-replica reduction of
    keras_grow: `from_chief`, `mean_across_workers` and Firefly's
    `mean_over_replicas` are rules for `contribute`).

    Args:
        strategy: a `tf.distribute.Strategy`.
        arrays: list of np.ndarray: the shapes and dtypes of the result.
        op: `tf.distribute.ReduceOp.SUM` or `MEAN`.
        contribute: `(replica_id, flat) -> flat vector`, where `flat` is
            `arrays` flattened into one float64 vector (exact for float32
            and for integers below 2**53).

    Returns:
        list of np.ndarray shaped and typed like `arrays`.
    """
    flat = np.concatenate([a.astype(np.float64).ravel() for a in arrays])

    def local(context):
        return tf.constant(contribute(context.replica_id_in_sync_group, flat))

    per_replica = strategy.experimental_distribute_values_from_function(local)
    reduced = strategy.reduce(op, per_replica, axis=None).numpy()
    ends = np.cumsum([a.size for a in arrays])[:-1]
    return [
        part.reshape(a.shape).astype(a.dtype)
        for part, a in zip(np.split(reduced, ends), arrays)
    ]


def from_chief(arrays, strategy):
    """The chief's `arrays` on every worker (a broadcast: an all-reduce
    to which only replica 0, on the chief, contributes).

    Args:
        arrays: list of array-likes, the same shapes and dtypes on every
            worker.
        strategy: a `tf.distribute.Strategy`.

    Returns:
        list of np.ndarray: `arrays` unchanged on one worker.
    """
    arrays = [np.asarray(a) for a in arrays]
    if not is_multi_worker(strategy) or not arrays:
        return arrays
    return reduce_over_replicas(
        strategy,
        arrays,
        tf.distribute.ReduceOp.SUM,
        lambda replica, a: a if replica == 0 else np.zeros_like(a),
    )


def assign_from_chief(variables, strategy):
    """Sets `variables` (the same list on every worker) to the chief's
    values: how a grown body starts the same on every worker, whatever a
    growth method computed from each worker's own data. Nothing on one
    worker."""
    if not is_multi_worker(strategy):
        return
    values = from_chief([v.numpy() for v in variables], strategy)
    for variable, value in zip(variables, values):
        variable.assign(value)


def mean_across_workers(arrays, strategy):
    """The mean over workers of `arrays` (each worker's own measurement on
    its own data, the same shapes everywhere) as float64 numpy arrays on
    every worker: how measures that decide or set a growth (BN statistics,
    GradMax's and TINY's gradient correlations) become one measure on the
    union of the workers' batches. Unchanged (as float64) on one worker."""
    arrays = [np.asarray(a, np.float64) for a in arrays]
    if not is_multi_worker(strategy) or not arrays:
        return arrays
    return reduce_over_replicas(
        strategy, arrays, tf.distribute.ReduceOp.MEAN, lambda _, a: a
    )


class MultiWorkerSteps(keras_compat.SymbolicBuildBatch):
    """Mixin for a `keras.Model`: the two workarounds of the module
    docstring as its step and build hooks (the identity on one worker)."""

    def symbolic_build_batch(self, iterator):
        if not is_multi_worker(self.distribute_strategy):
            return None
        for _, _, batches in iterator:
            return first_local_batch(next(batches), self.distribute_strategy)
        return None

    def train_step(self, data):
        return one_element_logs(super().train_step(data), self.distribute_strategy)

    def test_step(self, data):
        return one_element_logs(super().test_step(data), self.distribute_strategy)
