"""Builds the width families: VGG, MobileNetV1 and MLP."""

import keras

from keras_grow.build import layers
from keras_grow.build.structure import Block
from keras_grow.build.structure import UnitGroup
from keras_grow.specs import layered as layered_specs


def _chain_groups(names, width_indices, last_consumer="classifier"):
    """Groups of a plain chain: each layer's units feed the next layer."""
    groups = []
    for i, (name, index) in enumerate(zip(names, width_indices)):
        consumer = names[i + 1] if i + 1 < len(names) else last_consumer
        groups.append(
            UnitGroup(
                name=name.rsplit("_", 1)[0],
                width_index=index,
                producers=(name,),
                norms=(layers.norm_of(name),) if name.endswith("_conv") else (),
                consumers=(consumer,),
            )
        )
    return groups


# --- VGG -----------------------------------------------------------------


def _vgg_prefixes(spec):
    return [
        f"stage{stage + 1}_layer{layer + 1}" for stage, layer in spec.layer_positions()
    ]


def build_vgg(spec):
    inputs, x = layers.image_input(spec)
    prefixes = iter(_vgg_prefixes(spec))
    widths = iter(spec.widths)
    for stage, depth in enumerate(spec.stage_depths):
        for _ in range(depth):
            x = layers.conv_bn_relu(x, next(widths), 3, 1, next(prefixes), spec)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"stage{stage + 1}_pool")(
            x
        )
    return layers.functional(inputs, layers.pooled_classifier(x, spec))


def vgg_blocks(spec):
    return [
        Block(p, f"{p}_bn", residual=False, convs=(f"{p}_conv",), stage=stage)
        for p, (stage, _) in zip(_vgg_prefixes(spec), spec.layer_positions())
    ]


def vgg_unit_groups(spec):
    names = [f"{p}_conv" for p in _vgg_prefixes(spec)]
    return _chain_groups(names, range(len(names)))


# --- MobileNetV1 -----------------------------------------------------------


def build_mobilenet(spec):
    inputs, x = layers.image_input(spec)
    stem_stride = 2 if spec.stem == "imagenet" else 1
    x = layers.conv_bn_relu(x, spec.widths[0], 3, stem_stride, "stem", spec)
    strides = layered_specs.MOBILENET_STRIDES
    for i, (stride, width) in enumerate(zip(strides, spec.widths[1:])):
        p = f"block{i + 1}"
        x = layers.depthwise_conv(x, stride, f"{p}_dw", spec)
        x = layers.batch_norm(x, f"{p}_dw_bn", spec)
        x = layers.relu(x, f"{p}_dw_relu")
        x = layers.conv_bn_relu(x, width, 1, 1, p, spec, suffix="")
    return layers.functional(inputs, layers.pooled_classifier(x, spec))


def mobilenet_blocks(spec):
    count = len(layered_specs.MOBILENET_STRIDES)
    return [
        Block(
            f"block{i}",
            f"block{i}_bn",
            residual=False,
            convs=(f"block{i}_dw", f"block{i}_conv"),
        )
        for i in range(1, count + 1)
    ]


def mobilenet_unit_groups(spec):
    count = len(layered_specs.MOBILENET_STRIDES)
    prefixes = ["stem"] + [f"block{i}" for i in range(1, count + 1)]
    groups = []
    for index, prefix in enumerate(prefixes):
        if index + 1 < len(prefixes):
            nxt = prefixes[index + 1]
            norms = (f"{prefix}_bn", f"{nxt}_dw_bn")
            passthrough = (f"{nxt}_dw",)
            consumers = (f"{nxt}_conv",)
        else:
            norms, passthrough, consumers = (f"{prefix}_bn",), (), ("classifier",)
        groups.append(
            UnitGroup(
                name=prefix,
                width_index=index,
                producers=(f"{prefix}_conv",),
                norms=norms,
                passthrough=passthrough,
                consumers=consumers,
            )
        )
    return groups


# --- MLP ------------------------------------------------------------------


def build_mlp(spec):
    inputs, x = layers.image_input(spec)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, width in enumerate(spec.widths):
        x = layers.dense(x, width, f"layer{i + 1}_dense", spec)
        x = layers.relu(x, f"layer{i + 1}_relu")
    outputs = layers.classifier(x, spec)
    return layers.functional(inputs, outputs)


def mlp_blocks(spec):
    return [
        Block(f"layer{i}", None, residual=False, convs=(f"layer{i}_dense",), stage=0)
        for i in range(1, len(spec.widths) + 1)
    ]


def mlp_unit_groups(spec):
    names = [f"layer{i}_dense" for i in range(1, len(spec.widths) + 1)]
    return _chain_groups(names, range(len(names)))
