"""Optimizer state survives growth: iterations, learning rate, slots."""

import keras
import numpy as np
import pytest

import keras_grow as kg
from keras_grow.optimizer_carry import carry_optimizer
from keras_grow.optimizer_carry import pad_to
from keras_grow.transfer import SplitUnits
from tests.conftest import compile_sgd


def _trained(optimizer, sample_arrays, notation="Basic3ResNet-1-1-1", **kwargs):
    if notation.startswith("Basic3ResNet"):
        kwargs.setdefault("widths", (4, 8, 8))
    model = kg.GrowableModel(kg.specs.parse(notation, (28, 28, 1), 10, **kwargs))
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = sample_arrays
    model.fit(x[:64], y[:64], batch_size=16, epochs=1, verbose=0)
    return model


def _slots(optimizer):
    """{slot name: value}; slot names embed the model variable's path."""
    return {v.name: v.numpy().copy() for v in optimizer.variables}


@pytest.mark.parametrize(
    "optimizer_factory,slot_names",
    [
        (lambda: keras.optimizers.SGD(0.05, momentum=0.9), ["momentum"]),
        (lambda: keras.optimizers.Adam(1e-3), ["momentum", "velocity"]),
    ],
)
def test_surviving_slots_equal_their_values_before_growth(
    optimizer_factory, slot_names, sample_arrays
):
    model = _trained(optimizer_factory(), sample_arrays)
    old_optimizer = model.optimizer
    before = _slots(old_optimizer)
    event = model.grow(model.spec.with_block_added(1))
    new_optimizer = model.optimizer
    assert new_optimizer is not old_optimizer
    after = _slots(new_optimizer)
    for name in slot_names:
        path = f"stage1_block1_conv1_kernel_{name}"
        assert np.abs(before[path]).max() > 0  # real state, not zeros
        np.testing.assert_array_equal(after[path], before[path])
        new_path = f"stage2_block2_conv1_kernel_{name}"
        assert new_path in after and not np.any(after[new_path])
    assert int(new_optimizer.iterations.numpy()) == 4
    assert event["optimizer_state"]["fresh"] > 0
    assert event["optimizer_state"]["padded"] == 0


def test_iterations_learning_rate_and_schedule_carry(sample_arrays):
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([2], [0.1, 0.01])
    model = _trained(keras.optimizers.SGD(schedule, momentum=0.9), sample_arrays)
    model.grow(model.spec.with_block_added(0))
    optimizer = model.optimizer
    assert int(optimizer.iterations.numpy()) == 4
    assert float(optimizer.learning_rate) == pytest.approx(0.01)  # past step 2

    constant = _trained(keras.optimizers.SGD(0.1, momentum=0.9), sample_arrays)
    constant.optimizer.learning_rate.assign(0.0123)  # e.g. ReduceLROnPlateau
    constant.grow(constant.spec.with_block_added(0))
    assert float(constant.optimizer.learning_rate) == pytest.approx(0.0123)


def test_widened_slots_are_padded_with_zeros(sample_arrays):
    model = _trained(
        keras.optimizers.SGD(0.05, momentum=0.9), sample_arrays, notation="VGG11-4"
    )
    before = _slots(model.optimizer)
    event = model.grow(
        model.spec.with_layer_widened(0, 6),
        morphisms=[SplitUnits("stage1_layer1", [0, 1])],
    )
    after = _slots(model.optimizer)
    kernel = "stage1_layer1_conv_kernel_momentum"
    np.testing.assert_array_equal(after[kernel][..., :4], before[kernel])
    assert not np.any(after[kernel][..., 4:])
    consumer = "stage2_layer1_conv_kernel_momentum"
    np.testing.assert_array_equal(after[consumer][:, :, :4], before[consumer])
    assert not np.any(after[consumer][:, :, 4:])
    assert event["optimizer_state"]["padded"] >= 4  # conv, gamma, beta, consumer


def test_loss_scale_optimizer_survives_growth(sample_arrays):
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(0.05, momentum=0.9)
    )
    model = _trained(optimizer, sample_arrays)
    model.optimizer.dynamic_scale.assign(1024.0)
    before = _slots(model.optimizer)
    model.grow(model.spec.with_block_added(2))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(model.optimizer.dynamic_scale.numpy()) == 1024.0
    after = _slots(model.optimizer)
    path = "stage1_block1_conv1_kernel_momentum"
    np.testing.assert_array_equal(after[path], before[path])
    x, y = sample_arrays
    history = model.fit(x[:32], y[:32], batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_unbuilt_optimizer_is_kept(sample_arrays):
    model = kg.GrowableModel(kg.specs.parse("MLP-4", (28, 28, 1), 10))
    compile_sgd(model)
    optimizer = model.optimizer
    event = model.grow(model.spec.with_widths((6,)))
    assert model.optimizer is optimizer and event["optimizer_state"] is None
    x, y = sample_arrays
    model.fit(x[:32], y[:32], verbose=0)  # builds on the grown variables


def test_pad_to_copies_the_leading_corner():
    value = np.arange(6.0).reshape(2, 3)
    padded = pad_to(value, (3, 4))
    np.testing.assert_array_equal(padded[:2, :3], value)
    assert padded[2].sum() == 0 and padded[:, 3].sum() == 0


def test_carry_optimizer_reports_what_it_did(sample_arrays):
    model = _trained(keras.optimizers.SGD(0.05, momentum=0.9), sample_arrays)
    new, report = carry_optimizer(model.optimizer, model.trainable_variables)
    assert not report.padded and not report.fresh
    assert set(report.copied) == {v.path for v in model.optimizer.variables}
    assert new is not model.optimizer
