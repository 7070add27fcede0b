"""keras_grow.multi_worker in one process: the identity on one worker, and
the reductions it builds on, under two replicas (conftest's two logical
CPUs). The two-process runs are in tests/test_two_workers.py (nightly)."""

import numpy as np
import tensorflow as tf

from keras_grow import multi_worker


def test_one_worker_is_chief_and_changes_nothing(mirrored_strategy):
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array(7)]
    for strategy in (tf.distribute.get_strategy(), mirrored_strategy):
        assert not multi_worker.is_multi_worker(strategy)
        assert multi_worker.is_chief(strategy)
        same = multi_worker.from_chief(arrays, strategy)
        assert [a.dtype for a in same] == [np.float32, arrays[1].dtype]
        for a, b in zip(same, arrays):
            np.testing.assert_array_equal(a, b)
        means = multi_worker.mean_across_workers(arrays, strategy)
        assert all(m.dtype == np.float64 for m in means)
        logs = {"loss": tf.constant(1.5)}
        assert multi_worker.one_element_logs(logs, strategy) is logs


def test_reduce_takes_each_replicas_part_and_restores_shapes(mirrored_strategy):
    arrays = [
        np.arange(6, dtype=np.float32).reshape(2, 3) + 0.25,
        np.array([3, -4], dtype=np.int64),
    ]
    # from_chief's rule: only replica 0 contributes to a sum.
    chief = multi_worker.reduce_over_replicas(
        mirrored_strategy,
        arrays,
        tf.distribute.ReduceOp.SUM,
        lambda replica, flat: flat if replica == 0 else np.zeros_like(flat),
    )
    for got, want in zip(chief, arrays):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    # mean_across_workers' rule: every replica its own values.
    mean = multi_worker.reduce_over_replicas(
        mirrored_strategy,
        arrays,
        tf.distribute.ReduceOp.MEAN,
        lambda replica, flat: flat * (1 + 2 * replica),  # x1 and x3
    )
    for got, want in zip(mean, arrays):
        np.testing.assert_array_equal(got, (want * 2).astype(want.dtype))


def test_first_local_batch_is_the_first_replicas_part(mirrored_strategy):
    images = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
    labels = np.arange(8)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    batch = next(iter(mirrored_strategy.experimental_distribute_dataset(data)))
    x, y = multi_worker.first_local_batch(batch, mirrored_strategy)
    np.testing.assert_array_equal(x.numpy(), images[:4])
    np.testing.assert_array_equal(y.numpy(), labels[:4])
    plain = (tf.constant(images), tf.constant(labels))
    assert multi_worker.first_local_batch(plain, mirrored_strategy) == plain
