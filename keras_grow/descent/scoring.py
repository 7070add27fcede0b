"""Firefly's two steps on a neighbourhood: optimise directions, score gates.

Step one trains the directions (split deltas, new units' incoming and
outgoing weights) with every gate at `epsilon`, so the over-grown net is as
good as it can be near the current one; each direction stays inside its
norm ball. Step two scores every candidate by the integrated gradient of
the loss along its gate,

    s_i = epsilon_i * (1/n) * sum_{k=1..n} dL/de_i at e = (k/n) * epsilon,

the right Riemann sum of the integral of dL/de_i from 0 to epsilon_i (all
gates move together along the straight path to the vector of steps
`epsilon`; a split's step differs from a new unit's, see
`keras_grow.descent.gate_ends`). `n = 1` is the single endpoint gradient of the
reference code. With many points the scores add up to the loss change of
switching every candidate on (integrated gradients' completeness), so each
s_i estimates candidate i's share of it: the more negative, the better.
BatchNormalization runs in inference mode throughout.
"""

import numpy as np
import tensorflow as tf

from keras_grow import losses
from keras_grow import multi_worker


def loss_function(model):
    """The model's compiled loss as `(y, logits, sample_weight) -> scalar`
    (see `keras_grow.losses.compiled_loss`)."""
    return losses.compiled_loss(model, "Firefly")


def batches(dataset, skip=0):
    """An endless iterator of (images, labels, sample weights) from a
    tf.data dataset, after the first `skip` batches of its repetition.
    Labels are as the dataset holds them (the compiled loss reads them);
    the weights are the dataset's, or ones (`keras_grow.losses.batch_parts`),
    so growth scores the objective `fit` trains."""
    for batch in dataset.repeat().skip(skip):
        yield losses.batch_parts(batch)


def mean_over_replicas(strategy, values):
    """The mean over all replicas of `strategy` of `values`, an array each
    replica (each worker, under `MultiWorkerMirroredStrategy`) computed.

    Growth decisions made from the result are the same on every worker,
    even where hardware nondeterminism made the local scores differ in
    their last bits. With one replica, `values` unchanged.

    Args:
        strategy: a `tf.distribute.Strategy`.
        values: array-like, or a callable `replica_id -> array` giving each
            replica's own values.

    Returns:
        np.ndarray of float64, the shape of `values`.
    """
    local = values if callable(values) else (lambda replica: values)
    if strategy.num_replicas_in_sync == 1:
        return np.asarray(local(0), np.float64)
    [mean] = multi_worker.reduce_over_replicas(
        strategy,
        [np.asarray(local(0), np.float64)],
        tf.distribute.ReduceOp.MEAN,
        lambda replica, _: np.asarray(local(replica), np.float64).ravel(),
    )
    return mean


def _slots(variables):
    """Two zero slots per variable, of its shape as traces see it (unknown
    axes stay unknown, so that the slots can follow a resized variable)."""
    return [
        tuple(tf.Variable(tf.zeros_like(v), shape=v.shape) for _ in range(2))
        for v in variables
    ]


def _reset(variables, slots):
    for variable, pair in zip(variables, slots):
        for slot in pair:
            slot.assign(tf.zeros_like(variable))


class FusedAdam:
    """Adam with one fused kernel per variable, for step one's directions.

    The update of `keras.optimizers.Adam` (bias-corrected, `epsilon` outside
    the root), written with `ResourceApplyAdam`: one op per variable instead
    of Keras' score of them, which made tracing step one twice as slow
    (docs/benchmarks.md). Only for the TensorFlow backend, like the rest of
    `keras_grow.descent`.

    Args:
        variables: list of `keras.Variable` or `tf.Variable`.
        learning_rate: float.
    """

    def __init__(
        self, variables, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7
    ):
        self.variables = [getattr(v, "value", v) for v in variables]
        self.learning_rate = float(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.iterations = tf.Variable(0.0, trainable=False)
        self._slots = _slots(self.variables)

    def reset(self):
        """Forgets every step taken, for variables that may have changed
        size since."""
        self.iterations.assign(0.0)
        _reset(self.variables, self._slots)

    def apply(self, gradients):
        """One Adam step on every variable."""
        step = self.iterations.assign_add(1.0)
        beta_1_power = tf.pow(self.beta_1, step)
        beta_2_power = tf.pow(self.beta_2, step)
        for variable, (m, v), gradient in zip(self.variables, self._slots, gradients):
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle,
                m=m.handle,
                v=v.handle,
                beta1_power=beta_1_power,
                beta2_power=beta_2_power,
                lr=self.learning_rate,
                beta1=self.beta_1,
                beta2=self.beta_2,
                epsilon=self.epsilon,
                grad=gradient,
            )


class FusedRMSprop:
    """RMSprop with momentum, one fused kernel per variable: the Firefly
    authors' step-one optimiser (PyTorch's `RMSprop(lr, momentum=0.1,
    alpha=0.9)`). TensorFlow's kernel adds `epsilon` (1e-8) inside the
    root, PyTorch outside: the same steps unless gradients vanish."""

    def __init__(self, variables, learning_rate, rho=0.9, momentum=0.1, epsilon=1e-8):
        self.variables = [getattr(v, "value", v) for v in variables]
        self.learning_rate = float(learning_rate)
        self.rho, self.momentum, self.epsilon = rho, momentum, epsilon
        self._slots = _slots(self.variables)

    def reset(self):
        """Forgets every step taken, for variables that may have changed
        size since."""
        _reset(self.variables, self._slots)

    def apply(self, gradients):
        """One RMSprop step on every variable."""
        for variable, (ms, mom), gradient in zip(
            self.variables, self._slots, gradients
        ):
            tf.raw_ops.ResourceApplyRMSProp(
                var=variable.handle,
                ms=ms.handle,
                mom=mom.handle,
                lr=self.learning_rate,
                rho=self.rho,
                momentum=self.momentum,
                epsilon=self.epsilon,
                grad=gradient,
            )


STEP_ONE_OPTIMIZERS = {"adam": FusedAdam, "rmsprop": FusedRMSprop}


class DescentSteps:
    """Compiled step-one and scoring functions for one neighbourhood.

    Args:
        neighbourhood: a `WidthNeighbourhood` (or any object with
            `logits(x, gates)`, `params`, `project()`, `candidates`).
        loss_fn: callable `(y, logits, sample_weight) -> scalar`.
        epsilon: float, or array of one float per candidate. The gate
            values of step one and the ends of the scoring path.
        learning_rate: float. The step-one optimiser's, for the directions.
        optimizer: str. `"adam"` or `"rmsprop"` (`STEP_ONE_OPTIMIZERS`).
        score_points: int. n, the points along each gate's path.
        jit_compile: bool. Whether to compile the steps with XLA.

    Attributes:
        traces: int. How many times the step was traced. On a resizable
            neighbourhood (`WidthNeighbourhood(resizable=True)`) the step
            is traced for batches and gates of any size, so that it serves
            the neighbourhood wherever it moves (`restart`).
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
        optimizer="adam",
    ):
        if optimizer not in STEP_ONE_OPTIMIZERS:
            raise ValueError(
                f"Unknown step-one optimizer {optimizer!r}; known: "
                f"{sorted(STEP_ONE_OPTIMIZERS)}."
            )
        self.neighbourhood = neighbourhood
        self.score_points = int(score_points)
        self.traces = 0
        params = neighbourhood.params
        optimizer = STEP_ONE_OPTIMIZERS[optimizer](params, learning_rate)
        self._optimizer = optimizer
        self._set_epsilon(epsilon)

        def step(x, y, weights, gates, descend):
            self.traces += 1  # at trace time
            # Step one and scoring share this one function (one trace per
            # round instead of two): the loss at `gates`, its gradient
            # along the gates (a score point), and, if `descend`, an Adam
            # step on the directions, projected back into their balls.
            with tf.GradientTape() as tape:
                tape.watch(gates)
                loss = loss_fn(y, neighbourhood.logits(x, gates), weights)
            param_grads, gate_grads = tape.gradient(loss, (params, gates))

            def update():
                optimizer.apply(param_grads)
                neighbourhood.project()  # ordered after the update
                return tf.constant(True)

            tf.cond(descend, update, lambda: tf.constant(False))
            return loss, gate_grads

        # The neighbourhood's Python control flow runs once, at trace time:
        # AutoGraph would only spend seconds converting it (a large part of
        # a round's first trace; docs/benchmarks.md).
        self._trace = lambda signature: tf.function(
            step, input_signature=signature, jit_compile=jit_compile, autograph=False
        )
        self._step = None

    def _set_epsilon(self, epsilon):
        count = len(self.neighbourhood.candidates)
        self.epsilon = np.broadcast_to(np.asarray(epsilon, np.float32), (count,))
        self._full = tf.constant(self.epsilon)

    def restart(self, epsilon):
        """Starts a round on the neighbourhood where it now is (after its
        `move_to`): the optimiser forgets its steps, the gates' ends are
        `epsilon`, and the traced step runs on."""
        self._optimizer.reset()
        self._set_epsilon(epsilon)

    def _call(self, x, y, weights, gates, descend):
        if self._step is None:
            signature = None
            if getattr(self.neighbourhood, "resizable", False):
                # Any batch size (a partial last batch) and any count of
                # gates: the sizes of every round to come.
                signature = [
                    tf.TensorSpec([None] + list(x.shape[1:]), x.dtype),
                    tf.TensorSpec([None] + list(y.shape[1:]), y.dtype),
                    tf.TensorSpec([None] + list(weights.shape[1:]), tf.float32),
                    tf.TensorSpec([None], tf.float32),
                    tf.TensorSpec([], tf.bool),
                ]
            self._step = self._trace(signature)
        return self._step(x, y, weights, gates, tf.constant(descend))

    def optimise(self, data, steps, on_step=None):
        """Step one: `steps` optimiser steps on the directions, projected.

        Args:
            data: iterator of (x, y) or (x, y, sample_weight) batches.
            on_step: callable or `None`. Called after every step (progress).

        Returns:
            list of float. The over-grown loss at each step.
        """
        values = []
        for _ in range(steps):
            x, y, weights = losses.batch_parts(next(data))
            values.append(self._call(x, y, weights, self._full, True)[0])
            if on_step is not None:
                on_step()
        return [float(value) for value in values]

    def scores(self, data, num_batches, on_step=None):
        """Step two: the mean integrated-gradient score over batches.

        Args:
            data: iterator of (x, y) or (x, y, sample_weight) batches.
            on_step: callable or `None`. Called after every batch.

        Returns:
            np.ndarray of shape (candidates,).
        """
        total = np.zeros(len(self.neighbourhood.candidates))
        n = self.score_points
        for _ in range(num_batches):
            x, y, weights = losses.batch_parts(next(data))
            for k in range(1, n + 1):  # the right Riemann sum's points
                gates = self._full * (k / n)
                total += self._call(x, y, weights, gates, False)[1].numpy()
            if on_step is not None:
                on_step()
        return total * (self.epsilon.astype(np.float64) / n) / num_batches

    def loss(self, x, y, gates, sample_weight=None):
        """The over-grown net's loss on one batch at `gates`."""
        x, y, weights = losses.batch_parts((x, y, sample_weight))
        gates = tf.constant(gates, tf.float32)
        return float(self._call(x, y, weights, gates, False)[0])
