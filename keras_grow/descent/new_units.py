"""New units in closed form (GradMax, TINY) from one linearised gradient.

Take a unit group with one producer P (Dense, Conv1D or Conv2D). A new
unit with fan-in `alpha` (its slice of P's kernel, flattened: the patch it
reads) and fan-out `omega` (its slices of the consumers' kernels,
flattened and joined) changes the loss, to first order in `omega` and
with the unit taken as linear, by `<omega, J alpha>`. `J` (fan-out size x fan-in size)
is measured per batch with one backward pass of an over-grown net: for
each fan-in coordinate `i`, two new units whose fan-in is `+e_i` and
`-e_i` and whose fan-out is zero (so the net computes the current
function). The difference of their fan-out gradients is `J e_i`, exactly
for a ReLU (`relu(x) - relu(-x) = x`); for another odd activation it is a
scaled version. BatchNormalization runs in inference mode; new units'
BN is the identity there, and a depthwise conv passes them through.

- GradMax (Evci et al., ICLR 2022) picks the unit-norm directions that
  maximise the gradient norm of the zero side: the top singular vectors
  of `J`. With a zero fan-out (our default) the fan-in is the top right
  singular vector; the paper's zero fan-in takes the top left one as the
  fan-out. The paper assumes `f'(0) = 1`; TensorFlow's ReLU has
  `relu'(0) = 0`, so a zero fan-in unit behind a ReLU never gets a
  gradient: use `zero_side="fan_in"` with activations that do.
- TINY (Verbockhaven et al., 2024) minimises the first-order loss plus the
  squared size of the functional change, `2<omega, J alpha> + |omega|^2
  alpha' S alpha`, `S` the covariance of the fan-in patches, over rank-k
  sums of units: the SVD of `J S^-1/2` gives `alpha_k = S^-1/2 w_k` and
  `omega_k = -u_k`, each worth `sigma_k^2`. We leave out TINY's first step
  (projecting out what the existing weights' best update already does),
  and the quadratic term is exact for a Dense consumer; for a conv
  consumer it ignores the overlap of its kernel's positions.

Both are function-preserving at insertion with `epsilon = 0` (zero fan-out
or zero fan-in), and both rank units by `sigma_k^2` across groups.

References:
    Evci, Merrienboer, Unterthiner, Vladymyrov, Pedregosa, "GradMax:
    Growing Neural Networks using Gradient Information", ICLR 2022.
    Verbockhaven, Rudkiewicz, Chevallier, Charpiat, "Growing Tiny Networks:
    Spotting Expressivity Bottlenecks and Fixing Them Optimally", TMLR 2024.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_grow import in_place
from keras_grow import keras_compat
from keras_grow import losses
from keras_grow import multi_worker
from keras_grow import transfer
from keras_grow.build.structure import SLOTS
from keras_grow.build.structure import unit_view
from keras_grow.descent.neighbourhood import READERS
from keras_grow.descent.neighbourhood import kernel_groups
from keras_grow.transfer.blocks import identity_kernel
from keras_grow.transfer.weights import layer_variables
from keras_grow.transfer.weights import weight_shapes

METHODS = ("gradmax", "tiny")
ZERO_SIDES = ("fan_out", "fan_in")

# One-sided 95% quantiles of Student's t, by degrees of freedom.
_T95 = {
    1: 6.314,
    2: 2.920,
    3: 2.353,
    4: 2.132,
    5: 2.015,
    6: 1.943,
    7: 1.895,
    8: 1.860,
    9: 1.833,
    10: 1.812,
    15: 1.753,
    20: 1.725,
    30: 1.697,
}


def t_quantile_95(dof):
    """float. The one-sided 95% quantile of Student's t (table, rounded
    down to the nearest tabulated degrees of freedom; 1.645 past 30)."""
    if dof > 30:
        return 1.645
    return _T95[max(k for k in _T95 if k <= dof)]


@dataclasses.dataclass(frozen=True)
class GroupStatistics:
    """What `measure` finds for one unit group.

    Args:
        group: the `UnitGroup`.
        fan_in_shape: tuple. The shape of one unit's slice of P's kernel.
        fan_out_shapes: dict. `{consumer: shape of one unit's slice}`.
        jacobians: np.ndarray `(batches, fan_out, fan_in)`: `J` per batch.
        covariance: np.ndarray `(fan_in, fan_in)`: `S`, the second moment
            of the patches P reads.
    """

    group: object
    fan_in_shape: tuple
    fan_out_shapes: dict
    jacobians: np.ndarray
    covariance: np.ndarray


def closed_form_groups(spec, shapes):
    """(groups GradMax and TINY can grow, {skipped group: why}), given the
    body's `{layer: {variable: shape}}`."""
    kept = []
    measured, skipped = kernel_groups(spec, shapes)
    for group in measured:
        if len(group.producers) != 1:
            skipped[group.name] = (
                f"{len(group.producers)} producers (a summed stream) have no "
                "single fan-in"
            )
        else:
            kept.append(group)
    return kept, skipped


def _basis_units(shape):
    """Kernel slices `+e_i` then `-e_i` for every fan-in coordinate."""
    n = int(np.prod(shape))
    eye = np.eye(n, dtype=np.float32)
    return np.concatenate([eye, -eye], axis=1).reshape(tuple(shape) + (2 * n,))


def passthrough_kernels(shapes, group, count):
    """Depthwise kernels that carry `count` new units through unchanged
    (`shapes`: `{layer: {variable: shape}}`)."""
    return {
        name: identity_kernel(shapes[name]["kernel"][:-2] + (1, 1)).repeat(
            count, axis=-2
        )
        for name in group.passthrough
    }


def _over_grown(spec, groups, shapes):
    """The spec of the current net plus the basis units of every group,
    fan-out zero, and the morphisms that add them (`shapes`: the current
    net's `weight_shapes`)."""
    widths = list(spec.widths)
    morphisms = []
    # Later groups first: a group's producer then still has its own fan-in,
    # and an earlier group's new rows (zero fan-out) are added after.
    for group in reversed(groups):
        fan_in = shapes[group.producers[0]]["kernel"][:-1]
        count = 2 * int(np.prod(fan_in))
        widths[group.width_index] += count
        incoming = {group.producers[0]: _basis_units(fan_in)}
        incoming.update(passthrough_kernels(shapes, group, count))
        morphisms.append(transfer.AddUnits(group.name, count, incoming=incoming))
    return spec.with_widths(widths), morphisms


def _patches(inputs, layer):
    """The fan-in patches `layer` (Dense, Conv1D or Conv2D) reads, one per
    row, each flattened as the kernel's fan-in is: (rows, columns,
    channels), a Conv1D's (positions, channels)."""
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D)):
        sizes, strides = layer.kernel_size, layer.strides
        rates, padding = layer.dilation_rate, layer.padding
        if isinstance(layer, keras.layers.Conv1D):
            if padding == "causal":  # what Conv1D pads on the left
                left = (sizes[0] - 1) * rates[0]
                inputs = tf.pad(inputs, [[0, 0], [left, 0], [0, 0]])
                padding = "valid"
            # A sequence as an image of one row.
            inputs = inputs[:, None]
            sizes, strides, rates = (1, *sizes), (1, *strides), (1, *rates)
        patches = tf.image.extract_patches(
            inputs,
            sizes=[1, *sizes, 1],
            strides=[1, *strides, 1],
            rates=[1, *rates, 1],
            padding=padding.upper(),
        )
    else:
        patches = inputs
    # A body grown in place leaves its widths unknown to the trace.
    width = patches.shape[-1] or tf.shape(patches)[-1]
    return tf.reshape(patches, [-1, width])


def _row_weights(weights, patches):
    """Each patch row's weight: its example's sample weight (the mean of
    them where the weights have axes past the batch, as per-token weights
    do), so the covariances are of the distribution `fit` weighs."""
    if weights.shape.rank > 1:
        weights = tf.reduce_mean(weights, axis=list(range(1, weights.shape.rank)))
    rows_each = tf.shape(patches)[0] // tf.shape(weights)[0]
    return tf.repeat(tf.cast(weights, tf.float32), rows_each)


def measure(model, groups, batches, num_batches, loss_fn):
    """`GroupStatistics` of `groups` on `num_batches` batches.

    Args:
        model: the `GrowableModel` (its body is read, not changed).
        groups: list of single-producer `UnitGroup`s.
        batches: iterator of (images, labels) or (images, labels, sample
            weights) batches: the loss and the input covariances are
            weighted as `fit` weighs the examples.
        num_batches: int.
        loss_fn: `(labels, logits, sample_weight) -> scalar`, the compiled
            loss.

    Returns:
        list of `GroupStatistics`, in the order of `groups`.
    """
    return Measure(loss_fn)(model, groups, batches, num_batches)


@dataclasses.dataclass(frozen=True)
class _Traced:
    """A measuring function and what it was traced for."""

    key: tuple
    over_body: keras.Model
    step: object


class Measure:
    """`measure`, its traced function kept from round to round.

    While the model grows in place (`keras_grow.in_place`: the variables
    it had, resized, are still the ones its body reads), the next round's
    over-grown net differs from this round's only along unit axes that the
    trace does not know: its values go into the over-grown body built
    before, and the function traced before runs on. Anything else (a
    rebuilt body, a fixed-shape group grown, other groups) builds the
    over-grown body and traces anew.

    Args:
        loss_fn: `(labels, logits, sample_weight) -> scalar`, the compiled
            loss.

    Attributes:
        traces: int. How many times the measuring function was traced.
    """

    def __init__(self, loss_fn):
        self.loss_fn = loss_fn
        self.traces = 0
        self._traced = None

    def __call__(self, model, groups, batches, num_batches):
        """`GroupStatistics` of `groups` on `num_batches` batches (see
        `measure`)."""
        body = model.body
        shapes = weight_shapes(body)
        over_spec, morphisms = _over_grown(model.spec, groups, shapes)
        key = (
            tuple(g.name for g in groups),
            tuple(id(keras_compat.backing(v)) for v in body.variables),
        )
        if not self._refill(key, body, model.spec, morphisms):
            self._traced = self._trace(
                key, body, model.spec, groups, over_spec, morphisms
            )
        consumers = _consumers(groups)
        gradients = []
        moments = [0.0] * len(groups)
        mass = [0.0] * len(groups)  # the rows' summed weights
        for _ in range(num_batches):
            step = self._traced.step(*losses.batch_parts(next(batches)))
            grads, batch_moments, batch_mass = step
            gradients.append({c: g.numpy() for c, g in zip(consumers, grads)})
            for i, (m, w) in enumerate(zip(batch_moments, batch_mass)):
                moments[i] = moments[i] + m.numpy().astype(np.float64)
                mass[i] += float(w)
        covariances = [m / (w if w > 0 else 1.0) for m, w in zip(moments, mass)]
        gradients, covariances = _across_workers(
            gradients, covariances, consumers, body.distribute_strategy
        )
        return [
            _group_statistics(group, shapes, gradients, covariances[i])
            for i, group in enumerate(groups)
        ]

    def _refill(self, key, body, spec, morphisms):
        """Writes this round's over-grown values into the kept over-grown
        body; False (nothing written) where they do not fit it."""
        if self._traced is None or self._traced.key != key:
            return False
        weights = transfer.read_weights(body)
        weights, _ = transfer.apply_width_changes(
            weights, spec, {}, morphisms, np.random.default_rng()
        )
        pairs = [
            (variable, weights[layer.name][name])
            for layer in self._traced.over_body.layers
            for name, variable in layer_variables(layer).items()
        ]
        if not all(in_place.fits(v, value.shape) for v, value in pairs):
            return False
        for variable, value in pairs:
            keras_compat.assign_resized(variable, value)
        return True

    def _trace(self, key, body, spec, groups, over_spec, morphisms):
        """Builds the over-grown body (unit axes resizable, as a body
        grown in place) and the function measuring with it."""
        over_body = in_place.resizable_body(over_spec)
        transfer.transfer_weights(body, over_body, spec, over_spec, morphisms=morphisms)
        producers = [body.get_layer(g.producers[0]) for g in groups]
        probe = keras.Model(body.input, [layer.input for layer in producers])
        consumers = _consumers(groups)
        kernels = [over_body.get_layer(c).kernel for c in consumers]
        loss_fn = self.loss_fn

        @tf.function
        def step(images, labels, weights):
            self.traces += 1  # at trace time
            with tf.GradientTape() as tape:
                logits = over_body(images, training=False)
                loss = loss_fn(labels, logits, weights)
            inputs = probe(images, training=False)
            inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
            patches = [_patches(x, layer) for x, layer in zip(inputs, producers)]
            row_weights = [_row_weights(weights, p) for p in patches]
            moments = [
                tf.matmul(p * tf.cast(w, p.dtype)[:, None], p, transpose_a=True)
                for p, w in zip(patches, row_weights)
            ]
            mass = [tf.reduce_sum(w) for w in row_weights]  # float32: exact counts
            return tape.gradient(loss, kernels), moments, mass

        return _Traced(key, over_body, step)


def _across_workers(gradients, covariances, consumers, strategy):
    """Each batch's gradients and the covariances averaged over workers
    (batch b is then the union of every worker's batch b), so that every
    worker fits and counts the same units; unchanged on one worker."""
    if not multi_worker.is_multi_worker(strategy):
        return gradients, covariances
    flat = [g[c] for g in gradients for c in consumers] + list(covariances)
    flat = multi_worker.mean_across_workers(flat, strategy)
    per_batch = len(consumers)
    gradients = [
        dict(zip(consumers, flat[b * per_batch : (b + 1) * per_batch]))
        for b in range(len(gradients))
    ]
    return gradients, flat[len(gradients) * per_batch :]


def readers(group):
    """[(role, layer)] of the layers reading `group`'s units with a
    kernel's rows: its consumers, and Dense layers reading a flattened map
    of them."""
    return [(r, n) for r, n in group.members() if r in READERS]


def _consumers(groups):
    return sorted({name for g in groups for _, name in readers(g)})


def reader_view(role, kernel, width):
    """A reader's kernel (or its gradient) with one unit per index of axis
    -2: a flat consumer's rows as (positions, units), where `width` is the
    number of units the rows hold at each position."""
    return unit_view(kernel, SLOTS[role]["kernel"], width)


def _group_statistics(group, shapes, gradients, covariance):
    """`GroupStatistics` from the over-grown net's consumer-kernel gradients
    (one dict per batch): `J e_i` is the difference of the fan-out gradients
    of the `+e_i` and `-e_i` units."""
    width = shapes[group.producers[0]]["kernel"][-1]
    fan_in = shapes[group.producers[0]]["kernel"][:-1]
    n = int(np.prod(fan_in))
    fan_out_shapes, per_batch = {}, []
    for grads in gradients:
        blocks = []
        for role, consumer in readers(group):
            kernel = shapes[consumer]["kernel"]
            # The over-grown rows hold width + 2n units at each position.
            positions = kernel[-2] // width
            g = grads[consumer]
            g = reader_view(role, g, g.shape[-2] // positions)
            g = g[..., width : width + 2 * n, : kernel[-1]]
            # A unit's outgoing weights: every axis of the view but its own.
            fan_out_shapes[consumer] = g.shape[:-2] + g.shape[-1:]
            g = np.moveaxis(g, -2, 0).reshape(2 * n, -1)
            blocks.append((g[:n] - g[n:]).T)  # (fan_out part, fan_in)
        per_batch.append(np.concatenate(blocks, axis=0))
    return GroupStatistics(
        group=group,
        fan_in_shape=tuple(fan_in),
        fan_out_shapes=fan_out_shapes,
        jacobians=np.stack(per_batch).astype(np.float64),
        covariance=covariance,
    )


def _inverse_root(matrix, floor=1e-6):
    """`matrix^-1/2` of a symmetric PSD matrix, eigenvalues below `floor`
    times the largest left out (a pseudo-inverse root)."""
    values, vectors = np.linalg.eigh(matrix)
    keep = values > floor * max(values.max(), 1e-30)
    inverse = np.zeros_like(values)
    inverse[keep] = 1.0 / np.sqrt(values[keep])
    return (vectors * inverse) @ vectors.T


@dataclasses.dataclass(frozen=True)
class UnitDirections:
    """The best new units of one group, best first.

    Args:
        fan_in: np.ndarray `(k, fan_in)`. Unit-norm fan-in directions.
        fan_out: np.ndarray `(k, fan_out)`. Unit-norm fan-out directions.
        values: np.ndarray `(k,)`. Each unit's worth, `sigma_k^2`.
    """

    fan_in: np.ndarray
    fan_out: np.ndarray
    values: np.ndarray


def directions(stats, method, k, batches=None):
    """The `k` best units of a group by `method` ("gradmax" or "tiny").

    Args:
        stats: `GroupStatistics`.
        method: str.
        k: int. At most this many (fewer if `J` has lower rank).
        batches: sequence of int or `None`. The batches to fit on
            (default: all).

    Returns:
        `UnitDirections`.
    """
    jacobian = stats.jacobians if batches is None else stats.jacobians[list(batches)]
    jacobian = jacobian.mean(axis=0)
    if method == "tiny":
        whiten = _inverse_root(stats.covariance)
        u, s, vt = np.linalg.svd(jacobian @ whiten, full_matrices=False)
        fan_in = (whiten @ vt.T).T  # alpha_k = S^-1/2 w_k
        fan_out = -u.T  # omega_k = -u_k
    else:
        u, s, vt = np.linalg.svd(jacobian, full_matrices=False)
        fan_in, fan_out = vt, -u.T
    k = min(k, int(np.sum(s > 1e-12 * max(s.max(initial=0.0), 1e-30))))
    norms = np.linalg.norm(fan_in[:k], axis=1, keepdims=True)
    return UnitDirections(
        fan_in=fan_in[:k] / np.maximum(norms, 1e-30),
        fan_out=fan_out[:k],
        values=s[:k] ** 2,
    )


def significant(stats, units, batches):
    """bool per unit: is its first-order gain positive on `batches`?

    Each batch gives the gain along the unit's directions,
    `-<omega, J_b alpha>`; a one-sided t-test at 95% over the batches asks
    whether its mean is above zero. Fit the directions on other batches
    (`directions(..., batches=...)`): on the same ones the test is biased
    towards yes.

    Args:
        stats: `GroupStatistics`.
        units: `UnitDirections`.
        batches: sequence of int, at least 2.

    Returns:
        np.ndarray of bool, one per unit.
    """
    batches = list(batches)
    if len(batches) < 2:
        raise ValueError(
            f"A significance test needs at least 2 held-out batches; received "
            f"{len(batches)}. Raise `score_batches`."
        )
    jacobians = stats.jacobians[batches]  # (b, out, in)
    gains = -np.einsum("ko,boi,ki->kb", units.fan_out, jacobians, units.fan_in)
    mean = gains.mean(axis=1)
    error = gains.std(axis=1, ddof=1) / np.sqrt(len(batches))
    return mean > t_quantile_95(len(batches) - 1) * np.maximum(error, 1e-300)
