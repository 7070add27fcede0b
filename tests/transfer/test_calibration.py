"""BN statistics measured on data: pass-through layers and new channels."""

import keras
import numpy as np

import keras_grow as kg
from keras_grow.transfer import calibration
from tests import helpers


def _vgg():
    spec = kg.specs.parse("VGG11-3", input_shape=(28, 28, 1), num_classes=10)
    model = kg.GrowableModel(spec)
    helpers.randomize_norms(model)
    return model


def _norms(model):
    return [
        layer.name
        for layer in model.body.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def test_pass_through_norms_are_the_identity_in_both_modes():
    model = _vgg()
    names = _norms(model)[2:4]
    batches = [(helpers.images((28, 28, 1), 32, seed=s), None) for s in (1, 2)]
    calibration.set_pass_through(model.body, names, iter(batches), num_batches=2)
    x = batches[0][0]
    for name in names:
        layer = model.body.get_layer(name)
        probe = keras.Model(model.body.inputs, [layer.input, layer.output])
        before, after = probe(x, training=False)
        np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)
        # Training mode normalises by this batch's statistics: the identity
        # up to the difference between one batch and the two measured.
        _, trained = probe(x, training=True)
        scale = float(np.abs(before).max())
        assert np.abs(np.asarray(trained) - np.asarray(before)).max() < 0.5 * scale


def test_channel_statistics_set_only_the_given_channels_in_graph_order():
    model = _vgg()
    names = _norms(model)
    old = {n: model.body.get_layer(n).moving_mean.numpy() for n in names}
    batches = [(helpers.images((28, 28, 1), 16, seed=s), None) for s in (3, 4, 5)]
    channels = {names[3]: [0, 2], names[1]: [1]}  # given out of order
    calibration.set_channel_statistics(
        model.body, channels, iter(batches), num_batches=3
    )
    # Measuring again on the same batches gives what was set: each layer was
    # measured after the layers before it.
    moments = calibration.input_moments(model.body, [names[1], names[3]], batches)
    for name, (mean, var) in zip([names[1], names[3]], moments):
        layer = model.body.get_layer(name)
        idx = channels[name]
        np.testing.assert_allclose(layer.moving_mean.numpy()[idx], mean[idx], rtol=1e-5)
        np.testing.assert_allclose(
            layer.moving_variance.numpy()[idx], var[idx], rtol=1e-5
        )
        rest = [i for i in range(len(mean)) if i not in idx]
        np.testing.assert_array_equal(layer.moving_mean.numpy()[rest], old[name][rest])
    for name in set(names) - set(channels):
        np.testing.assert_array_equal(
            model.body.get_layer(name).moving_mean.numpy(), old[name]
        )
