"""The base of every architecture spec: common fields, validation, JSON."""

import dataclasses
import json
import math
from typing import ClassVar

# The one registry of families: spec kind -> spec class, filled by
# `register_family`. Each class says how it is written (`from_notation`),
# read back from JSON (`from_dict`) and, in `keras_grow.build`, built.
_FAMILY_CLASSES = {}
# The name of a net's one input: its body's and the serving signature's.
INPUT = "images"


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """One input a built net takes: its name, one example's shape (the
    batch axis left out) and dtype."""

    name: str
    shape: tuple
    dtype: str


def a_or_an(word):
    """str. `word` with its indefinite article, as it is read aloud: "an
    Embedding", "a Dense", "a UnitNormalization", and an acronym by its
    first letter's name, "an RNN", "an LSTM", "a GRU"."""
    if word[:2].isupper():
        sounds_vowel = word[0] in "AEFHILMNORSX"
    else:
        sounds_vowel = word[:1].lower() in "aeiou" and not word.lower().startswith(
            ("uni", "use", "usi")
        )
    return f"{'an' if sounds_vowel else 'a'} {word}"


def register_family(cls):
    """Class decorator: make a spec class known to `from_dict` and
    `keras_grow.specs.parse`."""
    _FAMILY_CLASSES[cls.kind] = cls
    return cls


def families():
    """list of the registered spec classes, in registration order."""
    return list(_FAMILY_CLASSES.values())


def round_half_up(value):
    """int. `value` rounded to the nearest integer, halves up (Python's
    `round` takes halves to the even neighbour: 2.5 -> 2)."""
    return int(math.floor(value + 0.5))


def numbers_per_layer(notation, numbers, count, default, family):
    """A layered family's widths from its notation's numbers: none (the
    family's `default`), one (uniform) or one per layer."""
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


def as_int_tuple(value, field_name):
    """Coerces a sequence of ints (e.g. a JSON list) to a tuple of ints."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(
            f"`{field_name}` must be a sequence of integers; received {value!r}."
        )
    items = tuple(value)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            raise ValueError(
                f"`{field_name}` must contain only integers; received {value!r}."
            )
    return items


def check_positive(values, field_name, what):
    """Raises a ValueError naming the first entry < 1."""
    for index, value in enumerate(values):
        if value < 1:
            raise ValueError(
                f"Every {what} must be >= 1; received {field_name}="
                f"{tuple(values)} ({what} {index} is {value})."
            )


def check_image_input(spec):
    """Raises unless `spec.input_shape` is (height, width, channels)."""
    if len(spec.input_shape) != 3:
        raise ValueError(
            f"{spec.family} takes images (height, width, channels); "
            f"received input_shape={spec.input_shape}."
        )


def check_per_stage(values, field_name, what, num_stages, family):
    """`values` as a tuple of positive ints, one per stage, or a ValueError."""
    values = as_int_tuple(values, field_name)
    if len(values) != num_stages:
        raise ValueError(
            f"{family} has {num_stages} stages; received {len(values)} "
            f"{field_name} {values}."
        )
    check_positive(values, field_name, what)
    return values


def check_downsampling(input_shape, downsamplings, family):
    """Checks that every stride-2 op still has at least 2 pixels to halve.

    Args:
        input_shape: tuple. (height, width, channels).
        downsamplings: list of str. A name for each stride-2 op, in order.
        family: str. The family name, for the error message.

    Returns:
        The (height, width) left after the last downsampling.
    """
    height, width = input_shape[0], input_shape[1]
    for op in downsamplings:
        if min(height, width) < 2:
            # Ceil-halving n times keeps >= 2 pixels before the last op
            # exactly when the side is > 2 ** (n - 1).
            need = 2 ** (len(downsamplings) - 1) + 1
            raise ValueError(
                f"Input shape {tuple(input_shape)} is too small for "
                f"{family}: it downsamples {len(downsamplings)} times "
                f"({', '.join(downsamplings)}), so height and width must "
                f"be at least {need}; `{op}` would receive "
                f"{height}x{width}."
            )
        height, width = math.ceil(height / 2), math.ceil(width / 2)
    return height, width


@dataclasses.dataclass(frozen=True)
class NetSpec:
    """Fields every architecture spec has.

    Args:
        input_shape: tuple of int. Shape of one input example, without the
            batch axis, e.g. `(28, 28, 1)`.
        num_classes: int. Number of outputs (logits, or probabilities
            where the output layer applies softmax or sigmoid).
        input_mean: tuple of float or `None`. Per-channel mean subtracted
            from the input inside the graph (so an exported model takes raw
            pixels). Defaults to `None` (no normalisation).
        input_std: tuple of float or `None`. Per-channel standard deviation
            the input is divided by. Given together with `input_mean`.
        weight_decay: float. PyTorch-style coupled weight decay: every
            weight gets an L2 penalty `weight_decay / 2 * sum(w ** 2)`, whose
            gradient is `weight_decay * w`. Defaults to `0.0`.
    """

    kind: ClassVar[str] = ""
    # The family names `parse` reads for this class, as `known_families`
    # lists them.
    notation_names: ClassVar[tuple] = ()

    input_shape: tuple
    num_classes: int
    input_mean: tuple | None = None
    input_std: tuple | None = None
    weight_decay: float = 0.0

    @classmethod
    def from_notation(cls, family, notation, numbers, **kwargs):
        """The spec `notation` (family name `family`, then `numbers`)
        writes, or `None` where `family` is not one of this class's.
        `kwargs` are further fields (`input_shape`, `num_classes`, ...)."""
        return None

    def __post_init__(self):
        self._set("input_shape", as_int_tuple(self.input_shape, "input_shape"))
        check_positive(self.input_shape, "input_shape", "input dimension")
        if (
            isinstance(self.num_classes, bool)
            or not isinstance(self.num_classes, int)
            or self.num_classes < 1
        ):
            raise ValueError(
                f"`num_classes` must be an integer >= 1; received {self.num_classes!r}."
            )
        if (self.input_mean is None) != (self.input_std is None):
            raise ValueError(
                "`input_mean` and `input_std` must be given together; "
                f"received input_mean={self.input_mean!r}, "
                f"input_std={self.input_std!r}."
            )
        if (
            isinstance(self.weight_decay, bool)
            or not isinstance(self.weight_decay, (int, float))
            or not self.weight_decay >= 0
        ):
            raise ValueError(
                f"`weight_decay` must be a number >= 0; received {self.weight_decay!r}."
            )
        self._set("weight_decay", float(self.weight_decay))
        if self.input_mean is not None:
            mean = tuple(float(v) for v in self.input_mean)
            std = tuple(float(v) for v in self.input_std)
            channels = self.input_shape[-1]
            if len(mean) != channels or len(std) != channels:
                raise ValueError(
                    f"`input_mean` and `input_std` need one value per input "
                    f"channel ({channels}); received {mean} and {std}."
                )
            if min(std) <= 0:
                raise ValueError(f"`input_std` must be > 0; received {std}.")
            self._set("input_mean", mean)
            self._set("input_std", std)

    def _set(self, name, value):
        # Frozen dataclass: normalising a field in __post_init__ needs this.
        object.__setattr__(self, name, value)

    @property
    def family(self):
        """str. The family name as written in the notation."""
        raise NotImplementedError

    @property
    def notation(self):
        """str. The paper notation; `parse` reads it back."""
        raise NotImplementedError

    @property
    def output_activation(self):
        """str. What the output layer applies last: `"linear"` where the
        net outputs logits (every named family), `"softmax"` or
        `"sigmoid"` where it outputs probabilities (a model of your own
        may). Losses, label checks and export read it
        (`keras_grow.losses.Head`)."""
        return self.lowered().output_activation

    def lowered(self):
        """Returns the net as a `GraphSpec` of layer nodes, the one form
        every net is built and analysed from (see
        `keras_grow.specs.lowering`). Made once per spec."""
        graph = self.__dict__.get("_lowered")
        if graph is None:
            graph = self._lower()
            object.__setattr__(self, "_lowered", graph)
        return graph

    def _lower(self):
        raise NotImplementedError

    @property
    def depth_stages(self):
        """int. Stages `with_block_added` can deepen; 0 for a fixed layout
        (MobileNetV1)."""
        return 0

    @property
    def units_per_width(self):
        """int. Units of a unit group per unit of its `widths` entry (a
        bottleneck ResNet's stream is 4x its stage width). Width growth,
        which adds units one by one, needs 1."""
        return 1

    def with_block_added(self, stage):
        """Returns the spec with one more block at the end of `stage`.

        A block is what depth growth adds as a whole: a staged net's
        sub-module, a VGG or MLP layer. The new block is as wide as the
        stage's last, and every existing layer keeps its name.

        Args:
            stage: int. 0-based, below `depth_stages`.

        Raises:
            ValueError: for a fixed layout or a stage out of range.
        """
        raise ValueError(
            f"{self.family} has a fixed layout of blocks; it cannot be "
            "deepened. Use a staged net, VGG or MLP."
        )

    def stage_widths(self):
        """tuple of tuples of int. The width of each block of each depth
        stage, stage by stage (a staged net's blocks all take their stage's
        width; a VGG or MLP layer its own). A fixed layout is one stage
        whose length cannot change."""
        return (tuple(self.widths),)

    def with_stage_widths(self, stages):
        """Returns the spec whose `stage_widths()` are `stages`: as many
        blocks per stage as given, each as wide as given.

        Raises:
            ValueError: for a fixed layout given another number of blocks,
                or widths the family cannot take (a staged net's blocks of
                one stage differing).
        """
        stages = tuple(tuple(s) for s in stages)
        if [len(s) for s in stages] != [len(s) for s in self.stage_widths()]:
            raise ValueError(
                f"{self.family} has a fixed layout of blocks: its depth "
                f"cannot change (depth stays 1.0 in `scaled`)."
            )
        return self.with_widths([w for stage in stages for w in stage])

    def scaled(self, width=1.0, depth=1.0):
        """Returns the spec `width` times as wide and `depth` times as deep.

        Every block's width and every stage's number of blocks is
        multiplied and rounded half up, to at least 1; blocks a stage gains
        take its last block's width. Factors below 1 give a smaller net (a
        start for progressive training: `target.scaled(0.5, 0.5)`).

        Args:
            width: float > 0. Factor of every width.
            depth: float > 0. Factor of every stage's number of blocks;
                must be 1.0 for a fixed layout.

        Example:

        >>> from keras_grow import specs
        >>> spec = specs.parse("Basic3ResNet-1-1-1", input_shape=(28, 28, 1),
        ...                    num_classes=10, widths=(8, 16, 32))
        >>> spec.scaled(width=2, depth=3).notation
        'Basic3ResNet-3-3-3'
        """
        check_scale_factors(width, depth)
        stages = []
        for widths in self.stage_widths():
            count = max(1, round_half_up(len(widths) * depth))
            widths = list(widths[:count]) + [widths[-1]] * (count - len(widths))
            stages.append([max(1, round_half_up(w * width)) for w in widths])
        return self.with_stage_widths(stages)

    def _check_depth_stage(self, stage):
        if (
            isinstance(stage, bool)
            or not isinstance(stage, int)
            or not 0 <= stage < self.depth_stages
        ):
            raise ValueError(
                f"`stage` must be an integer in [0, {self.depth_stages - 1}] "
                f"for {self.family}; received {stage!r}."
            )

    @property
    def takes_integer_inputs(self):
        """bool. Whether the net scales integer inputs itself (a user graph
        whose input goes straight into `Rescaling`); the named families
        take float pixels in [0, 1]."""
        return False

    @property
    def input_dtype(self):
        """str. The dtype of the inputs the net is built and exported for."""
        return "float32"

    @property
    def model_inputs(self):
        """tuple of `ModelInput`. What the built net takes: the examples
        first. One input (`images` for a named family) is given as a
        tensor, or as a dict of it by name; several (a graph whose layers
        also read a padding mask) as a dict by name."""
        return (ModelInput(INPUT, tuple(self.input_shape), self.input_dtype),)

    def replace(self, **changes):
        """Returns a validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """Returns a JSON-compatible dict; `from_dict` reads it back."""
        config = {"kind": self.kind}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            config[field.name] = list(value) if isinstance(value, tuple) else value
        return config

    def to_json(self):
        """Returns the spec as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def __str__(self):
        return self.notation


def check_scale_factors(width, depth):
    """Raises a ValueError unless both factors of `scaled` are numbers > 0."""
    for name, factor in (("width", width), ("depth", depth)):
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            raise ValueError(f"`{name}` must be a number > 0; received {factor!r}.")
        if not factor > 0:
            raise ValueError(f"`{name}` must be > 0; received {factor!r}.")


def from_dict(config):
    """Rebuilds a spec from `spec.to_dict()`.

    Args:
        config: dict. As written by `NetSpec.to_dict`.

    Returns:
        The spec.

    Raises:
        ValueError: if the kind is unknown or a field is invalid.
    """
    if not isinstance(config, dict) or "kind" not in config:
        raise ValueError(f"A spec dict needs a 'kind' key; received {config!r}.")
    config = dict(config)
    kind = config.pop("kind")
    if kind not in _FAMILY_CLASSES:
        raise ValueError(
            f"Unknown spec kind {kind!r}; known kinds: {sorted(_FAMILY_CLASSES)}."
        )
    cls = _FAMILY_CLASSES[kind]
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(config) - names)
    if unknown:
        raise ValueError(
            f"Unknown fields {unknown} for a {kind} spec; allowed: {sorted(names)}."
        )
    return cls(**config)


def from_json(text):
    """Rebuilds a spec from `spec.to_json()`."""
    return from_dict(json.loads(text))
