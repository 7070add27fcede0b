"""What a growth cost beyond `grow` itself: the retrace of Keras' steps.

`GrowableModel` times the first call of its train and test functions after
each architecture change (the call that traces them) and writes the
seconds to the change's log event (`timing["retrace_train"]`,
`timing["retrace_test"]`; see `GrowableModel.last_change`). A growth
callback prints them at the end of the epoch that paid them, one line per
growth it made.
"""

from keras_grow import growth_events


class RetraceReport:
    """Says, once per growth a callback made, what retracing cost.

    Args:
        callback_name: str. The `"callback"` field of the growth events to
            report (the callback's class name).

    Example:

    >>> report = RetraceReport("Firefly")
    >>> event = {"kind": "grow", "index": 0, "callback": "Firefly",
    ...          "to": "MLP-12", "timing": {"retrace_train": 1.5}}
    >>> report.line(event, epoch=3)
    'Epoch 4: retraced the train step for MLP-12: 1.50s'
    >>> report.line(event, epoch=4) is None  # said once
    True
    """

    def __init__(self, callback_name):
        self.callback_name = callback_name
        self._reported = set()

    def line(self, event, epoch):
        """The line for `event` (a model's `last_change`) if it is this
        callback's growth, its train-step retrace is timed and it was not
        reported yet; else `None`.

        Args:
            event: dict or `None`.
            epoch: int. The 0-based epoch that is ending.

        Returns:
            str or `None`.
        """
        if event is None:
            return None
        event = growth_events.from_dict(event)
        timing = getattr(event, "timing", {})
        if (
            event.kind != growth_events.GROW
            or event.callback != self.callback_name
            or event.index in self._reported
            or "retrace_train" not in timing
        ):
            return None
        self._reported.add(event.index)
        if "retrace_test" in timing:
            steps = (
                f"train and test steps for {event.to_notation}: "
                f"{timing['retrace_train']:.2f}s + {timing['retrace_test']:.2f}s"
            )
        else:
            steps = (
                f"train step for {event.to_notation}: {timing['retrace_train']:.2f}s"
            )
        count = ""
        if "traces_train" in timing:
            count = f" (train step traced {timing['traces_train']} times so far)"
        return f"Epoch {epoch + 1}: retraced the {steps}{count}"

    def print_line(self, model, epoch):
        """Prints `line(model.last_change, epoch)` when there is one."""
        line = self.line(getattr(model, "last_change", None), epoch)
        if line is not None:
            print(line)
