"""Growth periods: the learning rate within each and the optimizer state
across a round (the Firefly authors' fresh optimizer and step decay)."""

import keras
import numpy as np
import pytest

import keras_grow as kg
from keras_grow.callbacks import periods
from tests.conftest import compile_sgd
from tests.helpers import HalveRateAt


def test_period_factors():
    step = [periods.period_factor("step", e, 8) for e in range(16)]
    np.testing.assert_allclose(
        step, [1] * 4 + [0.1] * 2 + [0.01] * 2 + [1] * 4 + [0.1] * 2 + [0.01] * 2
    )
    cosine = [periods.period_factor("cosine", e, 4) for e in range(5)]
    np.testing.assert_allclose(cosine, [1.0, 0.8535534, 0.5, 0.1464466, 1.0], rtol=1e-6)
    assert {periods.period_factor("constant", e, 3) for e in range(7)} == {1.0}
    with pytest.raises(ValueError, match="linear"):
        periods.period_factor("linear", 0, 3)


class _Probe(keras.callbacks.Callback):
    """Records the learning rate and the momentum norm at every epoch start."""

    def __init__(self):
        super().__init__()
        self.rates, self.momenta = [], []

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        self.rates.append(float(optimizer.learning_rate.numpy()))
        slots = [v for v in optimizer.variables if "momentum" in v.path]
        self.momenta.append(sum(float(np.abs(v.numpy()).sum()) for v in slots))


def _fit(extra=(), **kwargs):
    data = kg.data.load("fashion_mnist_sample", "train", 64, take=128, seed=0)
    spec = kg.specs.parse("MLP-4-3", input_shape=(28, 28, 1), num_classes=10)
    model = compile_sgd(kg.GrowableModel(spec))
    growth = kg.callbacks.RandomNew(
        grow_every=4, max_rounds=1, seed=0, verbose=0, **kwargs
    )
    probe = _Probe()
    callbacks = [*extra, growth, probe]
    model.fit(data, epochs=8, callbacks=callbacks, verbose=0, shuffle=False)
    return model, growth, probe


def test_authors_periods_decay_the_rate_and_restart_the_momentum():
    model, growth, probe = _fit(period_schedule="step", after_growth="fresh")
    base = probe.rates[0]
    assert growth.get_state()["lr_factor"] == pytest.approx(0.01)  # epoch 7's
    np.testing.assert_allclose(
        probe.rates, [base * f for f in (1, 1, 0.1, 0.01) * 2], rtol=1e-6
    )
    assert len(model.growth_log) and model.growth_log[0]["epoch"] == 3
    # The round at the end of epoch 3 zeroed every slot; epoch 4 starts
    # fresh, every other epoch with the momentum it had.
    assert probe.momenta[4] == 0.0
    assert all(m > 0 for i, m in enumerate(probe.momenta) if i not in (0, 4))


def test_default_periods_keep_the_rate_and_carry_the_momentum():
    _, growth, probe = _fit()
    assert len(set(probe.rates)) == 1
    assert probe.momenta[4] > 0
    assert growth.get_state()["lr_factor"] == 1.0


def test_a_period_schedule_composes_with_cuts_and_yields_to_a_scheduler():
    _, _, probe = _fit(period_schedule="step", extra=[HalveRateAt(1)])
    base = probe.rates[0]
    expected = [1, 1, 0.05, 0.005, 0.5, 0.5, 0.05, 0.005]
    np.testing.assert_allclose(probe.rates, [base * f for f in expected], rtol=1e-5)
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch: 0.2 / (epoch + 1))
    with pytest.warns(UserWarning, match="RandomNew sets none"):
        _, _, probe = _fit(period_schedule="step", extra=[scheduler])
    np.testing.assert_allclose(probe.rates, [0.2 / (e + 1) for e in range(8)])


def test_a_state_saved_with_the_base_rate_resumes_its_multiplier():
    growth = kg.callbacks.RandomNew(grow_every=4, period_schedule="step", verbose=0)
    growth.set_state({"rounds": 1, "finished": False, "base_learning_rate": 0.1})
    model = compile_sgd(
        kg.GrowableModel(kg.specs.parse("MLP-4", (28, 28, 1), 10)), learning_rate=0.01
    )
    growth.set_model(model)
    growth.on_epoch_begin(7)  # the rate holds epoch 6's 0.1 x 0.1
    np.testing.assert_allclose(float(model.optimizer.learning_rate.numpy()), 0.001)


def test_a_period_schedule_refuses_a_learning_rate_schedule():
    data = kg.data.load("fashion_mnist_sample", "train", 64, take=64, seed=0)
    spec = kg.specs.parse("MLP-4-3", input_shape=(28, 28, 1), num_classes=10)
    model = kg.GrowableModel(spec)
    decay = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    model.compile(
        keras.optimizers.SGD(decay),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    growth = kg.callbacks.RandomNew(grow_every=1, period_schedule="cosine", verbose=0)
    with pytest.raises(ValueError, match="constant learning rate"):
        model.fit(data, epochs=1, callbacks=[growth], verbose=0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"period_schedule": "linear"}, "period_schedule"),
        ({"after_growth": "reset"}, "after_growth"),
    ],
)
def test_bad_period_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kg.callbacks.RandomSplit(**kwargs)
