"""GradMax's and TINY's closed forms: the measured Jacobian, the directions,
the significance test."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow.descent import new_units
from keras_grow.transfer.weights import weight_shapes
from tests.conftest import compile_sgd


def _mlp(seed=0):
    keras.utils.set_random_seed(seed)
    spec = kg.specs.parse("MLP-5-4", input_shape=(3, 2, 1), num_classes=3)
    return compile_sgd(kg.GrowableModel(spec))


def _batches(n=16, count=3, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (
            tf.constant(rng.uniform(size=(n, 3, 2, 1)).astype("float32")),
            tf.constant(rng.integers(0, 3, n)),
        )
        for _ in range(count)
    ]


def test_measured_jacobian_is_the_gradient_correlation_of_a_linear_unit():
    """For a Dense pair, J = sum_n dL/dz_n a_n^T: z the consumer's output,
    a the producer's input (what a unit with fan-in alpha and fan-out omega
    changes the loss by, to first order: <omega, J alpha>)."""
    model = _mlp()
    batches = _batches()
    shapes = weight_shapes(model.body)
    groups, skipped = new_units.closed_form_groups(model.spec, shapes)
    assert not skipped and [g.name for g in groups] == ["layer1", "layer2"]
    stats = new_units.measure(model, groups, iter(batches), len(batches), model.loss)
    body = model.body
    for s in stats:
        producer = body.get_layer(s.group.producers[0])
        consumer = body.get_layer(s.group.consumers[0])
        probe = keras.Model(body.inputs, [producer.input, consumer.output])
        for b, (x, y) in enumerate(batches):
            with tf.GradientTape() as tape:
                a, z = probe(x)
                tape.watch(z)
                # The rest of the net from z on, as the body computes it.
                logits = z
                for layer in body.layers[body.layers.index(consumer) + 1 :]:
                    logits = layer(logits)
                loss = model.loss(y, logits)
            delta = tape.gradient(loss, z).numpy()
            a = a.numpy().reshape(len(a), -1)
            expected = delta.T @ a
            np.testing.assert_allclose(s.jacobians[b], expected, atol=1e-6, rtol=1e-4)
        patches = np.concatenate(
            [
                keras.Model(body.inputs, producer.input)(x).numpy().reshape(len(x), -1)
                for x, _ in batches
            ]
        )
        np.testing.assert_allclose(
            s.covariance, patches.T @ patches / len(patches), rtol=1e-5, atol=1e-7
        )


def _stats(jacobians, covariance):
    return new_units.GroupStatistics(
        group=None,
        fan_in_shape=(jacobians.shape[-1],),
        fan_out_shapes={},
        jacobians=jacobians,
        covariance=covariance,
    )


def test_tiny_is_gradmax_when_inputs_are_white_and_beats_other_directions():
    rng = np.random.default_rng(0)
    jacobians = rng.normal(size=(4, 6, 5))
    white = _stats(jacobians, np.eye(5))
    tiny = new_units.directions(white, "tiny", 3)
    gradmax = new_units.directions(white, "gradmax", 3)
    np.testing.assert_allclose(np.abs(tiny.fan_in), np.abs(gradmax.fan_in), atol=1e-9)
    np.testing.assert_allclose(tiny.values, gradmax.values, rtol=1e-9)
    assert np.all(np.diff(tiny.values) <= 0)  # best first

    # TINY's objective 2<omega, J alpha> + |omega|^2 alpha' S alpha, with the
    # best amplitude for each unit: -<omega, J alpha>^2 / (alpha' S alpha).
    mixing = rng.normal(size=(5, 5))
    covariance = mixing @ mixing.T + 0.1 * np.eye(5)
    stats = _stats(jacobians, covariance)
    found = new_units.directions(stats, "tiny", 1)
    mean = jacobians.mean(axis=0)

    def gain(alpha, omega):
        return (
            (omega @ mean @ alpha) ** 2 / (alpha @ covariance @ alpha) / (omega @ omega)
        )

    best = gain(found.fan_in[0], found.fan_out[0])
    np.testing.assert_allclose(best, found.values[0], rtol=1e-9)
    for _ in range(200):
        assert gain(rng.normal(size=5), rng.normal(size=6)) <= best + 1e-9


def test_significance_keeps_a_steady_gain_and_drops_noise():
    rng = np.random.default_rng(0)
    steady = np.outer(np.eye(4)[0], np.eye(3)[0])  # J = e0 e0'
    jacobians = steady + 0.05 * rng.normal(size=(8, 4, 3))
    stats = _stats(jacobians, np.eye(3))
    units = new_units.directions(stats, "gradmax", 3, batches=range(0, 8, 2))
    kept = new_units.significant(stats, units, range(1, 8, 2))
    assert kept[0]
    noise = _stats(rng.normal(size=(8, 4, 3)), np.eye(3))
    units = new_units.directions(noise, "gradmax", 3, batches=range(0, 8, 2))
    assert not new_units.significant(noise, units, range(1, 8, 2)).any()
    with pytest.raises(ValueError, match="at least 2 held-out batches"):
        new_units.significant(stats, units, [1])


def test_summed_streams_are_skipped_with_the_reason():
    spec = kg.specs.parse("Basic3ResNet-1-1-1", (8, 8, 1), 3, widths=(2, 2, 2))
    shapes = weight_shapes(kg.build.build_body(spec))
    groups, skipped = new_units.closed_form_groups(spec, shapes)
    assert skipped == {
        f"stage{i}": "2 producers (a summed stream) have no single fan-in"
        for i in (1, 2, 3)
    }
    assert [g.name for g in groups] == [f"stage{i}_block1_inner1" for i in (1, 2, 3)]


def _measured(model, measure, batches):
    groups, _ = new_units.closed_form_groups(model.spec, weight_shapes(model.body))
    return measure(model, groups, iter(batches), len(batches))


def _assert_same_statistics(found, expected):
    assert [s.group.name for s in found] == [s.group.name for s in expected]
    for a, b in zip(found, expected):
        np.testing.assert_allclose(a.jacobians, b.jacobians, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.covariance, b.covariance, rtol=1e-5, atol=1e-6)


def test_a_measure_kept_across_a_growth_in_place_traces_once():
    model = _mlp()
    batches = _batches()
    kept = new_units.Measure(model.loss)
    _measured(model, kept, batches)
    assert model.grow(model.spec.with_widths([7, 5]))["in_place"]
    again = _measured(model, kept, batches)
    # The over-grown MLP is wider (both groups, and layer2's fan-in); its
    # values went into the body traced before, and equal a fresh one's.
    assert kept.traces == 1
    assert again[1].jacobians.shape[-1] == 7  # layer2 reads the 7 units
    _assert_same_statistics(
        again, _measured(model, new_units.Measure(model.loss), batches)
    )


def test_a_measure_kept_across_a_rebuild_traces_again():
    keras.utils.set_random_seed(0)
    spec = kg.specs.parse("VGG11-2", input_shape=(32, 32, 1), num_classes=3)
    model = compile_sgd(kg.GrowableModel(spec))
    rng = np.random.default_rng(0)
    batches = [
        (
            tf.constant(rng.uniform(size=(8, 32, 32, 1)).astype("float32")),
            tf.constant(rng.integers(0, 3, 8)),
        )
    ]
    kept = new_units.Measure(model.loss)
    _measured(model, kept, batches)
    widths = list(model.spec.widths)
    widths[0] += 1
    assert not model.grow(model.spec.with_widths(widths))["in_place"]  # a conv
    again = _measured(model, kept, batches)
    assert kept.traces == 2
    _assert_same_statistics(
        again, _measured(model, new_units.Measure(model.loss), batches)
    )


@pytest.mark.parametrize(
    "layer,shape",
    [
        (keras.layers.Conv1D(3, 3, padding="valid"), (9, 2)),
        (keras.layers.Conv1D(3, 4, strides=2, padding="same"), (9, 2)),
        (keras.layers.Conv1D(3, 3, dilation_rate=2, padding="causal"), (9, 2)),
        (keras.layers.Conv2D(3, (3, 2), strides=(2, 1), padding="same"), (5, 4, 2)),
        (keras.layers.Conv2D(3, 3, dilation_rate=2, padding="valid"), (6, 6, 2)),
        (keras.layers.Dense(3), (5,)),
    ],
    ids=lambda v: getattr(v, "padding", None) or str(v),
)
def test_patches_are_what_the_kernel_reads(layer, shape):
    """Each row of `_patches` times the kernel, flattened over its fan-in,
    is one output position of the layer: the covariance S and the fan-in
    J is measured on are those of the patches the new units read."""
    x = tf.constant(np.random.default_rng(0).normal(size=(2, *shape)), tf.float32)
    outputs = layer(x)  # builds it; bias zero
    kernel = layer.kernel.numpy()
    patches = new_units._patches(x, layer).numpy()
    assert patches.shape[1] == int(np.prod(kernel.shape[:-1]))
    np.testing.assert_allclose(
        patches @ kernel.reshape(-1, kernel.shape[-1]),
        outputs.numpy().reshape(-1, kernel.shape[-1]),
        atol=1e-5,
    )
