"""What growth events cost inside training, in train steps: the timing
loop of `experiments.bench_width_growth` and `bench_depth_growth`."""

import statistics
import time

# The parts of `grow` its event times (`timing`), as the benchmarks print them.
GROW_PARTS = ("build", "transfer", "optimizer")


def _steps(model, batch, count):
    x, y = batch
    times = []
    for _ in range(count):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return times


def time_growths(model, batch, next_spec, events, steady_steps, **grow_kwargs):
    """Times `events` growths of a compiled `model` into `next_spec(spec)`
    and the train step after each, against steady train steps before the
    growths and after them.

    Returns:
        dict: medians in ms (`step_ms`, `step_after_ms` at the grown net,
        `grow_ms` and its parts, `first_step_ms`), `growth_cost_in_steps`
        (grow + first step - a step of the grown net, over that step),
        `in_place`, `traces` (counted before the steady steps after),
        `final` notation.
    """
    _steps(model, batch, 5)  # the first trace, and warm-up
    step = statistics.median(_steps(model, batch, steady_steps))
    grows, first_steps, costs, parts, in_place = [], [], [], [], []
    for _ in range(events):
        start = time.perf_counter()
        event = model.grow(next_spec(model.spec), **grow_kwargs)
        grown = time.perf_counter()
        model.train_on_batch(*batch)
        first = time.perf_counter() - grown
        # A deeper net's step costs more: the growth's cost is measured
        # against a step of the grown net.
        step_then = statistics.median(_steps(model, batch, 3))
        grows.append(grown - start)
        first_steps.append(first)
        costs.append((grown - start + first - step_then) / step_then)
        parts.append(event["timing"])
        in_place.append(event["in_place"])
    traces = model.trace_counts
    step_after = statistics.median(_steps(model, batch, steady_steps))
    return {
        "in_place": all(in_place),
        "step_ms": 1000 * step,
        "step_after_ms": 1000 * step_after,
        "grow_ms": 1000 * statistics.median(grows),
        "first_step_ms": 1000 * statistics.median(first_steps),
        "growth_cost_in_steps": statistics.median(costs),
        **{
            f"{part}_ms": 1000 * statistics.median(t.get(part, 0.0) for t in parts)
            for part in GROW_PARTS
        },
        "traces": traces,
        "final": model.spec.notation,
    }


def print_table(result):
    """Prints one Markdown row per arm of `{arm: time_growths result}`."""
    print(
        "| arm | step (ms) | grow (ms): build + transfer + optimizer | "
        "step after (ms) | growth cost in steps | train traces |"
    )
    print("|---|---|---|---|---|---|")
    for arm, r in result.items():
        print(
            f"| {arm} | {r['step_ms']:.1f} | {r['grow_ms']:.1f}: "
            f"{r['build_ms']:.1f} + {r['transfer_ms']:.1f} + "
            f"{r['optimizer_ms']:.1f} | "
            f"{r['first_step_ms']:.1f} | {r['growth_cost_in_steps']:.1f} | "
            f"{r['traces']['train']} |"
        )
