"""The growth log: what a `GrowableModel` went through, as typed events.

A model keeps its log as `Event`s (a rollback, a stage stopping, ...) and
`GrowthEvent`s (a `grow`), written by the functions here only, so their
fields are stated in one place. `GrowableModel.growth_log` gives them as
JSON dicts (`Event.to_dict`), which `read` turns back into events: the
form saved models, checkpoints and weights files hold.
"""

import copy
import dataclasses

import numpy as np

GROW = "grow"


def growths(log):
    """list. The events of `log` (dicts or events, returned as given)
    that grew the net (`kind` "grow"), oldest first; the others record
    decisions, stops, rollbacks."""
    return [e for e in log if _kind(e) == GROW]


def _kind(event):
    return event.kind if isinstance(event, LoggedEvent) else event.get("kind")


def reproducible(value):
    """`value` (an event dict, or lists and dicts of them) without what
    describes the process that ran it rather than the run: wall times
    (keys with a `seconds` part, `timing`) and trace counts (keys with a
    `traces` part). A run resumed from a checkpoint logs everything else
    exactly as the uninterrupted run."""
    if isinstance(value, dict):
        return {k: reproducible(v) for k, v in value.items() if not _of_the_process(k)}
    if isinstance(value, (list, tuple)):
        return [reproducible(v) for v in value]
    return value


def _of_the_process(key):
    parts = str(key).split("_")
    return key == "timing" or "seconds" in parts or "traces" in parts


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


@dataclasses.dataclass
class LoggedEvent:
    """What every growth-log entry has.

    Attributes:
        kind: str. What happened (`"grow"`, `"rollback"`, `"stop_stage"`...).
        index: int. Its place in the log.
        details: dict. The recorder's own JSON fields (`epoch`,
            `callback`, `reason`, ...).
    """

    kind: str
    index: int
    details: dict = dataclasses.field(default_factory=dict)

    @property
    def epoch(self):
        """int or `None`. The 0-based epoch its recorder gave."""
        return self.details.get("epoch")

    @property
    def callback(self):
        """str or `None`. The name of the callback that recorded it."""
        return self.details.get("callback")


@dataclasses.dataclass
class Event(LoggedEvent):
    """A log entry that records a decision or a state (a rollback, a stage
    stopping, fine-tuning starting, a plan): not itself a growth.

    Attributes (besides `LoggedEvent`'s, which its JSON lists after them):
        spec_notation: str. The architecture at the time.
        params: int. Its parameter count.
    """

    spec_notation: str = None
    params: int = None

    def to_dict(self):
        """dict. The event as JSON data (a copy)."""
        head = {"kind": self.kind, "index": self.index}
        head.update(spec_notation=self.spec_notation, params=self.params)
        return copy.deepcopy({**head, **self.details})


@dataclasses.dataclass
class GrowthEvent(LoggedEvent):
    """A `GrowableModel.grow`: what the net became and how.

    Attributes (besides `LoggedEvent`'s, whose `details` its JSON lists
    after `spec`):
        from_notation, to_notation: str. The notations before and after
            (`"from"` and `"to"` in JSON).
        params_before, params_after: int.
        initializer: str. How new sub-modules started.
        new_blocks: list of str. The blocks added.
        widened: dict. `{unit group: [width before, width after]}`.
        morphisms: list of str. The morphisms' class names, in order.
        optimizer_state: dict or `None`. Optimizer slots `copied`,
            `padded` and `fresh` (`None` when none were carried).
        in_place: bool. Made in the variables the traced steps read.
        spec: dict. The grown spec (`NetSpec.to_dict`).
        block_copies: dict or `None`. `{new block: block it copies}`
            (written only when there is one).
        seconds: float. The growth's own time.
        timing: dict. Its parts' seconds, then the retrace of the first
            train and test steps after it (`retrace_train`, ...).
    """

    from_notation: str = None
    to_notation: str = None
    params_before: int = None
    params_after: int = None
    initializer: str = None
    new_blocks: list = dataclasses.field(default_factory=list)
    widened: dict = dataclasses.field(default_factory=dict)
    morphisms: list = dataclasses.field(default_factory=list)
    optimizer_state: dict = None
    in_place: bool = False
    spec: dict = None
    block_copies: dict = None
    seconds: float = None
    timing: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        """dict. The event as JSON data (a copy)."""
        event = {"kind": self.kind, "index": self.index}
        event.update({"from": self.from_notation, "to": self.to_notation})
        event.update({name: getattr(self, name) for name in _GROWTH_HEAD})
        event.update(spec=self.spec, **self.details)
        if self.block_copies is not None:
            event["block_copies"] = self.block_copies
        event.update(seconds=self.seconds, timing=self.timing)
        return copy.deepcopy(event)


# GrowthEvent's JSON fields, in order: "from", "to", the head, "spec",
# the details, the tail.
_GROWTH_HEAD = (
    "params_before",
    "params_after",
    "initializer",
    "new_blocks",
    "widened",
    "morphisms",
    "optimizer_state",
    "in_place",
)
_GROWTH_FIELDS = (*_GROWTH_HEAD, "spec", "block_copies", "seconds", "timing")
_EVENT_FIELDS = ("spec_notation", "params")


def from_dict(data):
    """`Event` or `GrowthEvent`. A logged event from its JSON dict (one of
    kind "grow", or with a `params_after` whatever its kind, is a growth);
    fields it does not name are its `details`."""
    data = jsonable(dict(data))
    kind, index = data.pop("kind", None), data.pop("index", None)
    if kind == GROW or "params_after" in data:
        fields = {n: data.pop(n) for n in _GROWTH_FIELDS if n in data}
        fields.update(
            from_notation=data.pop("from", None), to_notation=data.pop("to", None)
        )
        return GrowthEvent(kind=kind, index=index, details=data, **fields)
    fields = {n: data.pop(n) for n in _EVENT_FIELDS if n in data}
    return Event(kind=kind, index=index, details=data, **fields)


def read(log):
    """list of `GrowthEvent` and `Event`. The events of a log given as
    JSON dicts (a model's `growth_log`, a saved one), oldest first."""
    return [e if isinstance(e, LoggedEvent) else from_dict(e) for e in (log or [])]


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
    """The `GrowthEvent` of one `GrowableModel.grow`.

    Args:
        index: int. Its place in the log.
        old_spec, new_spec: the specs before and after.
        parts: the `keras_grow.growth.GrownParts` swapped in (in place
            when it holds a `resize`).
        growth: dict with the growth's `initializer`, `morphisms`,
            `params_before`, `params_after` and `seconds`.
        info: dict or `None`. A callback's extra fields; a `kind` in it
            names the event otherwise than `"grow"`.
    """
    report, details = parts.report, jsonable(dict(info or {}))
    block_copies = report.block_copies
    return GrowthEvent(
        kind=details.pop("kind", GROW),
        index=index,
        from_notation=old_spec.notation,
        to_notation=new_spec.notation,
        params_before=growth["params_before"],
        params_after=growth["params_after"],
        initializer=growth["initializer"],
        new_blocks=list(report.new_blocks),
        widened=jsonable({k: list(v) for k, v in report.widened.items()}),
        morphisms=[type(m).__name__ for m in growth["morphisms"]],
        optimizer_state=_carry_counts(parts.carry),
        in_place=parts.in_place,
        spec=jsonable(new_spec.to_dict()),
        block_copies=None if block_copies is None else jsonable(dict(block_copies)),
        seconds=growth["seconds"],
        timing=jsonable(dict(parts.timing)),  # the retrace comes at the next step
        details=details,
    )


def event(kind, index, spec, params, info=None):
    """An `Event` (a rollback, a stage stopping, ...): its kind, index,
    the spec's notation and parameter count at the time, and `info`'s
    fields."""
    details = jsonable(dict(info or {}))
    return Event(kind, index, details, spec_notation=spec.notation, params=int(params))


class GrowthLog:
    """Mixin of `GrowableModel`: its growth log, the one place events are
    appended, and the retrace time each change's first steps cost."""

    def _start_log(self, events):
        self._growth_log = [copy.deepcopy(e) for e in read(events)]
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
        """list of dict. Events oldest first, as JSON data (copies): one
        per `grow` call (`kind` "grow") and any a callback recorded
        (`record_event`). `keras_grow.growth_events.read` types them."""
        return [e.to_dict() for e in self._growth_log]

    @property
    def last_change(self):
        """dict or `None`. The log event (a copy) of the latest `grow` or
        `rollback` made in this process since the model was built or loaded
        (a restored log's events do not count). Its `timing` gains
        `retrace_train` / `retrace_test`: the seconds of the first train and
        test calls after it, which trace Keras' step functions anew."""
        if self._retrace_event is None:
            return None
        return self._growth_log[self._retrace_event].to_dict()

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
        params = self.count_params()
        return event(kind, len(self._growth_log), self.spec, params, info)

    def _append_event(self, logged, change=False):
        """Appends the `Event` `logged` and returns it as a dict; a
        `change` (grow, rollback) is the one whose retrace the next steps
        time."""
        self._growth_log.append(logged)
        if change:
            self._retrace_event = logged.index
        return logged.to_dict()

    def _record_retrace(self, kind, seconds):
        """Counts a trace of the `kind` step function, and logs the first
        `kind` step after the latest growth or rollback (its retrace) in
        that event's `timing` with the traces so far, once per
        architecture."""
        self._traces[kind] += 1
        if self._retrace_event is None:
            return
        changed = self._growth_log[self._retrace_event]
        if isinstance(changed, GrowthEvent):
            timing = changed.timing
        else:  # a rollback's timing sits among its details
            timing = changed.details.setdefault("timing", {})
        if f"retrace_{kind}" not in timing:
            timing[f"retrace_{kind}"] = round(seconds, 4)
            timing[f"traces_{kind}"] = self._traces[kind]
