"""Firefly's depth candidates: new layers in the epsilon-neighbourhood of the
identity, one per stage, each gated by its own gate.

- A single layer (VGG conv-BN-ReLU, MLP Dense-ReLU, plain staged
  conv-BN-ReLU) appended at the end of its stage computes
  `relu(norm((I + e * D) x))` with `norm` the identity in inference mode.
  Its input is a ReLU output, so at `e = 0` it is exactly the identity.
  `D` is trained in step one (each output unit's row within norm 1, the
  identity's own norm).
- A residual block appended at the end of its stage adds
  `e * block(x)`: its last BN's gamma and beta are `e` times trained
  directions (within norm 1 per channel); its convs keep He-normal draws.
- A user graph's repeated block (`depth="blocks"`, e.g. a transformer
  layer) is added after its chain's last block. Its branches' last
  projections (`Block.zero_layers`, e.g. attention's output and the
  feed-forward's second Dense) are `e` times trained directions (each
  output unit's kernel column and bias within norm 1); every other weight
  keeps Keras' own start. At `e = 0` it is the identity, as the block
  `initializer="identity"` adds.

The gates are scored exactly like width candidates (`DescentSteps`), on the
net before this round's width growth; the chosen layers are then installed
at the grown widths (`realise_layers`), extra channels passing through.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_grow import build
from keras_grow.descent.neighbourhood import call_with_values
from keras_grow.descent.neighbourhood import variables_by_key
from keras_grow.specs.lowering import BN_EPSILON
from keras_grow.transfer import calibration
from keras_grow.transfer.blocks import check_new_blocks
from keras_grow.transfer.blocks import identity_kernel
from keras_grow.transfer.blocks import output_variables
from keras_grow.transfer.blocks import pass_through_norm
from keras_grow.transfer.weights import layer_variables
from keras_grow.transfer.weights import weight_shapes
from keras_grow.transfer.width import NEW_NORM_VALUES
from keras_grow.transfer.width import he_normal


def check_depth_growable(spec):
    """Raises a ValueError if Firefly cannot add layers to `spec`."""
    if not spec.depth_stages:
        raise ValueError(
            f"grow_depth=True needs a VGG, MLP or staged (ResNet/plain) spec, "
            f"or a user graph; {spec.family} has a fixed layout of blocks. "
            f"Use grow_depth=False."
        )
    if getattr(spec, "depth", None) == "blocks":
        # The gate scales the branches' last projections: a block none of
        # whose branches can be zeroed has nothing to gate.
        for stage in range(spec.depth_stages):
            added = build.new_blocks(spec, spec.with_block_added(stage))
            check_new_blocks(added, "identity")


class DepthNeighbourhood:
    """The current net with one gated new layer per stage.

    Args:
        body: the current graph (variables read live).
        spec: its spec (VGG, MLP or staged).
        seed: int or `None`. Seeds directions and residual-block convs.

    Attributes:
        candidates: list of int, the stage of each gate.
        params: the trainable directions.
    """

    def __init__(self, body, spec, seed=None):
        check_depth_growable(spec)
        rng = np.random.default_rng(seed)
        self.spec = spec
        self.candidates = list(range(spec.depth_stages))
        deep = spec
        for stage in self.candidates:
            deep = deep.with_block_added(stage)
        self.blocks = build.new_blocks(spec, deep)
        self.over_body = build.build_body(deep, seed=_graph_seed(spec, rng))
        self._by_key = variables_by_key(body)
        shapes = {
            (layer, key): shape
            for layer, variables in weight_shapes(self.over_body).items()
            for key, shape in variables.items()
        }
        self._fixed, self._directions, self._outputs = {}, {}, {}
        # Directions kept jointly within norm 1 per output unit (`project`).
        self._balls = []
        for block in self.blocks:
            for (layer, var), shape in shapes.items():
                if _in_block(block, layer):
                    self._fixed[(layer, var)] = _start_value(
                        block, self.over_body.get_layer(layer), var, shape, rng
                    )
            if block.zero_layers:
                outputs = _output_directions(self.over_body, block, rng)
                self._outputs.update(outputs)
                self._balls += [tuple(layer.values()) for layer in outputs.values()]
            elif block.residual:
                width = shapes[(block.last_norm, "gamma")][0]
                ball = tuple(
                    keras.Variable(np.full(width, value, np.float32))
                    for value in (1.0, 0.0)
                )
                self._directions[(block.name, "gamma")] = ball[0]
                self._directions[(block.name, "beta")] = ball[1]
                self._balls.append(ball)
            else:
                kernel = shapes[(block.convs[0], "kernel")]
                draw = rng.normal(size=kernel).astype(np.float32)
                draw *= 0.1 / np.linalg.norm(draw.reshape(-1, kernel[-1]), axis=0)
                direction = keras.Variable(draw)
                self._directions[(block.name, "kernel")] = direction
                self._balls.append((direction,))
        self.params = [variable for ball in self._balls for variable in ball]

    def project(self):
        """Keeps each output unit's direction within norm 1: a plain
        layer's kernel column, a residual block's (gamma, beta) pair, a
        user graph block's output projection's kernel column and bias."""
        for ball in self._balls:
            norms = tf.maximum(_unit_norms(ball), 1.0)
            for variable in ball:
                variable.assign(variable.value / norms)

    def gated_values(self, block, gate):
        """`{(layer, var): tensor}` of one new block at `gate`."""
        values = {
            k: tf.constant(v) for k, v in self._fixed.items() if _in_block(block, k[0])
        }
        if block.zero_layers:
            for layer in block.zero_layers:
                for var, direction in self._outputs[layer].items():
                    values[(layer, var)] = gate * direction.value
        elif block.residual:
            for var in ("gamma", "beta"):
                values[(block.last_norm, var)] = (
                    gate * self._directions[(block.name, var)].value
                )
        else:
            key = (block.convs[0], "kernel")
            values[key] = (
                values[key] + gate * self._directions[(block.name, "kernel")].value
            )
        return values

    def logits(self, images, gates, training=False):
        values = {}
        for index, block in enumerate(self.blocks):
            values.update(self.gated_values(block, gates[index]))
        return call_with_values(self.over_body, images, values, self._by_key, training)

    def realise_layers(self, stages, grown_spec, epsilon, seed=None):
        """The deeper spec and the values of its new layers.

        Args:
            stages: iterable of int. Stages that get their new layer.
            grown_spec: the spec after this round's width growth (the new
                layers take its widths; channels the directions do not
                cover pass through unchanged).
            epsilon: float. The gate value the new layers get.
            seed: int or `None`. For residual convs' extra entries.

        Returns:
            (deeper spec, `{layer: {variable: np.ndarray}}` for the new
            layers only).
        """
        rng = np.random.default_rng(seed)
        deep = grown_spec
        for stage in sorted(stages):
            deep = deep.with_block_added(stage)
        body = build.build_body(deep, seed=_graph_seed(deep, rng))
        chosen = {self.blocks[s].name for s in stages}
        values = {}
        for block in build.new_blocks(grown_spec, deep):
            if block.name not in chosen:
                continue
            mine = {
                k: v.numpy()
                for k, v in self.gated_values(
                    block, tf.constant(epsilon, tf.float32)
                ).items()
            }
            for layer in body.layers:
                if not _in_block(block, layer.name) or not layer.weights:
                    continue
                values[layer.name] = {
                    key: _embed(
                        mine[(layer.name, key)],
                        _start_value(block, layer, key, tuple(v.shape), rng),
                    )
                    for key, v in layer_variables(layer).items()
                }
        return deep, values


def _in_block(block, layer):
    """Whether layer `layer` belongs to `block`."""
    if block.layers:
        return layer in block.layers
    return layer.startswith(block.name + "_")


def _graph_seed(spec, rng):
    """A seed for the Keras initialisers of a user graph's new blocks (their
    start values are Keras' own); `None` where every start is drawn here."""
    if getattr(spec, "depth", None) == "blocks":
        return int(rng.integers(2**31))
    return None


def _start_value(block, layer, var, shape, rng):
    """The value variable `var` of `layer` in new block `block` starts at,
    before the gate's direction is added."""
    if block.zero_layers:
        if layer.name in block.zero_layers and var in output_variables(layer):
            return np.zeros(shape, np.float32)
        return np.array(layer_variables(layer)[var].numpy())
    if block.residual:
        if var == "kernel":
            return he_normal(rng, shape, int(np.prod(shape[:-1]))).astype(np.float32)
        if var == "bias":
            return np.zeros(shape, np.float32)
        return np.full(shape, NEW_NORM_VALUES[var], np.float32)
    if var == "kernel":
        return identity_kernel(shape)
    if var == "bias":
        return np.zeros(shape, np.float32)
    return pass_through_norm(shape[0], BN_EPSILON)[var]


def _output_directions(body, block, rng):
    """`{layer: {variable key: keras.Variable}}`: a direction for each output
    weight of the block's zero layers, each output unit's column (kernel and
    bias together) drawn at norm 0.1."""
    out = {}
    for name in block.zero_layers:
        draws = {
            key: rng.normal(size=tuple(variable.shape)).astype(np.float32)
            for key, variable in output_variables(body.get_layer(name)).items()
        }
        scale = 0.1 / _unit_norms(draws.values()).numpy()
        out[name] = {key: keras.Variable(d * scale) for key, d in draws.items()}
    return out


def _unit_norms(tensors):
    """The norm of each output unit (last axis) over several weights."""
    total = 0.0
    for t in tensors:
        t = tf.convert_to_tensor(getattr(t, "value", t))
        total += tf.reduce_sum(tf.square(t), axis=list(range(len(t.shape) - 1)))
    return tf.sqrt(total)


def _embed(small, big):
    """`big` with `small` written into its leading corner."""
    out = np.array(big, copy=True)
    out[tuple(slice(0, n) for n in small.shape)] = small
    return out


def calibrate_pass_through(model, layer_names, data, num_batches=4):
    """Makes new single-layer blocks pass through in training mode too.

    A new conv's BN that is the identity only with moving statistics 0/1
    would normalise by batch statistics at the next training step; its
    statistics and gamma/beta are set from `num_batches` batches of `data`
    (`keras_grow.transfer.calibration.set_pass_through`).

    Args:
        model: the grown `GrowableModel`.
        layer_names: list of (conv name, BN name) pairs.
        data: iterator of (images, labels[, sample weights]).
        num_batches: int.
    """
    calibration.set_pass_through(
        model.body, [norm for _, norm in layer_names], data, num_batches
    )
