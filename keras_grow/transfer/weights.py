"""Weights of a graph as plain numpy, by layer name and variable key."""

import numpy as np

from keras_grow import gated_layers


def variable_key(layer, variable):
    """str. How the weights of `layer` name `variable`: its path inside
    the layer, e.g. `"kernel"` or, for a layer made of sublayers such as
    `MultiHeadAttention`, `"query/kernel"` (their bare names repeat)."""
    parts = variable.path.split("/")
    if layer.name in parts[:-1]:
        return "/".join(parts[parts.index(layer.name) + 1 :])
    return variable.name


def layer_variables(layer):
    """`{variable key: variable}` of `layer` (see `variable_key`); a
    gated layer's switch (`keras_grow.gated_layers`) is not one of them."""
    return {
        variable_key(layer, v): v
        for v in layer.weights
        if not gated_layers.is_switch(layer, v)
    }


def read_weights(model):
    """Returns `{layer_name: {variable key: np.ndarray}}` of `model` (a
    model, or a list of layers)."""
    layers = model if isinstance(model, (list, tuple)) else model.layers
    return {
        layer.name: {k: np.array(v.numpy()) for k, v in layer_variables(layer).items()}
        for layer in layers
        if layer.weights
    }


def weight_shapes(model):
    """Returns `{layer_name: {variable key: shape tuple}}` of `model`."""
    return {
        layer.name: {k: tuple(v.shape) for k, v in layer_variables(layer).items()}
        for layer in model.layers
        if layer.weights
    }


def assign_layer(layer, values):
    """Assigns `{variable key: array}` to the matching variables of `layer`.

    Raises:
        ValueError: if a shape differs; the message names layer, variable and
            both shapes.
    """
    for key, variable in layer_variables(layer).items():
        value = values[key]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Layer '{layer.name}' variable '{key}' has shape "
                f"{tuple(variable.shape)} in the new graph but "
                f"{tuple(value.shape)} in the old one. Only width morphisms "
                f"(keras_grow.transfer.SplitUnits / AddUnits) or a wider "
                f"spec may change a surviving layer's shape."
            )
        variable.assign(value.astype(variable.dtype))


def copy_weights(source, target):
    """Assigns every layer of `target` holding weights the weights of
    `source`'s layer of the same name (see `assign_layer`); `source` is a
    model or a list of layers."""
    weights = read_weights(source)
    for layer in target.layers:
        if layer.weights:
            assign_layer(layer, weights[layer.name])
