"""Whether the batch a train step just read held non-finite numbers.

`GrowthGuard` asks after a non-finite loss right after a growth: a NaN in
the data makes the same loss, and rolling the growth back would blame it
for the data. The count lives in a sync-on-read variable, so under a
`tf.distribute` strategy each replica counts its own part of the batch
and reading it sums them.
"""

import tensorflow as tf


class FiniteInputs:
    """Counts the non-finite entries of each train step's batch.

    Kept out of Keras' and TensorFlow's tracking (a plain object holding
    the variable), so saved and exported models do not see it.
    """

    def __init__(self):
        self._count = tf.Variable(
            0.0,
            trainable=False,
            name="nonfinite_inputs",
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.SUM,
        )

    def record(self, data):
        """Inside a train step: counts NaN and infinities in the float
        tensors of `data` (inputs, labels, sample weights)."""
        counts = [
            tf.reduce_sum(tf.cast(~tf.math.is_finite(t), tf.float32))
            for t in tf.nest.flatten(data)
            if tf.is_tensor(t) and t.dtype.is_floating
        ]
        self._count.assign(tf.add_n(counts) if counts else 0.0)

    def last_batch(self):
        """int. Non-finite entries of the last batch trained on."""
        return int(self._count.numpy())


class WatchedInputs:
    """Mixin for a `keras.Model`: while watched, each train step counts the
    non-finite entries of its batch."""

    _finite_inputs = None

    def watch_inputs(self, watch=True):
        """Makes each train step count the non-finite entries of its batch
        (read with `nonfinite_inputs()`); `GrowthGuard` turns it on so
        that it does not blame a growth for NaN in the data. Takes effect
        at the next trace of the train step (every growth makes one)."""
        if watch and self._finite_inputs is None:
            with self.distribute_strategy.scope():
                self._finite_inputs = FiniteInputs()
        elif not watch:
            self._finite_inputs = None

    def nonfinite_inputs(self):
        """int or `None`. Non-finite entries (NaN, inf) in the inputs,
        labels and sample weights of the last batch trained on; `None`
        unless `watch_inputs()` is on."""
        if self._finite_inputs is None:
            return None
        return self._finite_inputs.last_batch()

    def train_step(self, data):
        if self._finite_inputs is not None:
            self._finite_inputs.record(data)
        return super().train_step(data)
