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


def _number(key, digits=3, scale=1):
    """A column's cell: `row[key]` (a path of keys for a nested one) times
    `scale`, to `digits` places."""
    keys = key.split(".")

    def cell(row):
        for k in keys:
            row = row[k]
        return _f(scale * row, digits)

    return cell


def _columns(columns, rows):
    """A table of `columns`, each `(header, cell(row))`, over `rows`."""
    return _table([h for h, _ in columns], [[c(r) for _, c in columns] for r in rows])


_WRAPPER = (
    ("net", lambda r: r["net"]),
    ("jit", lambda r: r["jit_compile"]),
    (
        "train-step ops (plain / GrowableModel)",
        lambda r: f"{r['plain_ops']} / {r['growable_ops']}",
    ),
    ("plain step (ms)", _number("plain_step_s", 1, 1000)),
    ("GrowableModel step (ms)", _number("growable_step_s", 1, 1000)),
    ("ratio", _number("ratio")),
    ("steps", lambda r: r["steps"]),
)

_GROWTH = (
    ("growth", lambda r: r["to"]),
    ("params", lambda r: f"{r['params']:,}"),
    ("build (s)", _number("build_s", 2)),
    ("transfer (s)", _number("transfer_s", 2)),
    ("optimizer (s)", _number("optimizer_s", 2)),
    ("grow total (s)", _number("grow_s", 2)),
    ("train retrace (s)", _number("train_retrace_s", 2)),
    ("test retrace (s)", _number("test_retrace_s", 2)),
    ("cost (s)", _number("cost_s", 2)),
    ("epoch (s)", _number("epoch_s", 1)),
    ("fraction of epoch", _number("epoch_fraction")),
)

_AUTOGROW = (
    ("run", lambda r: f"{r['from']} -> {r['to']}"),
    ("epochs (K)", lambda r: f"{r['epochs']} ({r['growth_period']})"),
    ("train images", lambda r: f"{r['train_examples']:,}"),
    ("growths", lambda r: r["growths"]),
    ("wall (s)", _number("wall_s", 1)),
    ("pure steps (s)", _number("pure_s", 1)),
    ("grow calls (s)", _number("grow_s", 1)),
    ("retraces (s)", _number("retrace_s", 1)),
    ("first trace (s)", _number("first_trace_s", 1)),
    ("around the steps (s)", _number("around_steps_s", 1)),
    ("wall / pure", _number("ratio")),
    ("(pure + growth) / pure", _number("growth_ratio")),
)

_FIREFLY = (
    ("round", lambda r: r["round"]),
    ("params", lambda r: f"{r['from_params']:,} -> {r['to_params']:,}"),
    ("candidates", lambda r: r["candidates"]),
    ("neighbourhood (s)", _number("neighbourhood_s", 2)),
    ("step one (s)", _number("optimise_s", 2)),
    ("scores (s)", _number("score_s", 2)),
    ("round (s)", _number("round_s", 2)),
    ("grow (s)", _number("grow_s", 2)),
    ("retrace (s)", _number("retrace_s", 2)),
    ("cost (s)", _number("cost_s", 2)),
    ("epoch (s)", _number("epoch_s", 1)),
    ("epoch-equivalents", _number("epoch_equivalents")),
)

_MEMORY = (
    ("net", lambda r: r["net"]),
    ("process start (MB)", _number("memory.process_start_mb", 0)),
    ("training peak (MB)", _number("memory.train_peak_mb", 0)),
    ("growth peak (MB)", _number("memory.growth_peak_mb", 0)),
    ("ratio", _number("memory.ratio")),
    ("growth adds (MB)", _number("memory.growth_adds_mb", 0)),
)

_PIPELINE_FED = (
    ("net", lambda r: r["net"]),
    ("from memory (ms)", _number("memory_step_s", 1, 1000)),
    ("from the pipeline (ms)", _number("pipeline_step_s", 1, 1000)),
    ("ratio", _number("ratio")),
)


def _header(results, command):
    machine, config = results["machine"], results["config"]
    return [
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
        f"{config['repeats']} repeats of {config['steps']} steps "
        f"(batch {config['batch_size']}) unless a table says otherwise; "
        f"total {results['wall_s'] / 60:.1f} min. XLA (`jit_compile`) is off unless "
        "a row says on. An *epoch* is the steady-state time of a full "
        "Fashion-MNIST epoch (54,000 training + 6,000 validation images) of "
        "the net at hand.",
        "",
    ]


def markdown(results, command, notes=""):
    targets = _table(
        ["measure", "where", "measured", "target", "verdict"],
        [
            (TARGETS[k][0], where, _f(v), TARGETS[k][1], _verdict(k, v))
            for k, v, where in summary_rows(results)
        ],
    )
    growth_events = [r for g in results["growth"] for r in g["events"]]
    parts = _header(results, command) + [
        "## Targets",
        "",
        targets,
        "",
        "## 1. Wrapper overhead",
        "",
        _columns(_WRAPPER, results["wrapper"]),
        "",
        "## 2. Growth events in the middle of `fit`",
        "",
        "Cost = `model.grow` (build + transfer + optimizer carry + swap) + the "
        "retrace of the train and test steps (first step of the grown net minus "
        "its steady step).",
        "",
        _columns(_GROWTH, growth_events),
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
        _columns(_MEMORY, results["firefly"]),
        "",
        NOTES_MARKER,
    ]
    return "\n".join(parts) + "\n" + notes


def _autogrow_text(row):
    return (
        _columns(_AUTOGROW, [row])
        + "\n\nPure steps: every train and validation step's own time, "
        "less the excess of each architecture's first step. *Around the "
        "steps*: what `fit` spends outside steps and growth (epoch and "
        "iterator set-up, shuffle-buffer refills, callbacks), which a plain "
        "Keras run pays too; the last column counts growth alone."
    )


def _firefly_text(row):
    settings = ", ".join(f"{k}={v}" for k, v in row["settings"].items())
    table = _columns(_FIREFLY, row["rounds"])
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
    return (
        _table(
            ["net", "pipeline images/s (augmented)", "model images/s", "ratio"], rows
        )
        + "\n\nThe same step fed by the pipeline while it trains (both share the "
        "cores) against fed from memory:\n\n"
        + _columns(_PIPELINE_FED, [results["fed"]])
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
