"""Selection takes exactly eta units globally; scores have the right signs."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow import descent
from keras_grow.descent import scoring
from keras_grow.descent import selection
from keras_grow.descent.neighbourhood import Candidate


def _candidates(widths):
    out = []
    for index, width in enumerate(widths):
        out += [Candidate(f"layer{index}", "split", i, index) for i in range(width)]
    return out


def test_selection_takes_exactly_eta_globally_across_layers():
    candidates = _candidates([4, 3, 5])
    scores = np.array([0.1, -5, -1, 2, -3, -4, 0.5, -2, 9, -0.5, 1, 3])
    order, ranked = selection.slot_order(candidates, scores)
    for eta in range(len(candidates) + 1):
        chosen, taken = selection.choose(candidates, order, ranked, eta)
        assert len(chosen) == eta
        assert sorted(chosen) == sorted(np.argsort(scores, kind="stable")[:eta])
    chosen, taken = selection.choose(candidates, order, ranked, 4)
    assert taken == {0: 1, 1: 2, 2: 1}  # -5 | -3, -4 | -2
    with pytest.raises(ValueError, match="between 0 and 12"):
        selection.choose(candidates, order, ranked, 13)


def test_a_plan_is_data_that_says_which_units_of_which_groups_grow():
    candidates = _candidates([4, 3, 5]) + [Candidate("layer1", "new", 0, 1)]
    scores = np.array([0.1, -5, -1, 2, -3, -4, 0.5, -2, 9, -0.5, 1, 3, -6])
    order, ranked = selection.slot_order(candidates, scores)
    spec = kg.specs.parse("VGG(1,1,1)-4-3-5", (32, 32, 3), 10)
    plan = selection.plan_from_candidates("firefly", spec, candidates, order, ranked, 5)
    assert plan.widths_after == (5, 6, 6) and plan.units_added == 5
    by_group = {g.group: (g.split, g.new) for g in plan.groups}
    assert by_group == {
        "layer0": ((1,), ()),
        "layer1": ((0, 1), (0,)),  # -3, -4 and the new unit's -6
        "layer2": ((0,), ()),
    }
    assert plan.log()["plan"]["layer1"] == {"split": [0, 1], "new": 1}
    assert json.loads(json.dumps(plan.log()))["chosen_new"] == 1
    assert str(plan) == (
        "firefly: widths [4, 3, 5] -> [5, 6, 6] (layer0: split [1]; "
        "layer1: split [0, 1], +1 new; layer2: split [0])"
    )


@pytest.mark.parametrize("method", ["RandomSplit", "RandomNew"])
def test_random_baselines_plan_the_same_way(method):
    spec = kg.specs.parse("VGG11-4", (28, 28, 1), 10)
    callback = getattr(kg.callbacks, method)(verbose=0)
    model = kg.GrowableModel(spec)
    rng = np.random.default_rng(0)
    proposal = callback._propose(model, rng)
    plan = callback._plan(spec, proposal, 7, rng)
    assert plan.units_added == 7 and sum(plan.widths_after) == 8 * 4 + 7
    kinds = [
        len(g.split) if method == "RandomSplit" else len(g.new) for g in plan.groups
    ]
    assert sum(kinds) == 7
    _, grow_kwargs = callback._realise(model, proposal, plan, rng)
    model.grow(**grow_kwargs)
    assert tuple(model.spec.widths) == plan.widths_after


def test_groups_sharing_a_width_entry_grow_together_by_summed_scores():
    # Two groups follow width entry 0 (a residual stream and an inner layer).
    candidates = (
        [Candidate("stream", "split", i, 0) for i in range(3)]
        + [Candidate("inner", "split", i, 0) for i in range(3)]
        + [Candidate("other", "split", i, 1) for i in range(2)]
    )
    scores = np.array([-1, 0, 5, -1, 0, 5, -1.5, 3])
    order, ranked = selection.slot_order(candidates, scores)
    chosen, taken = selection.choose(candidates, order, ranked, 2)
    # entry 0's best slot sums to -2, better than entry 1's -1.5; next is -1.5.
    assert taken == {0: 1, 1: 1}
    assert sorted(chosen) == [0, 3, 6]


def test_non_finite_scores_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        selection.slot_order(_candidates([2]), [np.nan, 0.0])


def _toy(seed=0):
    """An MLP with two new-unit candidates that see the same activation and
    have opposite outgoing weights: the one pointing down the loss gradient
    must score negative, its mirror positive."""
    spec = kg.specs.parse("MLP-4", input_shape=(6,), num_classes=3)
    model = kg.GrowableModel(spec)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (64, 6)).astype("float32")
    y = rng.integers(0, 3, 64)
    n = descent.WidthNeighbourhood(model.body, spec, split=False, new_units=2, seed=0)
    incoming = np.abs(rng.normal(size=(6, 2))).astype("float32")
    incoming[:, 1] = incoming[:, 0]
    n._params[("new_in", "layer1", "layer1_dense")].variable.assign(incoming)
    # The loss gradient with respect to the logits, through the shared unit.
    with tf.GradientTape() as tape:
        logits = model.body(x)
        tape.watch(logits)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    g = tape.gradient(loss, logits).numpy()
    h = np.maximum(x @ incoming[:, 0], 0)
    down = -(h[:, None] * g).sum(0)
    down /= np.linalg.norm(down)
    n._params[("new_out", "layer1", "classifier")].variable.assign(
        np.stack([down, -down]).astype("float32")
    )
    return model, n, x, y


@pytest.mark.parametrize("points", [1, 4])
def test_scores_have_the_right_signs_and_the_good_candidate_is_chosen(points):
    model, n, x, y = _toy()
    steps = scoring.DescentSteps(
        n,
        scoring.loss_function(model),
        epsilon=0.05,
        learning_rate=0.01,
        score_points=points,
        jit_compile=False,
    )
    scores = steps.scores(iter([(x, y)]), 1)
    assert scores[0] < 0 < scores[1]
    order, ranked = selection.slot_order(n.candidates, scores)
    chosen, _ = selection.choose(n.candidates, order, ranked, 1)
    assert chosen == [0]
    # The chosen candidate really lowers the loss; its mirror raises it.
    base = steps.loss(x, y, [0, 0])
    assert steps.loss(x, y, [0.05, 0]) < base < steps.loss(x, y, [0, 0.05])


def test_many_point_scores_add_up_to_the_loss_change():
    # Integrated gradients' completeness: sum_i s_i = L(eps) - L(0) as n grows.
    spec = kg.specs.parse("VGG11-4", input_shape=(28, 28, 1), num_classes=10)
    model = kg.GrowableModel(spec)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    from tests import helpers

    helpers.randomize_norms(model)
    x = helpers.images((28, 28, 1), 32)
    y = np.arange(32) % 10
    n = descent.WidthNeighbourhood(model.body, spec, new_units=2, seed=0)
    steps = scoring.DescentSteps(
        n,
        scoring.loss_function(model),
        epsilon=0.5,
        learning_rate=0.01,
        score_points=32,
        jit_compile=False,
    )
    scores = steps.scores(iter([(x, y)]), 1)
    change = steps.loss(x, y, np.full(len(n.candidates), 0.5)) - steps.loss(
        x, y, np.zeros(len(n.candidates))
    )
    assert abs(scores.sum() - change) <= 0.1 * abs(change) + 1e-4


def test_step_one_lowers_the_overgrown_loss_on_a_fixed_batch():
    model, n, x, y = _toy(seed=1)
    steps = scoring.DescentSteps(
        n,
        scoring.loss_function(model),
        epsilon=0.5,
        learning_rate=0.05,
        score_points=1,
        jit_compile=False,
    )
    losses = steps.optimise(iter([(x, y)] * 30), 30)
    assert losses[-1] < losses[0]


def test_fused_adam_takes_the_same_steps_as_keras_adam():
    rng = np.random.default_rng(0)
    start = [
        rng.normal(size=(3, 4)).astype("float32"),
        rng.normal(size=5).astype("float32"),
    ]
    ours = [keras.Variable(v) for v in start]
    theirs = [keras.Variable(v) for v in start]
    fused = scoring.FusedAdam(ours, 0.01)
    reference = keras.optimizers.Adam(0.01)
    reference.build(theirs)
    for _ in range(5):
        grads = [tf.constant(rng.normal(size=v.shape).astype("float32")) for v in start]
        fused.apply(grads)
        reference.apply(grads, theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert abs(ours[0].numpy() - start[0]).max() > 0.01  # it moved


def test_fused_rmsprop_takes_the_same_steps_as_keras_rmsprop():
    # The Firefly authors' step one: RMSprop, momentum 0.1, rho (alpha) 0.9.
    rng = np.random.default_rng(1)
    start = [rng.normal(size=(3, 4)).astype("float32")]
    ours = [keras.Variable(v) for v in start]
    theirs = [keras.Variable(v) for v in start]
    fused = scoring.FusedRMSprop(ours, 1e-3)
    reference = keras.optimizers.RMSprop(1e-3, rho=0.9, momentum=0.1, epsilon=1e-8)
    reference.build(theirs)
    for _ in range(5):
        grads = [tf.constant(rng.normal(size=v.shape).astype("float32")) for v in start]
        fused.apply(grads)
        reference.apply(grads, theirs)
    np.testing.assert_allclose(ours[0].numpy(), theirs[0].numpy(), rtol=1e-4, atol=1e-6)
    assert abs(ours[0].numpy() - start[0]).max() > 1e-3  # it moved


def test_an_unknown_step_one_optimizer_is_refused():
    model, n, _, _ = _toy()
    with pytest.raises(ValueError, match="rmsprop"):
        scoring.DescentSteps(
            n,
            scoring.loss_function(model),
            epsilon=0.1,
            learning_rate=0.01,
            score_points=1,
            jit_compile=False,
            optimizer="sgd",
        )


def test_per_candidate_steps_scores_add_up_to_the_loss_change():
    # Splits end their path at sqrt(epsilon), new units at epsilon: the
    # scores still integrate the loss along the straight path to the ends.
    from tests import helpers

    spec = kg.specs.parse("MLP-6-5", input_shape=(28, 28, 1), num_classes=10)
    model = kg.GrowableModel(spec)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    helpers.randomize_norms(model)
    x = helpers.images((28, 28, 1), 32)
    y = np.arange(32) % 10
    n = descent.WidthNeighbourhood(model.body, spec, new_units=2, seed=0)
    ends = descent.gate_ends(n.candidates, 0.25)
    kinds = np.array([c.kind for c in n.candidates])
    np.testing.assert_allclose(ends[kinds == "split"], 0.5)
    np.testing.assert_allclose(ends[kinds == "new"], 0.25)
    steps = scoring.DescentSteps(
        n,
        scoring.loss_function(model),
        epsilon=ends,
        learning_rate=0.01,
        score_points=32,
        jit_compile=False,
    )
    scores = steps.scores(iter([(x, y)]), 1)
    change = steps.loss(x, y, ends) - steps.loss(x, y, np.zeros_like(ends))
    assert abs(scores.sum() - change) <= 0.1 * abs(change) + 1e-4
