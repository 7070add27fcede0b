"""WarmupStableDecay: its values, its config, and a growth that carries
the step count so the schedule goes on where it was."""

import keras
import numpy as np
import pytest

import keras_grow as kg
from tests.conftest import compile_sgd


def _rates(schedule, steps):
    return np.array([float(schedule(s)) for s in steps])


def test_warmup_then_constant_then_a_full_linear_decay():
    schedule = kg.schedules.WarmupStableDecay(
        0.1, total_steps=100, warmup_steps=10, decay_steps=20
    )
    np.testing.assert_allclose(
        _rates(schedule, [0, 5, 10, 50, 80, 90, 100, 120]),
        [0.0, 0.05, 0.1, 0.1, 0.1, 0.05, 0.0, 0.0],
        atol=1e-7,
    )


def test_a_rewarmup_ramps_the_rate_again_after_each_given_step():
    schedule = kg.schedules.WarmupStableDecay(
        0.1, total_steps=100, decay_steps=0, rewarmup_at=(40,), rewarmup_steps=4
    )
    np.testing.assert_allclose(
        _rates(schedule, [39, 40, 41, 42, 43, 44]),
        [0.1, 0.025, 0.05, 0.075, 0.1, 0.1],
        atol=1e-7,
    )


def test_it_round_trips_through_keras_serialization():
    schedule = kg.schedules.WarmupStableDecay(
        0.1, 100, warmup_steps=5, rewarmup_at=(30, 60), rewarmup_steps=3
    )
    again = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert again.get_config() == schedule.get_config()
    np.testing.assert_array_equal(
        _rates(again, range(100)), _rates(schedule, range(100))
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"warmup_steps": 60, "decay_steps": 60}, "exceed total_steps"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"final": -0.1}, "final"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kg.schedules.WarmupStableDecay(0.1, 100, **kwargs)


def test_after_a_growth_the_schedule_goes_on_at_the_carried_step():
    schedule = kg.schedules.WarmupStableDecay(0.1, total_steps=20, warmup_steps=10)
    target = kg.specs.parse("MLP-16", (28, 28, 1), 10)
    model = compile_sgd(kg.GrowableModel(target.scaled(width=0.5)))
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    images = np.zeros((24, 28, 28, 1), np.float32)
    model.fit(images, np.zeros(24), batch_size=8, epochs=1, verbose=0)
    model.grow(target)
    assert int(model.optimizer.iterations.numpy()) == 3
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 0.03, rtol=1e-6)
