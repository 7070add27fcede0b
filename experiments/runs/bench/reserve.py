"""Reserved residual blocks for depth growth without a retrace (issue 32).

A design measured before it enters the library: a ResNet built with
`reserve` extra blocks after each stage's `depth` active ones, whose
non-trainable `active` flags a growth would set by assignment. Three ways
to gate (`GATES`):

- `"block"`: a `GatedBlock` layer holds the branch; `tf.cond` runs it only
  while active (`relu(x + branch(x))`) and passes `x` through otherwise:
  an inactive block costs a branch not taken. Its layers are nested in
  the `GatedBlock`, out of the model's flat list of layers.
- `"layers"`: the block's own layers, flat in the model as every other
  block's, are `keras_grow.gated_layers`' `GatedConv2D` and
  `GatedBatchNormalization` (subclasses of Keras' layers with the same
  variables): each runs under `tf.cond` while active and outputs zeros (a
  conv) or its input (a norm) otherwise, so the branch adds 0 and the
  block passes its input through.
- `"multiply"`: a `GatedBlock` computing `relu(x + active * branch(x))`:
  the branch always runs, so the reserve costs its full compute.

Either way switching a block on changes no shape and no Python value a
trace depends on, so the traced train step keeps running.
"""

import dataclasses
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from keras_grow import gated_layers

GATES = ("block", "layers", "multiply")


def _flag(layer):
    return layer.add_weight(
        name="active", shape=(), initializer="zeros", trainable=False
    )


def branch_layers(name, width, stride=1, gated=False):
    """A basic block's branch: conv-BN-ReLU-conv-BN, Keras' own layers or
    (`gated`) their gated subclasses."""
    conv = gated_layers.GatedConv2D if gated else keras.layers.Conv2D
    norm = (
        gated_layers.GatedBatchNormalization
        if gated
        else keras.layers.BatchNormalization
    )
    return [
        conv(
            width,
            3,
            strides=stride,
            padding="same",
            use_bias=False,
            name=f"{name}_conv1",
        ),
        norm(name=f"{name}_bn1"),
        keras.layers.ReLU(name=f"{name}_relu1"),
        conv(width, 3, padding="same", use_bias=False, name=f"{name}_conv2"),
        norm(name=f"{name}_bn2"),
    ]


class GatedBlock(keras.layers.Layer):
    """A residual block that computes `relu(x + branch(x))` while its
    `active` variable is 1 and `x` while it is 0 (`x` is a ReLU's
    output, so both agree on a block whose branch outputs 0).

    Args:
        width: int. Channels in and out.
        gate: str. `"block"` (the branch skipped while inactive) or
            `"multiply"` (always computed, scaled by `active`).
    """

    def __init__(self, width, gate="block", **kwargs):
        super().__init__(**kwargs)
        if gate not in ("block", "multiply"):
            raise ValueError(
                f"`gate` must be 'block' or 'multiply'; received {gate!r}."
            )
        self.gate = gate
        self.branch = branch_layers(self.name, width)
        self.active = _flag(self)

    def build(self, input_shape):
        spec = keras.KerasTensor(input_shape)
        for layer in self.branch:
            layer.build(spec.shape)
            spec = layer.compute_output_spec(spec)

    def _residual(self, x, training, scale=1.0):
        y = x
        for layer in self.branch:
            y = layer(y, training=training)
        return tf.nn.relu(x + scale * y)

    def call(self, x, training=None):
        if self.gate == "multiply":
            return self._residual(x, training, tf.cast(self.active, x.dtype))
        return tf.cond(
            self.active > 0.5,
            lambda: self._residual(x, training),
            lambda: tf.identity(x),
        )


@dataclasses.dataclass(frozen=True)
class ReservedBlock:
    """A reserved block: its name, the flags that switch it on, and its
    first conv's kernel (to see it train)."""

    name: str
    flags: tuple
    kernel: object

    def switch_on(self):
        for flag in self.flags:
            flag.assign(1.0)

    @property
    def active(self):
        return all(float(flag.numpy()) for flag in self.flags)


def _basic_block(x, name, width, stride=1, gated=False):
    """`relu(shortcut(x) + branch(x))`; returns the output and the branch's
    layers."""
    layers = branch_layers(name, width, stride, gated)
    y = x
    for layer in layers:
        y = layer(y)
    if stride != 1 or x.shape[-1] != width:
        x = keras.layers.Conv2D(
            width, 1, strides=stride, use_bias=False, name=f"{name}_proj"
        )(x)
        x = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(x)
    out = keras.layers.ReLU(name=f"{name}_relu")(
        keras.layers.Add(name=f"{name}_add")([x, y])
    )
    return out, layers


def _reserved(x, name, width, gate):
    """`x` through an inactive reserved block, and its `ReservedBlock`."""
    if gate == "layers":
        out, layers = _basic_block(x, name, width, gated=True)
        flags = tuple(layer.active for layer in layers if hasattr(layer, "active"))
        return out, ReservedBlock(name, flags, layers[0].kernel)
    block = GatedBlock(width, gate, name=name)
    out = block(x)
    return out, ReservedBlock(name, (block.active,), block.branch[0].kernel)


def resnet(input_shape, widths, depth, reserve=0, gate="block", num_classes=10):
    """A basic ResNet: a stem, per stage `depth` blocks (the first of a
    later stage strided, with a projection shortcut) and `reserve`
    reserved blocks after them, inactive, gated by `gate` (`GATES`).

    Returns:
        (model, list of `ReservedBlock`, stage by stage).
    """
    if gate not in GATES:
        raise ValueError(f"`gate` must be one of {GATES}; received {gate!r}.")
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem")(
        inputs
    )
    x = keras.layers.ReLU(name="stem_relu")(
        keras.layers.BatchNormalization(name="stem_bn")(x)
    )
    reserved = []
    for stage, width in enumerate(widths):
        for block in range(depth):
            stride = 2 if stage and not block else 1
            x, _ = _basic_block(x, f"stage{stage}_block{block}", width, stride)
        for block in range(reserve):
            x, record = _reserved(x, f"stage{stage}_reserve{block}", width, gate)
            reserved.append(record)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits), reserved


def compiled(model):
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def step_times(models, batch, repeats, steps):
    """`{name: median seconds per train step}` of compiled `models`,
    measured in `repeats` rounds that take turns (so that a slow spell of
    the machine falls on every arm alike), `steps` steps each."""
    x, y = batch
    for model in models.values():
        model.train_on_batch(x, y)  # the trace
    rounds = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            times = []
            for _ in range(steps):
                start = time.perf_counter()
                model.train_on_batch(x, y)
                times.append(time.perf_counter() - start)
            rounds[name].append(statistics.median(times))
    return {name: statistics.median(r) for name, r in rounds.items()}


def count_traces(model):
    """Makes `model` count the traces of its train step; returns the list
    each trace appends to."""
    traces = []
    step = model.train_step
    model.train_step = lambda data: traces.append(1) or step(data)
    return traces


def activation(model, reserved, batch):
    """Trains `model` a step, switches the first reserved block of every
    stage on by assignment and trains a step more.

    Returns:
        dict. `traces_before` and `traces_after` (train-step traces),
        `output_changed` (the switched-on blocks compute) and
        `block_trained` (their weights moved in the step after).
    """
    x, y = batch
    traces = count_traces(model)
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    before = len(traces)
    out = model.predict(x, verbose=0)
    switched = [r for r in reserved if r.name.endswith("_reserve0")]
    kernels = []
    for record in switched:
        record.switch_on()
        kernels.append(np.array(record.kernel.numpy()))
    changed = float(np.max(np.abs(model.predict(x, verbose=0) - out)))
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    moved = [
        float(np.max(np.abs(r.kernel.numpy() - k))) for r, k in zip(switched, kernels)
    ]
    return {
        "traces_before": before,
        "traces_after": len(traces),
        "output_changed": changed > 1e-6,
        "block_trained": min(moved) > 0,
    }
