"""ProgressiveGrowth: the plan (specs between start and target, epochs,
block sources), the target reached exactly inside fit, the function kept
where an operator promises it, the optimizer's state carried, and a
resumed run equal to an uninterrupted one."""

import keras
import numpy as np
import pytest

import keras_grow as kg
from keras_grow import build
from keras_grow import growth_events
from keras_grow.callbacks import progressive_plan as plans
from keras_grow.specs import progression
from tests.callbacks.test_backup_and_restore import Interrupt
from tests.callbacks.test_backup_and_restore import InterruptAt
from tests.conftest import compile_sgd

BATCH = 64
TAKE = 192


def _staged(notation="Basic3ResNet-2-2-2", widths=(8, 16, 16)):
    return kg.specs.parse(notation, (28, 28, 1), 10, widths=widths)


def _images(count=16, seed=0):
    return (
        np.random.default_rng(seed).uniform(0, 1, (count, 28, 28, 1)).astype(np.float32)
    )


def _train(start_epoch=None):
    """The sample's first images; with `start_epoch`, epoch-seeded and
    endless (fit then needs `steps_per_epoch`)."""
    return kg.data.load(
        "fashion_mnist_sample", "train", BATCH, take=TAKE, start_epoch=start_epoch
    )


# --- specs: scaled and the stages between -----------------------------------


@pytest.mark.parametrize(
    "notation, shape, width, depth, expected",
    [
        ("Basic3ResNet-1-1-1", (28, 28, 1), 2, 3, "Basic3ResNet(32,64,128)-3-3-3"),
        ("Basic3ResNet-3-3-3", (28, 28, 1), 0.5, 1 / 3, "Basic3ResNet(8,16,32)-1-1-1"),
        ("VGG11-8", (32, 32, 3), 2, 2, "VGG19-16"),
        ("VGG11-8", (32, 32, 3), 0.25, 1, "VGG11-2"),
        ("MLP-64-32", (8,), 0.5, 2, "MLP-32-16-16-16"),
        ("MobileNetV1-8", (32, 32, 3), 2, 1, "MobileNetV1-16"),
    ],
)
def test_scaled_multiplies_every_width_and_stage_depth(
    notation, shape, width, depth, expected
):
    spec = kg.specs.parse(notation, shape, 10)
    assert spec.scaled(width=width, depth=depth).notation == expected


def test_scaled_refuses_what_a_family_cannot_do():
    with pytest.raises(ValueError, match="fixed layout"):
        kg.specs.parse("MobileNetV1-8", (32, 32, 3), 10).scaled(depth=2)
    with pytest.raises(ValueError, match="must be > 0"):
        _staged().scaled(width=0)


@pytest.mark.parametrize(
    "target, factor, count",
    [
        (_staged("Basic3ResNet-3-3-3", (16, 32, 64)), 2.0, 1),
        (_staged("Basic3ResNet-3-3-3", (16, 32, 64)), 1.5, 2),
        (kg.specs.parse("VGG11-32", (28, 28, 1), 10), 2.0, 2),
        (kg.specs.parse("MLP-256-256", (784,), 10), 2.0, 3),
        (kg.specs.parse("MLP-256-256", (784,), 10), 4.0, 2),
    ],
)
def test_the_stages_grow_by_at_most_the_factor_and_end_in_the_target(
    target, factor, count
):
    start = target.scaled(width=0.25 if target.family == "VGG11" else 0.5, depth=0.5)
    if target.family == "MLP":
        start = target.scaled(width=0.125, depth=0.5)
    grown = progression.stages(start, target, factor)
    assert len(grown) == count and grown[-1] == target
    for before, after in zip([start, *grown], grown):
        for old, new in zip(before.stage_widths(), after.stage_widths()):
            assert len(old) <= len(new) <= factor * len(old)
            for j, width in enumerate(new):
                base = old[min(j, len(old) - 1)]
                assert base <= width <= factor * base


def test_a_target_growth_cannot_reach_is_refused_with_the_reason():
    spec = _staged()
    with pytest.raises(ValueError, match="would shrink"):
        progression.check_reachable(spec, spec.scaled(width=0.5))
    with pytest.raises(ValueError, match="other fields too.*weight_decay"):
        progression.check_reachable(spec, spec.replace(weight_decay=1e-4).scaled(2))
    with pytest.raises(TypeError, match="StagedNetSpec"):
        progression.check_reachable(spec, kg.specs.parse("VGG11-8", (28, 28, 1), 10))


def test_a_target_read_from_a_model_built_again_is_refused_with_the_way_out():
    def mlp(units):
        inputs = keras.Input((6,))
        x = keras.layers.Dense(units, activation="relu")(inputs)
        return kg.GrowableModel.from_keras(
            keras.Model(inputs, keras.layers.Dense(3)(x))
        )

    start = mlp(4).spec
    with pytest.raises(ValueError, match=r"dense_5 for dense_2.*model\.spec\.scaled"):
        progression.check_reachable(start, mlp(8).spec)
    progression.check_reachable(start, start.scaled(width=2))


# --- the plan -----------------------------------------------------------------


def test_growths_are_spread_over_the_first_fraction_of_the_epochs():
    assert plans.growth_points(2, 10, 0.5) == (3, 5)
    assert plans.growth_points(1, 10, 0.5) == (5,)
    assert plans.growth_points(3, 4, 0.5) == (1, 2, 3)  # crowded: one apart
    assert plans.growth_points(1, 2, 1.0) == (1,)  # never at the last epoch
    with pytest.raises(ValueError, match="too short.*at least 4 epochs"):
        plans.growth_points(3, 3, 0.5)


@pytest.mark.parametrize(
    "operator, count, new_count, expected",
    [
        ("identity", 2, 4, [0, 1, None, None]),
        ("stack", 2, 4, [0, 1, 0, 1]),
        ("stack", 3, 4, [0, 1, 2, 0]),
        ("interleave", 2, 4, [0, 0, 1, 1]),
        ("middle", 2, 4, [0, 1, 1, 1]),
        ("middle", 4, 6, [0, 1, 2, 3, 2, 3]),
    ],
)
def test_block_sources(operator, count, new_count, expected):
    assert plans.block_sources(operator, count, new_count) == expected


def test_split_units_takes_distinct_units_op_by_op():
    ops = plans.split_units(np.random.default_rng(0), 3, 8)
    assert [len(op) for op in ops] == [3, 2]
    assert all(len(set(op)) == len(op) for op in ops)
    assert set(ops[0]) == {0, 1, 2} and max(ops[1]) < 6


def test_a_plan_round_trips_and_prints_its_growths():
    target = _staged("Basic3ResNet-2-2-2", (16, 32, 32))
    plan = plans.make_plan(target.scaled(0.5, 0.5), target, 10)
    assert plans.ProgressivePlan.from_dict(plan.to_dict()) == plan
    assert plan.spec_at(0) == plan.start and plan.spec_at(9) == target
    text = str(plan)
    assert (
        "Epoch 6: Basic3ResNet(8,16,16)-1-1-1 -> Basic3ResNet(16,32,32)-2-2-2" in text
    )


# --- the callback -------------------------------------------------------------


def _grown_by_hand(start, target, **kwargs):
    """A model of `start` and the callback, planned for 4 epochs."""
    model = compile_sgd(kg.GrowableModel(start))
    kwargs.setdefault("verbose", 0)
    grow = kg.callbacks.ProgressiveGrowth(target, seed=1, **kwargs)
    grow.set_model(model)
    grow.set_params({"epochs": 4})
    grow.on_train_begin()
    return model, grow


def _grow_all(grow):
    for epoch in grow.plan.at:
        grow.on_epoch_begin(epoch)


@pytest.mark.parametrize(
    "target, operators",
    [
        (_staged("Basic3ResNet-2-2-2", (8, 16, 16)), {}),
        (_staged("Plain3Net-2-2-2", (8, 16, 16)), {}),
        (kg.specs.parse("VGG11-8", (28, 28, 1), 10), {}),
        (kg.specs.parse("MLP-16-16", (28, 28, 1), 10), {}),
        (_staged("Basic3ResNet-2-2-2", (8, 16, 16)), {"width": "fresh"}),
    ],
    ids=["resnet", "plain", "vgg", "mlp", "resnet-fresh"],
)
def test_identity_depth_and_exact_duplicates_keep_the_function(target, operators):
    start = target.scaled(width=0.5, depth=0.5)
    model, grow = _grown_by_hand(start, target, noise=0.0, **operators)
    images = _images()
    before = model.predict(images, verbose=0)
    _grow_all(grow)
    assert model.spec == target
    np.testing.assert_allclose(model.predict(images, verbose=0), before, atol=1e-5)


def test_a_from_keras_graph_grows_in_width_with_its_function_kept():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    user = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    model = compile_sgd(kg.GrowableModel.from_keras(user))
    target = model.spec.scaled(width=4)
    grow = kg.callbacks.ProgressiveGrowth(target, noise=0.0, verbose=0)
    grow.set_model(model)
    grow.set_params({"epochs": 5})
    grow.on_train_begin()
    assert len(grow.plan.specs) == 2
    images = _images()
    before = model.predict(images, verbose=0)
    _grow_all(grow)
    assert model.spec == target and model.spec.widths == (16, 32)
    np.testing.assert_allclose(model.predict(images, verbose=0), before, atol=1e-5)
    with pytest.raises(ValueError, match="depth does not scale"):
        model.spec.scaled(depth=2)


def test_noise_breaks_the_duplicates_symmetry_and_changes_little():
    target = _staged("Basic3ResNet-1-1-1", (8, 16, 16))
    model, grow = _grown_by_hand(target.scaled(width=0.5), target, noise=0.01)
    images = _images()
    before = model.predict(images, verbose=0)
    _grow_all(grow)
    after = model.predict(images, verbose=0)
    assert not np.allclose(after, before, atol=1e-6)
    np.testing.assert_allclose(after, before, atol=0.05 * np.abs(before).max())


def test_stacked_blocks_start_as_copies_of_the_trained_ones():
    target = _staged("Basic3ResNet-4-2-2", (8, 8, 8))
    start = _staged("Basic3ResNet-2-1-1", (8, 8, 8))
    model, grow = _grown_by_hand(start, target, depth="stack")
    # Weights the copies must carry: train the start's blocks a little.
    model.fit(_images(64), np.arange(64) % 10, epochs=1, verbose=0)
    _grow_all(grow)
    event = growth_events.growths(model.growth_log)[-1]
    # Stage 1 stacks blocks 1-2 on themselves; later stages' only old block
    # is strided, so their new blocks start as the identity.
    assert event["block_copies"] == {
        "stage1_block3": "stage1_block1",
        "stage1_block4": "stage1_block2",
    }
    body = model.body
    for suffix in ("conv1", "bn1", "conv2", "bn2"):
        for copy, source in (("block3", "block1"), ("block4", "block2")):
            for a, b in zip(
                body.get_layer(f"stage1_{copy}_{suffix}").weights,
                body.get_layer(f"stage1_{source}_{suffix}").weights,
            ):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    gamma = body.get_layer("stage2_block2_bn2").gamma.numpy()
    np.testing.assert_array_equal(gamma, np.zeros_like(gamma))  # identity


def test_the_optimizer_state_is_carried_through_every_growth():
    target = _staged("Basic3ResNet-2-2-2", (8, 16, 16))
    model, grow = _grown_by_hand(target.scaled(0.5, 0.5), target)
    model.fit(_images(64), np.arange(64) % 10, epochs=1, batch_size=16, verbose=0)
    iterations = int(model.optimizer.iterations.numpy())
    slot_of = {v.path: v for v in model.optimizer.variables}
    stem = np.array(slot_of["sgd/stem_conv_kernel_momentum"].numpy())
    _grow_all(grow)
    assert int(model.optimizer.iterations.numpy()) == iterations == 4
    carried = {v.path: v for v in model.optimizer.variables}
    grown = carried["sgd/stem_conv_kernel_momentum"].numpy()
    assert grown.shape[-1] == 8 and stem.shape[-1] == 4
    np.testing.assert_array_equal(grown[..., :4], stem)  # the parents' state
    np.testing.assert_array_equal(grown[..., 4:], 0.0)  # the duplicates' zeros


def test_inside_fit_the_defaults_reach_the_target_before_the_last_epoch():
    keras.utils.set_random_seed(0)
    target = _staged("Basic3ResNet-2-2-2", (8, 16, 16))
    model = compile_sgd(kg.GrowableModel(target.scaled(0.5, 0.5)))
    recorder = _SpecPerEpoch()
    grow = kg.callbacks.ProgressiveGrowth(target, verbose=0)
    history = model.fit(_train(), epochs=4, callbacks=[grow, recorder], verbose=0)
    assert recorder.notations[-2:] == [target.notation] * 2
    assert model.spec == target
    kinds = [e["kind"] for e in model.growth_log]
    assert kinds == ["progressive_plan", "grow"]
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[2] < 1.5 * losses[1]


class _SpecPerEpoch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.notations = []

    def on_epoch_end(self, epoch, logs=None):
        self.notations.append(self.model.spec.notation)


def _fit_with_backup(backup_dir, interrupt=None, **growth):
    keras.utils.set_random_seed(0)
    target = _staged("Basic3ResNet-2-2-2", (8, 16, 16))
    model = compile_sgd(kg.GrowableModel(target.scaled(0.5, 0.5)))
    grow = kg.callbacks.ProgressiveGrowth(
        target, depth="stack", seed=5, verbose=0, **growth
    )
    save_freq = 1 if growth.get("unit") == "step" else "epoch"
    backup = kg.callbacks.BackupAndRestore(
        backup_dir, [grow], delete_checkpoint=False, verbose=0, save_freq=save_freq
    )
    start = kg.callbacks.BackupAndRestore.epochs_done(backup_dir) or 0
    callbacks = [backup, grow] + ([interrupt] if interrupt else [])
    history = model.fit(
        _train(start),
        steps_per_epoch=kg.data.num_batches(
            "fashion_mnist_sample", "train", BATCH, take=TAKE
        ),
        epochs=5,
        callbacks=callbacks,
        verbose=0,
    )
    return model, grow, history


def test_a_resumed_run_follows_its_plan_to_the_same_end(tmp_path):
    model_a, grow_a, history_a = _fit_with_backup(str(tmp_path / "a"))
    with pytest.raises(Interrupt):
        _fit_with_backup(str(tmp_path / "b"), InterruptAt(epoch=3))
    model_b, grow_b, history_b = _fit_with_backup(str(tmp_path / "b"))
    assert grow_b.plan == grow_a.plan and model_b.spec == model_a.spec
    # The plan came back with the checkpoint: made and logged once.
    kinds = [e["kind"] for e in model_b.growth_log]
    assert kinds == [e["kind"] for e in model_a.growth_log]
    assert kinds == ["progressive_plan", "grow"]
    np.testing.assert_array_equal(history_a.history["loss"], history_b.history["loss"])
    for x, y in zip(model_a.weights, model_b.weights):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=x.path)


@pytest.mark.parametrize(
    # Nightly before the growth; after it, with the growth to replay, fast.
    "killed_at",
    [pytest.param((1, 1), marks=pytest.mark.nightly), (1, 2)],
    ids=["before", "after"],
)
def test_a_run_growing_between_steps_resumes_mid_epoch_to_the_same_end(
    tmp_path, killed_at
):
    """Checkpoints every batch; the run is killed in epoch 1 before or
    after its growth at step 4 (epoch 1, batch 1 of 3) and resumed by
    fast-forwarding: the same growth at the same step, the same weights."""
    growth = {"unit": "step", "at": [4]}
    model_a, grow_a, history_a = _fit_with_backup(str(tmp_path / "a"), **growth)
    epoch, batch = killed_at
    with pytest.raises(Interrupt):
        _fit_with_backup(str(tmp_path / "b"), InterruptAt(epoch, batch), **growth)
    model_b, grow_b, history_b = _fit_with_backup(str(tmp_path / "b"), **growth)
    assert grow_b.plan == grow_a.plan and model_b.spec == model_a.spec
    (event_a,) = growth_events.growths(model_a.growth_log)
    (event_b,) = growth_events.growths(model_b.growth_log)
    assert (event_a["epoch"], event_a["step"]) == (event_b["epoch"], event_b["step"])
    assert event_a["step"] == 4
    np.testing.assert_array_equal(history_a.history["loss"], history_b.history["loss"])
    for x, y in zip(model_a.weights, model_b.weights):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=x.path)


def test_bad_arguments_are_refused_before_any_step():
    target = _staged()
    with pytest.raises(TypeError, match="must be a keras_grow spec"):
        kg.callbacks.ProgressiveGrowth("Basic3ResNet-2-2-2")
    with pytest.raises(ValueError, match="growth_factor"):
        kg.callbacks.ProgressiveGrowth(target, growth_factor=1.0)
    with pytest.raises(ValueError, match="depth"):
        kg.callbacks.ProgressiveGrowth(target, depth="sideways")
    model = compile_sgd(kg.GrowableModel(target.scaled(0.5, 0.5)))
    for kwargs, match in (
        ({"at": [1, 2]}, "1 increasing epochs"),
        ({"at": [0]}, r"lie in \[1, 4\]"),
    ):
        grow = kg.callbacks.ProgressiveGrowth(target, verbose=0, **kwargs)
        with pytest.raises(ValueError, match=match):
            model.fit(_images(8), np.zeros(8), epochs=5, callbacks=[grow], verbose=0)
    assert model.spec == target.scaled(0.5, 0.5)


def test_the_plan_is_printed_and_logged(capsys):
    target = _staged("Basic3ResNet-2-2-2", (8, 16, 16))
    model, grow = _grown_by_hand(target.scaled(0.5, 0.5), target, verbose=1)
    assert "Progressive plan: Basic3ResNet(4,8,8)-1-1-1" in capsys.readouterr().out
    (event,) = model.growth_log
    assert event["kind"] == "progressive_plan"
    assert (
        plans.ProgressivePlan.from_dict(
            {k: event[k] for k in ("start", "target", "at", "unit", "specs")}
        )
        == grow.plan
    )
    assert build.new_blocks(grow.plan.start, target)


# --- growth between steps ---------------------------------------------------


def test_growth_points_spread_over_steps_too():
    assert plans.growth_points(2, 100, 0.5, "step") == (25, 50)
    with pytest.raises(ValueError, match="at least 3 steps"):
        plans.growth_points(2, 2, 0.5, "step")


class _SpecPerBatch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.notations = []

    def on_train_batch_end(self, batch, logs=None):
        self.notations.append(self.model.spec.notation)


def test_unit_step_grows_between_the_steps_of_an_epoch():
    keras.utils.set_random_seed(0)
    target = _staged("Basic3ResNet-2-2-2", (8, 16, 16))
    start = target.scaled(0.5, 0.5)
    model = compile_sgd(kg.GrowableModel(start))
    grow = kg.callbacks.ProgressiveGrowth(
        target, unit="step", reach_target_at=0.4, verbose=0
    )
    assert grow.make_plan(start, 2, 3).at == (2,)  # 0.4 of 2 epochs x 3 steps
    recorder = _SpecPerBatch()
    history = model.fit(_train(), epochs=2, callbacks=[grow, recorder], verbose=0)
    assert recorder.notations == [start.notation] * 2 + [target.notation] * 4
    assert grow.plan == grow.make_plan(start, 2, 3)
    (event,) = [e for e in model.growth_log if e["kind"] == "grow"]
    assert (event["epoch"], event["step"]) == (0, 2)
    assert np.isfinite(history.history["loss"]).all()
    assert grow.plan.growth_steps(3) == (2,)


def test_a_step_growth_passed_over_happens_at_the_next_call():
    """With steps_per_execution, fit calls back every few steps: a growth
    planned between two calls happens at the later one."""
    target = _staged("Basic3ResNet-2-2-2", (8, 16, 16))
    model = compile_sgd(kg.GrowableModel(target.scaled(0.5, 0.5)))
    grow = kg.callbacks.ProgressiveGrowth(target, unit="step", at=[3], verbose=0)
    grow.set_model(model)
    grow.set_params({"epochs": 2, "steps": 4})
    grow.on_train_begin()
    grow.on_epoch_begin(0)
    grow.on_train_batch_begin(2)
    assert model.spec != target
    grow.on_train_batch_begin(4)  # past step 3
    assert model.spec == target
    grow.on_train_batch_begin(6)  # nothing is grown twice
    assert len([e for e in model.growth_log if e["kind"] == "grow"]) == 1


def test_unit_step_needs_fit_to_know_its_steps():
    target = _staged("Basic3ResNet-2-2-2", (8, 16, 16))
    model = compile_sgd(kg.GrowableModel(target.scaled(0.5, 0.5)))
    unknown = _train().filter(lambda x, y: True)  # a length tf.data cannot tell
    grow = kg.callbacks.ProgressiveGrowth(target, unit="step", verbose=0)
    with pytest.raises(ValueError, match="pass steps_per_epoch to fit"):
        model.fit(unknown, epochs=2, callbacks=[grow], verbose=0)
    with pytest.raises(ValueError, match="unit"):
        kg.callbacks.ProgressiveGrowth(target, unit="batch")
