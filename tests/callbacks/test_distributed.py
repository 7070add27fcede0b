"""AutoGrow and Firefly inside `fit` under MirroredStrategy (two logical
CPUs from conftest): one decision per round, mirrored variables after it."""

import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from tests.conftest import compile_sgd


def _assert_mirrored_and_equal(strategy, model):
    # Trainable weights and optimizer state: BN moving statistics are
    # per-replica in Keras (read as their mean), grown or not.
    for variable in model.body.trainable_variables + model.optimizer.variables:
        assert isinstance(variable.value, tf.distribute.DistributedValues), (
            variable.path
        )
        replicas = strategy.experimental_local_results(variable.value)
        np.testing.assert_array_equal(
            replicas[0].numpy(), replicas[1].numpy(), err_msg=variable.path
        )


@pytest.mark.slow
def test_firefly_grows_under_mirrored_strategy(mirrored_strategy):
    strategy = mirrored_strategy
    train = kg.data.load("fashion_mnist_sample", "train", 32, take=256)
    with strategy.scope():
        spec = kg.specs.parse("VGG11-4", (28, 28, 1), 10)
        model = compile_sgd(kg.GrowableModel(spec))
    firefly = kg.callbacks.Firefly(
        train,
        grow_every=1,
        max_rounds=2,
        delta_steps=2,
        score_batches=1,
        seed=0,
        verbose=0,
    )
    history = model.fit(train, epochs=3, verbose=0, callbacks=[firefly])
    rounds = [e for e in model.growth_log if e["kind"] == "grow"]
    assert len(rounds) == 2 and sum(model.spec.widths) > sum(spec.widths)
    assert model.body.count_params() == rounds[-1]["params_after"]
    assert np.all(np.isfinite(history.history["loss"]))
    _assert_mirrored_and_equal(strategy, model)


@pytest.mark.slow
def test_autogrow_grows_under_mirrored_strategy(mirrored_strategy):
    strategy = mirrored_strategy
    train = kg.data.load("fashion_mnist_sample", "train", 32, take=256)
    with strategy.scope():
        spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))
        model = compile_sgd(kg.GrowableModel(spec))
    autogrow = kg.callbacks.AutoGrow(growth_period=1, seed=0, verbose=0)
    history = model.fit(
        train, validation_data=train, epochs=3, verbose=0, callbacks=[autogrow]
    )
    assert model.spec.notation == "Basic3ResNet-2-2-2"
    assert np.all(np.isfinite(history.history["loss"]))
    _assert_mirrored_and_equal(strategy, model)
