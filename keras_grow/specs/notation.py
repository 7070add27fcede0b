"""Reads the paper notation (`Basic3ResNet-3-3-3`, `VGG19-16`, ...)."""

from keras_grow.specs import base

# The families register themselves when their modules are imported.
from keras_grow.specs import graph  # noqa: F401
from keras_grow.specs import layered  # noqa: F401
from keras_grow.specs import staged  # noqa: F401


def _numbers(notation, parts):
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"Malformed spec notation {notation!r}: expected a family name "
            f"followed by '-'-separated integers."
        ) from None


def known_families():
    """list of str. Every family name `parse` accepts: the names, sorted,
    then the patterns (`VGG(a,b,...)`)."""
    names = [n for cls in base.families() for n in cls.notation_names]
    return sorted(n for n in names if "(" not in n) + [n for n in names if "(" in n]


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
    kwargs.update(input_shape=input_shape, num_classes=num_classes)
    for cls in base.families():
        spec = cls.from_notation(family, notation, numbers, **kwargs)
        if spec is not None:
            return spec
    raise ValueError(
        f"Unknown family {family!r} in {notation!r}; allowed: "
        f"{', '.join(known_families())}."
    )
