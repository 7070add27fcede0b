"""Carry an optimizer's state onto the variables of a grown model.

Keras 3 optimizers refuse variables they were not built with, so growth
needs a new optimizer. It is rebuilt from the old one's config (same class,
hyper-parameters, learning-rate schedule, loss-scale wrapper), built on the
new variables, and every optimizer variable is carried by its path (see
`carry_key`): the iteration count, the learning rate, and the slots (SGD
momentum, Adam m and v, ...), which Keras names after the model variable's
path. Surviving layers keep their names across growth, so their slots find
their way.
"""

import dataclasses

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class OptimizerCarryReport:
    """Which optimizer variables were copied, padded or started fresh."""

    copied: tuple
    padded: tuple
    fresh: tuple


def pad_to(value, shape):
    """Copies `value` into the leading corner of zeros of `shape`.

    Width morphisms keep old units at their indices and append new ones, so
    the leading corner is exactly where the old units' state belongs.
    """
    result = np.zeros(shape, dtype=value.dtype)
    corner = tuple(slice(0, min(a, b)) for a, b in zip(value.shape, shape))
    result[corner] = value[corner]
    return result


def carry_key(variable):
    """The owning optimizer and the variable's name, e.g. `sgd/x_momentum`.

    Full paths depend on the name scope an optimizer was built in: `fit`
    builds a LossScaleOptimizer's inner optimizer inside the wrapper's scope
    (`loss_scale_optimizer/sgd/...`), a rebuild outside `fit` does not
    (`sgd/...`). The last two components are the same either way and still
    tell the wrapper's `iteration` from the inner one's.
    """
    return "/".join(variable.path.split("/")[-2:])


def carry_optimizer(optimizer, new_variables):
    """Returns a new optimizer for `new_variables` with `optimizer`'s state.

    Call it inside the model's distribution strategy scope so that the new
    slots are created as the strategy's variables.

    Args:
        optimizer: a built `keras.optimizers.Optimizer` (a
            `LossScaleOptimizer` included).
        new_variables: list of the grown model's trainable variables.

    Returns:
        (new optimizer, `OptimizerCarryReport`).
    """
    new = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    new.build(new_variables)
    old_by_key = {carry_key(v): v for v in optimizer.variables}
    copied, padded, fresh = [], [], []
    for variable in new.variables:
        old = old_by_key.get(carry_key(variable))
        if old is None:
            fresh.append(variable.path)
            continue
        value = np.asarray(old.numpy())
        if tuple(old.shape) == tuple(variable.shape):
            copied.append(variable.path)
        else:
            value = pad_to(value, tuple(variable.shape))
            padded.append(variable.path)
        variable.assign(value)
    return new, OptimizerCarryReport(tuple(copied), tuple(padded), tuple(fresh))


def unbuilt_copy(optimizer, strategy):
    """An unbuilt optimizer of `optimizer`'s class and config, made in
    `strategy`'s scope: it builds on whatever variables it meets next."""
    with strategy.scope():
        return keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
