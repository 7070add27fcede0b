"""Every growth callback records the arguments it was made with, from its
`__init__` signatures alone, and its `get_config` is that record."""

import copy
import json

import numpy as np
import pytest

import keras_grow as kg
from keras_grow.callbacks import arguments

_SPEC = kg.specs.parse("MLP-8", (4,), 3)
_DATA = (np.zeros((8, 4), "float32"), np.zeros(8, "int64"))

# Each growth callback, made with a few arguments of its own and of the
# classes its `**kwargs` reach.
_MADE = {
    "AutoGrow": lambda: kg.callbacks.AutoGrow(patience=7, max_depths=(3, 3, 3)),
    "Firefly": lambda: kg.callbacks.Firefly(_DATA, epsilon=0.2, grow_every=4),
    "GradMax": lambda: kg.callbacks.GradMax(_DATA, zero_side="fan_in", seed=2),
    "TINY": lambda: kg.callbacks.TINY(_DATA, max_rounds=3),
    "RandomSplit": lambda: kg.callbacks.RandomSplit(noise=0.1, growth_ratio=0.5),
    "RandomNew": lambda: kg.callbacks.RandomNew(epsilon=0.2),
    "ProgressiveGrowth": lambda: kg.callbacks.ProgressiveGrowth(
        _SPEC.scaled(width=2), at=(1,)
    ),
    "ScheduledGrowth": lambda: kg.callbacks.ScheduledGrowth({2: _SPEC}, seed=1),
    "GrowthGuard": lambda: kg.callbacks.GrowthGuard(batches=3),
}


def _made_again(callback):
    """The callback's class made from its `get_config` (specs read back,
    its data given again)."""
    config = callback.get_config()
    if "target" in config:
        config["target"] = kg.specs.from_dict(config["target"])
    if "schedule" in config:
        config["schedule"] = {
            epoch: kg.specs.from_dict(s) for epoch, s in config["schedule"].items()
        }
    data = {
        name: value
        for name, value in callback.given_arguments.items()
        if name.endswith("_data") and value is not None
    }
    return type(callback)(**data, **config)


@pytest.mark.parametrize("name", sorted(_MADE))
def test_get_config_holds_only_arguments_and_makes_the_callback_again(name):
    callback = _MADE[name]()
    config = callback.get_config()
    json.dumps(config)  # JSON data (a schedule's epochs become strings)
    assert not any(key.endswith("_data") for key in config)
    # Every key is an argument (an unknown one raises), every value is
    # what the callback was made with.
    assert _made_again(callback).get_config() == config
    given = callback.given_arguments
    with pytest.raises(TypeError):
        given["seed"] = 5  # read-only
    if not any(n.endswith("_data") and given[n] is not None for n in given):
        # As KerasTuner copies callbacks (one holding a dataset cannot be).
        assert copy.deepcopy(callback).get_config() == config


def test_the_arguments_of_every_class_down_the_kwargs_chain_are_recorded():
    firefly = _MADE["Firefly"]().get_config()
    assert {"delta_steps", "grow_depth"} <= set(firefly)  # Firefly's own
    assert {"grow_every", "max_rounds", "after_growth"} <= set(firefly)  # base's
    gradmax = _MADE["GradMax"]().get_config()
    assert {"zero_side", "unit_count", "growth_ratio", "on_failure"} <= set(gradmax)
    assert set(_MADE["GrowthGuard"]().get_config()) == {
        "batches",
        "on_failure",
        "verbose",
    }


def test_given_values_and_subclass_defaults_are_recorded():
    autogrow = _MADE["AutoGrow"]().get_config()
    assert autogrow["patience"] == 7 and autogrow["max_depths"] == [3, 3, 3]
    assert autogrow["growth_period"] == 3  # a default
    firefly = _MADE["Firefly"]()
    config = firefly.get_config()
    assert config["epsilon"] == 0.2 and config["grow_every"] == 4
    assert "train_data" not in config and "calibration_data" not in config
    assert firefly.given_arguments["train_data"] is _DATA
    # GradMax's own default for `scale` (0.1), not its base class's (1.0).
    assert _MADE["GradMax"]().get_config()["scale"] == 0.1
    progressive = _MADE["ProgressiveGrowth"]().get_config()
    assert kg.specs.from_dict(progressive["target"]) == _SPEC.scaled(width=2)
    assert progressive["at"] == [1]
    assert _MADE["ScheduledGrowth"]().get_config()["schedule"] == {2: _SPEC.to_dict()}


def test_bad_arguments_are_still_refused_by_name():
    with pytest.raises(TypeError, match="patience_x"):
        kg.callbacks.AutoGrow(patience_x=3)
    with pytest.raises(ValueError, match="patience"):
        kg.callbacks.AutoGrow(patience=-1)


def test_the_record_reads_signatures_only():
    class Grown(arguments.GivenArguments):
        def __init__(self, a, b=2, **kwargs):
            self.rest = kwargs

    assert dict(Grown(1).given_arguments) == {"a": 1, "b": 2}
    assert Grown(1, b=3).get_config() == {"a": 1, "b": 3}
