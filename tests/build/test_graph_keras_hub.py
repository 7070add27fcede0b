"""Models written with KerasHub's transformer layers, grown by
`GrowableModel.from_keras` (the optional `hub` extra)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow.transfer import AddUnits
from keras_grow.transfer import SplitUnits
from keras_grow.transfer.weights import layer_variables

keras_hub = pytest.importorskip("keras_hub")

EXACT = 1e-5
POSITIONS, VOCABULARY, WIDTH = 12, 40, 8


def encoder_stack(layers=2, normalize_first=True):
    """A text classifier as the KerasHub guides write one: token and
    position embeddings, TransformerEncoder layers, mean pooling."""
    inputs = keras.Input((POSITIONS,), dtype="int32")
    x = keras_hub.layers.TokenAndPositionEmbedding(
        VOCABULARY, POSITIONS, WIDTH, name="embed"
    )(inputs)
    for i in range(layers):
        x = keras_hub.layers.TransformerEncoder(
            16, 2, normalize_first=normalize_first, name=f"encoder{i}"
        )(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="hub")


def features_stack():
    """Float features, KerasHub's PositionEmbedding added to them."""
    inputs = keras.Input((POSITIONS, 4))
    x = keras.layers.Dense(WIDTH, name="project")(inputs)
    positions = keras_hub.layers.PositionEmbedding(POSITIONS, name="positions")(x)
    x = keras.layers.Add(name="embedded")([x, positions])
    x = keras_hub.layers.TransformerEncoder(16, 2, normalize_first=True, name="enc")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="feat")


def _randomized(user):
    rng = np.random.default_rng(0)
    for variable in user.weights:
        noise = rng.normal(0, 0.3, variable.shape).astype("float32")
        variable.assign(variable.numpy() + noise)
    return user


def _tokens(n=6, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, VOCABULARY, (n, POSITIONS)).astype("int32")


def _compiled(model):
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _check_saved_and_served(model, x, serving_inputs, tmp_path):
    """A `.keras` round trip computes what `model` does on `x`, and so
    does the exported SavedModel given `serving_inputs` by name."""
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    served = tf.saved_model.load(model.export_serving(str(tmp_path / "serving")))
    inputs = {name: tf.constant(value) for name, value in serving_inputs.items()}
    logits = served.signatures["serving_default"](**inputs)["logits"]
    np.testing.assert_allclose(logits, np.asarray(model(x)), atol=EXACT)


def test_the_model_keeps_its_function_and_reports_what_grows():
    user = _randomized(encoder_stack())
    x = _tokens()
    model = kg.GrowableModel.from_keras(user)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(user(x)))
    assert model.spec.takes_integer_inputs
    assert [n["class_name"] for n in model.spec.nodes][:2] == [
        "keras_hub>TokenAndPositionEmbedding",
        "keras_hub>TransformerEncoder",
    ]
    report = model.spec.growth_report()
    assert report[0].startswith("embed (embed): 8 units, fixed: TransformerEncoder")
    assert "key_dim is this width // num_heads" in report[0]
    assert report[1:3] == [
        "encoder0_feedforward (encoder0): 16 units, grows",
        "encoder1_feedforward (encoder1): 16 units, grows",
    ]
    # A float model with KerasHub's PositionEmbedding reads too.
    features = _randomized(features_stack())
    f = np.random.default_rng(2).random((4, POSITIONS, 4)).astype("float32")
    grown = kg.GrowableModel.from_keras(features)
    np.testing.assert_array_equal(np.asarray(grown(f)), np.asarray(features(f)))


def test_feed_forward_units_split_and_add_keeping_the_function():
    model = kg.GrowableModel.from_keras(_randomized(encoder_stack()))
    x = _tokens()
    before = np.asarray(model(x))
    params = model.body.count_params()
    model.grow(
        model.spec.with_widths((21, 20)),
        morphisms=[
            SplitUnits("encoder0_feedforward", [0, 3, 7, 9, 15]),
            AddUnits("encoder1_feedforward", 4),
        ],
    )
    np.testing.assert_allclose(np.asarray(model(x)), before, atol=EXACT)
    # Each unit: a column of the first Dense, its bias, a row of the second.
    assert model.body.count_params() == params + 9 * (WIDTH + 1 + WIDTH)
    encoder = model.body.get_layer("encoder0")
    assert encoder.intermediate_dim == 21
    kernel = layer_variables(encoder)["feedforward_output_dense/kernel"].numpy()
    np.testing.assert_allclose(kernel[0], kernel[16])  # halves of a split


def test_a_pre_norm_encoder_repeats_as_the_identity_a_post_norm_one_as_a_copy():
    pre = kg.GrowableModel.from_keras(_randomized(encoder_stack()), depth="blocks")
    x = _tokens()
    before = np.asarray(pre(x))
    assert pre.spec.depths == (2,)
    pre.grow(pre.spec.with_depths([4]), initializer="identity")
    np.testing.assert_allclose(np.asarray(pre(x)), before, atol=EXACT)
    assert [b.name for b in pre.spec.graph_blocks()][-2:] == [
        "encoder1_x1",
        "encoder1_x2",
    ]
    post = kg.GrowableModel.from_keras(
        encoder_stack(normalize_first=False), depth="blocks"
    )
    assert [b.zero_layers for b in post.spec.graph_blocks()] == [(), ()]
    deeper = post.spec.with_block_added(0)
    with pytest.raises(ValueError, match="post-norm TransformerEncoder"):
        post.grow(deeper, initializer="identity")
    # A copy that does not fit leaves the block to the initialiser: refused,
    # the model unchanged.
    wider = post.spec.with_widths((32, 16))
    post.grow(wider)
    with pytest.raises(ValueError, match="'encoder1_x1' ends a branch"):
        post.grow(
            wider.with_block_added(0),
            initializer="identity",
            block_copies={"encoder1_x1": ("encoder0",)},
        )
    assert post.spec == wider
    post.grow(
        wider.with_block_added(0),
        initializer="identity",
        block_copies={"encoder1_x1": ("encoder0", "encoder1")},
    )
    body = post.body
    for source, copy in zip(
        body.get_layer("encoder1").weights, body.get_layer("encoder1_x1").weights
    ):
        np.testing.assert_array_equal(source.numpy(), copy.numpy())


def test_progressive_growth_deepens_and_widens_inside_fit_and_serves(tmp_path):
    """Into twice the layers and feed-forward width, then saved as
    `.keras` and exported for TF Serving."""
    keras.utils.set_random_seed(0)
    model = _compiled(kg.GrowableModel.from_keras(encoder_stack(1), depth="blocks"))
    target = model.spec.scaled(width=2, depth=2)
    x, y = _tokens(32), np.arange(32) % 3
    grow = kg.callbacks.ProgressiveGrowth(target, depth="stack", seed=0, verbose=0)
    history = model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[grow])
    assert np.isfinite(history.history["loss"]).all()
    assert model.spec == target and model.spec.depths == (2,)
    assert model.body.get_layer("encoder0_x1").intermediate_dim == 32
    _check_saved_and_served(model, x, {"images": x}, tmp_path)


def test_the_kernel_methods_skip_the_encoders_feed_forward_and_say_why():
    model = kg.GrowableModel.from_keras(encoder_stack())
    shapes = kg.transfer.weights.weight_shapes(model.body)
    kept, skipped = kg.descent.kernel_groups(model.spec, shapes)
    assert kept == []
    assert skipped["encoder0_feedforward"] == (
        "its units are the feed-forward inside 'encoder0', which this method "
        "does not measure"
    )


def test_a_padding_mask_that_is_no_model_input_is_refused_by_name():
    inputs = keras.Input((POSITIONS, WIDTH))
    mask = keras.ops.ones((1, POSITIONS), "bool")
    x = keras_hub.layers.TransformerEncoder(16, 2, name="enc")(
        inputs, padding_mask=mask
    )
    x = keras.layers.GlobalAveragePooling1D()(x)
    user = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    with pytest.raises(
        ValueError, match=r"'enc' is called with keyword arguments \['padding_mask'\]"
    ):
        kg.GrowableModel.from_keras(user)


def test_firefly_gates_a_new_pre_norm_encoder_by_its_output_projections():
    model = kg.GrowableModel.from_keras(_randomized(encoder_stack()), depth="blocks")
    x = _tokens()
    before = np.asarray(model(x))
    n = kg.descent.DepthNeighbourhood(model.body, model.spec, seed=0)
    assert set(n._outputs["encoder1_x1"]) == {
        "self_attention_layer/attention_output/kernel",
        "self_attention_layer/attention_output/bias",
        "feedforward_output_dense/kernel",
        "feedforward_output_dense/bias",
    }
    np.testing.assert_allclose(n.logits(x, tf.zeros(1)), before, atol=EXACT)
    gated = n.logits(x, tf.constant([0.5])).numpy()
    assert np.abs(gated - before).max() > 1e-4
    deep, values = n.realise_layers([0], model.spec, 0.5)
    model.grow(deep, values=values, initializer="default")
    assert model.spec.depths == (3,)
    np.testing.assert_allclose(np.asarray(model(x)), gated, atol=EXACT)


def test_only_groups_a_width_sets_are_left_resizable():
    # The stream the encoders read is fixed (their layer norms reshape to
    # its width): its variables keep their shapes, so a trace sees them.
    model = kg.GrowableModel.from_keras(encoder_stack(1))
    axes = kg.in_place.growing_axes(model.body, model.spec)
    assert not [key for key in axes if key[0] == "embed"]
    assert ("encoder0", "feedforward_intermediate_dense/kernel") in axes
    assert model.body.get_layer("embed").weights[0].shape[-1] == WIDTH


def _text_backbone(class_name, num_layers=2):
    """A small KerasHub text backbone of `class_name`, from its config."""
    return getattr(keras_hub.models, class_name)(
        vocabulary_size=VOCABULARY,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=WIDTH,
        intermediate_dim=16,
        max_sequence_length=POSITIONS,
    )


def distil_bert_classifier(backbone_class="DistilBertBackbone"):
    """A classifier on KerasHub's `DistilBertBackbone` (or another text
    backbone) built from its config (no pretrained weights): token ids and
    a padding mask in, as KerasHub's backbones take them."""
    backbone = _text_backbone(backbone_class)
    inputs = {
        "token_ids": keras.Input((POSITIONS,), dtype="int32", name="token_ids"),
        "padding_mask": keras.Input((POSITIONS,), dtype="int32", name="padding_mask"),
    }
    x = keras.layers.GlobalAveragePooling1D(name="pool")(backbone(inputs))
    logits = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, logits, name="distil")


def _padded(n=6, seed=1):
    """Token ids padded after a random length, and their padding mask."""
    tokens = _tokens(n, seed)
    lengths = np.random.default_rng(seed).integers(3, POSITIONS, n)
    mask = (np.arange(POSITIONS)[None] < lengths[:, None]).astype("int32")
    return {"token_ids": tokens * mask, "padding_mask": mask}


def test_a_backbone_is_read_layer_by_layer_with_its_padding_mask():
    user = _randomized(distil_bert_classifier())
    x = _padded()
    model = kg.GrowableModel.from_keras(user, depth="blocks")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(user(x)))
    assert [(i.name, i.shape, i.dtype) for i in model.spec.model_inputs] == [
        ("token_ids", (POSITIONS,), "int32"),
        ("padding_mask", (POSITIONS,), "int32"),
    ]
    encoders = [n for n in model.spec.nodes if n["name"].startswith("transformer")]
    assert [n["keyword_inputs"] for n in encoders] == [
        {"padding_mask": "padding_mask"}
    ] * 2
    assert model.spec.depths == (2,)
    assert model.spec.growth_report()[1:3] == [
        "transformer_layer_0_feedforward (transformer_layer_0): 16 units, grows",
        "transformer_layer_1_feedforward (transformer_layer_1): 16 units, grows",
    ]
    assert kg.specs.from_json(model.spec.to_json()) == model.spec
    # The mask is read, as the backbone reads it.
    unmasked = dict(x, padding_mask=np.ones_like(x["padding_mask"]))
    assert not np.allclose(np.asarray(model(unmasked)), model(x), atol=1e-3)
    np.testing.assert_array_equal(np.asarray(model(unmasked)), user(unmasked))
    with pytest.raises(ValueError, match=r"takes a dict of inputs \['token_ids', "):
        model(x["token_ids"])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    short = dict(x, padding_mask=x["padding_mask"][:, :5])
    with pytest.raises(
        ValueError, match=r"inputs 'padding_mask' of shape \(batch, 12\)"
    ):
        model.fit(short, np.zeros(6, "int64"), verbose=0)


def test_roberta_reads_too_and_bert_is_refused_with_every_reason():
    user = _randomized(distil_bert_classifier("RobertaBackbone"))
    x = _padded()
    model = kg.GrowableModel.from_keras(user, depth="blocks")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(user(x)))
    backbone = _text_backbone("BertBackbone", num_layers=1)
    names = ("token_ids", "padding_mask", "segment_ids")
    inputs = {k: keras.Input((POSITIONS,), dtype="int32", name=k) for k in names}
    x = keras.layers.GlobalAveragePooling1D()(backbone(inputs)["sequence_output"])
    bert = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    with pytest.raises(
        ValueError,
        match="2 layer.*ReversibleEmbedding.*'get_item[_0-9]*' is a Keras operation",
    ):
        kg.GrowableModel.from_keras(bert)


def test_a_backbone_grows_in_depth_and_feed_forward_width_inside_fit(tmp_path):
    """Progressive growth into twice the layers (copies) and feed-forward
    width, on a dataset of dicts; saved as `.keras` and exported with
    both inputs by name."""
    keras.utils.set_random_seed(0)
    model = _compiled(
        kg.GrowableModel.from_keras(distil_bert_classifier(), depth="blocks")
    )
    target = model.spec.scaled(width=2, depth=2)
    x = _padded(32)
    data = tf.data.Dataset.from_tensor_slices((x, np.arange(32) % 3)).batch(8)
    grow = kg.callbacks.ProgressiveGrowth(target, depth="stack", seed=0, verbose=0)
    history = model.fit(data, epochs=4, verbose=0, callbacks=[grow])
    assert np.isfinite(history.history["loss"]).all()
    assert model.spec == target and model.spec.depths == (4,)
    assert model.body.get_layer("transformer_layer_1_x1").intermediate_dim == 32
    _check_saved_and_served(model, x, x, tmp_path)


def test_autogrow_copies_a_post_norm_encoder_into_the_new_block():
    keras.utils.set_random_seed(0)
    model = _compiled(
        kg.GrowableModel.from_keras(distil_bert_classifier(), depth="blocks")
    )
    x = _padded(32)
    data = tf.data.Dataset.from_tensor_slices((x, np.arange(32) % 3)).batch(8)
    grow = kg.callbacks.AutoGrow(
        initializer="copy",
        growth_period=1,
        max_depths=(3,),
        monitor="val_loss",
        seed=0,
        verbose=0,
    )
    model.fit(data, validation_data=data, epochs=3, verbose=0, callbacks=[grow])
    (event,) = [e for e in model.growth_log if e["kind"] == "grow"]
    assert event["block_copies"] == {"transformer_layer_1_x1": "transformer_layer_1"}
    assert event["autogrow_initializer"] == "copy"
    assert model.spec.depths == (3,)
