"""AutoGrow's concepts alone: running best, stopping, policy, round robin,
fine-tune schedule, state."""

import json
import math

import pytest

from keras_grow.callbacks import autogrow_rules as rules


def test_running_best_gain_over_a_window_in_both_directions():
    accuracy = rules.RunningBest("val_accuracy")
    values = [0.5, None, 0.7, 0.6, 0.72]
    assert accuracy.maximize
    assert accuracy.improvement(values, 2) == pytest.approx((0.02, 0.72, 0.7))
    assert accuracy.improvement(values, 5) == (math.inf, 0.72, None)
    assert accuracy.improvement([None, None], 1) == (None, None, None)
    loss = rules.RunningBest("val_loss")
    assert not loss.maximize
    assert loss.improvement([1.0, 0.8, 0.9, 0.79], 2) == pytest.approx(
        (0.01, 0.79, 0.8)
    )
    assert rules.RunningBest("val_loss", "max").maximize
    with pytest.raises(ValueError, match="`mode` must be one of"):
        rules.RunningBest("val_loss", "up")


def test_missing_metric_is_none_with_a_warning_naming_the_keys(caplog):
    assert rules.RunningBest("val_accuracy").read({"loss": 1.0}) is None
    assert "Available keys: loss" in caplog.text


def test_stopping_rule_stops_below_tau_and_says_why():
    rule = rules.StoppingRule(patience=2, min_delta=0.01)
    best = rules.RunningBest("val_accuracy")
    stop, why = rule.decide(best, [0.5, 0.75, 0.751, 0.752])
    assert stop and why["best_now"] == 0.752 and why["best_then"] == 0.75
    assert json.loads(json.dumps(why)) == why
    stop, why = rule.decide(best, [0.5, 0.75])
    assert not stop and why["improvement"] is None  # window not seen yet
    assert not rule.decide(best, [0.5, 0.6, 0.7])[0]


def test_growth_policies_choose_their_boundaries():
    best = rules.RunningBest("val_accuracy")
    periodic = rules.GrowthPolicy("periodic", 3)
    assert [periodic.at_boundary(k, best, []) for k in (1, 2, 3)] == [
        False,
        False,
        True,
    ]
    convergent = rules.GrowthPolicy(
        "convergent", 2, convergence_patience=2, min_delta=0.01
    )
    rising, flat = [0.1, 0.3, 0.5], [0.5, 0.5, 0.505]
    assert not convergent.at_boundary(2, best, rising)
    assert convergent.at_boundary(2, best, flat)
    assert not convergent.at_boundary(1, best, flat)  # K epochs first


def test_round_robin_wraps_over_the_growing_stages():
    assert rules.next_stage([0, 1, 2], 1) == 1
    assert rules.next_stage([0, 2], 1) == 2
    assert rules.next_stage([0, 2], 3) == 0


def test_fine_tune_schedule_drops_at_its_boundaries():
    schedule = rules.FineTuneSchedule(epochs=4, lr=None)
    factors = [schedule.multiplier(e, 10) for e in range(10, 14)]
    assert factors == pytest.approx([1, 1, 0.1, 0.01])
    with pytest.raises(ValueError, match="increasing fractions"):
        rules.FineTuneSchedule(4, boundaries=(0.8, 0.2))
    with pytest.raises(ValueError, match="`fine_tune_lr` must be > 0"):
        rules.FineTuneSchedule(4, lr=0.0)


def test_state_round_trips_through_json_and_refuses_strangers():
    state = rules.AutoGrowState.fresh(3)
    state.values.append(0.5)
    again = rules.AutoGrowState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state and again.values is not state.values
    with pytest.raises(ValueError, match="Not an AutoGrow state"):
        rules.AutoGrowState.from_dict({"phase": "growing"})
