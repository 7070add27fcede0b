"""The named families as layer graphs: what every family is built from.

`NetSpec.lowered()` writes a named family's net (an AutoGrow ResNet, VGG,
MobileNetV1, an MLP) as a `GraphSpec` in `depth="named"` mode: the same
layer nodes `GrowableModel.from_keras` reads from a user's model, so one
builder builds every net and one analysis finds every net's unit groups.
What the family knows beyond the graph rides on the nodes:

- `"unit_group": [name, width_index]` on a producer: the name of the
  units it makes (`"stage2"`, `"stage1_block1_inner1"`, `"layer1"`) and
  the entry of the family's `widths` that sets their width (`None`: none
  does). A group the analysis finds takes the note of its last producer.
- `"block": [name, stage]` on each conv of a sub-module that depth growth
  adds as a whole (a ResNet's shortcut conv is not one of them).

Nodes come in the order the layers are made: the order in which Keras
draws their initial weights, so a seed gives the same net as ever.
"""

import dataclasses

from keras_grow.specs import graph
from keras_grow.specs.base import INPUT

# PyTorch parity (the papers' code): BN momentum 0.1 there is 0.9 here.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
CONV_INITIALIZER = "he_normal"


class _Nodes:
    """Writes layer nodes (see `GraphSpec`), one call per layer; each
    call returns the new node's name, the tensor the next layer reads."""

    def __init__(self, spec):
        self.spec = spec
        self.nodes = []

    def layer(self, class_name, name, inputs, config=None, **notes):
        node = {
            "name": name,
            "class_name": class_name,
            "config": {k: v for k, v in (config or {}).items() if v is not None},
            "inputs": list(inputs),
        }
        node.update({k: list(v) for k, v in notes.items() if v is not None})
        self.nodes.append(node)
        return name

    def regularizer(self):
        """The L2 penalty of `spec.weight_decay` (PyTorch coupled decay)."""
        if self.spec.weight_decay == 0:
            return None
        return {"class_name": "L2", "config": {"l2": self.spec.weight_decay / 2}}

    def image_input(self):
        """The input, normalised if the spec gives a mean and deviation."""
        spec = self.spec
        if spec.input_mean is None:
            return INPUT
        return self.layer(
            "Normalization",
            "input_normalization",
            [INPUT],
            {
                "mean": list(spec.input_mean),
                "variance": [s * s for s in spec.input_std],
            },
        )

    def conv(self, x, width, kernel_size, stride, name, **notes):
        config = {
            "filters": width,
            "kernel_size": [kernel_size, kernel_size],
            "strides": [stride, stride],
            "padding": "same",
            "use_bias": False,
            "kernel_initializer": CONV_INITIALIZER,
            "kernel_regularizer": self.regularizer(),
        }
        return self.layer("Conv2D", name, [x], config, **notes)

    def depthwise_conv(self, x, stride, name, **notes):
        config = {
            "kernel_size": [3, 3],
            "strides": [stride, stride],
            "padding": "same",
            "use_bias": False,
            "depthwise_initializer": CONV_INITIALIZER,
            "depthwise_regularizer": self.regularizer(),
        }
        return self.layer("DepthwiseConv2D", name, [x], config, **notes)

    def batch_norm(self, x, name):
        config = {
            "momentum": BN_MOMENTUM,
            "epsilon": BN_EPSILON,
            "beta_regularizer": self.regularizer(),
            "gamma_regularizer": self.regularizer(),
        }
        return self.layer("BatchNormalization", name, [x], config)

    def relu(self, x, name):
        return self.layer("ReLU", name, [x])

    def conv_bn_relu(self, x, width, kernel_size, stride, prefix, suffix="", **notes):
        """conv -> BN -> ReLU named `{prefix}_conv{suffix}` and so on."""
        name = f"{prefix}_conv{suffix}"
        x = self.conv(x, width, kernel_size, stride, name, **notes)
        x = self.batch_norm(x, norm_of(name))
        return self.relu(x, f"{prefix}_relu{suffix}")

    def dense(self, x, units, name, dtype=None, **notes):
        config = {
            "units": units,
            "kernel_regularizer": self.regularizer(),
            "bias_regularizer": self.regularizer(),
            "dtype": dtype,
        }
        return self.layer("Dense", name, [x], config, **notes)

    def classifier(self, x):
        """The logits layer. Always float32: under a mixed precision policy
        the logits and the loss stay in full precision (Keras' advice)."""
        return self.dense(x, self.spec.num_classes, "classifier", dtype="float32")

    def pooled_classifier(self, x):
        """Global average pooling then the logits layer `classifier`."""
        x = self.layer("GlobalAveragePooling2D", "pool", [x])
        return self.classifier(x)

    def graph(self, output):
        """The `GraphSpec` of the nodes written, reading `output`."""
        return graph.GraphSpec(
            input_shape=self.spec.input_shape,
            num_classes=self.spec.num_classes,
            nodes=tuple(self.nodes),
            input_name=INPUT,
            output=output,
            name=self.spec.notation,
            depth="named",
        )


def norm_of(conv_name):
    """The name of the BatchNormalization after the conv `conv_name` in
    `conv_bn_relu` (`stage1_block2_conv1` -> `stage1_block2_bn1`)."""
    prefix, _, suffix = conv_name.rpartition("_conv")
    return f"{prefix}_bn{suffix}"


# --- staged nets (AutoGrow's ResNets and plain nets) ------------------------


@dataclasses.dataclass(frozen=True)
class _BlockPlan:
    """Where one sub-module of a staged net sits and what shapes it sees."""

    prefix: str
    stage: int
    stride: int
    in_width: int
    width: int  # the stage width (inner width for bottleneck)
    out_width: int

    @property
    def projection(self):
        return self.stride != 1 or self.in_width != self.out_width


def _block_plans(spec):
    """list of `_BlockPlan`, one per sub-module of a `StagedNetSpec`, in
    graph order."""
    plans = []
    in_width = spec.stem_width
    for stage, depth in enumerate(spec.depths):
        width = spec.widths[stage]
        for index in range(depth):
            stride = 2 if index == 0 and stage > 0 else 1
            plans.append(
                _BlockPlan(
                    prefix=f"stage{stage + 1}_block{index + 1}",
                    stage=stage,
                    stride=stride,
                    in_width=in_width,
                    width=width,
                    out_width=width * spec.expansion,
                )
            )
            in_width = width * spec.expansion
    return plans


def _staged_stem(g, x, spec):
    # The stem's units are the first stage's stream where they are as wide.
    index = 0 if spec.stem_width == spec.widths[0] else None
    if spec.stem == "imagenet":
        x = g.conv_bn_relu(x, spec.stem_width, 7, 2, "stem", unit_group=("stem", index))
        config = {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"}
        return g.layer("MaxPooling2D", "stem_pool", [x], config)
    return g.conv_bn_relu(x, spec.stem_width, 3, 1, "stem", unit_group=("stem", index))


def _residual_block(g, x, plan, kernel_sizes):
    """A basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1) block: its convs
    but the last with BN and ReLU, the last with BN added to the shortcut
    (a 1x1 conv and BN where the shape changes), then the ReLU."""
    block = (plan.prefix, plan.stage)
    stream = (f"stage{plan.stage + 1}", plan.stage)
    y = x
    for i, size in enumerate(kernel_sizes[:-1], start=1):
        stride = plan.stride if size == 3 else 1
        inner = (f"{plan.prefix}_inner{i}", plan.stage)
        y = g.conv_bn_relu(
            y,
            plan.width,
            size,
            stride,
            plan.prefix,
            str(i),
            unit_group=inner,
            block=block,
        )
    name = f"{plan.prefix}_conv{len(kernel_sizes)}"
    y = g.conv(
        y, plan.out_width, kernel_sizes[-1], 1, name, unit_group=stream, block=block
    )
    y = g.batch_norm(y, norm_of(name))
    if plan.projection:
        shortcut = f"{plan.prefix}_shortcut_conv"
        x = g.conv(x, plan.out_width, 1, plan.stride, shortcut, unit_group=stream)
        x = g.batch_norm(x, f"{plan.prefix}_shortcut_bn")
    y = g.layer("Add", f"{plan.prefix}_add", [x, y])
    return g.relu(y, f"{plan.prefix}_out")


def staged_graph(spec):
    """The `GraphSpec` of a `StagedNetSpec`."""
    g = _Nodes(spec)
    x = _staged_stem(g, g.image_input(), spec)
    for plan in _block_plans(spec):
        if spec.block == "plain":
            x = g.conv_bn_relu(
                x,
                plan.width,
                3,
                plan.stride,
                plan.prefix,
                unit_group=(plan.prefix, plan.stage),
                block=(plan.prefix, plan.stage),
            )
        else:
            sizes = (3, 3) if spec.block == "basic" else (1, 3, 1)
            x = _residual_block(g, x, plan, sizes)
    return g.graph(g.pooled_classifier(x))


# --- layered nets (Firefly's VGG, MobileNetV1 and MLP) ----------------------


def vgg_graph(spec):
    """The `GraphSpec` of a `VGGSpec`: conv-BN-ReLU layers, a max-pool
    after each stage."""
    g = _Nodes(spec)
    x = g.image_input()
    positions = iter(enumerate(spec.layer_positions()))
    for stage, depth in enumerate(spec.stage_depths):
        for _ in range(depth):
            index, (_, layer) = next(positions)
            prefix = f"stage{stage + 1}_layer{layer + 1}"
            x = g.conv_bn_relu(
                x,
                spec.widths[index],
                3,
                1,
                prefix,
                unit_group=(prefix, index),
                block=(prefix, stage),
            )
        config = {"pool_size": [2, 2], "padding": "same"}
        x = g.layer("MaxPooling2D", f"stage{stage + 1}_pool", [x], config)
    return g.graph(g.pooled_classifier(x))


def mobilenet_graph(spec):
    """The `GraphSpec` of a `MobileNetV1Spec`: a stem conv, then blocks of
    a depthwise 3x3 and a pointwise conv, each with BN and ReLU."""
    g = _Nodes(spec)
    stem_stride = 2 if spec.stem == "imagenet" else 1
    x = g.conv_bn_relu(
        g.image_input(), spec.widths[0], 3, stem_stride, "stem", unit_group=("stem", 0)
    )
    for i, (stride, width) in enumerate(zip(spec.strides, spec.widths[1:])):
        p = f"block{i + 1}"
        x = g.depthwise_conv(x, stride, f"{p}_dw", block=(p, None))
        x = g.batch_norm(x, f"{p}_dw_bn")
        x = g.relu(x, f"{p}_dw_relu")
        x = g.conv_bn_relu(x, width, 1, 1, p, unit_group=(p, i + 1), block=(p, None))
    return g.graph(g.pooled_classifier(x))


def mlp_graph(spec):
    """The `GraphSpec` of an `MLPSpec`: flatten, Dense-ReLU layers, logits."""
    g = _Nodes(spec)
    x = g.layer("Flatten", "flatten", [g.image_input()])
    for i, width in enumerate(spec.widths):
        prefix = f"layer{i + 1}"
        x = g.dense(
            x, width, f"{prefix}_dense", unit_group=(prefix, i), block=(prefix, 0)
        )
        x = g.relu(x, f"{prefix}_relu")
    return g.graph(g.classifier(x))
