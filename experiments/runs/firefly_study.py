"""The Firefly reproduction study: methods, ablations, the integral, cost.

Each run is an `experiments.firefly` command (shown in the report), run as
a subprocess by `experiments.runs.study.execute`, so every row can be rerun
alone; finished runs are skipped, so the study resumes.
"""

import os
import statistics

from experiments.runs import firefly
from experiments.runs import study
from experiments.runs.study import StudyRun

PRESET = "fmnist_small"
REFERENCE = "VGG11-16"


def _run(table, row, seed, *flags):
    return StudyRun(
        table, row, seed, (f"--preset={PRESET}", *flags), binary="experiments.firefly"
    )


# The preset's short Firefly settings (30 steps, 4 batches) against 5x and
# 4x longer ones: does the cheap round select as well? (docs/benchmarks.md)
LONG_DELTA_STEPS = 150
LONG_SCORE_BATCHES = 16
LONG_SETTINGS = (
    f"long: delta_steps={LONG_DELTA_STEPS}, score_batches={LONG_SCORE_BATCHES}"
)


def grid(seeds=(0, 1, 2)):
    """Every run: 3 methods, the full net from scratch, 2 ablations, n = 1,
    longer step-one and scoring settings."""
    runs = []
    for seed in seeds:
        for method in ("firefly", "random_split", "random_new"):
            runs.append(_run("methods", method, seed, f"--method={method}"))
        runs.append(
            _run(
                "methods",
                f"{REFERENCE} from scratch",
                seed,
                f"--initial={REFERENCE}",
                "--max_rounds=0",
            )
        )
        runs.append(_run("ablation", "split only", seed, "--new_units=false"))
        runs.append(_run("ablation", "new units only", seed, "--split=false"))
        runs.append(_run("integral", "n=1 (endpoint)", seed, "--score_samples=1"))
        runs.append(
            _run(
                "settings",
                LONG_SETTINGS,
                seed,
                f"--delta_steps={LONG_DELTA_STEPS}",
                f"--score_batches={LONG_SCORE_BATCHES}",
            )
        )
    return runs


def _mean_std(values, scale=1.0, digits=1):
    return study.mean_std(values, scale, digits)


def rows_with_shared(rows):
    """Adds the main Firefly runs as the 'both' and 'n=4' rows."""
    main = rows.get(("methods", "firefly"))
    if main is None:
        return rows
    rows = dict(rows)
    rows[("ablation", "split + new units (firefly)")] = main
    rows[("integral", "n=4 (firefly)")] = main
    preset = firefly.PRESETS[PRESET]
    short = (
        f"short: delta_steps={preset.delta_steps}, "
        f"score_batches={preset.score_batches} (firefly)"
    )
    rows[("settings", short)] = main
    return rows


def markdown_table(rows, table):
    lines = [
        "| row | seeds | params (final) | val. acc. per round (%) | test acc. (%) | "
        "growth / round (s) | epoch (s) | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, row), entry in sorted(rows.items()):
        if name != table:
            continue
        results = entry["results"]
        count = min(len(r["points"]) for r in results)
        per_round = " / ".join(
            _mean_std([r["points"][i]["val_accuracy"] for r in results], 100)
            for i in range(count)
        )
        growth = [s for r in results for s in r["round_seconds"]]
        # Steady-state epochs: not the first, not one right after a round
        # (it pays the retrace; a point's 1-based epoch is that index).
        epochs = []
        for r in results:
            after = {p["epoch"] for p in r["points"]}
            epochs += [
                s for i, s in enumerate(r["epoch_seconds"]) if i > 0 and i not in after
            ]
        lines.append(
            f"| {row} | {', '.join(str(r['seed']) for r in results)} | "
            f"{_mean_std([r['params'] for r in results], digits=0)} | {per_round} | "
            f"{_mean_std([r['test_accuracy'] for r in results], 100)} | "
            f"{_mean_std(growth) if growth else '-'} | {_mean_std(epochs, digits=2)} | "
            f"{_mean_std([r['wall_seconds'] for r in results], digits=0)} |"
        )
    return "\n".join(lines)


TABLES = ("methods", "ablation", "integral", "settings")


def report(rows, workdir):
    """Markdown tables with commands; writes firefly_study.png."""
    from experiments.runs import plots

    rows = rows_with_shared(rows)
    parts = []
    for table in TABLES:
        parts.append(f"## {table}\n\n{markdown_table(rows, table)}\n")
        parts.append(f"```sh\n{study.commands(rows, table, workdir)}\n```\n")
    series, reference = {}, {}
    for (table, row), entry in rows.items():
        if table == "ablation" and "firefly" in row:
            continue
        if table in ("integral", "settings") and "firefly" in row:
            continue
        results = entry["results"]
        if "from scratch" in row:
            accuracy = [r["points"][-1]["val_accuracy"] for r in results]
            reference[row] = (
                statistics.mean(r["params"] for r in results),
                statistics.mean(accuracy),
                statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0,
            )
        else:
            series[row] = [r["points"] for r in results]
    plots.plot_firefly(
        series,
        os.path.join(workdir, "firefly_study.png"),
        title=f"{PRESET}: accuracy against parameters, round by round",
        reference=reference,
    )
    return "\n".join(parts)
