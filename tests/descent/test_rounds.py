"""Firefly's width rounds kept from round to round: while the net grows in
place, one traced step serves every round and computes what a round built
anew computes; a convolutional net builds each round anew."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow import descent
from keras_grow.descent import scoring
from keras_grow.descent import selection
from tests import helpers

STEPS = dict(learning_rate=0.01, optimizer="adam", score_points=2, jit_compile=False)
EPSILON, SPLIT_EPSILON = 0.1, 0.3


def _model(notation, **extra):
    keras.utils.set_random_seed(0)
    spec = kg.specs.parse(notation, input_shape=(28, 28, 1), num_classes=10, **extra)
    model = kg.GrowableModel(spec)
    helpers.randomize_norms(model)
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=40)
    # 16-image batches and a partial one of 8: both sizes reach the step.
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def _fresh_steps(model, loss_fn, new_units, seed):
    n = descent.WidthNeighbourhood(
        model.body, model.spec, new_units=new_units, seed=seed
    )
    ends = descent.gate_ends(n.candidates, EPSILON, SPLIT_EPSILON)
    return scoring.DescentSteps(n, loss_fn, epsilon=ends, **STEPS)


def _grow_three_rounds(notation, extra, kept):
    """Three rounds, each with one more new-unit candidate per group than
    the last (as eta grows with the net): (per-round results, weights,
    traces)."""
    model = _model(notation, **extra)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    rounds = descent.WidthRounds(
        loss_fn, epsilon=EPSILON, split_epsilon=SPLIT_EPSILON, **STEPS
    )
    results, traces = [], 0
    for r in range(3):
        data = scoring.batches(_data())
        if kept:
            steps = rounds.start(
                model.body, model.spec, split=True, new_units=r + 1, seed=r
            )
        else:
            steps = _fresh_steps(model, loss_fn, r + 1, r)
        n = steps.neighbourhood
        losses = steps.optimise(data, 4)
        scores = steps.scores(data, 2)
        order, ranked = selection.slot_order(n.candidates, scores)
        chosen, _ = selection.choose(n.candidates, order, ranked, 3)
        new_spec, values = descent.realise(n, chosen, steps.epsilon)
        in_place = model.grow(new_spec, values=values)["in_place"]
        results.append((losses, scores, chosen, n.resizable, in_place))
        traces += 0 if kept else steps.traces
    weights = [w.numpy() for w in model.body.weights]
    return results, weights, rounds.traces if kept else traces


@pytest.mark.parametrize(
    "notation,extra,traces",
    [
        # Grows in place: one trace for the run.
        ("MLP-8-6", {}, 1),
        # Conv widths rebuild: a trace a round and batch size.
        ("Plain3Net-1-1-1", {"widths": (4, 6, 8)}, 6),
    ],
)
def test_kept_rounds_compute_what_rounds_built_anew_compute(notation, extra, traces):
    kept, kept_weights, kept_traces = _grow_three_rounds(notation, extra, kept=True)
    anew, anew_weights, anew_traces = _grow_three_rounds(notation, extra, kept=False)
    # Built anew, each round traces once for the full batches and once for
    # the partial one.
    assert (kept_traces, anew_traces) == (traces, 6)
    resizable = traces == 1
    for (k_loss, k_scores, k_chosen, k_resizable, k_in_place), (
        a_loss,
        a_scores,
        a_chosen,
        _,
        _,
    ) in zip(kept, anew):
        assert (k_resizable, k_in_place) == (resizable, resizable)
        np.testing.assert_allclose(k_loss, a_loss, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(k_scores, a_scores, rtol=1e-4, atol=1e-7)
        assert k_chosen == a_chosen
    for k, a in zip(kept_weights, anew_weights):
        np.testing.assert_allclose(k, a, rtol=1e-5, atol=1e-6)


def test_a_neighbourhood_moves_only_where_it_is_resizable_and_keeps_its_state():
    model = _model("MLP-8-6")
    fixed = descent.WidthNeighbourhood(model.body, model.spec, new_units=1, seed=0)
    candidates = list(fixed.candidates)
    assert not fixed.move_to(model.body, model.spec, new_units=2, seed=1)
    assert fixed.candidates == candidates and fixed.new_units == 1

    n = descent.WidthNeighbourhood(
        model.body, model.spec, new_units=1, seed=0, resizable=True
    )
    # No new units where there were some: another structure, another trace.
    assert not n.move_to(model.body, model.spec, new_units=0, seed=1)
    assert n.new_units == 1
    # A spec the body does not follow is refused, the neighbourhood kept.
    wider = model.spec.with_widths([w + 1 for w in model.spec.widths])
    with pytest.raises(ValueError, match="the body and spec differ"):
        n.move_to(model.body, wider, new_units=2, seed=1)
    assert n.spec == model.spec and n.new_units == 1
    assert n.move_to(model.body, model.spec, new_units=3, seed=1)
    moved = descent.WidthNeighbourhood(model.body, model.spec, new_units=3, seed=1)
    assert n.candidates == moved.candidates
    for key, p in n._params.items():
        expected = moved._params[key]
        np.testing.assert_allclose(p.variable.numpy(), expected.variable.numpy())
        np.testing.assert_allclose(p.bound, expected.bound)
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 28, 28, 1)), tf.float32)
    np.testing.assert_allclose(
        n.logits(x, n.zero_gates()), helpers.infer(model, x), rtol=1e-5, atol=1e-5
    )
