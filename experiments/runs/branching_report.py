"""Reports of paired studies: arms against a reference with paired 95%
intervals, verdicts, learning curves; Firefly's R5."""

import os
import statistics

from experiments.runs import branching
from experiments.runs import plots
from experiments.runs import stats
from experiments.runs import workdir as workdir_lib
from experiments.runs.study import mean_std

# An effect counts as ruled out when its interval's upper end is below this
# (accuracy points): one seed's standard error on 10,000 test images is
# about 0.3 points (../shared/DESIGN.md section 6).
MEANINGFUL_POINTS = 0.3


def collect(workdir, seeds, arms):
    """`{arm: [result, ...]}` over the seeds whose every arm finished, and
    the list of those seeds (pairs need every arm of a seed)."""
    found = {s: {a: branching.read(workdir, s, a) for a in arms} for s in seeds}
    complete = [s for s in seeds if None not in found[s].values()]
    results = {a: [found[s][a] for s in complete] for a in arms}
    return results, complete


def arm_table(results, reference_arm):
    """Markdown: one row per arm, means and paired differences to the
    reference arm's."""
    reference = results[reference_arm]
    lines = [
        "| arm | found (first seed) | params | test acc. (%) | test NLL | "
        f"acc. − {reference_arm} (pts, 95% CI) | NLL − {reference_arm} (95% CI) "
        "| wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, rows in results.items():
        if not rows:
            continue
        if arm == reference_arm:
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


def plot_curves(results, path, title):
    """Mean validation accuracy per epoch of every arm (PNG)."""
    plt = plots.pyplot()
    if plt is None:
        return False
    figure, axes = plt.subplots(figsize=(7, 4.5))
    # Ten colours, then the same ten dashed: no two arms look alike.
    styles = ("-", "--", ":")
    drawn = 0
    for arm, rows in results.items():
        if not rows:
            continue
        style = dict(color=f"C{drawn % 10}", linestyle=styles[drawn // 10 % 3])
        drawn += 1
        length = min(len(r["val_accuracy"]) for r in rows)
        mean = [
            100 * statistics.fmean(r["val_accuracy"][e] for r in rows)
            for e in range(length)
        ]
        axes.plot(range(1, length + 1), mean, label=arm, **style)
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"validation accuracy (%), mean of {len(rows)} seeds")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write(workdir, text, results, title, extras=None):
    """Writes report.md, report.json (every arm's results, and `extras`'
    arms run on other seeds) and curves.png (`results`' arms) into
    `workdir`, and prints the report."""
    workdir_lib.write_text(os.path.join(workdir, "report.md"), text + "\n")
    every = {**(extras or {}), **results}
    workdir_lib.write_json(os.path.join(workdir, "report.json"), every)
    plot_curves(results, os.path.join(workdir, "curves.png"), title)
    print(text)


def command(binary, argv):
    """The command line that reruns a study (without `--report_only`)."""
    kept = [a for a in argv if not a.startswith("--report_only")]
    return f"python -m {binary} " + " ".join(kept)
