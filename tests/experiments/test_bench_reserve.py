"""Reserved residual blocks (experiments.runs.bench.reserve): inactive
ones leave the net's function as it was, switching one on by assignment
keeps the traced train step, and every gate computes alike once on."""

import keras
import numpy as np
import pytest

from experiments.runs.bench import reserve

SHAPE, WIDTHS = (8, 8, 3), (4, 8, 8)


def _batch(n=8):
    rng = np.random.default_rng(0)
    return rng.random((n,) + SHAPE, dtype=np.float32), rng.integers(0, 10, n)


def _leaf_weights(model):
    """`{layer name/variable name: variable}` of the layers' own weights
    (a `GatedBlock`'s branch and the flat gated layers alike), flags left
    out."""
    return {
        "/".join(v.path.split("/")[-2:]): v
        for v in model.weights
        if not v.path.endswith("/active")
    }


def _copy(source, target):
    """Every weight of `target` gets the value of `source`'s weight of the
    same layer and variable name."""
    values = {key: v.numpy() for key, v in _leaf_weights(source).items()}
    for key, variable in _leaf_weights(target).items():
        variable.assign(values[key])


def _randomize(model):
    rng = np.random.default_rng(1)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(0, 0.3, variable.shape).astype("float32"))


@pytest.mark.parametrize("gate", reserve.GATES)
def test_an_inactive_reserve_computes_the_exact_net(gate):
    x, _ = _batch()
    exact, _ = reserve.resnet(SHAPE, WIDTHS, depth=1)
    reserved, blocks = reserve.resnet(SHAPE, WIDTHS, depth=1, reserve=2, gate=gate)
    assert [b.name for b in blocks][:2] == ["stage0_reserve0", "stage0_reserve1"]
    assert len(blocks) == 6 and not any(b.active for b in blocks)
    _randomize(reserved)  # the reserve's weights too: they must not count
    weights = {layer.name: layer.get_weights() for layer in reserved.layers}
    for layer in exact.layers:
        if layer.weights:
            layer.set_weights(weights[layer.name])
    np.testing.assert_allclose(
        exact.predict(x, verbose=0), reserved.predict(x, verbose=0), atol=1e-5
    )


@pytest.mark.parametrize(
    "gate",
    # Nightly: the design that computes the branch always, left unbuilt,
    # and the gated block (the gated layers are what the library uses).
    [
        pytest.param(g, marks=pytest.mark.nightly) if g != "layers" else g
        for g in reserve.GATES
    ],
)
def test_switching_a_block_on_keeps_the_traced_step(gate):
    keras.utils.set_random_seed(0)
    model, blocks = reserve.resnet(SHAPE, WIDTHS, depth=1, reserve=2, gate=gate)
    result = reserve.activation(reserve.compiled(model), blocks, _batch())
    assert result["traces_after"] == result["traces_before"] > 0
    assert result["output_changed"] and result["block_trained"]
    assert [b.name for b in blocks if b.active] == [
        f"stage{s}_reserve0" for s in range(3)
    ]


def test_every_gate_computes_alike_once_on():
    x, _ = _batch()
    nets = {g: reserve.resnet(SHAPE, WIDTHS, 1, 1, gate=g) for g in reserve.GATES}
    first, first_blocks = nets["block"]
    _randomize(first)
    for record in first_blocks:
        record.switch_on()
    expected = first.predict(x, verbose=0)
    for gate in ("layers", "multiply"):
        model, blocks = nets[gate]
        _copy(first, model)
        for record in blocks:
            record.switch_on()
        np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def test_an_unknown_gate_is_refused():
    with pytest.raises(ValueError, match="`gate` must be one of"):
        reserve.resnet(SHAPE, WIDTHS, 1, 1, gate="mask")
