import keras
import numpy as np
import pytest

import keras_grow as kg
from tests.conftest import compile_sgd


def _model():
    return kg.GrowableModel(
        kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))
    )


def test_round_robin_schedule_drives_growth_through_hooks():
    model = _model()
    callback = kg.callbacks.ScheduledGrowth.round_robin(
        num_stages=3, every=2, growths=4, verbose=0
    )
    callback.set_model(model)
    callback.on_train_begin()
    for epoch in range(9):
        callback.on_epoch_begin(epoch)
    assert model.spec.notation == "Basic3ResNet(4,8,8)-3-2-2"
    assert [e["epoch"] for e in model.growth_log] == [2, 4, 6, 8]
    assert all(e["callback"] == "ScheduledGrowth" for e in model.growth_log)


def test_schedule_accepts_specs_and_callables():
    model = _model()
    target = model.spec.with_depths((2, 2, 2))
    callback = kg.callbacks.ScheduledGrowth(
        {0: lambda s: s.with_block_added(2), 1: target}, verbose=0
    )
    callback.set_model(model)
    callback.on_epoch_begin(0)
    assert model.spec.notation == "Basic3ResNet(4,8,8)-1-1-2"
    callback.on_epoch_begin(1)
    assert model.spec == target
    config = callback.get_config()
    assert config["schedule"][1] == target.to_dict()
    assert config["initializer"] == "identity"


@pytest.mark.slow
def test_grows_inside_fit_and_prints_progress(sample_arrays, capsys):
    model = compile_sgd(_model())
    x, y = sample_arrays
    callback = kg.callbacks.ScheduledGrowth.round_robin(
        num_stages=3, every=1, growths=2
    )
    history = model.fit(
        x[:64], y[:64], batch_size=32, epochs=3, verbose=0, callbacks=[callback]
    )
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-2-1"
    assert np.all(np.isfinite(history.history["loss"]))
    out = capsys.readouterr().out
    assert "Epoch 2: grew Basic3ResNet(4,8,8)-1-1-1 -> Basic3ResNet(4,8,8)-2-1-1" in out


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (dict(schedule=[1, 2]), TypeError, "must be a dict"),
        (dict(schedule={-1: lambda s: s}), ValueError, "epochs must be integers >= 0"),
        (
            dict(schedule={1: "Basic3ResNet-2-1-1"}),
            TypeError,
            "must be a spec or a callable",
        ),
        (
            dict(schedule={}, initializer="he"),
            ValueError,
            "Unknown block initializer 'he'",
        ),
    ],
)
def test_invalid_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        kg.callbacks.ScheduledGrowth(**kwargs)


def test_plain_keras_model_is_rejected_before_training():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    callback = kg.callbacks.ScheduledGrowth({0: lambda s: s})
    with pytest.raises(TypeError, match="grows a keras_grow.GrowableModel"):
        model.fit(np.ones((4, 4)), np.ones((4, 2)), verbose=0, callbacks=[callback])


def test_a_failing_entry_is_undone_and_skipped_or_raised(sample_arrays):
    x, y = sample_arrays
    spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))

    def impossible(current):
        return current.with_block_added(5)  # there is no stage 6

    schedule = {1: impossible, 2: lambda s: s.with_block_added(0)}
    model = compile_sgd(kg.GrowableModel(spec))
    grow = kg.callbacks.ScheduledGrowth(schedule, on_failure="rollback", verbose=0)
    model.fit(x[:64], y[:64], epochs=3, verbose=0, callbacks=[grow])
    kinds = [e["kind"] for e in model.growth_log]
    assert kinds == ["growth_failed", "grow"]
    assert "stage" in model.growth_log[0]["reason"]
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-1-1"

    model = compile_sgd(kg.GrowableModel(spec))
    grow = kg.callbacks.ScheduledGrowth(schedule, verbose=0)  # default: raise
    with pytest.raises(ValueError, match="stage"):
        model.fit(x[:64], y[:64], epochs=3, verbose=0, callbacks=[grow])
    assert model.spec == spec and model.growth_log[-1]["kind"] == "growth_failed"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_stages": 3, "every": 0, "growths": 2}, "every"),
        ({"num_stages": 0, "every": 1, "growths": 2}, "num_stages"),
        ({"num_stages": 3, "every": 1, "growths": -1}, "growths"),
        ({"num_stages": 3, "every": 1, "growths": 2, "first": -1}, "first"),
    ],
)
def test_round_robin_refuses_a_schedule_that_cannot_be(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kg.callbacks.ScheduledGrowth.round_robin(**kwargs)


def _net(family):
    if family == "from_keras":
        inputs = keras.Input((28, 28, 1))
        x = keras.layers.Flatten(name="flat")(inputs)
        x = keras.layers.Dense(16, activation="relu", name="hidden")(x)
        return kg.GrowableModel.from_keras(
            keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
        )
    return kg.GrowableModel(kg.specs.parse(family, (28, 28, 1), 10))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["VGG11-4", "MLP-16", "from_keras"])
def test_the_default_schedule_keeps_every_family_alive(family, sample_arrays):
    x, y = sample_arrays
    model = compile_sgd(_net(family))
    grow = kg.callbacks.ScheduledGrowth({1: lambda s: s.with_block_added(0)}, verbose=0)
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[grow])
    assert [e["kind"] for e in model.growth_log] == ["grow"]
    assert np.all(np.isfinite(history.history["loss"]))
    logits = np.asarray(model(x[:64], training=False))
    assert logits.std(axis=0).max() > 1e-3  # not the same output for every input


def test_an_initializer_a_block_cannot_take_is_refused_before_any_step(sample_arrays):
    x, y = sample_arrays
    model = compile_sgd(_net("VGG11-4"))
    grow = kg.callbacks.ScheduledGrowth(
        {1: lambda s: s.with_block_added(0)}, initializer="zero", verbose=0
    )
    steps = []
    counter = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda *a: steps.append(1)
    )
    with pytest.raises(ValueError, match=r"Epoch 2.*initializer='identity'"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[grow, counter])
    assert steps == [] and model.growth_log == []
