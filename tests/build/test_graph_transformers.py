"""Transformers, text models and SE-CNNs written in plain Keras, grown by
`GrowableModel.from_keras`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow import build
from keras_grow.transfer import AddUnits
from keras_grow.transfer import SplitUnits

EXACT = 1e-5


def vit(width=8, heads=2, layers=2):
    """A small vision transformer as a Keras user writes it: patches by a
    strided Conv2D, learned positions, pre-norm encoder layers."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(width, 7, strides=7, name="patches")(inputs)
    x = keras.layers.Reshape((16, width), name="tokens")(x)
    positions = kg.layers.PositionEmbedding(16, name="positions")(x)
    x = keras.layers.Add(name="embedded")([x, positions])
    for i in range(layers):
        y = keras.layers.LayerNormalization(name=f"l{i}_ln1")(x)
        y = keras.layers.MultiHeadAttention(heads, 4, name=f"l{i}_attention")(y, y)
        x = keras.layers.Add(name=f"l{i}_add1")([x, y])
        y = keras.layers.LayerNormalization(name=f"l{i}_ln2")(x)
        y = keras.layers.Dense(2 * width, activation="gelu", name=f"l{i}_ff1")(y)
        y = keras.layers.Dense(width, name=f"l{i}_ff2")(y)
        x = keras.layers.Add(name=f"l{i}_add2")([x, y])
    x = keras.layers.LayerNormalization(name="ln")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name="vit")


def text_classifier():
    """Token ids in, a causal self-attention over Conv1D features."""
    inputs = keras.Input((12,), dtype="int32")
    x = keras.layers.Embedding(40, 8, name="embed")(inputs)
    x = keras.layers.Conv1D(8, 3, padding="same", activation="relu", name="conv")(x)
    x = keras.layers.MaxPooling1D(2, name="pool1")(x)
    y = keras.layers.MultiHeadAttention(2, 4, name="attention")(
        x, x, use_causal_mask=True
    )
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.Dropout(0.1, name="drop")(x)
    x = keras.layers.GlobalMaxPooling1D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="text")


def se_cnn(groups=-1):
    """uint8 pixels, GroupNormalization, a SeparableConv2D and a
    squeeze-and-excitation gate."""
    inputs = keras.Input((16, 16, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv")(x)
    x = keras.layers.GroupNormalization(groups=groups, name="gn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.SeparableConv2D(
        8, 3, padding="same", activation="relu", name="sep"
    )(x)
    s = keras.layers.GlobalAveragePooling2D(name="squeeze")(x)
    s = keras.layers.Dense(2, activation="relu", name="excite1")(s)
    s = keras.layers.Dense(8, activation="sigmoid", name="excite2")(s)
    s = keras.layers.Reshape((1, 1, 8), name="gate_shape")(s)
    x = keras.layers.Multiply(name="gate")([x, s])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x), name="se")


def _randomized(user):
    """The user model with non-trivial norm gains, offsets and biases."""
    rng = np.random.default_rng(0)
    for variable in user.weights:
        name = variable.path.rsplit("/", 1)[-1]
        if name in ("gamma", "beta", "bias"):
            base = 1.0 if name == "gamma" else 0.0
            variable.assign(base + rng.normal(0, 0.3, variable.shape).astype("float32"))
    return user


def _inputs(model, n=6):
    rng = np.random.default_rng(1)
    shape = (n,) + tuple(model.inputs[0].shape[1:])
    dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
    if dtype == "int32":
        return rng.integers(0, 40, shape).astype("int32")
    if dtype == "uint8":
        return rng.integers(0, 256, shape).astype("uint8")
    return rng.random(shape).astype("float32")


@pytest.mark.parametrize("make", [vit, text_classifier, se_cnn])
def test_the_model_keeps_its_function_and_weights(make):
    user = _randomized(make())
    model = kg.GrowableModel.from_keras(user)
    x = _inputs(user)
    np.testing.assert_allclose(model(x), user(x), atol=EXACT)
    assert model.body.count_params() == user.count_params()
    assert model.spec.input_dtype == keras.backend.standardize_dtype(
        user.inputs[0].dtype
    )


def test_the_growth_report_names_the_transformers_groups():
    assert kg.GrowableModel.from_keras(vit()).spec.growth_report() == [
        "patches (patches, tokens, l0_ff2, l1_ff2): 8 units, grows (its "
        "LayerNormalization layers normalise across the units, so growth keeps "
        "the function only when every unit is split at once)",
        "l0_attention_heads (l0_attention): 2 units, grows",
        "l0_ff1 (l0_ff1): 16 units, grows",
        "l1_attention_heads (l1_attention): 2 units, grows",
        "l1_ff1 (l1_ff1): 16 units, grows",
        "logits (logits): 10 units, fixed: it is the model's output",
    ]


def test_stream_heads_and_feed_forward_grow_keeping_the_function():
    """The residual stream doubles (every unit split: a LayerNormalization
    sees the same mean and variance), each attention gains a new head and a
    split one, each feed-forward block new and split units."""
    model = kg.GrowableModel.from_keras(_randomized(vit()))
    x = _inputs(model.body)
    before = np.asarray(model(x))
    morphisms = [SplitUnits("patches", range(8))]
    for i in range(2):
        morphisms += [
            SplitUnits(f"l{i}_attention_heads", [1], noise=0.0),
            AddUnits(f"l{i}_attention_heads", 1),
            SplitUnits(f"l{i}_ff1", [0, 5]),
            AddUnits(f"l{i}_ff1", 3),
        ]
    model.grow(model.spec.with_widths((16, 4, 21, 4, 21)), morphisms=morphisms)
    np.testing.assert_allclose(model(x), before, atol=EXACT)
    attention = model.body.get_layer("l0_attention")
    assert attention.num_heads == 4
    assert tuple(attention.query_dense.kernel.shape) == (16, 4, 4)
    assert model.body.get_layer("tokens").target_shape == (16, 16)
    assert model.body.get_layer("positions").embeddings.shape == (16, 16)
    # A split head keeps its parent's queries; both carry half its output.
    kernel = attention.output_dense.kernel.numpy()
    np.testing.assert_array_equal(kernel[1], kernel[2])
    queries = attention.query_dense.kernel.numpy()
    np.testing.assert_array_equal(queries[:, 1], queries[:, 2])


def test_a_few_new_stream_units_change_a_layer_normalised_function():
    """What the growth report warns of: a partial split of a stream that
    a LayerNormalization reads moves its mean and variance."""
    model = kg.GrowableModel.from_keras(_randomized(vit()))
    x = _inputs(model.body)
    before = np.asarray(model(x))
    model.grow(
        model.spec.with_widths((9, 2, 16, 2, 16)),
        morphisms=[SplitUnits("patches", [3])],
    )
    assert np.abs(np.asarray(model(x)) - before).max() > 1e-3


def test_a_text_model_grows_in_fit_and_serves_token_ids(tmp_path):
    user = text_classifier()
    model = kg.GrowableModel.from_keras(user)
    spec = model.spec
    assert next(n for n in spec.nodes if n["name"] == "attention")["call"] == {
        "use_causal_mask": True
    }
    assert spec.takes_integer_inputs and spec.input_dtype == "int32"
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x = _inputs(user, n=32)
    y = np.arange(32) % 3
    grow_at = {1: lambda s: s.with_widths((12, 10, 3))}
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[kg.callbacks.ScheduledGrowth(grow_at)],
    )
    assert np.isfinite(history.history["loss"]).all()
    assert model.spec.widths == (12, 10, 3)
    path = str(tmp_path / "text.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(x), model(x))
    served = tf.saved_model.load(model.export_serving(str(tmp_path / "serving")))
    signature = served.signatures["serving_default"]
    assert signature.structured_input_signature[1]["images"].dtype == tf.int32
    logits = signature(images=tf.constant(x))["logits"]
    np.testing.assert_allclose(logits, model(x), atol=EXACT)


def test_an_se_cnn_grows_its_gate_with_the_units_it_gates():
    model = kg.GrowableModel.from_keras(_randomized(se_cnn()))
    x = _inputs(model.body)
    before = np.asarray(model(x))
    groups = {g.name: g for g in build.unit_groups(model.spec)}
    assert set(groups["sep"].producers) == {"sep", "excite2"}
    assert groups["sep"].separable == ()
    assert groups["conv"].separable == ("sep",)
    model.grow(
        model.spec.with_widths((9, 11, 3)),
        morphisms=[
            SplitUnits("conv", [0, 4]),
            AddUnits("conv", 1),
            SplitUnits("sep", [7]),
            AddUnits("sep", 2),
            AddUnits("excite1", 1),
        ],
    )
    np.testing.assert_allclose(model(x), before, atol=EXACT)
    assert model.body.get_layer("gate_shape").target_shape == (1, 1, 11)
    assert model.body.get_layer("gn").groups == 9


@pytest.mark.parametrize(
    "make, layer, reason",
    [
        (
            lambda: se_cnn(groups=2),
            "conv",
            "GroupNormalization 'gn' pools its units in 2 fixed groups",
        ),
        (lambda: vit_with_reshape((4, 32)), "patches", "Reshape 'mix' mixes its"),
    ],
)
def test_what_a_layer_holds_fixed_is_reported(make, layer, reason):
    spec = kg.GrowableModel.from_keras(make()).spec
    with pytest.raises(ValueError, match=reason):
        spec.with_layer_widened(layer, 12)
    assert any(reason in line for line in spec.growth_report())


def vit_with_reshape(target):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 7, strides=7, name="patches")(inputs)
    x = keras.layers.Reshape(target, name="mix")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))


def test_position_embedding_refuses_longer_inputs():
    with pytest.raises(ValueError, match="Give sequence_length >= 5"):
        kg.layers.PositionEmbedding(4)(keras.Input((5, 3)))
    with pytest.raises(ValueError, match="positive integer"):
        kg.layers.PositionEmbedding(2.5)


def test_heads_of_key_dim_one_stay_fixed_while_keras_adds_their_bias_astray():
    """Keras' TensorFlow `ops.add` turns `x + bias` into a channels-first
    `bias_add` when a (heads, 1) bias matches x's axis 1 (the positions):
    the biases land on the wrong axis. Growing heads up to the number of
    positions would then change the function, so such heads stay fixed.
    When this test's first assertion fails, Keras has fixed it and the
    rule in graph_analysis._attention can go."""
    x = np.zeros((2, 3, 3, 1), "float32")
    bias = np.arange(3, dtype="float32").reshape(3, 1)
    assert not np.allclose(keras.ops.add(x, bias), x + bias)
    inputs = keras.Input((3, 4))
    y = keras.layers.MultiHeadAttention(2, 1, name="attention")(inputs, inputs)
    y = keras.layers.GlobalAveragePooling1D()(y)
    user = keras.Model(inputs, keras.layers.Dense(2)(y))
    report = kg.GrowableModel.from_keras(user).spec.growth_report()
    assert any("attention_heads (attention): 2 units, fixed: " in r for r in report)
    assert any("has key_dim 1" in r for r in report)


# --- depth by blocks ---------------------------------------------------------


def post_norm_residual():
    """A post-norm stream (a norm after each Add) and a residual CNN block."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(
        inputs
    )
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", name="c2")(y)
    y = keras.layers.BatchNormalization(name="bn")(y)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.LayerNormalization(name="post")(x)
    y = keras.layers.Conv2D(4, 1, activation="sigmoid", name="gate_conv")(x)
    x = keras.layers.Add(name="add_sigmoid")([x, y])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x), name="cnn")


def test_a_transformer_layer_is_one_block_and_positions_are_none():
    spec = kg.GrowableModel.from_keras(vit(), depth="blocks").spec
    blocks = spec.graph_blocks()
    assert [b.name for b in blocks] == ["l0_add2", "l1_add2"]
    assert blocks[0].layers == (
        "l0_ln1",
        "l0_attention",
        "l0_add1",
        "l0_ln2",
        "l0_ff1",
        "l0_ff2",
        "l0_add2",
    )
    assert blocks[0].zero_layers == ("l0_attention", "l0_ff2")
    assert blocks[1].stream == "l0_add2" and blocks[0].stream == "embedded"
    assert spec.depths == (2,) and spec.depth_stages == 1


def test_a_chain_breaks_at_a_norm_and_a_branch_not_zero_at_zero_has_no_zero_start():
    spec = kg.GrowableModel.from_keras(post_norm_residual(), depth="blocks").spec
    blocks = spec.graph_blocks()
    assert [(b.name, b.stage, b.zero_layers) for b in blocks] == [
        ("add", 0, ("bn",)),
        ("add_sigmoid", 1, ()),
    ]
    deeper = spec.with_block_added(1)
    with pytest.raises(ValueError, match="cannot make it the identity"):
        kg.GrowableModel(spec).grow(deeper, initializer="zero")


def test_a_repeated_block_starts_as_the_identity_or_as_a_copy():
    """An identity start (the new block's last projections zero, as
    LLaMA-Pro starts its copies) keeps the function; G_stack's start (a
    copy of a block's weights) copies every weight."""
    model = kg.GrowableModel.from_keras(_randomized(vit()), depth="blocks")
    x = _inputs(model.body)
    before = np.asarray(model(x))
    model.grow(model.spec.with_block_added(0), initializer="identity")
    np.testing.assert_allclose(model(x), before, atol=EXACT)
    body = model.body
    assert not body.get_layer("l1_ff2_x1").kernel.numpy().any()
    assert not body.get_layer("l1_attention_x1").output_dense.kernel.numpy().any()
    deeper = model.spec.with_block_added(0)
    (new,) = kg.build.new_blocks(model.spec, deeper)
    assert new.name == "l1_add2_x2"
    model.grow(deeper, block_copies={new.name: "l0_add2"})
    assert model.growth_log[-1]["block_copies"] == {"l1_add2_x2": "l0_add2"}
    for layer in ("l0_ln1", "l0_attention", "l0_ff1", "l0_ff2"):
        source = model.body.get_layer(layer).weights
        copy = model.body.get_layer(layer.replace("l0", "l1") + "_x2").weights
        for a, b in zip(source, copy):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert model.spec.depths == (4,)
    original = [n["name"] for n in kg.GrowableModel.from_keras(vit()).spec.nodes]
    assert [n["name"] for n in model.spec.with_depths((2,)).nodes] == original


def test_autogrow_deepens_a_vit_by_blocks_inside_fit():
    keras.utils.set_random_seed(0)
    model = kg.GrowableModel.from_keras(vit(), depth="blocks")
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x = _inputs(model.body, n=64)
    y = np.arange(64) % 10
    autogrow = kg.callbacks.AutoGrow(
        initializer="zero", growth_period=1, max_depths=[3], fine_tune_epochs=1
    )
    model.fit(x, y, validation_data=(x, y), epochs=4, verbose=0, callbacks=[autogrow])
    assert model.spec.depths == (3,)
    assert [e["kind"] for e in model.growth_log] == [
        "grow",
        "stop_stage",
        "fine_tune",
        "done",
    ]
    # The paper's Gaussian start needs a BatchNormalization: refused before
    # any epoch, not as a failed growth after one.
    fresh = kg.GrowableModel.from_keras(vit(), depth="blocks")
    fresh.compile(
        optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True)
    )
    with pytest.raises(ValueError, match="has no BatchNormalization to initialise"):
        fresh.fit(x, y, epochs=1, verbose=0, callbacks=[kg.callbacks.AutoGrow()])
    assert fresh.growth_log == []


def test_depths_need_the_blocks_mode():
    spec = kg.GrowableModel.from_keras(vit()).spec
    with pytest.raises(ValueError, match="build the spec with depth='blocks'"):
        _ = spec.depths
    with pytest.raises(
        ValueError, match=r"must be one of \('sites', 'blocks', 'named'\)"
    ):
        spec.replace(depth="layers")


def test_firefly_gates_a_repeated_block_by_its_last_projections():
    """Firefly's depth candidate on a transformer: a new encoder layer whose
    attention output and second feed-forward Dense are the gate times a
    direction. At gate 0 it is the identity; realised, the grown model
    computes what the neighbourhood computed at the gate's value."""
    model = kg.GrowableModel.from_keras(_randomized(vit()), depth="blocks")
    x = _inputs(model.body)
    before = np.asarray(model(x))
    n = kg.descent.DepthNeighbourhood(model.body, model.spec, seed=0)
    assert len(n.candidates) == 1
    assert {k for layer in n._outputs.values() for k in layer} == {
        "attention_output/kernel",
        "attention_output/bias",
        "kernel",
        "bias",
    }
    np.testing.assert_allclose(n.logits(x, tf.zeros(1)), before, atol=EXACT)
    gated = n.logits(x, tf.constant([0.3])).numpy()
    assert np.abs(gated - before).max() > 1e-3  # the gate does something
    for layer in n._outputs.values():  # trained directions stay in the ball
        for variable in layer.values():
            variable.assign(variable.value * 100.0)
    n.project()
    norms = kg.descent.depth._unit_norms(n._outputs["l1_ff2_x1"].values())
    np.testing.assert_allclose(norms.numpy(), 1.0, rtol=1e-5)
    gated = n.logits(x, tf.constant([0.3])).numpy()
    deep, values = n.realise_layers([0], model.spec, 0.3)
    model.grow(deep, values=values, initializer="default")
    assert model.spec.depths == (3,)
    np.testing.assert_allclose(np.asarray(model(x)), gated, atol=EXACT)


def test_firefly_deepens_and_widens_a_vit_inside_fit(tmp_path):
    keras.utils.set_random_seed(0)
    model = kg.GrowableModel.from_keras(vit(), depth="blocks")
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = _inputs(model.body, n=32)
    y = np.arange(32) % 10
    firefly = kg.callbacks.Firefly(
        (x, y),
        grow_every=1,
        max_rounds=1,
        grow_depth=True,
        new_layers_per_round=1,
        delta_steps=2,
        score_batches=1,
        score_samples=2,
        verbose=0,
        seed=0,
    )
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[firefly])
    assert np.isfinite(history.history["loss"]).all()
    (event,) = [e for e in model.growth_log if e["kind"] == "grow"]
    assert model.spec.depths == (2 + len(event["new_layers"]),)
    assert len(event["depth_scores"]) == 1
    path = str(tmp_path / "grown.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.spec == model.spec
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def test_firefly_refuses_a_chain_whose_branch_cannot_start_at_zero():
    spec = kg.GrowableModel.from_keras(post_norm_residual(), depth="blocks").spec
    with pytest.raises(ValueError, match="cannot make it the identity"):
        kg.descent.check_depth_growable(spec)


def test_a_vit_stacks_copies_of_its_last_layer_inside_fit():
    """G_stack in fit: each new encoder layer starts as a copy of the one
    before it, and training goes on."""
    keras.utils.set_random_seed(0)
    model = kg.GrowableModel.from_keras(vit(), depth="blocks")
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = _inputs(model.body, n=32)
    y = np.arange(32) % 10
    copied = {}

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:  # right after the second growth
                body = self.model.body
                copied["source"] = body.get_layer("l1_ff1_x1").kernel.numpy()
                copied["copy"] = body.get_layer("l1_ff1_x2").kernel.numpy()

    grow = kg.callbacks.ScheduledGrowth(
        {e: lambda s: s.with_block_added(0) for e in (1, 2)}, copy_blocks=True
    )
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[grow, Snapshot()])
    assert np.isfinite(history.history["loss"]).all()
    assert model.spec.depths == (4,)
    assert [e["block_copies"] for e in model.growth_log] == [
        {"l1_add2_x1": "l1_add2"},
        {"l1_add2_x2": "l1_add2_x1"},
    ]
    np.testing.assert_array_equal(copied["copy"], copied["source"])


def test_progressive_stages_of_a_transformer_grow_layers_and_widths_together():
    start = kg.GrowableModel.from_keras(vit(layers=1), depth="blocks").spec
    target = start.scaled(width=2, depth=4)
    assert target.depths == (4,) and target.widths == (16, 4, 32, 4, 32, 4, 32, 4, 32)
    grown = kg.specs.progression.stages(start, target, growth_factor=2.0)
    assert [(s.depths, s.widths) for s in grown] == [
        ((2,), (11, 3, 23, 3, 23)),
        ((4,), (16, 4, 32, 4, 32, 4, 32, 4, 32)),
    ]
    with pytest.raises(ValueError, match="would shrink"):
        kg.specs.progression.check_reachable(target, start)


def test_progressive_growth_stacks_a_transformer_inside_fit():
    keras.utils.set_random_seed(0)
    model = kg.GrowableModel.from_keras(vit(layers=1), depth="blocks")
    target = model.spec.scaled(width=2, depth=4)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = _inputs(model.body, n=32)
    y = np.arange(32) % 10
    grow = kg.callbacks.ProgressiveGrowth(target, depth="stack", seed=0, verbose=0)
    history = model.fit(x, y, epochs=6, verbose=0, callbacks=[grow])
    assert np.isfinite(history.history["loss"]).all()
    assert model.spec == target
    assert [e["block_copies"] for e in model.growth_log if e["kind"] == "grow"] == [
        {"l0_add2_x1": "l0_add2"},
        {"l0_add2_x2": "l0_add2", "l0_add2_x3": "l0_add2_x1"},
    ]
