"""Weights of a graph as plain numpy, by layer name and variable name."""

import numpy as np


def read_weights(model):
    """Returns `{layer_name: {variable_name: np.ndarray}}` of `model`."""
    return {
        layer.name: {v.name: np.array(v.numpy()) for v in layer.weights}
        for layer in model.layers
        if layer.weights
    }


def weight_shapes(model):
    """Returns `{layer_name: {variable_name: shape tuple}}` of `model`."""
    return {
        layer.name: {v.name: tuple(v.shape) for v in layer.weights}
        for layer in model.layers
        if layer.weights
    }


def assign_layer(layer, values):
    """Assigns `{variable_name: array}` to the matching variables of `layer`.

    Raises:
        ValueError: if a shape differs; the message names layer, variable and
            both shapes.
    """
    for variable in layer.weights:
        value = values[variable.name]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Layer '{layer.name}' variable '{variable.name}' has shape "
                f"{tuple(variable.shape)} in the new graph but "
                f"{tuple(value.shape)} in the old one. Only width morphisms "
                f"(keras_grow.transfer.SplitUnits / AddUnits) or a wider "
                f"spec may change a surviving layer's shape."
            )
        variable.assign(value.astype(variable.dtype))


def copy_weights(source, target):
    """Assigns every layer of `target` holding weights the weights of
    `source`'s layer of the same name (see `assign_layer`)."""
    weights = read_weights(source)
    for layer in target.layers:
        if layer.weights:
            assign_layer(layer, weights[layer.name])
