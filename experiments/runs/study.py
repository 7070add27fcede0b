"""The AutoGrow reproduction study: the grid of runs, and its report.

Each run is the `experiments.autogrow` (or `experiments.baseline`) command
shown in the report, run as a subprocess, so every row can be rerun alone.
A run whose `result.json` exists is not run again: the study resumes.
"""

import dataclasses
import json
import os
import statistics
import subprocess
import sys

from experiments.runs import autogrow as autogrow_runs
from experiments.runs import workdir as workdir_lib

PRESET = "fmnist_repro"


@dataclasses.dataclass(frozen=True)
class StudyRun:
    """One run of the study: which table and row it belongs to."""

    table: str
    row: str
    seed: int
    flags: tuple  # ("--initializer=zero", ...)
    binary: str = "experiments.autogrow"
    same_as: str | None = None  # another run's name: reported, not rerun

    @property
    def name(self):
        if self.same_as:
            return self.same_as
        slug = self.row.replace(" ", "_").replace("=", "").replace(",", "")
        return f"{self.table}-{slug}-seed{self.seed}"

    def command(self, workdir):
        preset = [f"--preset={PRESET}"] if self.binary == "experiments.autogrow" else []
        return [
            "python",
            "-m",
            self.binary,
            *preset,
            *self.flags,
            f"--seed={self.seed}",
            f"--workdir={os.path.join(workdir, self.name)}",
        ]


def grid(seeds=(0, 1, 2), few_seeds=(0, 1)):
    """The runs of tables 1-3 (table 4 needs table 1's found nets)."""
    base = autogrow_runs.PRESETS[PRESET]
    runs = []
    for initializer in ("zero", "adam", "uniform", "gaussian"):
        for seed in seeds:
            runs.append(
                StudyRun(
                    "initializers", initializer, seed, (f"--initializer={initializer}",)
                )
            )
    reference = {seed: f"initializers-gaussian-seed{seed}" for seed in few_seeds}
    for seed in few_seeds:
        runs.append(
            StudyRun(
                "growth_period",
                "K=1",
                seed,
                ("--initializer=gaussian",),
                same_as=reference[seed],
            )
        )
    for label, flags in (
        ("K=2", ("--growth_period=2",)),
        ("K=3", ("--growth_period=3",)),
        (
            "convergent",
            ("--policy=convergent", "--growth_period=2", "--convergence_patience=2"),
        ),
    ):
        for seed in few_seeds:
            runs.append(StudyRun("growth_period", label, seed, flags))
    # Mini-batches between growths and in the stopping window stay constant:
    # half the data, twice the epochs.
    for seed in few_seeds:
        runs.append(
            StudyRun(
                "subsampling",
                f"take={base.take}",
                seed,
                ("--initializer=gaussian",),
                same_as=reference[seed],
            )
        )
    for take, factor in ((1000, 2), (500, 4)):
        flags = (
            f"--take={take}",
            f"--growth_period={base.growth_period * factor}",
            f"--patience={base.patience * factor}",
            f"--fine_tune_epochs={base.fine_tune_epochs * factor}",
            f"--max_epochs={base.max_epochs * factor}",
        )
        for seed in few_seeds:
            runs.append(StudyRun("subsampling", f"take={take}", seed, flags))
    return runs


def baseline_runs(workdir, seeds=(0, 1, 2)):
    """Table 4: each gaussian found net trained from scratch, same epochs."""
    base = autogrow_runs.PRESETS[PRESET]
    runs = []
    for seed in seeds:
        found = read_result(workdir, StudyRun("initializers", "gaussian", seed, ()))
        if found is None:
            continue
        flags = (
            f"--spec={found['found']}",
            "--widths=" + ",".join(str(w) for w in base.widths),
            f"--take={base.take}",
            f"--learning_rate={base.learning_rate}",
            f"--weight_decay={base.weight_decay}",
            f"--epochs={found['epochs']}",
        )
        runs.append(
            StudyRun(
                "scratch", found["found"], seed, flags, binary="experiments.baseline"
            )
        )
    return runs


def read_result(workdir, run):
    path = os.path.join(workdir, run.name, "result.json")
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def _claim(workdir, run):
    """Creates `<run>.lock` atomically; False if another worker has it."""
    os.makedirs(workdir, exist_ok=True)
    try:
        os.close(
            os.open(
                os.path.join(workdir, f"{run.name}.lock"),
                os.O_CREAT | os.O_EXCL | os.O_WRONLY,
            )
        )
    except FileExistsError:
        return False
    return True


def execute(runs, workdir, cwd, log=print):
    """Runs what has no result yet, one after the other.

    Several workers may share a work dir (e.g. one with the runs reversed):
    each run is claimed with a lock file first.
    """
    for index, run in enumerate(runs):
        if read_result(workdir, run) is not None or not _claim(workdir, run):
            continue
        command = run.command(workdir)
        log(f"[{index + 1}/{len(runs)}] {' '.join(command)}")
        out_path = os.path.join(workdir, f"{run.name}.log")
        try:
            with open(out_path, "w") as out:
                code = subprocess.run(
                    [sys.executable, *command[1:]],
                    cwd=cwd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                ).returncode
        finally:
            os.remove(os.path.join(workdir, f"{run.name}.lock"))
        if code != 0:
            log(f"  failed (exit {code}); see {out_path}")


def mean_std(values, scale=1.0, digits=2):
    """`mean ± std` of `values` times `scale`; `n/a` when empty."""
    values = [v * scale for v in values]
    if not values:
        return "n/a"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def write_outputs(rows, workdir, report_text):
    """Writes summary.json (every result by table/row) and report.md."""
    summary = {f"{t}/{r}": entry["results"] for (t, r), entry in rows.items()}
    workdir_lib.write_json(os.path.join(workdir, "summary.json"), summary)
    workdir_lib.write_text(os.path.join(workdir, "report.md"), report_text)


def summarise(runs, workdir):
    """{(table, row): aggregated numbers} over the seeds that finished."""
    rows = {}
    for run in runs:
        result = read_result(workdir, run)
        if result is None:
            continue
        entry = rows.setdefault((run.table, run.row), {"results": [], "runs": []})
        entry["results"].append(result)
        entry["runs"].append(run)
    return rows


def markdown_table(rows, table, workdir):
    """A Markdown table of one study table, one line per row label."""
    lines = [
        "| row | seeds | found nets | total depth | params | test acc. (%) | "
        "epochs | wall time / run (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, row), entry in rows.items():
        if name != table:
            continue
        results = entry["results"]
        nets = ", ".join(r.get("found", r.get("spec")) for r in results)
        depth = [sum(r["depths"]) for r in results if "depths" in r]
        params = [r["params"] for r in results]
        lines.append(
            f"| {row} | {', '.join(str(r['seed']) for r in results)} | {nets} | "
            f"{mean_std(depth, digits=1) if depth else 'fixed'} | "
            f"{mean_std(params, digits=0)} | "
            f"{mean_std([r['test_accuracy'] for r in results], 100)} | "
            f"{mean_std([r['epochs'] for r in results], digits=1)} | "
            f"{mean_std([r['wall_seconds'] for r in results], digits=0)} |"
        )
    return "\n".join(lines)


def commands(rows, table, workdir):
    lines = []
    for (name, _), entry in rows.items():
        if name == table:
            for run in entry["runs"]:
                lines.append(" ".join(run.command(workdir)))
    return "\n".join(lines)


TABLES = ("initializers", "growth_period", "subsampling", "scratch")


def report(rows, workdir):
    """Markdown: every table with its commands; writes study.png beside it."""
    from experiments.runs import plots

    parts = []
    panels = []
    for table in TABLES:
        parts.append(f"## {table}\n\n{markdown_table(rows, table, workdir)}\n")
        parts.append(f"```sh\n{commands(rows, table, workdir)}\n```\n")
        panel = [
            (
                row,
                [r["test_accuracy"] for r in entry["results"]],
                [sum(r["depths"]) for r in entry["results"] if "depths" in r],
            )
            for (name, row), entry in rows.items()
            if name == table
        ]
        if panel:
            panels.append((table, panel))
    plots.plot_study(panels, os.path.join(workdir, "study.png"))
    return "\n".join(parts)
