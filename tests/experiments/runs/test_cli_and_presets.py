import dataclasses

import pytest
from absl import app
from absl import flags

import keras_grow as kg
from experiments.runs import autogrow
from experiments.runs import baseline
from experiments.runs import cli
from experiments.runs import firefly


def test_parse_value_by_annotation():
    assert cli.parse_value("3", int) == 3
    assert cli.parse_value("0.5", float) == 0.5
    assert cli.parse_value("none", int | None) is None
    assert cli.parse_value("8,16,32", tuple | None) == (8, 16, 32)
    assert cli.parse_value("0.5,0.75", tuple) == (0.5, 0.75)
    assert cli.parse_value("float32, float32_spe16", tuple) == (
        "float32",
        "float32_spe16",
    )
    assert cli.parse_value("", tuple) == ()
    assert cli.parse_value("False", bool) is False
    assert cli.parse_value("yes", bool) is True
    with pytest.raises(ValueError, match=r"Cannot read 'x' as int \(or 'none'\)"):
        cli.parse_value("x", int | None)
    with pytest.raises(ValueError, match="Cannot read 'maybe' as bool"):
        cli.parse_value("maybe", bool)


def test_config_flags_override_fields():
    values = flags.FlagValues()
    cli.define_config_flags(autogrow.AutoGrowConfig, flag_values=values)
    values(
        [
            "prog",
            "--growth_period=4",
            "--widths=4,8,8",
            "--take=none",
            "--initializer=zero",
        ]
    )
    overrides = cli.overrides(autogrow.AutoGrowConfig, flag_values=values)
    assert overrides == {
        "growth_period": 4,
        "widths": (4, 8, 8),
        "take": None,
        "initializer": "zero",
    }
    config = autogrow.resolve("fmnist_small", **overrides)
    assert config.growth_period == 4 and config.learning_rate == 0.05


def test_presets_are_valid_and_resolve_rejects_unknowns():
    for name, config in autogrow.PRESETS.items():
        assert dataclasses.is_dataclass(config), name
        assert config.decide_on in ("validation", "test")
    paper = autogrow.PRESETS["cifar10_basic3resnet"]
    assert (paper.growth_period, paper.patience, paper.min_delta) == (3, 100, 0.0005)
    assert paper.fine_tune_epochs == 200 and paper.batch_size == 128
    assert autogrow.PRESETS["imagenet_basic4resnet"].patience == 30
    # The authors' ImageNet recipe (issue 13, Part A 4); CIFAR keeps theirs.
    imagenet = autogrow.PRESETS["imagenet_basic4resnet"]
    assert imagenet.weight_decay == 1e-4
    assert imagenet.fine_tune_lr_boundaries == pytest.approx((1 / 3, 2 / 3))
    assert (imagenet.augment, imagenet.augmentation) == (True, "resized_crop_flip")
    cifar = autogrow.PRESETS["cifar10_basic3resnet"]
    assert cifar.weight_decay == 5e-4
    assert cifar.fine_tune_lr_boundaries == (0.5, 0.75)
    assert cifar.augmentation == "crop_flip"
    with pytest.raises(ValueError, match="Unknown preset 'cifar11'"):
        autogrow.resolve("cifar11")
    with pytest.raises(ValueError, match=r"Unknown config fields \['epochs'\]"):
        autogrow.resolve("fmnist_small", epochs=3)


def test_staircase_schedule():
    schedule = baseline.staircase(0.1, 8)
    assert [round(schedule(e), 6) for e in range(8)] == [0.1] * 4 + [0.01] * 2 + [
        0.001
    ] * 2


def test_multi_worker_flag_needs_tf_config(monkeypatch):
    values = flags.FlagValues()
    cli.define_multi_worker_flag(flag_values=values)
    values(["binary"])
    assert cli.multi_worker_strategy(flag_values=values) is None  # off
    values(["binary", "--multi_worker"])
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(app.UsageError, match="TF_CONFIG"):
        cli.multi_worker_strategy(flag_values=values)


# What each --method of the Firefly binary builds (the binary itself runs
# once per method only in the nightly run: tests/experiments/test_firefly_binary.py).
EXPECTED_CALLBACKS = {
    "firefly": (kg.callbacks.Firefly, {"epsilon": 0.3, "score_batches": 2}),
    "random_split": (kg.callbacks.RandomSplit, {"noise": 0.02}),
    "random_new": (kg.callbacks.RandomNew, {"epsilon": 0.3}),
    # GradMax and TINY keep their own epsilon (0) whatever the config's.
    "gradmax": (
        kg.callbacks.GradMax,
        {"scale": 0.1, "score_batches": 2, "epsilon": 0.0},
    ),
    "gradmax_scale_1": (kg.callbacks.GradMax, {"scale": 1.0}),
    "tiny": (
        kg.callbacks.TINY,
        {"score_batches": 2, "unit_count": "eta", "epsilon": 0.0},
    ),
    "tiny_significant": (
        kg.callbacks.TINY,
        {"score_batches": 8, "unit_count": "significant"},
    ),
}


def test_every_firefly_method_builds_its_callback_with_the_config():
    assert set(EXPECTED_CALLBACKS) == set(firefly.METHODS)
    train = kg.data.load("fashion_mnist_sample", "train", 32, take=64)
    for method, (cls, fields) in EXPECTED_CALLBACKS.items():
        config = firefly.resolve(
            "fmnist_tiny",
            method=method,
            epsilon=0.3,
            noise=0.02,
            score_batches=2,
            grow_every=5,
            growth_ratio=0.4,
            max_rounds=7,
            seed=11,
        )
        callback = firefly.make_callback(config, train)
        assert type(callback) is cls, method
        schedule = (callback.grow_every, callback.growth_ratio, callback.max_rounds)
        assert schedule == (5, 0.4, 7) and callback.seed == 11, method
        for name, value in fields.items():
            assert getattr(callback, name) == value, (method, name)
        trains_on_data = method in firefly.TRAIN_DATA_METHODS
        assert (getattr(callback, "train_data", None) is train) == trains_on_data
    with pytest.raises(ValueError, match="Unknown method 'grow_more'"):
        firefly.resolve("fmnist_tiny", method="grow_more")
