"""Reads the paper notation (`Basic3ResNet-3-3-3`, `VGG19-16`, ...)."""

import re

from keras_grow.specs import layered
from keras_grow.specs import staged

_VGG_CUSTOM = re.compile(r"^VGG\((\d+(?:,\d+)*)\)$")
_WITH_NUMBERS = re.compile(r"^(\w+)\((\d+(?:,\d+)*)\)$")


def _numbers(notation, parts):
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"Malformed spec notation {notation!r}: expected a family name "
            f"followed by '-'-separated integers."
        ) from None


def _uniform_or_per_layer(notation, numbers, count, default, family):
    if not numbers:
        return default
    if len(numbers) == 1:
        return numbers * count
    if len(numbers) != count:
        raise ValueError(
            f"{family} takes 1 width (uniform) or {count} widths (one per "
            f"layer); received {len(numbers)} in {notation!r}."
        )
    return numbers


def _vgg(layout, notation, numbers, **kwargs):
    stage_widths = layered.VGG_STAGE_WIDTHS
    default = tuple(
        stage_widths[min(s, len(stage_widths) - 1)]
        for s, depth in enumerate(layout)
        for _ in range(depth)
    )
    widths = _uniform_or_per_layer(notation, numbers, sum(layout), default, "VGG")
    return layered.VGGSpec(stage_depths=layout, widths=widths, **kwargs)


def _mobilenet(notation, numbers, **kwargs):
    widths = _uniform_or_per_layer(
        notation, numbers, 14, layered.MOBILENET_WIDTHS, "MobileNetV1"
    )
    return layered.MobileNetV1Spec(widths=widths, **kwargs)


def _mlp(notation, numbers, **kwargs):
    if not numbers:
        raise ValueError(
            f"MLP needs one width per hidden layer, e.g. 'MLP-64-64'; "
            f"received {notation!r}."
        )
    return layered.MLPSpec(widths=numbers, **kwargs)


def _staged_factory(family, widths=None):
    def make(notation, numbers, **kwargs):
        if widths is not None:
            given = kwargs.pop("widths", None)
            if given is not None and tuple(given) != widths:
                raise ValueError(
                    f"{notation!r} names stage widths {widths}, but "
                    f"`widths={tuple(given)}` was passed too; give them once."
                )
            kwargs["widths"] = widths
        return staged.StagedNetSpec(family_name=family, depths=numbers, **kwargs)

    return make


def _vgg_factory(layout):
    return lambda notation, numbers, **kwargs: _vgg(layout, notation, numbers, **kwargs)


# family name -> factory(notation, numbers, **spec_fields).
_FACTORIES = {
    **{family: _staged_factory(family) for family in staged.FAMILIES},
    **{name: _vgg_factory(layout) for name, layout in layered.VGG_LAYOUTS.items()},
    "MobileNetV1": _mobilenet,
    "MLP": _mlp,
}


def _factory(family):
    if family in _FACTORIES:
        return _FACTORIES[family]
    match = _VGG_CUSTOM.match(family)
    if match:
        return _vgg_factory(tuple(int(d) for d in match.group(1).split(",")))
    match = _WITH_NUMBERS.match(family)
    if match and match.group(1) in staged.FAMILIES:
        widths = tuple(int(w) for w in match.group(2).split(","))
        return _staged_factory(match.group(1), widths)
    return None


def known_families():
    """list of str. Every family name `parse` accepts."""
    return sorted(_FACTORIES) + ["VGG(a,b,...)", "<staged family>(w1,w2,...)"]


def parse(notation, input_shape, num_classes, **kwargs):
    """Builds a spec from the paper notation.

    `spec.notation` writes the same notation back, so
    `parse(spec.notation, ...) == spec` for specs built with the same extra
    arguments.

    Args:
        notation: str. A family name and numbers joined by '-':
            `"Basic3ResNet-1-1-1"` (depth per stage), `"VGG19-16"` (uniform
            width), `"VGG11-8-8-16-16-16-16-16-16"` (width per layer),
            `"VGG(2,2,5,4,4)-16"` (a custom VGG layout),
            `"Basic3ResNet(8,16,32)-2-3-3"` (stage widths other than the
            family's), `"MobileNetV1"`
            (original widths), `"MLP-64-64"` (width per hidden layer).
        input_shape: tuple of int. Shape of one example, e.g. `(28, 28, 1)`.
        num_classes: int. Number of output logits.
        **kwargs: further spec fields, e.g. `widths=(8, 16, 32)` for a
            staged net, `input_mean`/`input_std`, `stem`.

    Returns:
        A validated, immutable spec.

    Raises:
        ValueError: for an unknown family, malformed numbers, or any field
            the spec rejects (depth < 1, width < 1, wrong number of stages,
            input too small for the downsampling).

    Example:

    >>> spec = parse("Basic3ResNet-1-1-1", input_shape=(28, 28, 1),
    ...              num_classes=10)
    >>> spec.with_depths((2, 1, 1)).notation
    'Basic3ResNet-2-1-1'
    """
    if not isinstance(notation, str):
        raise TypeError(
            f"`notation` must be a str such as 'Basic3ResNet-1-1-1'; "
            f"received {notation!r}."
        )
    family, *parts = notation.strip().split("-")
    numbers = _numbers(notation, parts)
    factory = _factory(family)
    if factory is None:
        raise ValueError(
            f"Unknown family {family!r} in {notation!r}; allowed: "
            f"{', '.join(known_families())}."
        )
    return factory(
        notation,
        numbers,
        input_shape=input_shape,
        num_classes=num_classes,
        **kwargs,
    )
