"""Staged nets (AutoGrow's families): residual and plain nets of stages."""

import dataclasses
import re

from keras_grow.specs import base
from keras_grow.specs import lowering

STEMS = ("cifar", "imagenet")
BOTTLENECK_EXPANSION = 4

# family name -> (block, number of stages). The families of AutoGrow.
FAMILIES = {
    "Basic3ResNet": ("basic", 3),
    "Basic4ResNet": ("basic", 4),
    "Bottleneck4ResNet": ("bottleneck", 4),
    "Plain3Net": ("plain", 3),
    "Plain4Net": ("plain", 4),
}
_DEFAULT_WIDTHS = {3: (16, 32, 64), 4: (64, 128, 256, 512)}
# `Basic3ResNet(8,16,32)`: a family name with its stage widths.
_WITH_WIDTHS = re.compile(r"^(\w+)\((\d+(?:,\d+)*)\)$")
# Inputs at least this large get the ImageNet stem (7x7/2 conv + max-pool).
IMAGENET_STEM_MIN_SIDE = 112


@base.register_family
@dataclasses.dataclass(frozen=True)
class StagedNetSpec(base.NetSpec):
    """A net of stages of sub-modules: AutoGrow's ResNets and plain nets.

    The first sub-module of every stage but the first halves the resolution.
    A residual block's shortcut is a projection (1x1 conv + BN) when its
    input and output shapes differ and the identity otherwise; a plain
    sub-module is conv-BN-ReLU.

    Args:
        input_shape: tuple of int. (height, width, channels).
        num_classes: int. Number of output logits.
        family: str. One of `FAMILIES`, e.g. `"Basic3ResNet"`.
        depths: tuple of int. Sub-modules per stage, each >= 1.
        widths: tuple of int or `None`. Channels per stage (the inner width
            for bottleneck blocks, whose output is 4x wider). Defaults to
            16/32/64 for 3 stages and 64/128/256/512 for 4.
        stem: str or `None`. `"cifar"` (3x3 conv) or `"imagenet"` (7x7/2
            conv + 3x3/2 max-pool). Defaults to `"imagenet"` for inputs of
            at least 112 pixels, `"cifar"` otherwise.
        stem_width: int or `None`. Channels of the stem conv. Defaults to
            the first stage's width.
        input_mean, input_std: see `NetSpec`.

    Example:

    >>> spec = StagedNetSpec((28, 28, 1), 10, family="Basic3ResNet",
    ...                      depths=(1, 1, 1))
    >>> spec.with_block_added(0).notation
    'Basic3ResNet-2-1-1'
    """

    kind = "staged"
    notation_names = tuple(FAMILIES) + ("<staged family>(w1,w2,...)",)

    family_name: str = "Basic3ResNet"
    depths: tuple = (1, 1, 1)
    widths: tuple | None = None
    stem: str | None = None
    stem_width: int | None = None

    @classmethod
    def from_notation(cls, family, notation, numbers, **kwargs):
        """`Basic3ResNet-2-3-3` (depth per stage), and with stage widths
        other than the family's, `Basic3ResNet(8,16,32)-2-3-3`."""
        match = _WITH_WIDTHS.match(family)
        if match and match.group(1) in FAMILIES:
            family = match.group(1)
            widths = tuple(int(w) for w in match.group(2).split(","))
            given = kwargs.pop("widths", None)
            if given is not None and tuple(given) != widths:
                raise ValueError(
                    f"{notation!r} names stage widths {widths}, but "
                    f"`widths={tuple(given)}` was passed too; give them once."
                )
            kwargs["widths"] = widths
        elif family not in FAMILIES:
            return None
        return cls(family_name=family, depths=numbers, **kwargs)

    def __post_init__(self):
        super().__post_init__()
        if self.family_name not in FAMILIES:
            raise ValueError(
                f"Unknown staged family {self.family_name!r}; allowed: "
                f"{sorted(FAMILIES)}."
            )
        num_stages, family = self.num_stages, self.family_name
        self._set(
            "depths",
            base.check_per_stage(
                self.depths, "depths", "stage depth", num_stages, family
            ),
        )
        widths = self.widths or _DEFAULT_WIDTHS[num_stages]
        self._set(
            "widths",
            base.check_per_stage(widths, "widths", "stage width", num_stages, family),
        )
        base.check_image_input(self)
        if self.stem is None:
            side = min(self.input_shape[:2])
            stem = "imagenet" if side >= IMAGENET_STEM_MIN_SIDE else "cifar"
            self._set("stem", stem)
        if self.stem not in STEMS:
            raise ValueError(f"Unknown stem {self.stem!r}; allowed: {list(STEMS)}.")
        if self.stem_width is None:
            self._set("stem_width", self.widths[0])
        base.check_positive([self.stem_width], "stem_width", "stem width")
        base.check_downsampling(self.input_shape, self.downsamplings, self.family_name)

    @property
    def family(self):
        return self.family_name

    @property
    def block(self):
        """str. `"basic"`, `"bottleneck"` or `"plain"`."""
        return FAMILIES[self.family_name][0]

    @property
    def num_stages(self):
        return FAMILIES[self.family_name][1]

    @property
    def residual(self):
        return self.block != "plain"

    @property
    def expansion(self):
        """int. Output channels of a block per unit of its stage width."""
        return BOTTLENECK_EXPANSION if self.block == "bottleneck" else 1

    @property
    def depth_stages(self):
        return self.num_stages

    @property
    def units_per_width(self):
        return self.expansion

    @property
    def downsamplings(self):
        """list of str. The stride-2 ops, in order (used for validation)."""
        ops = ["stem_conv", "stem_pool"] if self.stem == "imagenet" else []
        return ops + [f"stage{s + 1}" for s in range(1, self.num_stages)]

    @property
    def notation(self):
        """str. `Basic3ResNet-2-3-3`; with stage widths other than the
        family's, `Basic3ResNet(8,16,32)-2-3-3`, so `parse` rebuilds them."""
        name = self.family_name
        if self.widths != _DEFAULT_WIDTHS[self.num_stages]:
            name += "(" + ",".join(str(w) for w in self.widths) + ")"
        return "-".join([name] + [str(d) for d in self.depths])

    def _lower(self):
        return lowering.staged_graph(self)

    def with_depths(self, depths):
        """Returns the spec with new per-stage depths."""
        return self.replace(depths=tuple(depths))

    def with_block_added(self, stage):
        """Returns the spec with one more sub-module at the end of `stage`.

        Args:
            stage: int. 0-based stage index (layer names count from 1).
        """
        self._check_depth_stage(stage)
        depths = list(self.depths)
        depths[stage] += 1
        return self.with_depths(depths)

    def with_widths(self, widths):
        """Returns the spec with new per-stage widths.

        The stem keeps following the first stage when it did before.
        """
        widths = tuple(widths)
        tied = self.stem_width == self.widths[0]
        stem_width = widths[0] if tied and widths else self.stem_width
        return self.replace(widths=widths, stem_width=stem_width)

    def stage_widths(self):
        return tuple((w,) * d for w, d in zip(self.widths, self.depths))

    def with_stage_widths(self, stages):
        stages = tuple(tuple(s) for s in stages)
        for index, stage in enumerate(stages):
            if not stage or len(set(stage)) != 1:
                raise ValueError(
                    f"Every block of a {self.family} stage takes the stage's "
                    f"width; stage {index} was given {stage}."
                )
        spec = self.with_depths([len(s) for s in stages])
        return spec.with_widths([s[0] for s in stages])

    def with_layer_widened(self, index, width):
        """Returns the spec with stage `index` `width` channels wide."""
        self._check_depth_stage(index)
        widths = list(self.widths)
        widths[index] = width
        return self.with_widths(widths)
