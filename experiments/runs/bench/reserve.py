"""Reserved residual blocks for depth growth without a retrace (issue 32).

A design measured before it enters the library: a ResNet built with
`reserve` extra blocks after each stage's `depth` active ones, each a
`GatedBlock` whose non-trainable `active` flag a growth would set by
assignment. Two ways to gate:

- `"cond"`: `tf.cond` runs the branch only while active (`relu(x +
  branch(x))`), and passes `x` through otherwise: an inactive block costs
  a branch not taken.
- `"multiply"`: `relu(x + active * branch(x))`: the branch always runs,
  so the reserve costs its full compute.

Either way switching a block on changes no shape and no Python value a
trace depends on, so the traced train step keeps running.
"""

import statistics
import time

import keras
import numpy as np
import tensorflow as tf

GATES = ("cond", "multiply")


def branch_layers(name, width, stride=1):
    """A basic block's branch: conv-BN-ReLU-conv-BN, Keras' own layers."""
    return [
        keras.layers.Conv2D(
            width,
            3,
            strides=stride,
            padding="same",
            use_bias=False,
            name=f"{name}_conv1",
        ),
        keras.layers.BatchNormalization(name=f"{name}_bn1"),
        keras.layers.ReLU(name=f"{name}_relu1"),
        keras.layers.Conv2D(
            width, 3, padding="same", use_bias=False, name=f"{name}_conv2"
        ),
        keras.layers.BatchNormalization(name=f"{name}_bn2"),
    ]


class GatedBlock(keras.layers.Layer):
    """A residual block that computes `relu(x + branch(x))` while its
    `active` variable is 1 and `x` while it is 0 (`x` is a ReLU's
    output, so both agree on a block whose branch outputs 0).

    Args:
        width: int. Channels in and out.
        gate: str. `"cond"` (the branch skipped while inactive) or
            `"multiply"` (always computed, scaled by `active`).
    """

    def __init__(self, width, gate="cond", **kwargs):
        super().__init__(**kwargs)
        if gate not in GATES:
            raise ValueError(f"`gate` must be one of {GATES}; received {gate!r}.")
        self.gate = gate
        self.branch = branch_layers(self.name, width)
        self.active = self.add_weight(
            name="active", shape=(), initializer="zeros", trainable=False
        )

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


def resnet(input_shape, widths, depth, reserve=0, gate="cond", num_classes=10):
    """A basic ResNet: a stem, per stage `depth` blocks (the first of a
    later stage strided, with a projection shortcut) and `reserve`
    `GatedBlock`s after them, inactive.

    Returns:
        (model, list of the `GatedBlock`s, stage by stage).
    """
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem")(
        inputs
    )
    x = keras.layers.ReLU(name="stem_relu")(
        keras.layers.BatchNormalization(name="stem_bn")(x)
    )
    gates = []
    for stage, width in enumerate(widths):
        for block in range(depth):
            stride = 2 if stage and not block else 1
            name = f"stage{stage}_block{block}"
            y = x
            for layer in branch_layers(name, width, stride):
                y = layer(y)
            if stride != 1 or x.shape[-1] != width:
                x = keras.layers.Conv2D(
                    width, 1, strides=stride, use_bias=False, name=f"{name}_proj"
                )(x)
                x = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(x)
            x = keras.layers.ReLU(name=f"{name}_relu")(
                keras.layers.Add(name=f"{name}_add")([x, y])
            )
        for block in range(reserve):
            gated = GatedBlock(width, gate, name=f"stage{stage}_reserve{block}")
            x = gated(x)
            gates.append(gated)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits), gates


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


def activation(model, gates, batch):
    """Trains `model` a step, switches one reserved block per stage on by
    assignment and trains a step more.

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
    switched = {}
    for gated in gates:
        if gated.name.endswith("_reserve0"):
            gated.active.assign(1.0)
            switched[gated.name] = np.array(gated.branch[0].kernel.numpy())
    changed = float(np.max(np.abs(model.predict(x, verbose=0) - out)))
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    moved = [
        float(np.max(np.abs(g.branch[0].kernel.numpy() - switched[g.name])))
        for g in gates
        if g.name in switched
    ]
    return {
        "traces_before": before,
        "traces_after": len(traces),
        "output_changed": changed > 1e-6,
        "block_trained": min(moved) > 0,
    }
