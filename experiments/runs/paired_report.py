"""The paired study's tables, verdict and learning-curve plot."""

import statistics

from experiments.runs import paired
from experiments.runs import plots
from experiments.runs import stats
from experiments.runs.study import mean_std

# Firefly's advantage counts as ruled out when the interval's upper end is
# below this (accuracy points): one seed's standard error on 10,000 test
# images is about 0.3 points (../shared/DESIGN.md section 6).
MEANINGFUL_POINTS = 0.3
# The baseline with exactly Firefly's widths (equal parameters) decides R5;
# the others are reported beside it.
R5_BASELINE = "random_new_counts"


def collect(workdir, seeds, arms=paired.ARMS):
    """`{arm: [result, ...]}` over the seeds whose every arm finished, and
    the list of those seeds (pairs need every arm of a seed)."""
    complete = [
        s for s in seeds if all(paired.read(workdir, s, a) is not None for a in arms)
    ]
    results = {a: [paired.read(workdir, s, a) for s in complete] for a in arms}
    return results, complete


def arm_table(results):
    """Markdown: one row per arm, means and paired differences to Firefly."""
    reference = results[paired.REFERENCE]
    lines = [
        "| arm | found (seed 0) | params | test acc. (%) | test NLL | "
        "acc. − firefly (pts, 95% CI) | NLL − firefly (95% CI) | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, rows in results.items():
        if not rows:
            continue
        if arm == paired.REFERENCE:
            acc_diff = nll_diff = "reference"
        else:
            acc_diff = stats.paired_difference(
                [r["test_accuracy"] for r in rows],
                [r["test_accuracy"] for r in reference],
            ).format(100, 2)
            nll_diff = stats.paired_difference(
                [r["test_nll"] for r in rows], [r["test_nll"] for r in reference]
            ).format(1, 4)
        lines.append(
            f"| {arm} | {rows[0]['found']} | "
            f"{mean_std([r['params'] for r in rows], digits=0)} | "
            f"{mean_std([r['test_accuracy'] for r in rows], 100)} | "
            f"{mean_std([r['test_nll'] for r in rows], digits=4)} | "
            f"{acc_diff} | {nll_diff} | "
            f"{mean_std([r['seconds'] for r in rows], digits=0)} |"
        )
    return "\n".join(lines)


def r5_verdict(results):
    """R5 (Firefly beats random growth at equal parameters): the verdict and
    the interval of Firefly's accuracy minus `R5_BASELINE`'s.

    Reproduced: the interval lies above 0. Not reproduced: it rules out an
    advantage of `MEANINGFUL_POINTS` or more. Otherwise (or with fewer than
    two seeds) inconclusive.
    """
    diff = stats.paired_difference(
        [r["test_accuracy"] for r in results[paired.REFERENCE]],
        [r["test_accuracy"] for r in results[R5_BASELINE]],
    )
    return verdict(diff, MEANINGFUL_POINTS / 100), diff


def verdict(diff, meaningful):
    """'reproduced' if `diff` (an `Interval` of a claimed positive effect)
    lies above 0, 'not reproduced' if it rules out an effect of
    `meaningful` or more, else (or with n < 2) 'inconclusive'."""
    if diff.n < 2:
        return "inconclusive"
    if diff.low > 0:
        return "reproduced"
    if diff.high < meaningful:
        return "not reproduced"
    return "inconclusive"


def selected_mix(results):
    """(splits, new units) Firefly chose, summed over rounds and seeds."""
    rows = results[paired.REFERENCE]
    return (
        sum(sum(r["chosen_split"]) for r in rows),
        sum(sum(r["chosen_new"]) for r in rows),
    )


def against_fixed_nets(results):
    """Markdown lines: Firefly against the full-width net and its found net
    trained from scratch (accuracy, parameters, wall)."""
    ff = results[paired.REFERENCE]
    lines = []
    for arm in paired.SCRATCH:
        rows = results[arm]
        diff = stats.paired_difference(
            [r["test_accuracy"] for r in ff], [r["test_accuracy"] for r in rows]
        )
        params = statistics.fmean(r["params"] for r in ff) / statistics.fmean(
            r["params"] for r in rows
        )
        wall = statistics.fmean(r["seconds"] for r in ff) / statistics.fmean(
            r["seconds"] for r in rows
        )
        lines.append(
            f"- Firefly − {arm}: {diff.format(100, 2)} accuracy points, "
            f"{params:.2f}x the parameters, {wall:.2f}x the wall time."
        )
    return lines


def report(results, seeds, config, command):
    """The Markdown section for docs/results (tables, verdict, command)."""
    r5, decided = r5_verdict(results)
    splits, new = selected_mix(results)
    growth = [r["seconds_growth"] for r in results[paired.REFERENCE]]
    parts = [
        f"Seeds {', '.join(str(s) for s in seeds)} (n = {len(seeds)}); "
        f"{config.initial}, {config.take} training images of "
        f"{config.dataset}, the whole test set; {config.epochs} epochs, "
        f"growth every {config.grow_every} ({config.max_rounds} rounds of "
        f"{int(100 * config.growth_ratio)}%), branched at epoch "
        f"{config.grow_every - 1}.",
        "",
        arm_table(results),
        "",
        f"**R5 (Firefly > random growth at equal parameters): {r5}**: "
        f"Firefly − {R5_BASELINE} (the same widths every round, random new "
        f"units) {decided.format(100, 2)} accuracy points (95% CI; "
        f"'not reproduced' means the interval rules out an advantage of "
        f"{MEANINGFUL_POINTS} points).",
        "",
        *against_fixed_nets(results),
        f"- Firefly chose {splits} splits and {new} new units over all rounds "
        f"and seeds; its rounds took {mean_std(growth, digits=1)} s per run.",
        "",
        f"```sh\n{command}\n```",
    ]
    return "\n".join(parts)


def plot_curves(results, path, title):
    """Mean validation accuracy per epoch of every arm (PNG)."""
    plt = plots.pyplot()
    if plt is None:
        return False
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for arm, rows in results.items():
        if not rows:
            continue
        length = min(len(r["val_accuracy"]) for r in rows)
        mean = [
            100 * statistics.fmean(r["val_accuracy"][e] for r in rows)
            for e in range(length)
        ]
        axes.plot(range(1, length + 1), mean, label=arm)
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"validation accuracy (%), mean of {len(rows)} seeds")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
