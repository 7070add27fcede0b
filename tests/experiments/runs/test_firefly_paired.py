"""The paired study: every arm from one checkpoint, paired intervals."""

import dataclasses
import json
import os
import shutil

import pytest

from experiments.runs import branching
from experiments.runs import branching_report
from experiments.runs import firefly_paired as paired
from experiments.runs import stats


def test_t_intervals_match_the_textbook():
    # mean 2, sd 1, n = 4: 2 +/- 3.182 x 1 / 2.
    interval = stats.interval([1.0, 2.0, 3.0, 2.0 + 0.0])
    sd = stats.statistics.stdev([1.0, 2.0, 3.0, 2.0])
    assert interval.mean == pytest.approx(2.0)
    assert interval.high - interval.mean == pytest.approx(3.182 * sd / 2)
    diff = stats.paired_difference([5.0, 6.0, 7.5], [4.0, 5.0, 6.0])
    assert diff.mean == pytest.approx(7 / 6)
    assert diff.n == 3 and diff.excludes_zero()
    assert stats.t975(100) == 1.96
    with pytest.raises(ValueError, match="equal lengths"):
        stats.paired_difference([1.0], [1.0, 2.0])
    assert diff.format(1, 1) == "+1.2 [+0.4, +1.9]"  # 7/6 +/- 4.303 x 0.289 / 1.732
    # One seed has no interval, and says so instead of printing [x, x].
    assert stats.interval([0.5]).format(100, 1) == "+50.0 (n = 1, no interval)"


def test_t_quantiles_at_other_levels_for_multiplicity_corrections():
    for df in (1, 4, 10, 30):
        assert stats.t_quantile(0.975, df) == pytest.approx(stats.t975(df), abs=1e-3)
    assert stats.t_quantile(0.99, 4) == pytest.approx(3.747, abs=1e-3)  # table
    assert stats.t_quantile(1 - 0.05 / 8, 4) == pytest.approx(4.315, abs=2e-3)
    values = [1.0, 2.0, 3.0, 2.0]
    wide = stats.interval(values, level=1 - 0.05 / 4)
    narrow = stats.interval(values)
    assert wide.mean == narrow.mean and wide.low < narrow.low < narrow.high < wide.high
    with pytest.raises(ValueError, match="probability"):
        stats.t_quantile(0.4, 3)


@pytest.mark.parametrize(
    "values,expected",
    [
        ([0.010, 0.012, 0.008], "reproduced"),
        ([0.0005, -0.0005, 0.0002, -0.0002], "not reproduced"),
        ([0.02, -0.01, 0.015], "inconclusive"),
        ([0.05], "inconclusive"),  # one seed decides nothing
    ],
)
def test_verdicts(values, expected):
    assert branching_report.verdict(stats.interval(values), 0.003) == expected


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("paired"))
    config = dataclasses.replace(
        paired.PRESETS["mlp"],
        dataset="fashion_mnist_sample",
        take=256,
        batch_size=64,
        initial="MLP-6-4",
        full_width="MLP-16-16",
        epochs=3,
        grow_every=2,
        max_rounds=1,
        delta_steps=2,
        score_batches=1,
    )
    arms = paired.ARMS + ("firefly_authors_periods",)
    for seed in (0,):
        paired.run_seed(
            dataclasses.replace(config, seed=seed), workdir, arms, log=lambda _: None
        )
    return workdir, config, arms


def test_every_arm_branches_from_the_same_checkpoint(study):
    workdir, config, arms = study
    for seed in (0,):
        seed_result = branching.read(workdir, seed, "seed")
        assert len(seed_result["val_accuracy"]) == config.grow_every - 1
        results = {a: branching.read(workdir, seed, a) for a in arms}
        for arm in paired.BRANCHES:
            # The shared epochs are the seed run's, in every branch.
            assert results[arm]["val_accuracy"][:1] == seed_result["val_accuracy"]
            assert len(results[arm]["val_accuracy"]) == config.epochs
        firefly = results["firefly"]
        assert results["random_new_counts"]["widths"] == firefly["widths"]
        assert results["random_new_counts"]["round_counts"] == firefly["round_counts"]
        assert results["no_growth"]["widths"] == [6, 4]
        assert sum(firefly["widths"]) == 10 + 3  # one round, eta = 3
        assert sum(results["random_split"]["widths"]) == 13
        assert results["found_net_scratch"]["found"] == firefly["found"]
        assert results["full_width_scratch"]["widths"] == [16, 16]
        assert 0 < firefly["test_nll"] < 5 and 0 < firefly["test_accuracy"] <= 1


def test_a_finished_arm_is_not_run_again_and_the_report_has_the_verdict(study):
    workdir, config, arms = study
    path = os.path.join(workdir, "seed0", "firefly.json")
    stamp = os.stat(path).st_mtime_ns
    paired.run_seed(
        dataclasses.replace(config, seed=0), workdir, arms, log=lambda _: None
    )
    assert os.stat(path).st_mtime_ns == stamp
    results, seeds = branching_report.collect(workdir, (0, 1), arms)
    assert seeds == [0]  # seed 1 never ran
    text = paired.report(results, seeds, config, "python -m ...")
    assert "**R5 (Firefly > random growth at equal parameters):" in text
    assert "| firefly_authors_periods |" in text
    assert text.count("\n| ") == len(arms) + 1  # header + one row per arm
    assert "- Reaching the full-width net's final validation accuracy" in text


def test_extra_arms_on_fewer_seeds_get_their_own_table(study, tmp_path):
    workdir, config, arms = study
    copy = str(tmp_path / "paired")
    shutil.copytree(workdir, copy)
    # Seed 1 ran the arms but not the extra (as later seeds of a study may).
    shutil.copytree(os.path.join(copy, "seed0"), os.path.join(copy, "seed1"))
    os.remove(os.path.join(copy, "seed1", "firefly_authors_periods.json"))
    extra = ["firefly_authors_periods"]
    results, seeds, extras = paired.collect(copy, (0, 1), extra)
    assert seeds == [0, 1] and set(results) == set(paired.ARMS)
    assert extras[1] == [0] and set(extras[0]) == {"firefly", *extra}
    text = paired.report(results, seeds, config, "python -m ...", extras)
    assert text.startswith("Seeds 0, 1 (n = 2)")
    assert "on the seeds that ran them (0; n = 1)" in text
    assert text.count("| firefly_authors_periods |") == 1
    assert text.count("\n| firefly |") == 2  # in each table
    branching_report.write(copy, text, results, "t", extras=extras[0])
    with open(os.path.join(copy, "report.json")) as handle:
        written = json.load(handle)
    assert len(written["firefly"]) == 2  # over the arms' seeds, not the extras'
    assert len(written["firefly_authors_periods"]) == 1
    # Every seed ran every extra: one table, as before.
    results, seeds, extras = paired.collect(workdir, (0,), extra)
    assert extras is None and set(results) == set(arms)


def test_reach_counts_epochs_and_prorated_seconds():
    rows = [
        {"val_accuracy": [0.5, 0.7, 0.8, 0.82], "seconds": 40.0},
        {"val_accuracy": [0.5, 0.6], "seconds": 10.0},
    ]
    assert paired.reach(rows, [0.795, 0.795]) == [(3, 30.0), None]
    results = {
        arm: [{"val_accuracy": [0.7, 0.906], "seconds": 20.0, "params": 100}]
        for arm in ("firefly", "random_new_counts", "found_net_scratch")
    }
    results["full_width_scratch"] = [
        {"val_accuracy": [0.8, 0.91], "seconds": 30.0, "params": 400}
    ]
    lines = paired.reaching_full_width(results)
    assert (
        lines[1]
        == "  firefly: 1 of 1 seeds, after 2.0 epochs and 20 s on average (100 params)."
    )
    assert lines[-1].startswith("  full_width_scratch: 1 of 1 seeds, after 2.0 epochs")
