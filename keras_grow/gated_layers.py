"""Layers that compute only while switched on: the reserve that lets depth
grow without a retrace.

A block built ahead of a growth, from these layers, is skipped while its
layers' `active` flags are 0: a gated conv or Dense outputs zeros, a gated
normalisation or activation passes its input through (a normalisation
leaving its statistics alone), and the gated `Add` outputs the block's
shortcut, so the block passes its input on without a pass over its
activations.
Setting the flags to 1 by assignment switches the block on inside the
train step already traced: no shape and no Python value a trace depends
on changes. While off, the layers get no gradient and their weight
penalties (`kernel_regularizer`, ...) count 0, so the reserve neither
moves nor weighs on the loss. Each is a subclass of the Keras layer it
gates, with the same variables and names, so the growth engine reads a
body holding them as it reads any other (measured in docs/no_retrace.md:
a reserve as deep as the net costs about 2% of a training step).
"""

import keras
import numpy as np
import tensorflow as tf


class GatedPenalty:
    """A weight penalty that counts only while its layer is on (set on the
    variable, which Keras reads each step; the layer's config keeps its
    own regularizer).

    Args:
        penalty: the layer's regularizer (a callable of the weight).
        active: the layer's `active` flag (0 or 1).
    """

    def __init__(self, penalty, active):
        self.penalty = penalty
        self.active = active

    def __call__(self, weight):
        return tf.cast(self.active, weight.dtype) * self.penalty(weight)


class Gated:
    """Mixin for a Keras layer class: an `active` flag (off when built),
    `tf.cond` between the layer's own computation and what it outputs
    while off, and the layer's weight penalties scaled by the flag.
    Subclasses name the layer class they gate (`gated_class`) and keep its
    `call` signature (Keras reads `training` and `mask` from it)."""

    gated_class = None

    def build(self, input_shape):
        self.gated_class.build(self, input_shape)
        self.active = self.add_weight(
            name="active",
            shape=(),
            initializer="zeros",
            trainable=False,
            dtype="float32",
            autocast=False,
        )
        for variable in self.trainable_weights:
            if variable.regularizer is not None:
                variable.regularizer = GatedPenalty(variable.regularizer, self.active)

    @property
    def is_on(self):
        """bool. Whether the layer computes (its flag is 1)."""
        return bool(self.active.numpy() > 0.5)

    def switch(self, on):
        """Sets the flag; takes effect in traced steps too, no retrace."""
        self.active.assign(1.0 if on else 0.0)

    def _gate(self, on, off):
        return tf.cond(self.active > 0.5, on, off)


def _zeros_of_output(layer, inputs):
    """Zeros of the output `layer` computes from `inputs` (its batch axis
    as the inputs' at run time)."""
    shape = layer.compute_output_shape(tuple(inputs.shape))
    dims = tf.concat(
        [tf.shape(inputs)[:1], tf.constant(shape[1:], dtype=tf.int32)], axis=0
    )
    return tf.zeros(dims, dtype=layer.compute_dtype)


@keras.saving.register_keras_serializable(package="keras_grow")
class GatedConv2D(Gated, keras.layers.Conv2D):
    """A `Conv2D` that outputs zeros while off (see `Gated`)."""

    gated_class = keras.layers.Conv2D

    def call(self, inputs):
        return self._gate(
            lambda: keras.layers.Conv2D.call(self, inputs),
            lambda: _zeros_of_output(self, inputs),
        )


@keras.saving.register_keras_serializable(package="keras_grow")
class GatedDense(Gated, keras.layers.Dense):
    """A `Dense` that outputs zeros while off (see `Gated`)."""

    gated_class = keras.layers.Dense

    def call(self, inputs, training=None):
        return self._gate(
            lambda: keras.layers.Dense.call(self, inputs, training),
            lambda: _zeros_of_output(self, inputs),
        )


@keras.saving.register_keras_serializable(package="keras_grow")
class GatedBatchNormalization(Gated, keras.layers.BatchNormalization):
    """A `BatchNormalization` that passes its input through, its moving
    statistics untouched, while off (see `Gated`)."""

    gated_class = keras.layers.BatchNormalization

    def call(self, inputs, training=None, mask=None):
        return self._gate(
            lambda: keras.layers.BatchNormalization.call(self, inputs, training, mask),
            lambda: tf.identity(inputs),
        )


def is_switch(layer, variable):
    """bool. Whether `variable` is `layer`'s switch (a gated layer's
    `active` flag, not a weight of the net)."""
    return isinstance(layer, Gated) and variable is getattr(layer, "active", None)


def count_params(layers):
    """int. The parameters of `layers` (their switches not counted)."""
    return int(
        sum(
            np.prod(v.shape)
            for layer in layers
            for v in layer.weights
            if not is_switch(layer, v)
        )
    )


@keras.saving.register_keras_serializable(package="keras_grow")
class GatedAdd(Gated, keras.layers.Add):
    """An `Add` that outputs its input `pass_index` (a residual block's
    shortcut) while off, adding nothing (see `Gated`).

    Args:
        pass_index: int. The input passed on while off.
        **kwargs: passed to `keras.layers.Add`.
    """

    gated_class = keras.layers.Add

    def __init__(self, pass_index=0, **kwargs):
        super().__init__(**kwargs)
        self.pass_index = int(pass_index)

    def call(self, inputs):
        return self._gate(
            lambda: keras.layers.Add.call(self, inputs),
            lambda: tf.identity(inputs[self.pass_index]),
        )

    def get_config(self):
        return {**super().get_config(), "pass_index": self.pass_index}


@keras.saving.register_keras_serializable(package="keras_grow")
class GatedReLU(Gated, keras.layers.ReLU):
    """A `ReLU` that passes its input through while off (see `Gated`): a
    switched-off block's output is its shortcut input as it came."""

    gated_class = keras.layers.ReLU

    def call(self, inputs):
        return self._gate(
            lambda: keras.layers.ReLU.call(self, inputs),
            lambda: tf.identity(inputs),
        )


@keras.saving.register_keras_serializable(package="keras_grow")
class GatedActivation(Gated, keras.layers.Activation):
    """An `Activation` that passes its input through while off (see
    `Gated`)."""

    gated_class = keras.layers.Activation

    def call(self, inputs):
        return self._gate(
            lambda: keras.layers.Activation.call(self, inputs),
            lambda: tf.identity(inputs),
        )


# The gated subclass of each layer class a reserved block may hold. Its
# weightless layers are gated too, so that a block switched off costs no
# pass over its activations: its `Add` outputs the shortcut, its
# activations pass their input on.
GATED = {
    "Conv2D": GatedConv2D,
    "Dense": GatedDense,
    "BatchNormalization": GatedBatchNormalization,
    "Add": GatedAdd,
    "ReLU": GatedReLU,
    "Activation": GatedActivation,
}
