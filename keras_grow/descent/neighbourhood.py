"""Firefly's over-grown net: every unit split, new units added, all gated.

The neighbourhood of the current net is itself a (wider) net of the same
family. For each growable unit group of width W:

- units `0..W-1` keep their place; split unit `i` computes
  `sigma(w_i + e_i * delta_i)` there and its child, appended after the W
  originals, `sigma(w_i - e_i * delta_i)`; both carry half of `i`'s
  outgoing weights and copy its BN parameters and depthwise kernel;
- `m` new units follow, with incoming kernels `u_j` (and their own
  depthwise kernel), BN starting at 1/0/0/1 and outgoing weights
  `e_j * v_j`.

With every gate `e` at zero the over-grown net computes exactly the
current function. The over-grown graph is built from a spec, and its
variables are fed as tensors computed from the current weights, the
directions and the gates (`stateless_call`), so gradients reach both the
directions (step one) and the gates (the scores).

Reference:
    Wu, Liu, Stone, Liu, "Firefly Neural Architecture Descent: a General
    Approach for Growing Neural Networks", NeurIPS 2020.
"""

import collections
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_grow import build
from keras_grow import keras_compat
from keras_grow.build.structure import SLOTS
from keras_grow.build.structure import UNIT_AXES
from keras_grow.build.structure import flat_view
from keras_grow.build.structure import unit_view
from keras_grow.specs.graph_analysis import ROLES
from keras_grow.transfer import unit_ops
from keras_grow.transfer.weights import layer_variables
from keras_grow.transfer.weights import weight_shapes
from keras_grow.transfer.width import NEW_NORM_VALUES
from keras_grow.transfer.width import along
from keras_grow.transfer.width import random_with_norms
from keras_grow.transfer.width import unit_norms


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One way to grow one unit group by one unit.

    Args:
        group: str. The `UnitGroup`'s name.
        kind: str. `"split"` (unit `unit` splits) or `"new"` (new unit
            number `unit`).
        unit: int. The split unit's index, or the new unit's number.
        width_index: int. The spec width entry the group follows.
    """

    group: str
    kind: str
    unit: int
    width_index: int


def growable_groups(spec):
    """The unit groups width growth may change, with a clear error if none.

    Raises:
        ValueError: for a spec whose widths cannot grow unit by unit (a
            bottleneck ResNet, whose stream is 4x its stage width).
    """
    if spec.units_per_width != 1:
        raise ValueError(
            f"Width growth needs every unit group as wide as its width entry; "
            f"{spec.family} streams are {spec.units_per_width}x their stage width. "
            f"Use a Basic or Plain staged net, VGG, MobileNetV1 or MLP."
        )
    groups = [g for g in build.unit_groups(spec) if g.width_index is not None]
    if not groups:
        raise ValueError(f"{spec.notation} has no unit group a width controls.")
    return groups


# The roles whose layers Firefly's neighbourhood and the closed forms read
# as kernels: units written by a kernel's last axis, read by its rows (a
# flat consumer's rows hold each unit at every position of the map).
READERS = ("consumers", "flat_consumers")
KERNEL_ROLES = ("producers", "norms", "passthrough") + READERS
_OTHER_ROLES = {
    "separable": "the inputs of the SeparableConv2D",
    "attention_in": "the queries', keys' and values' inputs of",
    "attention_out": "the output projection of",
    "heads": "the heads of",
    "encoder_feedforward": "the feed-forward inside",
    "recurrent_in": "the inputs of the RNN",
    "recurrent": "the state of the RNN",
    "recurrent_state": "the state of the RNN",
}


def kernel_groups(spec, shapes):
    """(the growable groups Firefly, GradMax and TINY measure, `{skipped
    group: why}`).

    They measure units that kernels write and read (Dense, Conv,
    DepthwiseConv2D, normalisations); attention heads, SeparableConv2D
    inputs and embedding tables are grown by the other callbacks.

    Args:
        spec: the spec.
        shapes: `{layer: {variable: shape}}` of its body.
    """
    kept, skipped = [], {}
    for group in growable_groups(spec):
        others = [(r, n) for r, n in group.members() if r not in KERNEL_ROLES]
        unmeasured = [n for n in group.producers if "kernel" not in shapes[n]]
        if others:
            role, name = others[0]
            skipped[group.name] = (
                f"its units are {_OTHER_ROLES[role]} '{name}', which this "
                "method does not measure"
            )
        elif unmeasured:
            name = unmeasured[0]
            how = (
                "with a pointwise kernel after a depthwise one (a SeparableConv2D)"
                if "pointwise_kernel" in shapes[name]
                else "from a table (an embedding)"
            )
            skipped[group.name] = (
                f"'{name}' writes its units {how}, not a kernel, which this "
                "method does not measure"
            )
        else:
            kept.append(group)
    return kept, skipped


def variables_by_key(model):
    """`{(layer name, variable key): variable}` of a graph's layers."""
    return {
        (layer.name, key): v
        for layer in model.layers
        for key, v in layer_variables(layer).items()
    }


def shaped_value(variable):
    """The variable's value with the shape Keras records: a body grown in
    place (`keras_grow.in_place`) leaves its unit axes unknown to traces,
    and the functions here are traced per round, for one shape."""
    return tf.ensure_shape(variable.value, variable.shape)


def call_with_values(over_body, images, values, fallback, training=False):
    """Runs `over_body` with its variables replaced by tensors.

    A value's shape may leave unit axes unknown (a trace that serves every
    width); the variable it replaces is taken to have that shape.

    Args:
        over_body: the graph to run (its own variables are read only for
            state no layer holds as a weight, e.g. a Dropout's seed).
        images: the input batch.
        values: dict. `{(layer, variable): tensor}` for replaced variables.
        fallback: dict. `{(layer, variable): variable}` read for the others.
        training: bool. Defaults to `False` (BN in inference mode).
    """

    key_of = {id(v): key for key, v in variables_by_key(over_body).items()}

    def lookup(variables):
        out = []
        for v in variables:
            key = key_of.get(id(v))
            if key is None:
                # State no layer lists as a weight (a Dropout's seed
                # generator): nothing learned, the over-grown net's own.
                out.append(v.value)
            else:
                out.append(
                    values[key] if key in values else shaped_value(fallback[key])
                )
        return out

    trainable = lookup(over_body.trainable_variables)
    non_trainable = lookup(over_body.non_trainable_variables)
    pairs = list(zip(over_body.trainable_variables, trainable))
    pairs += list(zip(over_body.non_trainable_variables, non_trainable))
    with keras_compat.shapes_of(pairs):
        logits, _ = over_body.stateless_call(
            trainable, non_trainable, images, training=training
        )
    return logits


@dataclasses.dataclass
class _Param:
    """A direction the step-one optimiser trains, with its norm ball."""

    variable: object
    axis: int  # the unit axis
    bound: np.ndarray  # max norm per unit
    limit: object  # `bound` as the traced projection reads it


@dataclasses.dataclass(frozen=True)
class _Layout:
    """One group's part of an evaluation of the over-grown net: its gates,
    its width and its new units (ints, or tensors in a trace that serves
    every width)."""

    split_gates: object
    new_gates: object
    width: object
    new_units: object


class WidthNeighbourhood:
    """The over-grown net around `body`, differentiable in directions and gates.

    Args:
        body: the current functional graph (`GrowableModel.body`); its
            variables are read live, never copied.
        spec: the spec `body` was built from.
        split: bool. Whether every existing unit is a split candidate.
        new_units: int. New-unit candidates per group (m'), >= 0.
        seed: int or `None`. Seeds the directions' starting values.
        resizable: bool. Whether the functions traced on this
            neighbourhood serve it at other widths too (`move_to`): its
            directions' axes are left unknown to traces, as the unit axes
            of a body grown in place (`keras_grow.in_place`), and every
            width and offset is read from the values' shapes. Defaults to
            `False`.

    Attributes:
        candidates: list of `Candidate`, in gate order.
        groups: list of the growable `UnitGroup`s.
        params: list of the trainable direction variables.
    """

    def __init__(
        self, body, spec, *, split=True, new_units=1, seed=None, resizable=False
    ):
        self.split, self.resizable = bool(split), bool(resizable)
        self._start(body, spec, new_units)
        self.over_body = build.build_body(self.over_spec)
        if self.resizable:
            # Its layers will take other widths than they were built for
            # (`move_to`), which their input specs would refuse.
            for layer in self.over_body.layers:
                layer.input_spec = None
        self._params = {}
        for key, value, axis, bound in self._directions(seed):
            self._add_param(key, value, axis, bound)
        self.params = [p.variable for p in self._params.values()]

    def _start(self, body, spec, new_units):
        """Sets everything that depends on the current net but the
        over-grown body and the directions."""
        if isinstance(new_units, bool) or not isinstance(new_units, int):
            raise ValueError(
                f"`new_units` must be an int >= 0; received {new_units!r}."
            )
        if new_units < 0 or (not self.split and new_units == 0):
            raise ValueError(
                f"The neighbourhood needs split candidates or new units; "
                f"received split={self.split}, new_units={new_units}."
            )
        self.body, self.spec, self.new_units = body, spec, new_units
        shapes = weight_shapes(body)
        self.groups, self.skipped = kernel_groups(spec, shapes)
        if not self.groups:
            raise ValueError(
                f"{spec.notation} has no unit group this neighbourhood can "
                f"measure: {self.skipped}."
            )
        self._by_key = variables_by_key(body)
        self.widths = {g.name: g.width(shapes) for g in self.groups}
        self._check_widths()
        self._roles = self._layer_roles()
        self.candidates = self._enumerate_candidates()
        over_widths = list(spec.widths)
        for g in self.groups:
            over_widths[g.width_index] = self.over_width(g.name)
        self.over_spec = spec.with_widths(over_widths)

    def move_to(self, body, spec, *, new_units, seed=None):
        """Becomes the neighbourhood of `body`, a later state of the net
        this one was built around, keeping its over-grown body and
        directions' variables, so that functions traced on it run on.

        Only a resizable neighbourhood moves, and only to a body that
        reads the variables this one reads (the net grew in place), with
        the same groups and kinds of candidates. The directions start anew
        as a neighbourhood built there with `seed` would start them.

        Returns:
            bool. Whether it moved; if not (or if it raises: a body its
            spec does not describe), nothing changed.
        """
        if not self.resizable:
            return False
        before = (self._structure(), self.new_units > 0)
        previous = (self.body, self.spec, self.new_units)
        try:
            self._start(body, spec, new_units)
        except Exception:
            self._start(*previous)
            raise
        if before != (self._structure(), new_units > 0):
            self._start(*previous)
            return False
        for key, value, _, bound in self._directions(seed):
            param = self._params[key]
            keras_compat.assign_resized(param.variable, value)
            param.bound = np.asarray(bound, np.float32)
            param.limit.assign(param.bound)
        return True

    def _structure(self):
        """What a traced function on this neighbourhood depends on but
        sizes: the groups, the layers' roles and the variables read."""
        return (
            tuple(g.name for g in self.groups),
            tuple(
                sorted(
                    (name, tuple(sorted(roles.items())))
                    for name, roles in self._roles.items()
                )
            ),
            tuple(
                (key, id(keras_compat.backing(v)))
                for key, v in sorted(self._by_key.items())
            ),
        )

    # --- structure -----------------------------------------------------

    def _value(self, layer, var):
        return self._by_key[(layer, var)].numpy()

    def _check_widths(self):
        for g in self.groups:
            if self.widths[g.name] != self.spec.widths[g.width_index]:
                raise ValueError(
                    f"Group '{g.name}' is {self.widths[g.name]} wide but its "
                    f"width entry {g.width_index} is "
                    f"{self.spec.widths[g.width_index]}; the body and spec differ."
                )

    def _layer_roles(self):
        """`{layer: {role: group}}`, roles in `ROLES` order."""
        roles = collections.defaultdict(dict)
        for role in ROLES:
            for g in self.groups:
                for name in getattr(g, role):
                    roles[name][role] = g.name
        return roles

    def _enumerate_candidates(self):
        """The candidates in gate order: per group, its splits, then its
        new units (`_layout` reads the gates in this order)."""
        candidates = []
        for g in self.groups:
            if self.split:
                candidates += [
                    Candidate(g.name, "split", i, g.width_index)
                    for i in range(self.widths[g.name])
                ]
            candidates += [
                Candidate(g.name, "new", j, g.width_index)
                for j in range(self.new_units)
            ]
        return candidates

    def over_width(self, group):
        """int. The group's width in the over-grown net."""
        width = self.widths[group]
        return width * (2 if self.split else 1) + self.new_units

    # --- directions ----------------------------------------------------

    def _add_param(self, key, value, axis, bound):
        name = "_".join(key).replace("/", "_")
        variable = keras.Variable(value, name=name)
        bound = np.asarray(bound, np.float32)
        if self.resizable:
            # Every axis may change size from round to round.
            keras_compat.make_axes_unknown(variable, range(np.ndim(value)))
            limit = tf.Variable(bound, shape=[None], trainable=False, name=name)
        else:
            limit = tf.constant(bound)
        self._params[key] = _Param(variable, axis, bound, limit)

    def _directions(self, seed):
        """[(key, starting value, unit axis, norm bound)] of the
        directions. Each starts random, rescaled to its ball's radius: a
        split's delta to its unit's norm, a new unit's weights to the
        median unit norm of the layer."""
        rng = np.random.default_rng(seed)
        m = self.new_units
        directions = []
        for g in self.groups:
            for role, name in g.members():
                axis = UNIT_AXES[role].get("kernel")
                if axis is None:
                    continue
                kernel = unit_view(
                    self._value(name, "kernel"),
                    SLOTS[role]["kernel"],
                    self.widths[g.name],
                )
                norms = unit_norms(kernel, axis)
                if role == "producers" and self.split:
                    value = random_with_norms(rng, kernel.shape, axis, norms)
                    directions.append((("delta", g.name, name), value, axis, norms))
                if m:
                    kind = "new_out" if role in READERS else "new_in"
                    typical = np.full(m, np.median(norms))
                    shape = self._new_shape(name, kernel.shape, axis, role)
                    value = random_with_norms(rng, shape, axis, typical)
                    directions.append(((kind, g.name, name), value, axis, typical))
        return directions

    def _new_shape(self, name, shape, axis, role):
        """Shape of `m` new units' slice of a kernel."""
        shape = list(shape)
        shape[axis] = self.new_units
        if role in READERS and "producers" in self._roles.get(name, {}):
            # Columns: the consumer's own units, then its own new units;
            # split children reuse their parent's column (see `_in_axis`).
            shape[-1] += self.new_units
        return tuple(shape)

    def project(self):
        """Clips every direction back into its norm ball (in place)."""
        for p in self._params.values():
            value = p.variable.value
            axes = [
                a for a in range(len(value.shape)) if a != p.axis % len(value.shape)
            ]
            norms = tf.sqrt(tf.reduce_sum(tf.square(value), axis=axes, keepdims=True))
            bshape = [1] * len(value.shape)
            bshape[p.axis] = -1
            bound = tf.reshape(p.limit, bshape)
            p.variable.assign(value * tf.minimum(1.0, bound / tf.maximum(norms, 1e-12)))

    # --- the over-grown weights ---------------------------------------

    def _param(self, kind, group, layer):
        return self._params[(kind, group, layer)].variable.value

    def _read(self, variable):
        # A resizable neighbourhood's traces must not fix the body's widths.
        return variable.value if self.resizable else shaped_value(variable)

    def _layout(self, gates):
        """`{group: _Layout}` of one evaluation. Widths and new-unit counts
        are read from the shapes of the values the evaluation reads: ints
        where those are known, tensors in a resizable neighbourhood's
        trace, which then serves every width."""
        layout, start = {}, 0
        for g in self.groups:
            name = g.producers[0]
            kernel = self._read(self._by_key[(name, "kernel")])
            width = unit_ops.size(kernel, UNIT_AXES["producers"]["kernel"])
            new = 0
            if self.new_units:
                p = next(
                    p
                    for (kind, group, _), p in self._params.items()
                    if kind != "delta" and group == g.name
                )
                new = unit_ops.size(p.variable.value, p.axis)
            split = width if self.split else 0
            layout[g.name] = _Layout(
                split_gates=gates[start : start + split],
                new_gates=gates[start + split : start + split + new],
                width=width,
                new_units=new,
            )
            start = start + split + new
        return layout

    def _split_units(self):
        # `None`: every unit, however many a trace sees.
        return None if self.split else ()

    def _out_axis(self, tensor, role, group, layer, layout, axis):
        """Split children and new units along a kernel's output unit axis
        (a depthwise layer's children copy their parent's kernel)."""
        if role == "producers" and self.split:
            delta = self._param("delta", group, layer)
            tensor = unit_ops.split(
                tensor, axis, None, delta=delta, scale=layout[group].split_gates
            )
        else:
            tensor = unit_ops.split(tensor, axis, self._split_units())
        if self.new_units:
            tensor = unit_ops.append(tensor, axis, self._param("new_in", group, layer))
        return tensor

    def _in_axis(self, kernel, group, layer, layout, axis):
        """Halved rows for split units, gated rows for new units."""
        kernel = unit_ops.split(kernel, axis, self._split_units(), halve=True)
        if self.new_units:
            rows = self._param("new_out", group, layer)
            produced = self._roles.get(layer, {}).get("producers")
            if produced is not None and self.split:
                # A split child of the consumer's own group reads the new
                # units exactly as its parent does, so that at a zero gate
                # the two stay identical (and merge back losslessly).
                width = layout[produced].width
                parent = rows[..., :width]
                rows = tf.concat([parent, parent, rows[..., width:]], axis=-1)
            kernel = unit_ops.append(kernel, axis, rows, scale=layout[group].new_gates)
        return kernel

    def _extend(self, vector, group, fill, layout, axis):
        vector = unit_ops.split(vector, axis, self._split_units())
        if self.new_units:
            vector = unit_ops.fill(vector, axis, layout[group].new_units, fill)
        return vector

    def _grown(self, value, role, var, layer, layout):
        """`value` with the over-grown units of the group `layer` plays
        `role` in along their axis (`UNIT_AXES`)."""
        group, axis = self._roles[layer][role], UNIT_AXES[role][var]
        if role in READERS:
            slot = SLOTS[role][var]
            view = _unit_view(value, slot, layout[group].width)
            return _flat_view(self._in_axis(view, group, layer, layout, axis), slot)
        if var == "kernel":
            return self._out_axis(value, role, group, layer, layout, axis)
        fill = NEW_NORM_VALUES[var] if role == "norms" else 0.0
        return self._extend(value, group, fill, layout, axis)

    def layer_values(self, gates):
        """`{(layer, variable): tensor}` of the over-grown net at `gates`."""
        layout = self._layout(gates)
        values = {}
        for (layer, var), variable in self._by_key.items():
            value = self._read(variable)
            for role in self._roles.get(layer, {}):
                if var in UNIT_AXES[role]:
                    value = self._grown(value, role, var, layer, layout)
            values[(layer, var)] = value
        return values

    def logits(self, images, gates, training=False):
        """The over-grown net's logits at `gates` (BN in inference mode)."""
        return call_with_values(
            self.over_body, images, self.layer_values(gates), {}, training
        )

    def zero_gates(self):
        return tf.zeros([len(self.candidates)], tf.float32)


def _unit_view(kernel, slot, width):
    """`structure.unit_view` of a reader's kernel as a tensor, whose width
    a trace may leave unknown: an interleaved (P * C, out) kernel as (P, C,
    out)."""
    if not slot.interleaved:
        return kernel
    out = kernel.shape[-1] if kernel.shape[-1] is not None else tf.shape(kernel)[-1]
    return tf.reshape(kernel, [-1, width, out])


def _flat_view(view, slot):
    """`_unit_view` undone: (P, C', out) back to (P * C', out)."""
    if not slot.interleaved:
        return view
    out = view.shape[-1] if view.shape[-1] is not None else tf.shape(view)[-1]
    return tf.reshape(view, [-1, out])


def _keep_indices(width, split, new_units, split_kept, new_kept):
    """Over-grown positions that survive: originals, kept children, kept new."""
    children = [width + i for i in sorted(split_kept)]
    base = width * (2 if split else 1)
    return np.array(
        list(range(width)) + children + [base + j for j in sorted(new_kept)]
    )


def gate_ends(candidates, epsilon, split_epsilon=None):
    """Each candidate's step: where its gate's path ends and what it gets.

    A functional neighbourhood of radius `epsilon` admits a new unit (whose
    outgoing weights are scaled by the gate: a first-order change of the
    function) at gate `epsilon`, and a split (+/- the gate times its
    direction: the first-order terms cancel, the change is second order in
    the gate) at gate `sqrt(epsilon)`. So both kinds change the function by
    O(epsilon) and their scores (estimated loss changes) compete on one
    scale. With one gate for both, split scores came out about 100x
    smaller than new units' and splits were rarely chosen
    (docs/firefly.md).

    Args:
        candidates: sequence of `Candidate` (or anything with `kind`).
        epsilon: float. The step of every non-split candidate.
        split_epsilon: float or `None`. The step of split candidates;
            `None` means `sqrt(epsilon)`.

    Returns:
        np.ndarray of float32, one step per candidate.
    """
    if split_epsilon is None:
        split_epsilon = float(np.sqrt(epsilon))
    return np.array(
        [split_epsilon if c.kind == "split" else epsilon for c in candidates],
        np.float32,
    )


def realise(neighbourhood, chosen, epsilon):
    """The grown net: the chosen candidates switched on at `epsilon`.

    Every gate of a chosen candidate is set to its `epsilon` (a float for
    all, or one per candidate, as `gate_ends` gives), every other gate to
    zero; the over-grown weights are evaluated there and compacted:
    unchosen new units are dropped (their outgoing weights are zero), an
    unchosen split's child is merged back into its parent (the two are
    identical at a zero gate, so their halved outgoing rows add back up).
    The grown net therefore computes exactly what the over-grown net
    computes at those gates.

    Args:
        neighbourhood: a `WidthNeighbourhood`.
        chosen: iterable of candidate indices (into `candidates`).
        epsilon: float, or array of one float per candidate. The gate
            values of the chosen candidates.

    Returns:
        (new spec, `{layer: {variable: np.ndarray}}` for every layer).
    """
    n = neighbourhood
    chosen = sorted(set(int(c) for c in chosen))
    keep, kept_split = _kept_units(n, chosen)
    widths = list(n.spec.widths)
    for g in n.groups:
        widths[g.width_index] = len(keep[g.name])
    for g in n.groups:  # groups sharing a width entry must agree
        if widths[g.width_index] != len(keep[g.name]):
            raise ValueError(
                f"Groups following width entry {g.width_index} grew unevenly; "
                f"choose the same number of candidates for each of them."
            )
    ends = np.broadcast_to(np.asarray(epsilon, np.float32), (len(n.candidates),))
    gates = np.zeros(len(n.candidates), np.float32)
    gates[chosen] = ends[chosen]
    over = {k: v.numpy() for k, v in n.layer_values(tf.constant(gates)).items()}
    values = collections.defaultdict(dict)
    for (layer, var), value in over.items():
        for role, group in n._roles.get(layer, {}).items():
            value = _compact(
                n,
                value,
                SLOTS[role].get(var),
                role,
                group,
                keep[group],
                kept_split[group],
            )
        values[layer][var] = value
    return n.spec.with_widths(widths), dict(values)


def _kept_units(n, chosen):
    """`({group: unit indices of the over-grown layer to keep}, {group:
    parents whose split child is chosen})` for the `chosen` candidates."""
    kept_split = collections.defaultdict(list)
    kept_new = collections.defaultdict(list)
    for index in chosen:
        c = n.candidates[index]
        (kept_split if c.kind == "split" else kept_new)[c.group].append(c.unit)
    keep = {
        g.name: _keep_indices(
            n.widths[g.name], n.split, n.new_units, kept_split[g.name], kept_new[g.name]
        )
        for g in n.groups
    }
    return keep, kept_split


def _compact(n, value, slot, role, group, keep, kept_split):
    """One over-grown variable's `value` with only the `keep` units of
    `group` along `slot`'s axis (unchanged where `slot` is `None`: the
    variable holds no unit of the group in this role)."""
    if slot is None:
        return value
    value = unit_view(value, slot, n.over_width(group))
    kept = np.take(value, keep, axis=slot.axis)
    if role in READERS and n.split:
        # An unchosen child's halved rows add back to its parent's.
        width = n.widths[group]
        merged = sorted(set(range(width)) - set(kept_split))
        children = np.take(value, [width + i for i in merged], axis=slot.axis)
        kept[along(kept.ndim, slot.axis, merged)] += children
    return flat_view(kept, slot)
