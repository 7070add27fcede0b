"""Runs every measurement of the growth benchmark in one process."""

import dataclasses
import time

from experiments.runs import training
from experiments.runs.bench import measures
from experiments.runs.bench import probes


def resolve(preset, **overrides):
    """The preset's `BenchConfig` with `overrides` applied."""
    return training.resolve_preset(measures.PRESETS, preset, overrides)


class _Steps:
    """Runs the measures one by one, each announced with the time so far."""

    def __init__(self, log):
        self.log, self.start = log, time.perf_counter()

    def __call__(self, name, function, *args, **kwargs):
        self.log(f"[{self.elapsed():6.0f}s] {name} ...")
        return function(*args, **kwargs)

    def elapsed(self):
        return time.perf_counter() - self.start


def run(config, preset, log=print):
    """Measures everything; returns the results dict (JSON-ready).

    Args:
        config: a `measures.BenchConfig`.
        preset: str. Its name, for the report.
        log: callable taking one line of progress.
    """
    step = _Steps(log)
    resnet = measures.spec_of(config.resnet, config, config.resnet_widths)
    vgg = measures.spec_of(config.vgg, config)
    results = {
        "preset": preset,
        "config": dataclasses.asdict(config),
        "machine": probes.machine(),
        "wrapper": _wrapper_rows(config, (resnet, vgg), step, log),
        "growth": [],
        "firefly": [],
    }
    for spec, initializer in ((resnet, "zero"), (vgg, "identity")):
        row = step(
            f"growth events {spec.notation}",
            measures.growth_events,
            spec,
            config,
            initializer,
        )
        log(
            f"    median {row['median_cost_s']:.2f}s = "
            f"{row['median_epoch_fraction']:.3f} epoch"
        )
        results["growth"].append(row)
    steady = {
        r["net"]: r["growable_step_s"]
        for r in results["wrapper"]
        if not r["jit_compile"]
    }
    results["pipeline"] = step(
        "input pipeline", measures.input_pipeline, config, steady
    )
    results["fed"] = step(
        f"pipeline-fed steps {vgg.notation}",
        measures.fed_by_pipeline,
        vgg,
        config,
    )
    results["autogrow"] = step(
        "AutoGrow end to end", measures.autogrow_end_to_end, config
    )
    log(f"    ratio {results['autogrow']['ratio']:.3f}")
    for jit in config.firefly_jit_modes:
        row = step(f"Firefly rounds jit={jit}", measures.firefly_growth, config, jit)
        log(
            f"    median {row['median_epoch_equivalents']:.3f} epoch-equivalents, "
            f"memory x{row['memory']['ratio']:.2f}"
        )
        results["firefly"].append(row)
    results["wall_s"] = step.elapsed()
    return results


def _wrapper_rows(config, nets, step, log):
    """Section 1: the wrapper's overhead per net and XLA mode."""
    rows = []
    for jit in config.jit_modes:
        # XLA-compiling the deep ResNet's train step on CPU takes minutes;
        # with jit on only the VGG is timed (config.jit_resnet to add it).
        for spec in nets if not jit or config.jit_resnet else nets[1:]:
            row = step(
                f"wrapper overhead {spec.notation} jit={jit}",
                measures.wrapper_overhead,
                spec,
                config,
                jit,
            )
            log(
                f"    ratio {row['ratio']:.3f} ({1000 * row['growable_step_s']:.1f} ms)"
            )
            rows.append(row)
    return rows
