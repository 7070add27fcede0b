"""The progressive study: its arms (budgets, schedules, the growth), its
costs (MACs counted by hand), time-to-reach and the verdict."""

import keras
import numpy as np
import pytest

import keras_grow as kg
from experiments.runs import branching
from experiments.runs import branching_report
from experiments.runs import progressive_paired as paired
from experiments.runs import training


def test_forward_macs_are_counted_layer_by_layer():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 64 * 9 * 3 * 4
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 16 * 9 * 4
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5)(x)  # 64 * 5
    body = keras.Model(inputs, outputs)
    assert paired.forward_macs(body) == 64 * 9 * 3 * 4 + 16 * 9 * 4 + 64 * 5


def _row(val, seconds, flops, accuracy=0.5):
    return {
        "val_accuracy": val,
        "epoch_seconds": seconds,
        "epoch_flops": flops,
        "test_accuracy": accuracy,
        "test_nll": 1.0,
        "found": "MLP-8",
        "params": 1,
        "seconds": sum(seconds),
    }


def test_time_to_reach_sums_the_epochs_until_the_first_that_reaches():
    row = _row([0.5, 0.7, 0.69, 0.8], [1, 2, 3, 4], [10, 20, 30, 40])
    assert paired.time_to_reach(row, 0.7) == (3, 30)
    assert paired.time_to_reach(row, 0.9) is None


def _results(progressive_seconds, accuracy_gap=0.0, seeds=3):
    target = [
        _row([0.6, 0.7, 0.8], [10, 10, 10], [5, 5, 5], 0.8 + 0.01 * s)
        for s in range(seeds)
    ]
    progressive = [
        _row([0.5, 0.8, 0.8], [t / 2, t / 2, t], [2, 2, 5], r["test_accuracy"] - gap)
        for t, r, gap in zip(progressive_seconds, target, [accuracy_gap] * seeds)
    ]
    return {"target": target, "progressive": progressive}


@pytest.mark.parametrize(
    "seconds, gap, head",
    [
        ([10, 11, 9], 0.0, "Pays"),
        ([25, 24, 26], 0.0, "Sooner, but short of the goal"),
        ([10, 11, 9], 0.01, "Sooner, but short of the goal"),
        ([60, 10, 70], 0.0, "Not shown to pay: no sooner"),
    ],
)
def test_the_verdict_follows_the_ratio_and_the_final_accuracy(seconds, gap, head):
    results = _results(seconds, gap)
    table, ratios = paired.reach_table(results)
    assert "| progressive | 3 of 3 |" in table
    assert paired.verdict(ratios, results).startswith(head)


def test_seeds_that_never_reach_the_accuracy_count_against_it():
    results = _results([10, 11, 9])
    results["progressive"][2]["val_accuracy"] = [0.5, 0.6, 0.7]
    table, ratios = paired.reach_table(results)
    assert "| progressive | 2 of 3 |" in table
    assert paired.verdict(ratios, results).startswith(
        "Not shown to pay: it reached the target's accuracy in 2 of 3 seeds only"
    )


@pytest.mark.parametrize(
    # Nightly with cosine: the runner is the same, wsd runs fast.
    "schedule",
    [pytest.param("cosine", marks=pytest.mark.nightly), "wsd"],
)
def test_arms_run_once_with_their_budgets_and_the_report_reads_them(tmp_path, schedule):
    config = paired.resolve(
        "fmnist_tiny", take=128, epochs=3, seed=0, schedule=schedule, rewarmup_steps=1
    )
    workdir = str(tmp_path)
    paired.run_seed(config, workdir, log=lambda line: None)
    rows = {arm: branching.read(workdir, 0, arm) for arm in paired.ARMS}
    assert [rows[a]["epochs"] for a in paired.ARMS] == [3, 2, 2, 3, 3, 3]
    assert rows["progressive_fresh"]["found"] == "MLP-32-32"
    assert rows["progressive"]["found"] == rows["target"]["found"] == "MLP-32-32"
    assert rows["start"]["found"] == "MLP-8"
    flops = rows["progressive"]["epoch_flops"]
    assert flops[0] < flops[-1] == rows["target"]["epoch_flops"][-1]
    assert all(np.isfinite(rows["progressive"]["val_accuracy"]))
    # A finished arm is not run again.
    paired.run_seed(config, workdir, log=lambda line: pytest.fail(line))
    results, complete = branching_report.collect(workdir, [0], paired.ARMS)
    text = paired.report(results, complete, config, "python -m ...")
    assert "# Progressive training: MLP-8 -> MLP-32-32" in text
    assert "## Verdict" in text and "| target_0.5 |" in text
    assert ("(WSD), re-warmed over 1 step after" in text) == (schedule == "wsd")


def test_arms_are_checked_and_always_include_the_target():
    assert paired.check_arms(["start", "progressive"]) == (
        "target",
        "progressive",
        "start",
    )
    assert paired.check_arms(paired.ARMS) == paired.ARMS
    with pytest.raises(ValueError, match=r"Unknown arms \['fast'\]"):
        paired.check_arms(["target", "fast"])


def test_attention_macs_count_projections_scores_and_the_weighted_sum():
    inputs = keras.Input((16, 8))
    x = keras.layers.MultiHeadAttention(2, 4)(inputs, inputs)
    outputs = keras.layers.Dense(3)(x)  # 16 * 8 * 3
    body = keras.Model(inputs, outputs)
    projections = 4 * 16 * 8 * 2 * 4  # query, key, value, output
    scores_and_sum = 2 * 16 * 16 * 2 * 4
    assert paired.forward_macs(body) == projections + scores_and_sum + 16 * 8 * 3


def test_the_vit_task_starts_at_its_scaled_size_and_grows_back_to_the_target():
    config = paired.resolve("fmnist_vit")
    start, target = paired.specs_of(config)
    assert (start.depths, start.widths) == ((2,), (32, 4, 64, 4, 64))
    assert target.depths == (4,) and target.widths[:3] == (64, 8, 128)
    assert kg.specs.progression.stages(start, target, 2.0)[-1] == target
    with pytest.raises(ValueError, match="does not scale back"):
        paired.specs_of(paired.resolve("fmnist_vit", target="ViT-64-8-3"))
    with pytest.raises(ValueError, match="ViT-<width>-<heads>-<layers>"):
        paired.specs_of(paired.resolve("fmnist_vit", target="ViT-64"))


def test_the_vit_arms_train_with_adamw_and_grow_by_stacking(tmp_path):
    config = paired.resolve("fmnist_tiny_vit", take=128, epochs=3, seed=0)
    arms = ("target", "progressive")
    paired.run_seed(config, str(tmp_path), arms, log=lambda line: None)
    rows = {arm: branching.read(str(tmp_path), 0, arm) for arm in arms}
    assert rows["progressive"]["found"] == rows["target"]["found"]
    assert rows["progressive"]["depths"] == [2]
    flops = rows["progressive"]["epoch_flops"]
    assert flops[0] < flops[-1] == rows["target"]["epoch_flops"][-1]
    optimizer = training.make_optimizer(config)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.weight_decay == config.weight_decay


def test_a_wsd_arm_holds_its_rate_then_decays_and_rewarms_after_growths():
    config = paired.resolve("fmnist_tiny", schedule="wsd", rewarmup_steps=4)
    schedule = paired.learning_rate_schedule(config, 100, growth_steps=(40,))
    rates = [float(schedule(step)) for step in (0, 39, 40, 43, 44, 79, 90, 100)]
    peak = config.learning_rate
    assert rates[:2] == pytest.approx([peak, peak])
    # Re-warmed over 4 steps from the growth's step, then the plateau.
    assert rates[2:5] == pytest.approx([peak / 4, peak, peak])
    # The last fifth (steps 80-100) falls linearly to 0.
    assert rates[5:] == pytest.approx([peak, peak / 2, 0.0], abs=1e-6)
    cosine = paired.learning_rate_schedule(paired.resolve("fmnist_tiny"), 100)
    assert float(cosine(50)) == pytest.approx(peak / 2)
    with pytest.raises(ValueError, match="schedule"):
        paired.learning_rate_schedule(paired.resolve("fmnist_tiny", schedule="x"), 9)
