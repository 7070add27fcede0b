"""The growth log: what a `GrowableModel` went through, as JSON data.

Every event is a dict with a `kind` (`"grow"`, `"rollback"`, and what the
callbacks record: `"stop_stage"`, `"fine_tune"`, `"growth_failed"`, ...)
and its `index` in the log. The model writes its events through the
functions here only, so their fields are stated in one place.
"""

import numpy as np

GROW = "grow"


def growths(log):
    """list of dict. The events of `log` that grew the net (`kind`
    "grow"), oldest first; the others record decisions, stops, rollbacks."""
    return [e for e in log if e.get("kind") == GROW]


def jsonable(value):
    """Makes a growth-log value JSON-serialisable (numpy -> Python)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def loaded(events):
    """list of dict. A log given to a model (a saved one, a checkpoint's),
    copied and made JSON data."""
    return [jsonable(dict(e)) for e in (events or [])]


def _carry_counts(carry):
    """The optimizer carry's report as counts, or `None` without one."""
    if carry is None:
        return None
    return {
        "copied": len(carry.copied),
        "padded": len(carry.padded),
        "fresh": len(carry.fresh),
    }


def grow_event(index, old_spec, new_spec, parts, growth, info=None):
    """The event of one `GrowableModel.grow`.

    Args:
        index: int. Its place in the log.
        old_spec, new_spec: the specs before and after.
        parts: the `keras_grow.growth.GrownParts` swapped in.
        growth: dict with the growth's `initializer`, `morphisms`,
            `params_before` and `seconds`.
        info: dict or `None`. A callback's extra fields; a `kind` in it
            names the event otherwise than `"grow"`.
    """
    report = parts.report
    event = {
        "kind": GROW,
        "index": index,
        "from": old_spec.notation,
        "to": new_spec.notation,
        "params_before": growth["params_before"],
        "params_after": parts.body.count_params(),
        "initializer": growth["initializer"],
        "new_blocks": list(report.new_blocks),
        "widened": {k: list(v) for k, v in report.widened.items()},
        "morphisms": [type(m).__name__ for m in growth["morphisms"]],
        "optimizer_state": _carry_counts(parts.carry),
        "spec": new_spec.to_dict(),
        **(info or {}),
    }
    event["seconds"] = growth["seconds"]
    event["timing"] = parts.timing  # the retrace happens at the next step
    return jsonable(event)


def event(kind, index, spec, params, info=None):
    """A non-growth event (a rollback, a stage stopping, ...): its kind,
    index, the spec's notation and parameter count at the time, and
    `info`'s fields."""
    return jsonable(
        {
            "kind": kind,
            "index": index,
            "spec_notation": spec.notation,
            "params": params,
            **(info or {}),
        }
    )
