"""The growth log: what a `GrowableModel` went through, as JSON data.

Every event is a dict with a `kind` (`"grow"`, `"rollback"`, and what the
callbacks record: `"stop_stage"`, `"fine_tune"`, `"growth_failed"`, ...)
and its `index` in the log. The model writes its events through the
functions here only, so their fields are stated in one place.
"""

import copy

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
            `in_place`, `params_before` and `seconds`.
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
        # Made in place: the traced step functions train the grown net.
        "in_place": growth["in_place"],
        "spec": new_spec.to_dict(),
        **(info or {}),
    }
    if report.block_copies is not None:
        event["block_copies"] = dict(report.block_copies)
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


class GrowthLog:
    """Mixin of `GrowableModel`: its growth log, the one place events are
    appended, and the retrace time each change's first steps cost."""

    def _start_log(self, events):
        self._growth_log = loaded(events)
        # The log index of the latest grow/rollback made in this process:
        # `last_change`, whose retrace `_record_retrace` times.
        self._retrace_event = None
        self._traces = {"train": 0, "test": 0}

    @property
    def trace_counts(self):
        """dict. How many times Keras' train and test step functions were
        traced in this process (`{"train": n, "test": m}`): once at the
        first step, and again after every change of architecture (with
        `jit_compile`, each trace is also an XLA compilation)."""
        return dict(self._traces)

    @property
    def growth_log(self):
        """list of dict. Events oldest first (a copy): one per `grow` call
        (`kind` "grow") and any a callback recorded (`record_event`)."""
        return copy.deepcopy(self._growth_log)

    @property
    def last_change(self):
        """dict or `None`. The log event (a copy) of the latest `grow` or
        `rollback` made in this process since the model was built or loaded
        (a restored log's events do not count). Its `timing` gains
        `retrace_train` / `retrace_test`: the seconds of the first train and
        test calls after it, which trace Keras' step functions anew."""
        if self._retrace_event is None:
            return None
        return copy.deepcopy(self._growth_log[self._retrace_event])

    def record_event(self, kind, info=None):
        """Appends a non-growth event (e.g. a stage stopping) to the log.

        Args:
            kind: str. What happened, e.g. `"stop_stage"`, `"fine_tune"`.
            info: dict or `None`. JSON-serialisable details.

        Returns:
            dict. The event as logged.
        """
        return self._append_event(self._event(kind, info))

    def _event(self, kind, info):
        """A non-growth event of `kind` at the end of the log, now."""
        params = self.body.count_params()
        return event(kind, len(self._growth_log), self.spec, params, info)

    def _append_event(self, logged, change=False):
        """Appends `logged`; a `change` (grow, rollback) is the one whose
        retrace the next steps time."""
        self._growth_log.append(logged)
        if change:
            self._retrace_event = logged["index"]
        return copy.deepcopy(logged)

    def _record_retrace(self, kind, seconds):
        """Counts a trace of the `kind` step function, and logs the first
        `kind` step after the latest growth or rollback (its retrace) in
        that event's `timing` with the traces so far, once per
        architecture."""
        self._traces[kind] += 1
        if self._retrace_event is None:
            return
        timing = self._growth_log[self._retrace_event].setdefault("timing", {})
        if f"retrace_{kind}" not in timing:
            timing[f"retrace_{kind}"] = round(seconds, 4)
            timing[f"traces_{kind}"] = self._traces[kind]
