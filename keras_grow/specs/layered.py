"""Width families (Firefly's): one width per layer, VGG, MobileNetV1, MLP."""

import dataclasses
import re

from keras_grow.specs import base
from keras_grow.specs import lowering

# Named VGG layouts: conv layers per pooling stage.
VGG_LAYOUTS = {
    "VGG11": (1, 1, 2, 2, 2),
    "VGG13": (2, 2, 2, 2, 2),
    "VGG16": (2, 2, 3, 3, 3),
    "VGG19": (2, 2, 4, 4, 4),
}
# `VGG(2,2,5,4,4)`: a custom layout.
_VGG_CUSTOM = re.compile(r"^VGG\((\d+(?:,\d+)*)\)$")
# The original (ImageNet) channel plan per pooling stage.
VGG_STAGE_WIDTHS = (64, 128, 256, 512, 512)

# MobileNetV1: strides of the 13 depthwise-separable blocks, and the
# original widths of the stem and the 13 pointwise convs.
MOBILENET_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)
MOBILENET_WIDTHS = (32, 64, 128, 128, 256, 256) + (512,) * 6 + (1024, 1024)
MOBILENET_STEMS = ("cifar", "imagenet")


def widths_notation(widths, fixed_count):
    """`16` for uniform widths, else `16-16-24-...`; `parse` reads both.

    Only a family with a fixed layer count may shorten uniform widths: an
    MLP's widths are also its depth.
    """
    if fixed_count and len(set(widths)) == 1:
        return str(widths[0])
    return "-".join(str(w) for w in widths)


@dataclasses.dataclass(frozen=True)
class LayeredSpec(base.NetSpec):
    """A spec with one width per growable layer (see `NetSpec` for args)."""

    widths: tuple = ()

    def __post_init__(self):
        super().__post_init__()
        self._set("widths", base.as_int_tuple(self.widths, "widths"))
        expected = self.num_layers
        if expected is not None and len(self.widths) != expected:
            raise ValueError(
                f"{self.family} has {expected} growable layers; received "
                f"{len(self.widths)} widths {self.widths}."
            )
        if not self.widths:
            raise ValueError(f"{self.family} needs at least one width.")
        base.check_positive(self.widths, "widths", "layer width")

    @property
    def num_layers(self):
        """int or `None`. The fixed number of widths, `None` if free."""
        return None

    @property
    def notation(self):
        fixed = self.num_layers is not None
        return f"{self.family}-{widths_notation(self.widths, fixed)}"

    def with_widths(self, widths):
        """Returns the spec with new per-layer widths."""
        return self.replace(widths=tuple(widths))

    def with_layer_widened(self, index, width):
        """Returns the spec with layer `index` (0-based) `width` wide."""
        if not isinstance(index, int) or not 0 <= index < len(self.widths):
            raise ValueError(
                f"`index` must be an integer in [0, {len(self.widths) - 1}] "
                f"for {self.family}; received {index!r}."
            )
        widths = list(self.widths)
        widths[index] = width
        return self.with_widths(widths)


@base.register_family
@dataclasses.dataclass(frozen=True)
class VGGSpec(LayeredSpec):
    """VGG: stages of conv-BN-ReLU layers, each stage ending in a 2x2 pool.

    Pools use 'same' padding, so 28x28 inputs reach 1x1 after five pools.
    The classifier is global average pooling + Dense (on the final 1x1 map
    the same function as Firefly's 1x1 conv classifier).

    Args:
        input_shape: tuple of int. (height, width, channels).
        num_classes: int. Number of output logits.
        stage_depths: tuple of int. Conv layers per stage. Defaults to the
            VGG-19 layout (2, 2, 4, 4, 4).
        widths: tuple of int. Channels of every conv layer, in order.
        input_mean, input_std: see `NetSpec`.

    Example:

    >>> from keras_grow import specs
    >>> specs.parse("VGG19-16", input_shape=(32, 32, 3), num_classes=10).widths[:3]
    (16, 16, 16)
    """

    kind = "vgg"
    notation_names = tuple(VGG_LAYOUTS) + ("VGG(a,b,...)",)

    stage_depths: tuple = VGG_LAYOUTS["VGG19"]

    @classmethod
    def from_notation(cls, family, notation, numbers, **kwargs):
        """`VGG19-16` (uniform width), `VGG11-8-8-16-...` (width per
        layer), `VGG(2,2,5,4,4)-16` (a custom layout)."""
        match = _VGG_CUSTOM.match(family)
        if match:
            layout = tuple(int(d) for d in match.group(1).split(","))
        elif family in VGG_LAYOUTS:
            layout = VGG_LAYOUTS[family]
        else:
            return None
        default = tuple(
            VGG_STAGE_WIDTHS[min(s, len(VGG_STAGE_WIDTHS) - 1)]
            for s, depth in enumerate(layout)
            for _ in range(depth)
        )
        widths = base.numbers_per_layer(notation, numbers, sum(layout), default, "VGG")
        return cls(stage_depths=layout, widths=widths, **kwargs)

    def __post_init__(self):
        self._set("stage_depths", base.as_int_tuple(self.stage_depths, "stage_depths"))
        if not self.stage_depths:
            raise ValueError("A VGG needs at least one stage.")
        base.check_positive(self.stage_depths, "stage_depths", "stage depth")
        super().__post_init__()
        base.check_image_input(self)
        base.check_downsampling(
            self.input_shape,
            [f"stage{s + 1}_pool" for s in range(len(self.stage_depths))],
            self.family,
        )

    @property
    def family(self):
        for name, layout in VGG_LAYOUTS.items():
            if layout == tuple(self.stage_depths):
                return name
        return "VGG(" + ",".join(str(d) for d in self.stage_depths) + ")"

    @property
    def num_layers(self):
        return sum(self.stage_depths)

    def _lower(self):
        return lowering.vgg_graph(self)

    @property
    def depth_stages(self):
        return len(self.stage_depths)

    def with_block_added(self, stage):
        """Returns the spec with one more conv layer at the end of `stage`
        (see `NetSpec.with_block_added`)."""
        self._check_depth_stage(stage)
        end = sum(self.stage_depths[: stage + 1])
        depths = list(self.stage_depths)
        depths[stage] += 1
        widths = self.widths[:end] + (self.widths[end - 1],) + self.widths[end:]
        return self.replace(stage_depths=tuple(depths), widths=widths)

    def stage_widths(self):
        ends = [sum(self.stage_depths[: s + 1]) for s in range(len(self.stage_depths))]
        starts = [0] + ends[:-1]
        return tuple(self.widths[a:b] for a, b in zip(starts, ends))

    def with_stage_widths(self, stages):
        stages = tuple(tuple(s) for s in stages)
        if len(stages) != len(self.stage_depths) or not all(stages):
            raise ValueError(
                f"A VGG takes {len(self.stage_depths)} stages of at least one "
                f"layer; received {stages}."
            )
        return self.replace(
            stage_depths=tuple(len(s) for s in stages),
            widths=tuple(w for s in stages for w in s),
        )

    def layer_positions(self):
        """list of (stage, layer): 0-based position of each conv layer."""
        return [
            (stage, layer)
            for stage, depth in enumerate(self.stage_depths)
            for layer in range(depth)
        ]


@base.register_family
@dataclasses.dataclass(frozen=True)
class MobileNetV1Spec(LayeredSpec):
    """MobileNetV1: a stem conv and 13 depthwise-separable blocks.

    Args:
        input_shape: tuple of int. (height, width, channels).
        num_classes: int. Number of output logits.
        widths: tuple of 14 int. The stem's channels, then each block's
            pointwise channels (a block's depthwise conv keeps the width of
            its input).
        stem: str. `"cifar"` (stride 1, as the CIFAR MobileNet of Firefly's
            code) or `"imagenet"` (stride 2). Defaults to `"cifar"` below
            112 pixels, `"imagenet"` otherwise.
        input_mean, input_std: see `NetSpec`.
    """

    kind = "mobilenet_v1"
    notation_names = ("MobileNetV1",)

    stem: str | None = None

    @classmethod
    def from_notation(cls, family, notation, numbers, **kwargs):
        """`MobileNetV1` (original widths), `MobileNetV1-8` (uniform), or
        14 widths."""
        if family != "MobileNetV1":
            return None
        widths = base.numbers_per_layer(
            notation, numbers, 14, MOBILENET_WIDTHS, "MobileNetV1"
        )
        return cls(widths=widths, **kwargs)

    def __post_init__(self):
        super().__post_init__()
        base.check_image_input(self)
        if self.stem is None:
            big = min(self.input_shape[:2]) >= 112
            self._set("stem", "imagenet" if big else "cifar")
        if self.stem not in MOBILENET_STEMS:
            raise ValueError(
                f"Unknown stem {self.stem!r}; allowed: {list(MOBILENET_STEMS)}."
            )
        ops = ["stem_conv"] if self.stem == "imagenet" else []
        ops += [
            f"block{i + 1}_dw"
            for i, stride in enumerate(MOBILENET_STRIDES)
            if stride == 2
        ]
        base.check_downsampling(self.input_shape, ops, self.family)

    @property
    def family(self):
        return "MobileNetV1"

    @property
    def num_layers(self):
        return 1 + len(MOBILENET_STRIDES)

    @property
    def strides(self):
        """tuple of int. The strides of the 13 blocks' depthwise convs."""
        return MOBILENET_STRIDES

    def _lower(self):
        return lowering.mobilenet_graph(self)


@base.register_family
@dataclasses.dataclass(frozen=True)
class MLPSpec(LayeredSpec):
    """A multi-layer perceptron: flatten, Dense-ReLU hidden layers, logits.

    Args:
        input_shape: tuple of int. Any shape; it is flattened.
        num_classes: int. Number of output logits.
        widths: tuple of int. Units of each hidden layer (at least one).
        input_mean, input_std: see `NetSpec`.
    """

    kind = "mlp"
    notation_names = ("MLP",)

    @classmethod
    def from_notation(cls, family, notation, numbers, **kwargs):
        """`MLP-64-64`: one width per hidden layer."""
        if family != "MLP":
            return None
        if not numbers:
            raise ValueError(
                f"MLP needs one width per hidden layer, e.g. 'MLP-64-64'; "
                f"received {notation!r}."
            )
        return cls(widths=numbers, **kwargs)

    @property
    def family(self):
        return "MLP"

    @property
    def depth_stages(self):
        return 1

    def _lower(self):
        return lowering.mlp_graph(self)

    def with_stage_widths(self, stages):
        (stage,) = stages
        return self.with_widths(stage)

    def with_block_added(self, stage=0):
        """Returns the spec with one more hidden layer after the last one,
        as wide as it (an MLP has one stage: `stage` must be 0)."""
        self._check_depth_stage(stage)
        return self.with_widths(self.widths + (self.widths[-1],))
