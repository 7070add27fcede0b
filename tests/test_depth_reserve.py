"""Depth growth into blocks built ahead (`keras_grow.depth_reserve`): no
retrace, the function and the results of a rebuild, nets alone in files."""

import os

import keras
import numpy as np
import pytest

import keras_grow as kg
from keras_grow import checkpoints
from keras_grow import depth_reserve

SHAPE = (12, 12, 1)


def _spec(notation="Basic3ResNet-1-1-1"):
    return kg.specs.parse(notation, SHAPE, 4, widths=(4, 8, 8))


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n,) + SHAPE).astype("float32"), rng.integers(0, 4, n)


def _model(spec=None, reserve=None):
    model = kg.GrowableModel(spec or _spec())
    model.compile(
        keras.optimizers.SGD(0.05, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    if reserve is not None:
        model.reserve_depth(reserve)
    return model


def _fit(model, x, y, epochs=1):
    return model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)


def _twin(model):
    """A model of the same spec and weights, without a reserve."""
    twin = _model(model.spec)
    twin.set_weights(model.get_weights())
    return twin


def test_plan_fits_and_headroom():
    spec = _spec()
    reserve = depth_reserve.plan(spec, (3, 2, 3))
    assert reserve.depths == (3, 2, 3)
    assert reserve.blocks == (
        "stage1_block2",
        "stage1_block3",
        "stage2_block2",
        "stage3_block2",
        "stage3_block3",
    )
    assert reserve.layers["stage2_block2"] == {
        "stage2_block2_conv1",
        "stage2_block2_bn1",
        "stage2_block2_conv2",
        "stage2_block2_bn2",
        "stage2_block2_relu1",
        "stage2_block2_add",
        "stage2_block2_out",
    }
    assert depth_reserve.fits(reserve, spec)
    assert depth_reserve.fits(reserve, spec.with_depths((3, 2, 3)))
    assert not depth_reserve.fits(reserve, spec.with_depths((4, 1, 1)))
    assert not depth_reserve.fits(reserve, spec.with_depths((1, 3, 1)))
    assert not depth_reserve.fits(reserve, spec.scaled(width=2))
    assert not depth_reserve.fits(None, spec)
    # Within the capacity the reserve stays; beyond it, twice the depth.
    assert depth_reserve.for_rebuild(reserve, spec.scaled(width=2)).depths == (3, 2, 3)
    grown = depth_reserve.for_rebuild(reserve, spec.with_depths((4, 1, 1)))
    assert grown.depths == (8, 2, 3)
    assert depth_reserve.for_rebuild(None, spec) is None
    assert depth_reserve.Reserve.from_dict(reserve.to_dict()) == reserve
    assert depth_reserve.plan(spec, (1, 1, 1)) is None
    with pytest.raises(ValueError, match="at least as deep"):
        depth_reserve.plan(spec.with_depths((2, 1, 1)), (1, 1, 1))


@pytest.mark.parametrize("notation", ["Plain3Net-1-1-1", "MLP-8-8"])
def test_nets_without_residual_blocks_hold_no_reserve(notation):
    spec = kg.specs.parse(notation, SHAPE, 4)
    model = _model(spec)
    assert model.reserve_depth([d + 2 for d in _depths(spec)]) is None
    assert model.reserve is None


def _depths(spec):
    return getattr(spec, "depths", None) or getattr(spec, "stage_depths", (1,))


def test_a_reserve_keeps_the_function_and_counts_the_net_alone():
    x, _ = _data()
    model = _model()
    before = model.predict(x, verbose=0)
    reserve = model.reserve_depth((3, 3, 3))
    assert model.reserve is reserve and len(reserve.blocks) == 6
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-6)
    plain = kg.GrowableModel(_spec())
    assert model.count_params() == plain.count_params()
    assert len(model.get_weights()) == len(plain.get_weights())
    assert model.growth_log[-1]["kind"] == "reserve"
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    assert "6 reserved blocks switched off" in lines[0]
    assert "stage1_block2" not in "\n".join(lines)  # the net's layers alone
    assert model.reserve_depth((2, 2, 2)) is reserve  # already held


def test_growth_into_the_reserve_keeps_the_traced_step():
    x, y = _data()
    model = _model(reserve=(3, 3, 3))
    _fit(model, x, y)
    assert model.trace_counts["train"] == 1
    before = model.predict(x, verbose=0)
    event = model.grow(model.spec.with_block_added(1), initializer="zero", seed=1)
    assert event["in_place"] and event["new_blocks"] == ["stage2_block2"]
    assert model.spec.notation == "Basic3ResNet(4,8,8)-1-2-1"
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-5)
    plain = kg.GrowableModel(model.spec)
    assert event["params_after"] == model.count_params() == plain.count_params()
    kernel = model.body.get_layer("stage2_block2_conv1").kernel
    started = kernel.numpy().copy()
    _fit(model, x, y)
    assert model.trace_counts["train"] == 1  # the step traced before the growth
    assert not np.array_equal(kernel.numpy(), started)  # the new block trains


@pytest.mark.parametrize(
    # Nightly with identity blocks: gaussian runs the same path fast.
    "initializer",
    ["gaussian", pytest.param("identity", marks=pytest.mark.nightly)],
)
def test_growth_into_the_reserve_equals_a_rebuild(initializer):
    x, y = _data()
    reserved = _model(reserve=(2, 2, 2))
    _fit(reserved, x, y)
    rebuilt = _twin(reserved)
    rebuilt.optimizer.build(rebuilt.trainable_variables)
    state = {v.name: v for v in reserved.optimizer.variables}
    for target in rebuilt.optimizer.variables:
        target.assign(state[target.name])
    deeper = reserved.spec.with_block_added(0)
    events = [
        m.grow(deeper, initializer=initializer, seed=7) for m in (reserved, rebuilt)
    ]
    assert [e["in_place"] for e in events] == [True, False]
    for a, b in zip(reserved.get_weights(), rebuilt.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # new blocks drawn alike
    losses = [_fit(m, x, y, epochs=2).history["loss"] for m in (reserved, rebuilt)]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    np.testing.assert_allclose(
        reserved.predict(x, verbose=0), rebuilt.predict(x, verbose=0), atol=1e-4
    )


def test_rollback_of_a_growth_into_the_reserve_restores_everything():
    x, y = _data()
    model = _model(reserve=(2, 2, 2))
    _fit(model, x, y)
    weights = [v.numpy().copy() for v in model.body.weights]
    slots = [v.numpy().copy() for v in model.optimizer.variables]
    spec = model.spec
    model.grow(spec.with_block_added(2), initializer="gaussian", seed=0)
    _fit(model, x, y)
    model.rollback("test")
    assert model.spec == spec and model.count_params() == _twin(model).count_params()
    for variable, value in zip(model.body.weights, weights, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)
    for variable, value in zip(model.optimizer.variables, slots, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)
    _fit(model, x, y)
    assert model.trace_counts["train"] == 1


def test_removing_a_block_switches_it_off():
    x, y = _data()
    model = _model(reserve=(2, 2, 2))
    model.grow(model.spec.with_block_added(0), initializer="gaussian", seed=0)
    _fit(model, x, y)
    event = model.grow(model.spec.with_depths((1, 1, 1)), info={"kind": "remove_block"})
    assert event["in_place"] and model.spec.notation == "Basic3ResNet(4,8,8)-1-1-1"
    np.testing.assert_allclose(
        model.predict(x, verbose=0), _twin(model).predict(x, verbose=0), atol=1e-5
    )
    # Grown again, the block starts afresh, its momentum zeroed.
    model.grow(model.spec.with_block_added(0), initializer="zero", seed=0)
    kernel = model.body.get_layer("stage1_block2_conv1").kernel
    slots = [s for s in model.optimizer.variables if s.name.startswith("stage1_block2")]
    assert slots and all(not np.any(s.numpy()) for s in slots)
    assert np.any(kernel.numpy())
    _fit(model, x, y)
    assert model.trace_counts["train"] == 1


def test_outgrowing_the_reserve_rebuilds_with_twice_the_depth():
    x, y = _data()
    model = _model(reserve=(2, 1, 1))
    _fit(model, x, y)
    model.grow(model.spec.with_depths((2, 1, 1)), initializer="zero")
    event = model.grow(model.spec.with_depths((3, 1, 1)), initializer="zero")
    assert not event["in_place"]
    assert model.reserve.depths == (6, 2, 2)
    _fit(model, x, y)
    assert model.trace_counts["train"] == 2
    event = model.grow(model.spec.with_depths((4, 2, 2)), initializer="zero")
    assert event["in_place"]


def test_saved_files_and_exports_hold_the_net_alone(tmp_path):
    x, y = _data()
    model = _model(reserve=(3, 3, 3))
    model.grow(model.spec.with_block_added(0), initializer="gaussian", seed=0)
    _fit(model, x, y)
    expected = model.predict(x, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    assert model.reserve is not None and model.trace_counts["train"] == 1
    loaded = keras.models.load_model(path)
    assert loaded.reserve is None and loaded.spec == model.spec
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
    by_path = {v.path: v.numpy() for v in model.optimizer.variables}
    carried = [v for v in loaded.optimizer.variables if v.path in by_path]
    assert len(carried) == len(loaded.optimizer.variables) > 10
    for variable in carried:
        np.testing.assert_array_equal(variable.numpy(), by_path[variable.path])
    weights_path = str(tmp_path / "m.weights.h5")
    model.save_weights(weights_path)
    from_file = kg.GrowableModel.from_weights(weights_path)
    np.testing.assert_allclose(from_file.predict(x, verbose=0), expected, atol=1e-6)
    export = model.export_serving(str(tmp_path / "serving"))
    import tensorflow as tf

    served = tf.saved_model.load(export).signatures["serving_default"]
    logits = served(images=tf.constant(x))["logits"].numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    assert sorted(os.listdir(export))  # written
    # Loading a file gives the reserve up: the file holds the net alone.
    model.load_weights(weights_path)
    assert model.reserve is None
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)


def test_weights_of_an_earlier_net_restore_it():
    x, y = _data()
    model = _model(reserve=(2, 2, 2))
    _fit(model, x, y)
    weights, expected = model.get_weights(), model.predict(x, verbose=0)
    model.set_weights(weights)  # the same net: assigned in place
    assert model.reserve is not None
    model.grow(model.spec.with_block_added(1), initializer="gaussian", seed=0)
    model.set_weights(weights)  # an earlier net (EarlyStopping's best)
    assert model.spec.notation == "Basic3ResNet(4,8,8)-1-1-1"
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)


def test_a_checkpoint_resumes_with_the_reserve(tmp_path):
    x, y = _data()
    model = _model(reserve=(2, 2, 2))
    model.grow(model.spec.with_block_added(0), initializer="gaussian", seed=0)
    _fit(model, x, y)
    checkpoints.save(str(tmp_path), model, epoch=1)
    resumed = _model()
    checkpoints.restore(resumed, checkpoints.latest(str(tmp_path)))
    assert resumed.reserve == model.reserve and resumed.spec == model.spec
    losses = [_fit(m, x, y).history["loss"] for m in (model, resumed)]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)
    resumed.grow(resumed.spec.with_block_added(1), initializer="zero", seed=0)
    _fit(resumed, x, y)
    assert resumed.trace_counts["train"] == 1  # grown into the restored reserve


def test_autogrow_with_a_reserve_traces_once_and_finds_the_same_net():
    x, y = _data(64)

    def run(reserve):
        keras.utils.set_random_seed(0)
        model = _model()
        autogrow = kg.callbacks.AutoGrow(
            growth_period=1,
            patience=100,
            initializer="gaussian",
            max_depths=(2, 3, 2),
            fine_tune_epochs=1,
            seed=0,
            verbose=0,
            reserve=reserve,
        )
        history = model.fit(
            x,
            y,
            validation_data=(x[:32], y[:32]),
            epochs=6,
            batch_size=16,
            callbacks=[autogrow],
            verbose=0,
            shuffle=False,
        )
        return model, history.history["loss"]

    (reserved, with_reserve), (rebuilt, without) = run(True), run(False)
    assert reserved.spec == rebuilt.spec
    assert reserved.spec.notation == "Basic3ResNet(4,8,8)-2-3-2"
    assert reserved.trace_counts["train"] == 1 < rebuilt.trace_counts["train"]
    assert reserved.count_params() == rebuilt.count_params()
    np.testing.assert_allclose(with_reserve, without, rtol=1e-5)


def test_model_checkpoint_saves_the_net_while_the_reserve_trains(tmp_path):
    x, y = _data()
    model = _model(reserve=(2, 2, 2))
    model.grow(model.spec.with_block_added(0), initializer="gaussian", seed=0)
    path = str(tmp_path / "epoch{epoch}.keras")
    _fit_with = dict(batch_size=16, verbose=0, shuffle=False)
    model.fit(
        x, y, epochs=2, callbacks=[keras.callbacks.ModelCheckpoint(path)], **_fit_with
    )
    assert model.trace_counts["train"] == 1 and model.reserve is not None
    loaded = keras.models.load_model(str(tmp_path / "epoch2.keras"))
    assert loaded.spec == model.spec and loaded.reserve is None
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_a_user_graph_grows_into_its_reserve_in_depth_and_width():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, name="stem")(inputs)
    for i in range(2):
        h = keras.layers.Dense(16, activation="relu", name=f"b{i}_up")(x)
        h = keras.layers.Dense(8, name=f"b{i}_down")(h)
        x = keras.layers.Add(name=f"b{i}_add")([x, h])
    user = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    model = kg.GrowableModel.from_keras(user, depth="blocks")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 6)).astype("float32"), rng.integers(0, 3, 32)
    expected = user.predict(x, verbose=0)
    assert model.reserve_depth([4]).blocks == ("b1_add_x1", "b1_add_x2")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)
    model.fit(x, y, epochs=1, verbose=0)
    before = model.predict(x, verbose=0)
    event = model.grow(model.spec.with_block_added(0), initializer="zero")
    assert event["in_place"] and event["new_blocks"] == ["b1_add_x1"]
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-6)
    # A hidden layer of an active block, outside the reserve, widens in
    # place too (the reserve's own groups keep fixed shapes).
    event = model.grow(model.spec.with_layer_widened("b0_up", 20))
    assert event["in_place"]
    model.fit(x, y, epochs=1, verbose=0)
    assert model.trace_counts["train"] == 1
