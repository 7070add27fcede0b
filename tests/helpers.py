"""Helpers for tests that compare a network's function before and after."""

import keras
import numpy as np


def randomize_norms(model, seed=0):
    """Gives every BatchNormalization non-trivial parameters and statistics,
    so function-preservation tests do not pass by BN being the identity.

    gamma, beta and biases are drawn at random; the moving statistics are
    then set to the statistics of a real batch (one training-mode pass with
    momentum 0), as training would make them: statistics that do not match
    the activations squash deep narrow nets into constants.
    """
    rng = np.random.default_rng(seed)
    for layer in model.body.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.1, n).astype("float32"))
        elif getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape).astype("float32"))
    norms = [
        layer
        for layer in model.body.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(images(model.spec.input_shape, n=32, seed=seed + 100), training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


def images(shape, n=8, seed=1):
    """n test inputs in [0, 1] that really differ from each other.

    Real Fashion-MNIST images for (28, 28, 1); otherwise noise with its own
    brightness and contrast per example (i.i.d. noise images all look alike
    to a deep net with global pooling).
    """
    shape = tuple(shape)
    if shape == (28, 28, 1):
        from keras_grow.data import sources

        x, _ = sources.sample_source().examples("test", 0.0, seed=0)
        start = (seed * n) % (len(x) - n)
        return (x[start : start + n] / 255.0).astype("float32")
    rng = np.random.default_rng(seed)
    contrast = rng.uniform(0.1, 1.0, (n,) + (1,) * len(shape))
    brightness = rng.uniform(0.0, 0.5, (n,) + (1,) * len(shape))
    noise = rng.uniform(0, 1, (n,) + shape)
    return np.clip(brightness + contrast * noise, 0, 1).astype("float32")


def infer(model, x):
    return np.asarray(model(x, training=False))


def infer_live(model, x):
    """`infer`, asserting the logits vary across inputs: a net with a dead
    layer computes a constant and would pass any preservation test."""
    out = infer(model, x)
    assert out.std(axis=0).max() > 1e-3, "degenerate net: constant logits"
    return out


class HalveRateAt(keras.callbacks.Callback):
    """Halves the learning rate at the end of one epoch, as
    ReduceLROnPlateau does on a plateau."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            rate = self.model.optimizer.learning_rate
            rate.assign(float(rate.numpy()) / 2)
