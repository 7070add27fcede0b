"""Initialisers for the sub-modules depth growth adds (AutoGrow's, and more).

Each acts on one new `Block` of the freshly built graph. AutoGrow's act on
the block's last BatchNormalization only (gamma and beta); every other new
weight keeps its default initialisation.

Reference:
    Wen et al., "AutoGrow: Automatic Layer Growing in Deep Convolutional
    Networks", KDD 2020.
"""

import keras
import numpy as np

from keras_grow.specs.graph_analysis import node_class
from keras_grow.specs.graph_blocks import OUTPUT_WEIGHTS
from keras_grow.transfer.weights import layer_variables
from keras_grow.transfer.weights import weight_shapes


def _set_last_norm(body, block, draw):
    """Sets gamma and beta of the block's last BN to `draw(n)` each (the
    block has one: `block_problem` is checked first)."""
    layer = body.get_layer(block.last_norm)
    n = layer.gamma.shape[0]
    layer.gamma.assign(draw(n).astype(layer.gamma.dtype))
    layer.beta.assign(draw(n).astype(layer.beta.dtype))


def output_variables(layer):
    """`{variable key: variable}`: the weights of `layer` whose zeroing
    zeroes its output (`graph_blocks.OUTPUT_WEIGHTS`; a layer without a
    bias has none)."""
    variables = layer_variables(layer)
    keys = OUTPUT_WEIGHTS[node_class(layer)]
    return {key: variables[key] for key in keys if key in variables}


def zero_init(body, block, scale, rng):
    """ZeroInit: gamma = beta = 0, so a new residual block is the identity.
    A user graph's block has its branches' last projections zeroed instead
    (as LLaMA-Pro starts its copied transformer layers)."""
    if block.zero_layers:
        for name in block.zero_layers:
            for variable in output_variables(body.get_layer(name)).values():
                variable.assign(np.zeros(variable.shape, variable.dtype))
        return
    _set_last_norm(body, block, np.zeros)


def gaussian_init(body, block, scale, rng):
    """GauInit: gamma and beta drawn from N(0, scale) (paper: scale 1)."""
    _set_last_norm(body, block, lambda n: rng.normal(0, scale, n))


def uniform_init(body, block, scale, rng):
    """UniInit: gamma and beta uniform with standard deviation `scale`."""
    bound = np.sqrt(3.0) * scale
    _set_last_norm(body, block, lambda n: rng.uniform(-bound, bound, n))


def uniform_authors_init(body, block, scale, rng):
    """UniInit as the authors' code draws it: gamma and beta ~ U(0, scale)
    (not zero-mean, unlike the paper's text)."""
    _set_last_norm(body, block, lambda n: rng.uniform(0.0, scale, n))


def identity_kernel(shape):
    """A Dirac kernel: the centre tap maps channel i to channel i."""
    kernel = np.zeros(shape, np.float32)
    *window, fan_in, _ = shape
    centre = tuple(k // 2 for k in window)
    kernel[centre + (np.arange(fan_in), np.arange(fan_in))] = 1.0
    return kernel


def identity_init(body, block, scale, rng):
    """The block computes the identity on its (post-ReLU) input.

    A residual block gets ZeroInit. A single conv/dense layer (a plain
    sub-module, a VGG or MLP layer) gets a Dirac kernel and, if it has one,
    a BatchNormalization that passes its input through in inference mode:
    as the input is a ReLU output, ReLU(x) = x (Net2DeeperNet).
    """
    if block.residual:
        zero_init(body, block, scale, rng)
        return
    layer = body.get_layer(block.convs[0])
    *_, fan_in, fan_out = layer.kernel.shape
    if fan_in != fan_out or getattr(layer, "strides", (1, 1)) != (1, 1):
        raise ValueError(
            f"identity initialisation needs a stride-1 layer with as many "
            f"outputs as inputs; '{layer.name}' maps {fan_in} to {fan_out} "
            f"channels with strides {getattr(layer, 'strides', None)}."
        )
    layer.kernel.assign(identity_kernel(layer.kernel.shape).astype(layer.kernel.dtype))
    if getattr(layer, "bias", None) is not None:
        layer.bias.assign(np.zeros(layer.bias.shape, layer.bias.dtype))
    if block.last_norm is not None:
        norm = body.get_layer(block.last_norm)
        values = pass_through_norm(norm.gamma.shape[0], norm.epsilon)
        for key, variable in layer_variables(norm).items():
            variable.assign(values[key].astype(variable.dtype))


def pass_through_norm(width, epsilon):
    """`{variable: np.ndarray}` of a BatchNormalization that is the
    identity in inference mode: gamma 1, beta 0, mean 0 and variance
    `1 - epsilon`, so `gamma * (x - mean) / sqrt(var + epsilon) + beta = x`.
    """
    return {
        "gamma": np.ones(width, np.float32),
        "beta": np.zeros(width, np.float32),
        "moving_mean": np.zeros(width, np.float32),
        "moving_variance": np.full(width, 1.0 - epsilon, np.float32),
    }


def default_init(body, block, scale, rng):
    """Keep the layers' own default initialisation (`reset_block`)."""


def block_layer_names(body, block):
    """list of str: the layers of `body` that make up `block`."""
    if block.layers:
        return list(block.layers)
    prefix = block.name + "_"
    return [layer.name for layer in body.layers if layer.name.startswith(prefix)]


def reset_block(body, block, rng):
    """Gives every variable of `block`'s layers a fresh value from the
    layer's own initializer (`kernel` from `kernel_initializer`, ...),
    seeded from `rng`: a new block starts from values that depend on the
    growth's seed and the block alone, whether its layers were built for
    the growth or ahead of it (a reserved block, `keras_grow.depth_reserve`).
    A variable whose layer names no initializer for it keeps its value."""
    for name in block_layer_names(body, block):
        layer = body.get_layer(name)
        for key, variable in layer_variables(layer).items():
            initializer = getattr(layer, f"{key}_initializer", None)
            if initializer is None:
                continue
            initializer = keras.initializers.get(initializer)
            config = initializer.get_config()
            if "seed" in config:
                config["seed"] = int(rng.integers(2**31 - 1))
                initializer = type(initializer).from_config(config)
            variable.assign(initializer(tuple(variable.shape), dtype=variable.dtype))


# name -> initialiser(body, block, scale, rng). AutoGrow's AdamInit starts
# from "default" (gamma 1, beta 0) and then trains the last BN; that
# training lives in the AutoGrow callback.
BLOCK_INITIALIZERS = {
    "zero": zero_init,
    "gaussian": gaussian_init,
    "uniform": uniform_init,
    "uniform_authors": uniform_authors_init,
    "identity": identity_init,
    "default": default_init,
}


def get_block_initializer(name):
    """Returns the block initialiser called `name`.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in BLOCK_INITIALIZERS:
        raise ValueError(
            f"Unknown block initializer {name!r}; allowed: "
            f"{sorted(BLOCK_INITIALIZERS)}."
        )
    return BLOCK_INITIALIZERS[name]


def block_problem(name, block):
    """str or `None`. Why initialiser `name` cannot start `block` as its name
    promises, with the fix; `None` when it can.

    Read from the block's structure alone (no weights), so a schedule can
    be checked before any training. `"zero"` zeroes the last BN of a
    residual block, which makes the block the identity; on a block without
    a shortcut it would make the net's output constant, so it is refused
    there (`"identity"` is the function-preserving choice on every
    family). The random BN initialisers need a BN to draw.
    """
    get_block_initializer(name)
    fix = "use initializer='identity' (function-preserving) or 'default'"
    if name == "zero" and not block.residual:
        return (
            f"initializer='zero' zeroes the last BatchNormalization of a new "
            f"residual block, which makes the block the identity; block "
            f"'{block.name}' has no shortcut, so zeroing it would make the "
            f"net's output the same for every input. For it, {fix}."
        )
    zeroes = name == "zero" or (name == "identity" and block.residual)
    if zeroes and block.layers and not block.zero_layers:
        return (
            f"Block '{block.name}' ends a branch in a layer whose output "
            f"keras_grow cannot zero (an activation that is not 0 at 0, a "
            f"layer without output weights, or a post-norm TransformerEncoder, "
            f"whose layer norms follow its shortcuts), so initializer={name!r} "
            f"cannot make it the identity; use initializer='default' or start "
            f"new blocks as copies (block_copies)."
        )
    needs_norm = name in ("gaussian", "uniform", "uniform_authors") or (
        zeroes and not block.zero_layers
    )
    if needs_norm and block.last_norm is None:
        return (
            f"Block '{block.name}' has no BatchNormalization to initialise "
            f"(initializer={name!r} sets its gamma and beta); for it, {fix}."
        )
    if name == "identity" and not block.residual and len(block.convs) != 1:
        return (
            f"initializer='identity' needs a residual block or a single "
            f"conv/dense layer; block '{block.name}' has {list(block.convs)}. "
            f"Use initializer='default'."
        )
    return None


def check_new_blocks(blocks, name):
    """Raises unless initialiser `name` can start every block of `blocks`.

    Raises:
        ValueError: for an unknown initialiser, or naming each block it
            cannot start and the fix (see `block_problem`).
    """
    problems = [p for p in (block_problem(name, b) for b in blocks) if p]
    if problems:
        raise ValueError(" ".join(dict.fromkeys(problems)))


def _block_layers(names, block_name, listed=None):
    """`{key: name}` of the layers in `names` of block `block_name`: by
    suffix for layers named `<block_name>_<suffix>`, by position for a
    block whose layers `listed` gives (`{block: Block}`)."""
    block = (listed or {}).get(block_name)
    if block is not None and block.layers:
        return dict(enumerate(n for n in block.layers if n in names))
    prefix = block_name + "_"
    return {n[len(prefix) :]: n for n in names if n.startswith(prefix)}


def copy_problem(shapes, source, target, listed=None):
    """str or `None`. Why block `target` cannot start as a copy of block
    `source` in a graph of weight `shapes` (`{layer: {variable: shape}}`,
    layers with weights only): their layers differ in name or shape.
    `listed` is `{block: Block}` for blocks that list their layers."""
    have = _block_layers(shapes, source, listed)
    want = _block_layers(shapes, target, listed)
    if not have:
        return f"'{source}' has no layers with weights"
    if set(have) != set(want):
        return f"'{source}' has layers {sorted(have)} and '{target}' {sorted(want)}"
    for suffix, name in want.items():
        if shapes[name] != shapes[have[suffix]]:
            return (
                f"'{name}' has weights of shapes {shapes[name]} and "
                f"'{have[suffix]}' {shapes[have[suffix]]}"
            )
    return None


def copy_blocks(body, copies, listed=None):
    """Sets blocks of `body` to copies of others (depth growth by
    stacking): every weight of each target block's layers becomes the
    source block's, as they are before any copy is made.

    Args:
        body: the grown graph, already filled.
        copies: dict. `{target block: source block}`, or `{target block:
            (source, ...)}`: candidates in order of preference, of which
            the first whose layers agree with the target's is copied (none
            agreeing leaves the target as it is).
        listed: dict or `None`. `{block: Block}` of blocks whose layers
            their `layers` list (a user graph's).

    Returns:
        dict. `{target block: source block}`: the copies made.

    Raises:
        ValueError: for a single source whose layers differ from its
            target's (`copy_problem`).
    """
    layers = {layer.name: layer for layer in body.layers if layer.weights}
    shapes = weight_shapes(body)
    chosen = {}
    for target, sources in copies.items():
        if isinstance(sources, str):
            problem = copy_problem(shapes, sources, target, listed)
            if problem:
                raise ValueError(
                    f"Block '{target}' cannot copy '{sources}': {problem}."
                )
            chosen[target] = sources
            continue
        fitting = [
            s for s in sources if copy_problem(shapes, s, target, listed) is None
        ]
        if fitting:
            chosen[target] = fitting[0]
    saved = {
        name: [np.array(v.numpy()) for v in layer_variables(layers[name]).values()]
        for source in set(chosen.values())
        for name in _block_layers(layers, source, listed).values()
    }
    for target, source in chosen.items():
        sources = _block_layers(layers, source, listed)
        for suffix, name in _block_layers(layers, target, listed).items():
            targets = layer_variables(layers[name]).values()
            for variable, value in zip(targets, saved[sources[suffix]]):
                variable.assign(value)
    return chosen
