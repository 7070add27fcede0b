"""Firefly's two steps on a neighbourhood: optimise directions, score gates.

Step one trains the directions (split deltas, new units' incoming and
outgoing weights) with every gate at `epsilon`, so the over-grown net is as
good as it can be near the current one; each direction stays inside its
norm ball. Step two scores every candidate by the integrated gradient of
the loss along its gate,

    s_i = epsilon * (1/n) * sum_{k=1..n} dL/de_i at e = (k/n) * epsilon,

the right Riemann sum of the integral of dL/de_i from 0 to epsilon (all
gates move together). `n = 1` is the single endpoint gradient of the
reference code. With many points the scores add up to the loss change of
switching every candidate on (integrated gradients' completeness), so each
s_i estimates candidate i's share of it: the more negative, the better.
BatchNormalization runs in inference mode throughout.
"""

import keras
import numpy as np
import tensorflow as tf


def loss_function(model):
    """The model's compiled loss as a callable `(y, logits) -> scalar`."""
    loss = getattr(model, "loss", None)
    if loss is None:
        raise ValueError(
            "Firefly scores candidates with the model's loss; compile the "
            "model before fitting."
        )
    return keras.losses.get(loss)


def batches(dataset):
    """An endless iterator of (images, sparse labels) from a tf.data dataset."""
    for batch in dataset.repeat():
        x, y = batch[0], batch[1]
        yield x, tf.reshape(y, [-1])


class DescentSteps:
    """Compiled step-one and scoring functions for one neighbourhood.

    Args:
        neighbourhood: a `WidthNeighbourhood` (or any object with
            `logits(x, gates)`, `params`, `project()`, `candidates`).
        loss_fn: callable `(y, logits) -> scalar`.
        epsilon: float. The gate value of step one and the end of the path.
        learning_rate: float. Adam's, for the directions.
        score_points: int. n, the points along each gate's path.
        jit_compile: bool. Whether to compile the steps with XLA.
    """

    def __init__(
        self,
        neighbourhood,
        loss_fn,
        *,
        epsilon,
        learning_rate,
        score_points,
        jit_compile,
    ):
        self.neighbourhood = neighbourhood
        self.epsilon = float(epsilon)
        self.score_points = int(score_points)
        count = len(neighbourhood.candidates)
        params = neighbourhood.params
        optimizer = keras.optimizers.Adam(learning_rate)
        optimizer.build(params)
        full = tf.fill([count], self.epsilon)

        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, neighbourhood.logits(x, full))
            optimizer.apply(tape.gradient(loss, params), params)
            return loss

        def score_step(x, y):
            total = tf.zeros([count])
            points = float(self.score_points)
            # A graph loop (not unrolled): one trace whatever n is.
            for k in tf.range(1.0, points + 1.0):
                gates = full * (k / points)
                with tf.GradientTape() as tape:
                    tape.watch(gates)
                    loss = loss_fn(y, neighbourhood.logits(x, gates))
                total += tape.gradient(loss, gates)
            return total * (self.epsilon / self.score_points)

        def loss_at(x, y, gates):
            return loss_fn(y, neighbourhood.logits(x, gates))

        self._train = tf.function(train_step, jit_compile=jit_compile)
        self._score = tf.function(score_step, jit_compile=jit_compile)
        self._loss = tf.function(loss_at, jit_compile=jit_compile)

    def optimise(self, data, steps):
        """Step one: `steps` Adam steps on the directions, projected.

        Returns:
            list of float. The over-grown loss at each step.
        """
        losses = []
        for _ in range(steps):
            x, y = next(data)
            losses.append(float(self._train(x, y)))
            self.neighbourhood.project()
        return losses

    def scores(self, data, num_batches):
        """Step two: the mean integrated-gradient score over batches.

        Returns:
            np.ndarray of shape (candidates,).
        """
        total = np.zeros(len(self.neighbourhood.candidates))
        for _ in range(num_batches):
            x, y = next(data)
            total += self._score(x, y).numpy()
        return total / num_batches

    def loss(self, x, y, gates):
        """The over-grown net's loss on one batch at `gates`."""
        return float(self._loss(x, y, tf.constant(gates, tf.float32)))
