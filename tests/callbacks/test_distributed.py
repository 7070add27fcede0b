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


# Nightly: AutoGrow here and GrowableModel.grow (tests/test_growable_model.py)
# grow under the same strategy in the fast run.
@pytest.mark.nightly
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


def test_scores_are_averaged_over_replicas(mirrored_strategy):
    # Each replica (a worker, under MultiWorkerMirroredStrategy) brings its
    # own scores; every one gets their mean, so all decide alike.
    local = {0: [1.0, -2.0, 0.5], 1: [3.0, -4.0, 0.5]}
    mean = kg.descent.scoring.mean_over_replicas(mirrored_strategy, local.get)
    np.testing.assert_array_equal(mean, [2.0, -3.0, 0.5])
    same = kg.descent.scoring.mean_over_replicas(mirrored_strategy, [0.1, 0.2])
    np.testing.assert_array_equal(same, [0.1, 0.2])  # identical copies: unchanged
    one = tf.distribute.get_strategy()  # the default: one replica
    np.testing.assert_array_equal(
        kg.descent.scoring.mean_over_replicas(one, [0.1, 0.2]), [0.1, 0.2]
    )


@pytest.mark.slow
def test_autogrow_grows_and_resumes_under_mirrored_strategy(
    mirrored_strategy, tmp_path
):
    strategy = mirrored_strategy
    train = kg.data.load("fashion_mnist_sample", "train", 32, take=128)
    spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))

    def fit(epochs):
        with strategy.scope():
            model = compile_sgd(kg.GrowableModel(spec))
        autogrow = kg.callbacks.AutoGrow(
            growth_period=1, monitor="loss", seed=0, verbose=0
        )
        backup = kg.callbacks.BackupAndRestore(
            str(tmp_path), [autogrow], delete_checkpoint=False, verbose=0
        )
        history = model.fit(
            train, epochs=epochs, verbose=0, callbacks=[backup, autogrow]
        )
        return model, history

    fit(2)  # stands for a run killed after two epochs
    model, history = fit(3)
    assert history.epoch == [0, 1, 2]
    assert np.all(np.isfinite(history.history["loss"]))
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-2-2"
    assert int(model.optimizer.iterations.numpy()) == 3 * 4
    _assert_mirrored_and_equal(strategy, model)
