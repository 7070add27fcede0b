"""Batch-norm statistics measured on data, for layers a growth changed.

A grown net's new BN channels start with moving statistics 0/1: in
inference mode they pass the raw pre-activation, in training mode the
next step normalises it by the batch's statistics. Measuring the
statistics on a few training batches right after growth makes inference
mode see what training mode sees from the first step on.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_grow import multi_worker
from keras_grow.specs.lowering import BN_EPSILON


def input_moments(body, norm_names, batches):
    """Per-channel mean and variance of each BN layer's input.

    The body runs in inference mode up to the layers (the statistics every
    other layer has now), over `batches`; under several workers, over
    every worker's batches (`keras_grow.multi_worker.mean_across_workers`).

    Args:
        body: the functional graph holding the layers.
        norm_names: list of BatchNormalization layer names.
        batches: list of (images, labels[, sample weights]) batches.

    Returns:
        list of (mean, variance) float64 arrays, one pair per layer.
    """
    probe = keras.Model(body.input, [body.get_layer(n).input for n in norm_names])
    first = [0.0] * len(norm_names)
    second = [0.0] * len(norm_names)
    for x, *_ in batches:  # unweighted, as BN's batch statistics in fit
        outputs = probe(x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for i, o in enumerate(outputs):
            axes = list(range(len(o.shape) - 1))
            first[i] += tf.reduce_mean(o, axis=axes).numpy().astype(np.float64)
            second[i] += tf.reduce_mean(tf.square(o), axis=axes).numpy()
    # Several workers: one measure on the union of their batches.
    strategy = body.distribute_strategy
    if multi_worker.is_multi_worker(strategy):
        sums = multi_worker.mean_across_workers(first + second, strategy)
        first, second = sums[: len(norm_names)], sums[len(norm_names) :]
    moments = []
    for a, b in zip(first, second):
        mean = a / len(batches)
        moments.append((mean, np.maximum(b / len(batches) - mean**2, 0.0)))
    return moments


def _in_graph_order(body, names):
    order = {layer.name: i for i, layer in enumerate(body.layers)}
    return sorted(names, key=order.__getitem__)


def set_channel_statistics(body, channels, data, num_batches=4):
    """Sets the moving mean and variance of some channels from data.

    Layer by layer in graph order, on the same batches: each layer is
    measured with the layers before it already set, so the statistics are
    those of the net as it ends up.

    Args:
        body: the functional graph.
        channels: dict. `{BN layer name: channel indices}`; the other
            channels keep their statistics.
        data: iterator of (images, labels[, sample weights]) batches.
        num_batches: int. Defaults to `4`.
    """
    names = _in_graph_order(body, [n for n, idx in channels.items() if len(idx)])
    batches = [next(data) for _ in range(num_batches)] if names else []
    for name in names:
        [(mean, var)] = input_moments(body, [name], batches)
        norm = body.get_layer(name)
        idx = np.asarray(channels[name])
        moving_mean = norm.moving_mean.numpy()
        moving_var = norm.moving_variance.numpy()
        moving_mean[idx] = mean[idx]
        moving_var[idx] = var[idx]
        norm.moving_mean.assign(moving_mean)
        norm.moving_variance.assign(moving_var)


def set_pass_through(body, norm_names, data, num_batches=4):
    """Makes BN layers the identity in both modes, on their data.

    Layer by layer in graph order, like `set_channel_statistics`. Moving
    statistics are the data's and gamma/beta sqrt(var + eps)/mean:
    exactly the identity in inference mode, up to batch noise in training
    mode.

    Args:
        body: the functional graph.
        norm_names: list of BatchNormalization layer names.
        data: iterator of (images, labels[, sample weights]) batches.
        num_batches: int. Defaults to `4`.
    """
    names = _in_graph_order(body, norm_names)
    batches = [next(data) for _ in range(num_batches)] if names else []
    for name in names:
        [(mean, var)] = input_moments(body, [name], batches)
        norm = body.get_layer(name)
        norm.moving_mean.assign(mean.astype(np.float32))
        norm.moving_variance.assign(var.astype(np.float32))
        norm.gamma.assign(np.sqrt(var + BN_EPSILON).astype(np.float32))
        norm.beta.assign(mean.astype(np.float32))
