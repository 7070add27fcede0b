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
