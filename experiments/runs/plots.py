"""PNG plots of runs (matplotlib, imported only when a plot is drawn)."""

import csv

from absl import logging

from keras_grow import growth_events


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logging.warning(
            "matplotlib is not installed: no plot. `pip install keras-grow[plots]`."
        )
        return None
    return plt


def read_history(path):
    """Reads a CSVLogger file into `{column: [float, ...]}`."""
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows] for key in rows[0]} if rows else {}


def depths_per_epoch(growth_log, num_epochs):
    """`{depth_stage<i>: [depth during each epoch]}` from a growth log (a
    growth at the end of epoch e applies from epoch e + 1); empty if the
    log has no growth of a staged net."""
    grows = [
        e
        for e in growth_events.growths(growth_events.read(growth_log))
        if e.epoch is not None
    ]
    if not grows:
        return {}

    def depths(notation):
        return [int(t) for t in notation.split(")")[-1].split("-") if t.isdigit()]

    current = depths(grows[0].from_notation)
    changes = {e.epoch + 1: depths(e.to_notation) for e in grows}
    columns = {f"depth_stage{s + 1}": [] for s in range(len(current))}
    for epoch in range(num_epochs):
        current = changes.get(epoch, current)
        for s, d in enumerate(current):
            columns[f"depth_stage{s + 1}"].append(d)
    return columns


def plot_autogrow(history, growth_log, path, title=""):
    """Depth per stage and validation accuracy against epoch, growth marked.

    Args:
        history: a `keras.callbacks.History` (what `fit` returns), its
            `.history` dict, or `read_history` of a run with `EpochLine`
            columns (`epoch`, `depth_stage*`). Without depth columns the
            depths come from `growth_log`.
        growth_log: list of dict. `model.growth_log`.
        path: str. The PNG to write.
        title: str. Figure title.

    Returns:
        bool. Whether a plot was written.
    """
    plt = pyplot()
    history = dict(getattr(history, "history", history) or {})
    if plt is None or not history:
        return False
    length = max(len(v) for v in history.values())
    if "epoch" in history:
        epochs = [int(e) + 1 for e in history["epoch"]]
    else:
        epochs = list(range(1, length + 1))
    if not any(k.startswith("depth_stage") for k in history):
        history.update(depths_per_epoch(growth_log, len(epochs)))
    stages = sorted(k for k in history if k.startswith("depth_stage"))
    figure, (depth_axis, accuracy_axis) = plt.subplots(
        2, 1, figsize=(8, 6), sharex=True
    )
    for key in stages:
        depth_axis.step(epochs, history[key], where="post", label=key.replace("_", " "))
    depth_axis.set_ylabel("sub-modules")
    depth_axis.yaxis.get_major_locator().set_params(integer=True)
    depth_axis.legend(loc="upper left")
    for key in ("accuracy", "val_accuracy"):
        if key in history:
            accuracy_axis.plot(epochs, history[key], label=key)
    accuracy_axis.set_ylabel("accuracy")
    accuracy_axis.set_xlabel("epoch")
    accuracy_axis.legend(loc="lower right")
    styles = {
        "grow": ("tab:green", ":"),
        "stop_stage": ("tab:red", "--"),
        "fine_tune": ("black", "-"),
    }
    for event in growth_events.read(growth_log):
        if event.kind in styles and event.epoch is not None:
            color, line = styles[event.kind]
            x = event.epoch + (2 if event.kind == "grow" else 1)
            for axis in (depth_axis, accuracy_axis):
                axis.axvline(x, color=color, linestyle=line, alpha=0.4, linewidth=1)
    depth_axis.set_title(
        f"{title}\ngreen: growth, red: a stage stops, black: fine-tuning starts",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def plot_study(panels, path):
    """One panel per study table: test accuracy and found depth per row.

    Args:
        panels: list of (title, [(row label, accuracies, total depths)]).
            Depth lists may be empty (a fixed net).
        path: str. The PNG to write.

    Returns:
        bool. Whether a plot was written.
    """
    import numpy as np

    plt = pyplot()
    if plt is None or not panels:
        return False
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    axes = np.atleast_1d(axes)
    for axis, (title, rows) in zip(axes, panels):
        labels = [label for label, _, _ in rows]
        x = np.arange(len(rows))
        accuracy = [100 * np.mean(acc) for _, acc, _ in rows]
        accuracy_err = [100 * np.std(acc) for _, acc, _ in rows]
        axis.errorbar(
            x - 0.1, accuracy, yerr=accuracy_err, fmt="o", color="tab:blue", capsize=3
        )
        axis.set_ylabel("test accuracy (%)", color="tab:blue")
        axis.set_xticks(x, labels, rotation=20)
        axis.set_title(title)
        if not any(d for _, _, d in rows):
            continue  # fixed nets: no found depth to show
        depth_axis = axis.twinx()
        depth = [np.mean(d) if d else np.nan for _, _, d in rows]
        depth_err = [np.std(d) if d else 0 for _, _, d in rows]
        depth_axis.errorbar(
            x + 0.1, depth, yerr=depth_err, fmt="s", color="tab:red", capsize=3
        )
        depth_axis.set_ylabel("found depth (sub-modules)", color="tab:red")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def plot_firefly(series, path, title="", reference=None):
    """Accuracy against parameters, one point per growth round.

    Args:
        series: dict. `{label: runs}`; `runs` is one run's points or a list
            of runs' points (each point a dict with `params` and
            `val_accuracy`, see `experiments.runs.firefly.round_points`).
            Several runs are drawn as the mean per round with a std bar.
        path: str. The PNG to write.
        title: str. Figure title.
        reference: dict or `None`. `{label: (params, accuracy, std)}` drawn
            as single markers (e.g. the full net trained from scratch).

    Returns:
        bool. Whether a plot was written.
    """
    plt = pyplot()
    if plt is None:
        return False
    import numpy as np

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, runs in series.items():
        if runs and isinstance(runs[0], dict):
            runs = [runs]
        count = min(len(r) for r in runs) if runs else 0
        if not count:
            continue
        params = np.array([[r[i]["params"] for i in range(count)] for r in runs])
        accuracy = np.array(
            [[r[i]["val_accuracy"] for i in range(count)] for r in runs]
        )
        axis.errorbar(
            params.mean(0),
            accuracy.mean(0),
            xerr=params.std(0) if len(runs) > 1 else None,
            yerr=accuracy.std(0) if len(runs) > 1 else None,
            marker="o",
            capsize=3,
            label=f"{label} (n={len(runs)})" if len(runs) > 1 else label,
        )
    for label, (params, accuracy, std) in (reference or {}).items():
        axis.errorbar(
            [params],
            [accuracy],
            yerr=[std],
            marker="*",
            markersize=12,
            linestyle="none",
            capsize=3,
            label=label,
        )
    axis.set_xscale("log")
    axis.set_xlabel("parameters")
    axis.set_ylabel("validation accuracy")
    axis.set_title(title)
    axis.grid(True, alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
