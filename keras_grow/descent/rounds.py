"""Firefly's width rounds, traced once per run where the net grows in place.

Each round of Firefly builds the over-grown net around the current one and
traces the step that optimises its directions and scores its gates
(`DescentSteps`). While the net grows in place (`keras_grow.in_place`:
the unit axes of every measured group are unknown to traces), the next
round's over-grown net differs from this one's only in sizes: the
neighbourhood moves there (`WidthNeighbourhood.move_to`), its directions
start anew, and the step traced in the first round runs on. A net whose
measured groups hold fixed shapes (a convolution's width, a body under a
distribution strategy) builds its neighbourhood and traces its step every
round, as before.
"""

from keras_grow import keras_compat
from keras_grow.descent.neighbourhood import WidthNeighbourhood
from keras_grow.descent.neighbourhood import gate_ends
from keras_grow.descent.neighbourhood import kernel_groups
from keras_grow.descent.neighbourhood import variables_by_key
from keras_grow.descent.scoring import DescentSteps
from keras_grow.transfer.weights import weight_shapes


def grows_in_place(body, spec):
    """bool. Whether every unit axis of the groups a width neighbourhood
    measures is unknown to traces in `body` (so a trace serves it at any
    width)."""
    groups, _ = kernel_groups(spec, weight_shapes(body))
    by_key = variables_by_key(body)
    return all(
        axis % len(by_key[key].shape) in keras_compat.unknown_axes(by_key[key])
        for group in groups
        for key, axis in group.unit_axes().items()
        if key in by_key
    )


class WidthRounds:
    """Firefly's width neighbourhood and its traced step, kept from round
    to round while the net grows in place.

    Args:
        loss_fn: callable `(y, logits) -> scalar`.
        epsilon: float. A new unit's step (`gate_ends`).
        split_epsilon: float. A split's step.
        learning_rate, optimizer, score_points, jit_compile: as
            `DescentSteps`.

    Attributes:
        traces: int. How many times a round's step was traced, over every
            round so far.
    """

    def __init__(
        self,
        loss_fn,
        *,
        epsilon,
        split_epsilon,
        learning_rate,
        optimizer,
        score_points,
        jit_compile,
    ):
        self.loss_fn = loss_fn
        self.epsilon, self.split_epsilon = epsilon, split_epsilon
        self._step_args = dict(
            learning_rate=learning_rate,
            optimizer=optimizer,
            score_points=score_points,
            jit_compile=jit_compile,
        )
        self._steps = None
        self._earlier_traces = 0

    @property
    def traces(self):
        current = 0 if self._steps is None else self._steps.traces
        return self._earlier_traces + current

    def start(self, body, spec, *, split, new_units, seed):
        """The `DescentSteps` of a round on `body`: the kept ones, moved
        and restarted, where they fit; new ones otherwise.

        Args:
            body, spec: the current net (`GrowableModel.body`, `.spec`).
            split, new_units, seed: as `WidthNeighbourhood`.

        Returns:
            `DescentSteps`, its neighbourhood the round's
            (`.neighbourhood`), its gates' ends `gate_ends` of it.
        """
        steps = self._steps
        if (
            steps is not None
            and steps.neighbourhood.split == bool(split)
            and steps.neighbourhood.move_to(body, spec, new_units=new_units, seed=seed)
        ):
            steps.restart(self._ends(steps.neighbourhood))
            return steps
        if steps is not None:
            self._earlier_traces += steps.traces
        neighbourhood = WidthNeighbourhood(
            body,
            spec,
            split=split,
            new_units=new_units,
            seed=seed,
            resizable=grows_in_place(body, spec),
        )
        self._steps = DescentSteps(
            neighbourhood,
            self.loss_fn,
            epsilon=self._ends(neighbourhood),
            **self._step_args,
        )
        return self._steps

    def _ends(self, neighbourhood):
        return gate_ends(neighbourhood.candidates, self.epsilon, self.split_epsilon)
