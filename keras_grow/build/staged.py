"""Builds AutoGrow's staged nets: Basic/Bottleneck ResNets and plain nets."""

import dataclasses

import keras

from keras_grow.build import layers
from keras_grow.build.structure import Block
from keras_grow.build.structure import UnitGroup


@dataclasses.dataclass(frozen=True)
class _BlockPlan:
    """Where one sub-module sits and what shapes it sees."""

    prefix: str
    stage: int
    index: int
    stride: int
    in_width: int
    width: int  # the stage width (inner width for bottleneck)
    out_width: int

    @property
    def projection(self):
        return self.stride != 1 or self.in_width != self.out_width


def block_plans(spec):
    """list of `_BlockPlan`, one per sub-module, in graph order."""
    plans = []
    in_width = spec.stem_width
    for stage, depth in enumerate(spec.depths):
        width = spec.widths[stage]
        for index in range(depth):
            stride = 2 if index == 0 and stage > 0 else 1
            out_width = width * spec.expansion
            plans.append(
                _BlockPlan(
                    prefix=f"stage{stage + 1}_block{index + 1}",
                    stage=stage,
                    index=index,
                    stride=stride,
                    in_width=in_width,
                    width=width,
                    out_width=out_width,
                )
            )
            in_width = out_width
    return plans


def _conv_names(plan, spec):
    count = {"basic": 2, "bottleneck": 3, "plain": 1}[spec.block]
    if spec.block == "plain":
        return (f"{plan.prefix}_conv",)
    return tuple(f"{plan.prefix}_conv{i}" for i in range(1, count + 1))


def _stem(x, spec):
    if spec.stem == "imagenet":
        x = layers.conv_bn_relu(x, spec.stem_width, 7, 2, "stem", spec)
        return keras.layers.MaxPooling2D(
            3, strides=2, padding="same", name="stem_pool"
        )(x)
    return layers.conv_bn_relu(x, spec.stem_width, 3, 1, "stem", spec)


def _shortcut(x, plan, spec):
    if not plan.projection:
        return x
    x = layers.conv(
        x, plan.out_width, 1, plan.stride, f"{plan.prefix}_shortcut_conv", spec
    )
    return layers.batch_norm(x, f"{plan.prefix}_shortcut_bn", spec)


def _residual_end(x, y, kernel_size, plan, spec, suffix):
    """The block's last conv and BN (no ReLU), added to the shortcut of
    its input `x`, then the ReLU."""
    name = f"{plan.prefix}_conv{suffix}"
    y = layers.conv(y, plan.out_width, kernel_size, 1, name, spec)
    y = layers.batch_norm(y, layers.norm_of(name), spec)
    y = keras.layers.Add(name=f"{plan.prefix}_add")([_shortcut(x, plan, spec), y])
    return layers.relu(y, f"{plan.prefix}_out")


def _basic_block(x, plan, spec):
    y = layers.conv_bn_relu(x, plan.width, 3, plan.stride, plan.prefix, spec, "1")
    return _residual_end(x, y, 3, plan, spec, "2")


def _bottleneck_block(x, plan, spec):
    y = layers.conv_bn_relu(x, plan.width, 1, 1, plan.prefix, spec, "1")
    y = layers.conv_bn_relu(y, plan.width, 3, plan.stride, plan.prefix, spec, "2")
    return _residual_end(x, y, 1, plan, spec, "3")


def _plain_block(x, plan, spec):
    return layers.conv_bn_relu(x, plan.width, 3, plan.stride, plan.prefix, spec)


_BLOCK_BUILDERS = {
    "basic": _basic_block,
    "bottleneck": _bottleneck_block,
    "plain": _plain_block,
}


def build(spec):
    """Returns the functional graph of a `StagedNetSpec`."""
    inputs, x = layers.image_input(spec)
    x = _stem(x, spec)
    block_builder = _BLOCK_BUILDERS[spec.block]
    for plan in block_plans(spec):
        x = block_builder(x, plan, spec)
    return layers.functional(inputs, layers.pooled_classifier(x, spec))


def blocks(spec):
    """list of `Block`: every sub-module of the net."""
    result = []
    for plan in block_plans(spec):
        convs = _conv_names(plan, spec)
        last_norm = layers.norm_of(convs[-1])
        result.append(
            Block(plan.prefix, last_norm, spec.residual, convs, stage=plan.stage)
        )
    return result


def unit_groups(spec):
    """list of `UnitGroup` of a staged net (see `UnitGroup`)."""
    stem_index = 0 if spec.stem_width == spec.widths[0] else None
    groups = []
    # The stream: channels flowing between sub-modules. In a residual net
    # all blocks of a stage without a projection add into one stream.
    stream = dict(
        name="stem",
        width_index=stem_index,
        producers=["stem_conv"],
        norms=["stem_bn"],
        consumers=[],
    )
    for plan in block_plans(spec):
        convs = _conv_names(plan, spec)
        stream["consumers"].append(convs[0])
        if spec.residual and plan.projection:
            stream["consumers"].append(f"{plan.prefix}_shortcut_conv")
        for i, (producer, consumer) in enumerate(zip(convs, convs[1:])):
            groups.append(
                UnitGroup(
                    name=f"{plan.prefix}_inner{i + 1}",
                    width_index=plan.stage,
                    producers=(producer,),
                    norms=(layers.norm_of(producer),),
                    consumers=(consumer,),
                )
            )
        last_norm = layers.norm_of(convs[-1])
        if spec.residual and not plan.projection:
            stream["name"] = f"stage{plan.stage + 1}"
            stream["producers"].append(convs[-1])
            stream["norms"].append(last_norm)
            continue
        groups.append(_freeze(stream))
        stream = dict(
            name=plan.prefix if not spec.residual else f"stage{plan.stage + 1}",
            width_index=plan.stage,
            producers=[convs[-1]],
            norms=[last_norm],
            consumers=[],
        )
        if spec.residual:
            stream["producers"].append(f"{plan.prefix}_shortcut_conv")
            stream["norms"].append(f"{plan.prefix}_shortcut_bn")
    stream["consumers"].append("classifier")
    groups.append(_freeze(stream))
    return groups


def _freeze(stream):
    return UnitGroup(
        name=stream["name"],
        width_index=stream["width_index"],
        producers=tuple(stream["producers"]),
        norms=tuple(stream["norms"]),
        consumers=tuple(stream["consumers"]),
    )
