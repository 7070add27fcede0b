"""The one statement of the width morphisms' math, against numpy written
out by hand, in both of the ways it is used: on numpy weights (a growth)
and on tensors with gradients (Firefly's gated neighbourhood)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_grow.transfer import unit_ops


def _kernel(seed=0, shape=(3, 3, 4, 5)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_a_split_producer_becomes_w_plus_and_minus_delta_children_appended():
    kernel = _kernel()
    delta = np.random.default_rng(1).normal(size=(3, 3, 4, 2))
    out = unit_ops.split(kernel, -1, [3, 1], delta=delta).numpy()
    assert out.shape == (3, 3, 4, 7) and out.dtype == np.float32
    expected = kernel.copy()
    parents = kernel[..., [3, 1]].astype(np.float64)
    expected[..., [3, 1]] = parents + delta
    expected = np.concatenate([expected, (parents - delta).astype(np.float32)], -1)
    np.testing.assert_array_equal(out, expected)
    untouched = [0, 2, 4]
    np.testing.assert_array_equal(out[..., untouched], kernel[..., untouched])


def test_a_split_consumer_sends_what_it_sent_in_two_halves():
    kernel = _kernel()
    out = unit_ops.split(kernel, -2, [0, 2], halve=True).numpy()
    assert out.shape == (3, 3, 6, 5)
    np.testing.assert_array_equal(out[:, :, [0, 2]], kernel[:, :, [0, 2]] / 2)
    np.testing.assert_array_equal(out[:, :, 4:], kernel[:, :, [0, 2]] / 2)
    np.testing.assert_array_equal(
        out[:, :, [0, 2]] + out[:, :, 4:], kernel[:, :, [0, 2]]
    )
    np.testing.assert_array_equal(out[:, :, [1, 3]], kernel[:, :, [1, 3]])


def test_other_variables_copy_the_parent_and_no_units_is_no_change():
    gamma = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(
        unit_ops.split(gamma, 0, [1, 3]).numpy(), [0, 1, 2, 3, 1, 3]
    )
    np.testing.assert_array_equal(unit_ops.split(gamma, 0, []).numpy(), gamma)


def test_appended_units_are_scaled_and_cast_once():
    kernel = _kernel()
    new = np.random.default_rng(2).normal(size=(3, 3, 2, 5))  # float64
    out = unit_ops.append(kernel, -2, new, scale=0.1).numpy()
    assert out.shape == (3, 3, 6, 5) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :, 4:], (0.1 * new).astype(np.float32))
    per_unit = np.array([0.5, 2.0], np.float32)
    out = unit_ops.append(kernel, -2, new.astype(np.float32), scale=per_unit)
    np.testing.assert_allclose(
        out.numpy()[:, :, 4:], new[:, :, :2] * per_unit[:, None], rtol=1e-6
    )
    filled = unit_ops.fill(np.zeros(3, np.float32), 0, 2, 1.0).numpy()
    np.testing.assert_array_equal(filled, [0, 0, 0, 1, 1])


def test_gradients_reach_the_directions_and_the_gates():
    kernel = tf.constant(_kernel(shape=(4, 3)))
    delta = tf.Variable(np.ones((4, 3), np.float32))
    gates = tf.Variable(np.zeros(3, np.float32))
    with tf.GradientTape() as tape:
        out = unit_ops.split(kernel, -1, range(3), delta=delta, scale=gates)
        loss = tf.reduce_sum(out[:, :3] * 2.0 + out[:, 3:])
    d_delta, d_gates = tape.gradient(loss, [delta, gates])
    # d/d(delta) of 2 (w + g delta) + (w - g delta) is g: zero at zero gates.
    np.testing.assert_array_equal(d_delta.numpy(), np.zeros((4, 3)))
    np.testing.assert_allclose(d_gates.numpy(), [4.0, 4.0, 4.0])


@pytest.mark.parametrize("units", [[5], [0, 0]])
def test_indices_it_cannot_split_are_refused(units):
    with pytest.raises(ValueError, match="distinct indices below 5"):
        unit_ops.split(np.zeros((2, 5), np.float32), -1, units)
