"""The papers' callback settings as data: read by name, every one builds
its callback, and the experiments' paper presets are made from them."""

import numpy as np
import pytest

import keras_grow as kg
from experiments.runs import autogrow
from experiments.runs import firefly
from keras_grow.callbacks import presets


def _data():
    x = np.zeros((8, 28, 28, 1), "float32")
    return x, np.zeros(8, "int64")


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_builds_its_callback_with_its_arguments(name):
    preset = presets.get(name)
    cls = getattr(kg.callbacks, preset.callback)
    args = (_data(),) if preset.callback == "Firefly" else ()
    callback = cls.from_preset(name, *args)
    config = callback.get_config()
    for key, value in preset.arguments.items():
        expected = list(value) if isinstance(value, tuple) else value
        assert config[key] == expected, key
    assert preset.description and str(preset).startswith(preset.callback + "(")


def test_overrides_win_and_presets_cannot_be_changed():
    autogrow_cb = kg.callbacks.AutoGrow.from_preset("p_autogrow_cifar", patience=7)
    assert autogrow_cb.stopping.patience == 7
    assert autogrow_cb.growth_policy.period == 3
    with pytest.raises(TypeError):
        presets.get("p_autogrow_cifar").arguments["patience"] = 1
    assert presets.names("Firefly") == ["firefly_vgg19_cifar10"]


def test_a_preset_of_another_callback_or_an_unknown_one_is_refused():
    with pytest.raises(ValueError, match="is Firefly's, not AutoGrow's"):
        kg.callbacks.AutoGrow.from_preset("firefly_vgg19_cifar10")
    with pytest.raises(ValueError, match=r"Unknown preset 'p_autogrow'; known: \["):
        kg.callbacks.AutoGrow.from_preset("p_autogrow")


def test_the_experiments_paper_presets_are_the_librarys():
    paper = autogrow.PRESETS["cifar10_basic3resnet"]
    preset = presets.get("p_autogrow_cifar")
    assert paper.growth_period == preset.arguments["growth_period"] == 3
    assert (paper.patience, paper.fine_tune_epochs) == (100, 200)
    assert paper.max_epochs == preset.fit["epochs"] == 3000
    assert paper.decide_on == "test"  # as the authors
    assert autogrow.PRESETS["cifar10_plain3net"].learning_rate == 0.01
    vgg = firefly.PRESETS["cifar10_vgg19"]
    preset = presets.get("firefly_vgg19_cifar10")
    for key, value in preset.arguments.items():
        assert getattr(vgg, key) == value, key
    assert (vgg.epochs, vgg.learning_rate, vgg.batch_size) == (1600, 0.1, 128)
