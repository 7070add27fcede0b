"""The papers' settings of the growth callbacks, shipped as data.

A preset names a callback's arguments as a paper (or its authors' code)
runs it, and the training settings the paper pairs them with, which the
callback does not take (`fit`: the optimizer's rate, epochs, batch size).
As KerasHub's presets, they are read by name:

>>> import keras_grow as kg
>>> autogrow = kg.callbacks.AutoGrow.from_preset("p_autogrow_cifar")
>>> autogrow.growth_policy.period, autogrow.stopping.patience
(3, 100)
>>> kg.callbacks.presets.get("p_autogrow_cifar").fit["batch_size"]
128

The experiments' paper presets (`experiments/runs/autogrow.py`,
`firefly.py`) are built from these, so the settings are stated once.
"""

import dataclasses
import types


@dataclasses.dataclass(frozen=True)
class Preset:
    """A callback's arguments as a paper runs it.

    Args:
        callback: str. The callback class's name, e.g. `"AutoGrow"`.
        arguments: mapping. Its keyword arguments.
        fit: mapping. The paper's training settings around it, named as the
            experiments' configs name them (`learning_rate`, `momentum`,
            `weight_decay`, `batch_size`, `epochs`).
        description: str. Where the settings come from.
    """

    callback: str
    arguments: types.MappingProxyType
    fit: types.MappingProxyType
    description: str

    def __post_init__(self):
        for name in ("arguments", "fit"):
            frozen = types.MappingProxyType(dict(getattr(self, name)))
            object.__setattr__(self, name, frozen)

    def __str__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.arguments.items())
        fit = ", ".join(f"{k}={v!r}" for k, v in self.fit.items())
        return f"{self.callback}({arguments}); fit: {fit}. {self.description}"


PRESETS = {
    "p_autogrow_cifar": Preset(
        "AutoGrow",
        {
            "policy": "periodic",
            "growth_period": 3,
            "patience": 100,
            "min_delta": 0.0005,
            "initializer": "gaussian",
            "fine_tune_epochs": 200,
            "fine_tune_lr_boundaries": (0.5, 0.75),
        },
        {
            "learning_rate": 0.1,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "batch_size": 128,
            "epochs": 3000,
        },
        "p-AutoGrow on CIFAR as Wen et al. (KDD 2020) run it: a growth every "
        "K = 3 epochs, a stage stops when the running best validation "
        "accuracy gains less than tau = 0.05 points over J = 100 epochs, "
        "GauInit blocks, then 200 fine-tune epochs with the rate x0.1 at 1/2 "
        "and 3/4; constant SGD rate 0.1 while growing (the authors decide on "
        "the test split; keras_grow on held-out data).",
    ),
    "firefly_vgg19_cifar10": Preset(
        "Firefly",
        {
            "grow_every": 160,
            "max_rounds": 9,
            "growth_ratio": 0.3,
            "candidates_per_layer": 70,
            "delta_steps": 390,
            "delta_optimizer": "rmsprop",
            "delta_learning_rate": 1e-3,
            "score_batches": 390,
            "period_schedule": "step",
            "after_growth": "fresh",
        },
        {"learning_rate": 0.1, "momentum": 0.9, "batch_size": 128, "epochs": 1600},
        "Firefly on VGG-19 / CIFAR-10 as Wu et al. (NeurIPS 2020) and their "
        "code run it: 30% more units a round every 160 epochs, step one "
        "(RMSprop, rate 1e-3) and scoring over one epoch of CIFAR batches, "
        "a pool of 70 new units per layer, each period at rate 0.1 with x0.1 "
        "at 1/2 and 3/4 and a fresh optimizer.",
    ),
}


def names(callback=None):
    """list of str. The presets (of `callback`, a class name, if given)."""
    return sorted(n for n, p in PRESETS.items() if callback in (None, p.callback))


def get(name):
    """The `Preset` called `name`.

    Raises:
        ValueError: naming the known presets.
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; known: {names()}.")
    return PRESETS[name]


class FromPreset:
    """Mixin of the growth callbacks: `from_preset`."""

    @classmethod
    def from_preset(cls, name, *args, **overrides):
        """The callback with a preset's arguments (`keras_grow.callbacks.
        presets`), `overrides` on top; `args` are its positional arguments
        (Firefly's `train_data`).

        Raises:
            ValueError: for an unknown preset, or one of another callback.
        """
        preset = get(name)
        if preset.callback != cls.__name__:
            raise ValueError(
                f"Preset {name!r} is {preset.callback}'s, not {cls.__name__}'s; "
                f"{cls.__name__}'s are {names(cls.__name__)}."
            )
        return cls(*args, **{**preset.arguments, **overrides})
