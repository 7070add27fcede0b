"""Reserved residual blocks (experiments.runs.bench.reserve): inactive
ones leave the net's function as it was, switching one on by assignment
keeps the traced train step, and both gates compute alike."""

import keras
import numpy as np
import pytest

from experiments.runs.bench import reserve

SHAPE, WIDTHS = (8, 8, 3), (4, 8, 8)


def _batch(n=8):
    rng = np.random.default_rng(0)
    return rng.random((n,) + SHAPE, dtype=np.float32), rng.integers(0, 10, n)


def _copy_by_name(source, target):
    """Every layer of `target` with weights gets those of `source`'s layer
    of the same name (a `GatedBlock` its branch's and its flag)."""
    weights = {layer.name: layer.get_weights() for layer in source.layers}
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(weights[layer.name])


def _randomize(model):
    rng = np.random.default_rng(1)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(0, 0.3, variable.shape).astype("float32"))


@pytest.mark.parametrize("gate", reserve.GATES)
def test_an_inactive_reserve_computes_the_exact_net(gate):
    x, _ = _batch()
    exact, _ = reserve.resnet(SHAPE, WIDTHS, depth=1)
    reserved, gates = reserve.resnet(SHAPE, WIDTHS, depth=1, reserve=2, gate=gate)
    assert len(gates) == 6
    _randomize(reserved)  # the reserve's weights too: they must not count
    _copy_by_name(reserved, exact)
    np.testing.assert_allclose(
        exact.predict(x, verbose=0), reserved.predict(x, verbose=0), atol=1e-5
    )


def test_switching_a_block_on_keeps_the_traced_step():
    keras.utils.set_random_seed(0)
    model, gates = reserve.resnet(SHAPE, WIDTHS, depth=1, reserve=2)
    result = reserve.activation(reserve.compiled(model), gates, _batch())
    assert result["traces_after"] == result["traces_before"] > 0
    assert result["output_changed"] and result["block_trained"]
    assert [g.name for g in gates if float(g.active.numpy())] == [
        f"stage{s}_reserve0" for s in range(3)
    ]


def test_both_gates_compute_alike_when_active():
    x, _ = _batch()
    nets = {g: reserve.resnet(SHAPE, WIDTHS, 1, 1, gate=g) for g in reserve.GATES}
    cond, cond_gates = nets["cond"]
    multiply, multiply_gates = nets["multiply"]
    _randomize(cond)
    for gated in cond_gates + multiply_gates:
        gated.active.assign(1.0)
    _copy_by_name(cond, multiply)
    np.testing.assert_allclose(
        cond.predict(x, verbose=0), multiply.predict(x, verbose=0), atol=1e-5
    )


def test_an_unknown_gate_is_refused():
    with pytest.raises(ValueError, match="`gate` must be one of"):
        reserve.GatedBlock(4, gate="mask")
