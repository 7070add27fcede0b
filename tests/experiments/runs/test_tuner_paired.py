"""The KerasTuner comparison: Hyperband over AutoGrow's depths within a
wall budget, and its report paired by seed."""

import json

import keras
import pytest

import keras_grow as kg
from experiments.runs import tuner_paired as paired

pytest.importorskip("keras_tuner")


def _row(seed, accuracy, seconds, found="Basic3ResNet(4,8,16)-2-2-2", **extra):
    return {
        "seed": seed,
        "test_accuracy": accuracy,
        "test_nll": 0.4 - accuracy / 10,
        "seconds": seconds,
        "params": 1000,
        "found": found,
        **extra,
    }


def test_the_budget_is_the_growth_arms_wall_time_on_the_seed(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"gaussian": [_row(0, 0.8, 597.5), _row(1, 0.8, 610)]}))
    config = paired.resolve("fmnist_tiny", seed=1)
    assert paired.budget_for(config, str(path), "gaussian") == 610.0
    assert paired.budget_for(config, None, "gaussian") == config.budget_seconds
    with pytest.raises(ValueError, match="no 'gaussian' result for seed 7"):
        paired.budget_for(paired.resolve("fmnist_tiny", seed=7), str(path), "gaussian")


def test_the_report_pairs_hyperband_with_the_growth_arm_by_seed():
    tuned = [_row(s, a, 100, trials=5 + s) for s, a in enumerate((0.86, 0.87, 0.88))]
    grown = [_row(s, a, 100) for s, a in enumerate((0.85, 0.86, 0.86))]
    text = paired.report(tuned, grown)
    assert "| hyperband | 2-2-2, 2-2-2, 2-2-2 |" in text
    assert "Hyperband − gaussian: +1.33 [" in text
    assert "1.00x gaussian's (its budget); trials per seed: 5, 6, 7." in text
    with pytest.raises(ValueError, match="the seeds differ"):
        paired.report(tuned, grown[::-1])


def test_a_search_without_budget_is_refused_and_one_with_it_finds_depths(tmp_path):
    config = paired.resolve(
        "fmnist_tiny", take=128, tuner_max_epochs=1, max_depths=(2, 1, 1)
    )
    with pytest.raises(ValueError, match="No Hyperband trial finished within 0 s"):
        paired.search(config, 0.0, str(tmp_path / "none"))
    lines = []
    paired.run_seed(config, str(tmp_path), log=lines.append)
    (line,) = lines
    assert line.startswith("seed 0 hyperband: Basic3ResNet(2,4,4)-")
    row = json.loads((tmp_path / "seed0" / "hyperband.json").read_text())
    assert row["searched"] == row["depths"]
    assert row["depths"][1:] == [1, 1] and row["depths"][0] in (1, 2)
    assert row["trials"] == 2  # the whole space: depth 1 or 2 in stage 1
    assert row["budget_seconds"] == config.budget_seconds
    paired.run_seed(config, str(tmp_path), log=pytest.fail)  # done: not rerun


def test_the_width_space_spans_the_initial_widths_to_the_caps():
    config = paired.resolve("fmnist_mlp_width")
    assert paired.space(config) == {"width0": (8, 64, 8), "width1": (8, 64, 8)}
    spec = paired.spec_for(config, {"width0": 24, "width1": 40})
    assert spec.notation == "MLP-24-40"
    depth = paired.resolve("fmnist_depth")
    assert paired.space(depth) == {f"depth{s}": (1, 4, 1) for s in range(3)}
    assert paired.spec_for(depth, {"depth0": 1, "depth1": 3, "depth2": 2}).depths == (
        1,
        3,
        2,
    )
    with pytest.raises(ValueError, match="one per width entry of MLP-8-8"):
        paired.space(paired.resolve("fmnist_mlp_width", max_widths=(64,)))
    with pytest.raises(ValueError, match="`search` must be one of"):
        paired.space(paired.resolve("fmnist_mlp_width", search="both"))


# Nightly: the search itself runs fast in the test above.
@pytest.mark.nightly
def test_every_trial_trains_its_brackets_epochs_continuing_the_one_before(
    tmp_path, monkeypatch
):
    # Hyperband's brackets: trials of 1 epoch, the best continued to 4,
    # every trial on one step schedule over those 4 epochs.
    fits, schedules = [], []
    fit = kg.GrowableModel.fit

    def recorded(model, *args, **kwargs):
        fits.append((kwargs.get("initial_epoch", 0), kwargs.get("epochs", 1)))
        schedules.extend(
            c
            for c in kwargs.get("callbacks", [])
            if isinstance(c, keras.callbacks.LearningRateScheduler)
        )
        return fit(model, *args, **kwargs)

    monkeypatch.setattr(kg.GrowableModel, "fit", recorded)
    config = paired.resolve(
        "fmnist_tiny",
        take=128,
        tuner_max_epochs=4,
        tuner_factor=4,
        max_depths=(2, 2, 1),
        tuner_step_schedule=True,
    )
    model, searched, epochs, trials, _ = paired.search(config, 3600.0, str(tmp_path))
    assert len(fits) == trials
    assert (0, 1) in fits and (1, 4) in fits  # a 1-epoch trial continued to 4
    assert max(e for _, e in fits) == 4
    assert epochs in (1, 4) and model.spec.depths == tuple(searched)
    assert len(schedules) == trials
    rates = [schedules[0].schedule(e, None) for e in range(4)]
    assert rates == pytest.approx([0.05, 0.05, 0.005, 0.0005])
