"""`docs/benchmarks.md`: the measured tables, targets, and kept notes."""

import os

from experiments.runs import workdir

NOTES_MARKER = "<!-- notes: kept when the benchmark rewrites this file -->"

TARGETS = {
    "wrapper": ("wrapper overhead (step time ratio)", 1.02),
    "growth": ("one growth event (fraction of an epoch)", 0.05),
    "autogrow": ("AutoGrow end to end (wall / pure epochs)", 1.05),
    "firefly": ("one Firefly round (epoch-equivalents)", 0.25),
    "pipeline": ("input pipeline (images/s over model's)", 3.0),
    "memory": ("Firefly peak memory (over training peak)", 1.5),
}


def _verdict(key, value):
    _, target = TARGETS[key]
    met = value >= target if key == "pipeline" else value <= target
    return "met" if met else "**missed**"


def _f(value, digits=3):
    return f"{value:.{digits}f}"


def summary_rows(results):
    """(key, measured, where) for every target from the results dict."""
    rows = []
    for row in results["wrapper"]:
        rows.append(
            ("wrapper", row["ratio"], f"{row['net']}, jit={row['jit_compile']}")
        )
    for row in results["growth"]:
        rows.append(("growth", row["median_epoch_fraction"], row["net"]))
    autogrow = results["autogrow"]
    rows.append(
        ("autogrow", autogrow["ratio"], f"{autogrow['from']} -> {autogrow['to']}")
    )
    for row in results["firefly"]:
        rows.append(
            (
                "firefly",
                row["median_epoch_equivalents"],
                f"{row['net']}, jit={row['jit_compile']}",
            )
        )
    for net, row in results["pipeline"]["models"].items():
        rows.append(("pipeline", row["ratio"], net))
    for row in results["firefly"]:
        rows.append(("memory", row["memory"]["ratio"], row["net"]))
    return rows


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(results, command, notes=""):
    machine = results["machine"]
    parts = [
        "# Benchmarks: what growth costs",
        "",
        "Written by `experiments/bench_growth.py`; rerun with:",
        "",
        f"```sh\n{command}\n```",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['gpus']} GPUs, "
        f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}, Python "
        f"{machine['python']}. Preset `{results['preset']}`, medians of "
        f"{results['config']['repeats']} repeats of {results['config']['steps']} steps "
        f"(batch {results['config']['batch_size']}) unless a table says otherwise; "
        f"total {results['wall_s'] / 60:.1f} min. XLA (`jit_compile`) is off unless "
        "a row says on. An *epoch* is the steady-state time of a full "
        "Fashion-MNIST epoch (54,000 training + 6,000 validation images) of "
        "the net at hand.",
        "",
        "## Targets",
        "",
        _table(
            ["measure", "where", "measured", "target", "verdict"],
            [
                (TARGETS[k][0], where, _f(v), TARGETS[k][1], _verdict(k, v))
                for k, v, where in summary_rows(results)
            ],
        ),
        "",
        "## 1. Wrapper overhead",
        "",
        _table(
            [
                "net",
                "jit",
                "train-step ops (plain / GrowableModel)",
                "plain step (ms)",
                "GrowableModel step (ms)",
                "ratio",
                "steps",
            ],
            [
                (
                    r["net"],
                    r["jit_compile"],
                    f"{r['plain_ops']} / {r['growable_ops']}",
                    _f(1000 * r["plain_step_s"], 1),
                    _f(1000 * r["growable_step_s"], 1),
                    _f(r["ratio"]),
                    r["steps"],
                )
                for r in results["wrapper"]
            ],
        ),
        "",
        "## 2. Growth events in the middle of `fit`",
        "",
        "Cost = `model.grow` (build + transfer + optimizer carry + swap) + the "
        "retrace of the train and test steps (first step of the grown net minus "
        "its steady step).",
        "",
        _table(
            [
                "growth",
                "params",
                "build (s)",
                "transfer (s)",
                "optimizer (s)",
                "grow total (s)",
                "train retrace (s)",
                "test retrace (s)",
                "cost (s)",
                "epoch (s)",
                "fraction of epoch",
            ],
            [
                (
                    r["to"],
                    f"{r['params']:,}",
                    _f(r["build_s"], 2),
                    _f(r["transfer_s"], 2),
                    _f(r["optimizer_s"], 2),
                    _f(r["grow_s"], 2),
                    _f(r["train_retrace_s"], 2),
                    _f(r["test_retrace_s"], 2),
                    _f(r["cost_s"], 2),
                    _f(r["epoch_s"], 1),
                    _f(r["epoch_fraction"]),
                )
                for g in results["growth"]
                for r in g["events"]
            ],
        ),
        "",
        "## 3. AutoGrow end to end",
        "",
        _autogrow_text(results["autogrow"]),
        "",
        "## 4. Firefly rounds",
        "",
        *[_firefly_text(row) for row in results["firefly"]],
        "## 5. Input pipeline",
        "",
        _pipeline_text(results),
        "",
        "## 6. Memory",
        "",
        _table(
            [
                "net",
                "process start (MB)",
                "training peak (MB)",
                "growth peak (MB)",
                "ratio",
                "growth adds (MB)",
            ],
            [
                (
                    r["net"],
                    _f(r["memory"]["process_start_mb"], 0),
                    _f(r["memory"]["train_peak_mb"], 0),
                    _f(r["memory"]["growth_peak_mb"], 0),
                    _f(r["memory"]["ratio"]),
                    _f(r["memory"]["growth_adds_mb"], 0),
                )
                for r in results["firefly"]
            ],
        ),
        "",
        NOTES_MARKER,
    ]
    return "\n".join(parts) + "\n" + notes


def _autogrow_text(row):
    table = _table(
        [
            "run",
            "epochs (K)",
            "train images",
            "growths",
            "wall (s)",
            "pure steps (s)",
            "grow calls (s)",
            "retraces (s)",
            "first trace (s)",
            "around the steps (s)",
            "wall / pure",
            "(pure + growth) / pure",
        ],
        [
            (
                f"{row['from']} -> {row['to']}",
                f"{row['epochs']} ({row['growth_period']})",
                f"{row['train_examples']:,}",
                row["growths"],
                _f(row["wall_s"], 1),
                _f(row["pure_s"], 1),
                _f(row["grow_s"], 1),
                _f(row["retrace_s"], 1),
                _f(row["first_trace_s"], 1),
                _f(row["around_steps_s"], 1),
                _f(row["ratio"]),
                _f(row["growth_ratio"]),
            )
        ],
    )
    return (
        table + "\n\nPure steps: every train and validation step's own time, "
        "less the excess of each architecture's first step. *Around the "
        "steps*: what `fit` spends outside steps and growth (epoch and "
        "iterator set-up, shuffle-buffer refills, callbacks), which a plain "
        "Keras run pays too; the last column counts growth alone."
    )


def _firefly_text(row):
    settings = ", ".join(f"{k}={v}" for k, v in row["settings"].items())
    table = _table(
        [
            "round",
            "params",
            "candidates",
            "neighbourhood (s)",
            "step one (s)",
            "scores (s)",
            "round (s)",
            "grow (s)",
            "retrace (s)",
            "cost (s)",
            "epoch (s)",
            "epoch-equivalents",
        ],
        [
            (
                r["round"],
                f"{r['from_params']:,} -> {r['to_params']:,}",
                r["candidates"],
                _f(r["neighbourhood_s"], 2),
                _f(r["optimise_s"], 2),
                _f(r["score_s"], 2),
                _f(r["round_s"], 2),
                _f(r["grow_s"], 2),
                _f(r["retrace_s"], 2),
                _f(r["cost_s"], 2),
                _f(r["epoch_s"], 1),
                _f(r["epoch_equivalents"]),
            )
            for r in row["rounds"]
        ],
    )
    return f"{row['net']}, jit={row['jit_compile']}, {settings}:\n\n{table}\n"


def _pipeline_text(results):
    pipeline = results["pipeline"]
    rows = [
        (
            net,
            _f(pipeline["pipeline_images_per_s"], 0),
            _f(m["images_per_s"], 0),
            _f(m["ratio"], 1),
        )
        for net, m in pipeline["models"].items()
    ]
    fed = results["fed"]
    return (
        _table(
            ["net", "pipeline images/s (augmented)", "model images/s", "ratio"], rows
        )
        + "\n\nThe same step fed by the pipeline while it trains (both share the "
        "cores) against fed from memory:\n\n"
        + _table(
            ["net", "from memory (ms)", "from the pipeline (ms)", "ratio"],
            [
                (
                    fed["net"],
                    _f(1000 * fed["memory_step_s"], 1),
                    _f(1000 * fed["pipeline_step_s"], 1),
                    _f(fed["ratio"]),
                )
            ],
        )
    )


def kept_notes(path):
    """The hand-written part after the marker of an existing report."""
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        text = f.read()
    return text.split(NOTES_MARKER, 1)[1].lstrip("\n") if NOTES_MARKER in text else ""


def write(results, command, markdown_path, json_path):
    """Writes the JSON results and the Markdown report (keeping its notes)."""
    for path in (markdown_path, json_path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    text = markdown(results, command, kept_notes(markdown_path))
    workdir.write_json(json_path, results)
    workdir.write_text(markdown_path, text)
    return text
