"""The retrace a growth causes is timed, logged and said (issue 15, item 16)."""

import numpy as np
import pytest

import keras_grow as kg
from keras_grow.callbacks.retrace_report import RetraceReport
from tests.conftest import compile_sgd


def _mlp():
    return compile_sgd(kg.GrowableModel(kg.specs.parse("MLP-6", (8,), 3)))


def _data(n=64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 8)).astype("float32"), rng.integers(0, 3, n)


@pytest.mark.slow
def test_growth_inside_fit_logs_and_prints_its_retrace(capsys):
    model = _mlp()
    x, y = _data()
    # A layer more: a growth in place (a width's) retraces nothing.
    grow = kg.callbacks.ScheduledGrowth({1: model.spec.with_widths((6, 6))})
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=3,
        validation_data=(x, y),
        callbacks=[grow],
        verbose=0,
    )
    event = model.last_change
    assert event == model.growth_log[-1]
    assert event["kind"] == "grow" and event["to"] == "MLP-6-6"
    timing = event["timing"]
    assert timing["retrace_train"] > 0 and timing["retrace_test"] > 0
    out = capsys.readouterr().out.splitlines()
    said = [line for line in out if "retraced" in line]
    # Grown at the start of epoch 2 (index 1); said once, at its end.
    assert said == [
        f"Epoch 2: retraced the train and test steps for MLP-6-6: "
        f"{timing['retrace_train']:.2f}s + {timing['retrace_test']:.2f}s "
        "(train step traced 2 times so far)"
    ]
    # Traced at the first step, and once more after the growth.
    assert (timing["traces_train"], timing["traces_test"]) == (2, 2)
    assert model.trace_counts == {"train": 2, "test": 2}


@pytest.mark.slow
def test_first_trace_is_not_a_growth_and_a_rollback_retraces_only_what_was_not():
    model = _mlp()
    x, y = _data()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert model.last_change is None and model.growth_log == []
    model.grow(model.spec.with_widths((8,)))
    model.rollback("a test")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    log = model.growth_log
    assert [e["kind"] for e in log] == ["grow", "rollback"]
    assert "retrace_train" not in log[0]["timing"]  # never trained grown
    # The rollback put back the train step traced before the growth...
    assert "retrace_train" not in log[1].get("timing", {})
    # ...but the test step had never been traced: its first call is timed.
    model.evaluate(x, y, verbose=0)
    assert model.last_change["timing"]["retrace_test"] > 0
    # One trace of each: the rollback's train step is the first one again.
    assert model.trace_counts == {"train": 1, "test": 1}
    # After its first call the timing wrapper is gone: the steps that
    # follow call Keras' own functions.
    assert model.train_function.__name__ != "timed"
    assert model.test_function.__name__ != "timed"


def test_report_says_each_growth_of_its_callback_once():
    report = RetraceReport("Firefly")
    timed = {"retrace_train": 2.0}
    mine = {"kind": "grow", "index": 3, "callback": "Firefly", "to": "MLP-9"}
    assert report.line(None, 0) is None
    assert report.line(dict(mine, timing={}), 0) is None  # not trained yet
    assert report.line(dict(mine, callback="AutoGrow", timing=timed), 0) is None
    assert report.line(dict(mine, kind="rollback", timing=timed), 0) is None
    line = report.line(dict(mine, timing=timed), 4)
    assert line == "Epoch 5: retraced the train step for MLP-9: 2.00s"
    assert report.line(dict(mine, timing=timed), 5) is None
