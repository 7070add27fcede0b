"""A user's own Keras model as a growable model (`GrowableModel.from_keras`)."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow.transfer import AddUnits
from keras_grow.transfer import SplitUnits
from tests.helpers import images
from tests.helpers import infer
from tests.helpers import infer_live
from tests.helpers import randomize_norms

SHAPE = (12, 12, 3)
EXACT = 1e-5


def residual_cnn(width=4):
    """A plain-Keras CNN with a residual connection, as a user writes it."""
    inputs = keras.Input(SHAPE, name="pixels")
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="c1")(
        inputs
    )
    y = keras.layers.Conv2D(width, 3, padding="same", name="c2")(x)
    y = keras.layers.BatchNormalization(name="bn")(y)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.Conv2D(6, 1, activation="relu", name="c3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(5, activation="relu", name="hidden")(x)
    x = keras.layers.Dropout(0.2, name="drop")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, outputs, name="user_cnn")


def mlp():
    return keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(7, activation="relu", name="d1"),
            keras.layers.Dropout(0.1, name="drop"),
            keras.layers.Dense(4, activation="tanh", name="d2"),
            keras.layers.Dense(3, name="logits"),
        ],
        name="user_mlp",
    )


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def test_functional_model_keeps_its_function_and_weights():
    user = residual_cnn()
    x = images(SHAPE)
    model = kg.GrowableModel.from_keras(user)
    assert model.spec.notation == "Graph(user_cnn)-4-6-5"
    assert model.spec.depth_sites() == (
        "c1",
        "c2",
        "bn",
        "add",
        "relu",
        "pool",
        "dw",
        "c3",
        "gap",
        "hidden",
        "drop",
    )
    np.testing.assert_array_equal(infer(model, x), infer(user, x))
    assert model.body.count_params() == user.count_params()
    before = [w.numpy().copy() for w in user.weights]
    model.grow(model.spec.with_widths((8, 6, 5)))
    assert [w.shape for w in user.weights] == [b.shape for b in before]
    for weight, old in zip(user.weights, before):
        np.testing.assert_array_equal(weight.numpy(), old)


def test_sequential_model_keeps_its_function():
    user = mlp()
    x = images((6, 6, 1))
    model = kg.GrowableModel.from_keras(user)
    assert model.spec.notation == "Graph(user_mlp)-7-4"
    np.testing.assert_array_equal(infer(model, x), infer(user, x))


def test_every_morphism_preserves_the_function():
    """Split (delta 0) and new units (epsilon 0) on every group, the Add
    group's two producers together, and an identity layer at every site."""
    model = kg.GrowableModel.from_keras(residual_cnn())
    randomize_norms(model)
    x = images(SHAPE, n=16)
    before = infer_live(model, x)
    for group in [
        g for g in kg.build.unit_groups(model.spec) if g.width_index is not None
    ]:
        widths = list(model.spec.widths)
        widths[group.width_index] += 3
        model.grow(
            model.spec.with_widths(widths),
            morphisms=[SplitUnits(group.name, [0, 1]), AddUnits(group.name, 1)],
        )
        np.testing.assert_allclose(infer(model, x), before, atol=EXACT)
    assert model.spec.widths == (7, 9, 8)
    for stage in range(model.spec.depth_stages):
        model.grow(model.spec.with_block_added(stage), initializer="identity")
        np.testing.assert_allclose(infer(model, x), before, atol=EXACT)
    assert len(model.spec.inserted_blocks()) == 11


def test_layer_normalization_units_start_at_gain_one_bias_zero():
    inputs = keras.Input((6,))
    h = keras.layers.Dense(4, name="h")(inputs)
    h = keras.layers.LayerNormalization(name="ln")(h)
    user = keras.Model(inputs, keras.layers.Dense(2, name="out")(h))
    model = kg.GrowableModel.from_keras(user)
    norm = model.body.get_layer("ln")
    norm.gamma.assign([0.5, 1.5, 2.0, 0.7])
    norm.beta.assign([0.1, -0.2, 0.3, 0.0])
    x = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")
    before = infer(model, x)
    model.grow(model.spec.with_layer_widened("h", 6))
    norm = model.body.get_layer("ln")
    np.testing.assert_allclose(norm.gamma.numpy(), [0.5, 1.5, 2.0, 0.7, 1, 1])
    np.testing.assert_allclose(norm.beta.numpy(), [0.1, -0.2, 0.3, 0.0, 0, 0])
    # The new units enter every unit's mean and variance: the function
    # changes (the documented exception), though the new units' outputs are 0.
    assert np.abs(infer(model, x) - before).max() > 1e-3
    np.testing.assert_array_equal(model.body.get_layer("out").kernel.numpy()[4:], 0)


def two_inputs():
    a, b = keras.Input((3,)), keras.Input((3,))
    return keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Add()([a, b])))


def shared_layer():
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(3, name="shared")
    return keras.Model(inputs, dense(dense(inputs)))


def cross_attention():
    inputs = keras.Input((4, 6))
    other = keras.layers.Dense(6, name="other")(inputs)
    x = keras.layers.MultiHeadAttention(2, 3, name="mha")(inputs, other)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def attention_scores():
    inputs = keras.Input((4, 6))
    x, _ = keras.layers.MultiHeadAttention(2, 3, name="mha")(
        inputs, inputs, return_attention_scores=True
    )
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def two_dict_inputs():
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    added = keras.layers.Add()([a, b])
    return keras.Model({"a": a, "b": b}, keras.layers.Dense(2)(added))


def first_position():
    inputs = keras.Input((4, 3))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs[:, 0]))


def nested_subclassed():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(Subclassed(name="inner")(inputs)))


class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def subclassed():
    model = Subclassed()
    model(np.zeros((1, 3), "float32"))
    return model


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: keras.Sequential(
                [
                    keras.Input((5, 2)),
                    keras.layers.Bidirectional(keras.layers.SimpleRNN(2), name="c"),
                    keras.layers.Dense(2),
                ]
            ),
            ValueError,
            "Layer 'c' is a Bidirectional, which keras_grow cannot grow through",
        ),
        (cross_attention, ValueError, "keras_grow grows self-attention"),
        (attention_scores, ValueError, r"keyword arguments \['return_attention"),
        (two_inputs, ValueError, "takes a list of 2 inputs"),
        (two_dict_inputs, ValueError, r"layers reading inputs \['a', 'b'\]"),
        (first_position, ValueError, "'get_item' is a Keras operation"),
        (nested_subclassed, ValueError, "Layer 'inner' is a nested subclassed"),
        (shared_layer, ValueError, "'shared' is called 2 times"),
        (
            lambda: keras.Sequential([keras.Input((None, 3)), keras.layers.Dense(2)]),
            ValueError,
            "needs every dimension but the batch known",
        ),
        (subclassed, ValueError, "is a subclassed Subclassed"),
        (lambda: "model", TypeError, "Expected a keras.Model"),
    ],
)
def test_what_cannot_be_grown_is_refused_by_name(make, error, message):
    with pytest.raises(error, match=message):
        kg.GrowableModel.from_keras(make())


def test_one_input_in_a_list_or_a_dict_is_the_examples():
    x = np.random.default_rng(0).random((5, 3)).astype("float32")
    inputs = keras.Input((3,), name="features")
    logits = keras.layers.Dense(2, name="logits")(inputs)
    for structure, given in (([inputs], [x]), ({"features": inputs}, {"features": x})):
        user = keras.Model(structure, logits)
        model = kg.GrowableModel.from_keras(user)
        assert [i.name for i in model.spec.model_inputs] == ["features"]
        np.testing.assert_array_equal(infer(model, x), infer(user, given))
        np.testing.assert_array_equal(infer(model, {"features": x}), infer(model, x))


def test_a_model_of_your_own_is_fed_and_served_by_its_inputs_name(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((64, 3)).astype("float32")
    y = rng.integers(0, 2, 64)
    inputs = keras.Input((3,), name="features")
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(inputs)
    user = keras.Model(inputs, keras.layers.Dense(2, name="logits")(hidden))
    model = _compiled(user)
    grow = kg.callbacks.Firefly(
        train_data=({"features": x}, y),
        grow_every=1,
        max_rounds=1,
        delta_steps=2,
        score_batches=1,
        score_samples=2,
        verbose=0,
        seed=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            {"features": x}, y, epochs=2, batch_size=16, verbose=0, callbacks=[grow]
        )
    assert model.spec.widths[0] > 4  # grew on the dict of inputs
    # The body of one input is given its tensor, not Keras' warned-of dict.
    assert not [w for w in caught if "expected structure" in str(w.message)]
    signature = tf.saved_model.load(
        model.export_serving(str(tmp_path / "serving"))
    ).signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["features"]
    logits = signature(features=tf.constant(x))["logits"]
    np.testing.assert_allclose(logits.numpy(), infer(model, x), atol=1e-5)
    with pytest.raises(ValueError, match=r"a dict of it as \['features'\]"):
        model.fit({"pixels": x}, y, epochs=1, verbose=0)
    # An input Keras named (input_layer_N, which depends on how many inputs
    # the process built) is fed and served as a named family's, `images`.
    unnamed = kg.GrowableModel.from_keras(
        keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    )
    assert unnamed.spec.input_name.startswith("input_layer")
    assert [i.name for i in unnamed.spec.model_inputs] == ["images"]


def test_a_nested_model_is_read_layer_by_layer():
    def user(inner_name):
        inner = keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(4, activation="relu", name=inner_name),
            ],
            name="inner",
        )
        inputs = keras.Input((3,))
        return keras.Model(inputs, keras.layers.Dense(2, name="logits")(inner(inputs)))

    nested = user("hidden")
    model = kg.GrowableModel.from_keras(nested)
    assert [n["name"] for n in model.spec.nodes] == ["hidden", "logits"]
    x = np.random.default_rng(0).random((5, 3)).astype("float32")
    np.testing.assert_array_equal(infer(model, x), infer(nested, x))
    with pytest.raises(ValueError, match=r"name several layers \['logits'\]"):
        kg.GrowableModel.from_keras(user("logits"))


def _data(n=64, batch=16):
    rng = np.random.default_rng(0)
    x = images(SHAPE, n=n, seed=3)
    y = rng.integers(0, 3, n)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _compiled(user):
    model = kg.GrowableModel.from_keras(user)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def test_firefly_grows_width_and_depth_inside_fit_and_round_trips(tmp_path):
    model = _compiled(residual_cnn())
    data = _data()
    history = model.fit(
        data,
        epochs=2,
        verbose=0,
        callbacks=[
            kg.callbacks.Firefly(
                data,
                grow_every=1,
                max_rounds=1,
                grow_depth=True,
                delta_steps=2,
                score_batches=1,
                score_samples=2,
                verbose=0,
                seed=0,
            )
        ],
    )
    assert np.isfinite(history.history["loss"]).all()
    (event,) = [e for e in model.growth_log if e["kind"] == "grow"]
    assert event["new_layers"] and model.spec.inserted_blocks()
    assert sum(model.spec.widths) > 4 + 6 + 5
    x = images(SHAPE)
    path = str(tmp_path / "grown.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.spec == model.spec
    np.testing.assert_array_equal(infer(loaded, x), infer(model, x))
    served = tf.saved_model.load(model.export_serving(str(tmp_path / "serving")))
    logits = served.signatures["serving_default"](pixels=tf.constant(x))["logits"]
    np.testing.assert_allclose(logits.numpy(), infer(model, x), atol=1e-5)


def test_scheduled_growth_deepens_a_user_model_inside_fit():
    model = _compiled(mlp())
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 6, 6, 1)).astype("float32")
    y = rng.integers(0, 3, 32)
    model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        verbose=0,
        callbacks=[
            kg.callbacks.ScheduledGrowth(
                {
                    1: lambda s: s.with_block_added(0),
                    2: lambda s: s.with_block_added(2),
                },
                initializer="identity",
                verbose=0,
            )
        ],
    )
    assert model.spec.depth_sites() == ("d1", "drop", "d2")
    assert [b for b, _, _ in model.spec.inserted_blocks()] == ["d1_deep1", "d2_deep1"]
    names = [n["name"] for n in model.spec.nodes]
    # d2's tanh can be negative: its new layer is linear, d1's has a ReLU.
    assert "d1_deep1_relu" in names and "d2_deep1_relu" not in names
    assert model.spec.notation == "Graph(user_mlp)-7-7-4-4"


def test_closed_form_units_and_scheduled_depth_grow_a_user_cnn_inside_fit():
    """Width by TINY (GradMax shares its machinery: tests/callbacks/
    test_closed_form_growth.py), depth by ScheduledGrowth, in one fit."""
    method = kg.callbacks.TINY
    model = _compiled(residual_cnn())
    data = _data()
    x = images(SHAPE)
    model.fit(
        data,
        epochs=3,
        verbose=0,
        callbacks=[
            method(data, grow_every=1, max_rounds=2, score_batches=2, verbose=0),
            kg.callbacks.ScheduledGrowth(
                {2: lambda s: s.with_block_added(s.depth_sites().index("relu"))},
                initializer="identity",
                verbose=0,
            ),
        ],
    )
    grows = [e for e in model.growth_log if e["kind"] == "grow"]
    assert [e.get("method") for e in grows] == [method.method, method.method, None]
    assert model.spec.inserted_blocks() == [("relu_deep1", "relu_deep1_conv", "relu")]
    # The Add group has two producers: it is skipped, and says so.
    assert grows[0]["skipped_groups"] == {
        "c1": "2 producers (a summed stream) have no single fan-in"
    }
    assert model.spec.widths[1:] != (6, 5)
    assert np.isfinite(infer(model, x)).all()


def test_every_layer_it_cannot_take_is_named_in_one_error():
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.Bidirectional(
                keras.layers.SimpleRNN(4, return_sequences=True), name="bi"
            ),
            keras.layers.RNN(
                keras.layers.GRUCell(4), return_sequences=True, name="rnn"
            ),
            keras.layers.TimeDistributed(keras.layers.Dense(4), name="td"),
            keras.layers.Permute((2, 1), name="perm"),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    with pytest.raises(ValueError) as caught:
        kg.GrowableModel.from_keras(model)
    message = str(caught.value)
    assert "has 4 layer(s) keras_grow cannot take" in message
    for name, cls in [
        ("bi", "a Bidirectional"),
        ("rnn", "an RNN"),
        ("td", "a TimeDistributed"),
        ("perm", "a Permute"),
    ]:
        assert f"Layer '{name}' is {cls}" in message
    assert message.count("Supported layers") == 1


def test_a_model_that_rescales_its_input_takes_uint8_images():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    x = keras.layers.Conv2D(3, 3, activation="relu", name="c")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    user = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    model = kg.GrowableModel.from_keras(user)
    assert model.spec.takes_integer_inputs
    pixels = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1)).astype("uint8")
    np.testing.assert_allclose(
        np.asarray(model(pixels)), np.asarray(user(pixels.astype("float32"))), atol=1e-5
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(pixels, np.arange(4), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # Without the Rescaling the model still refuses integer pixels.
    plain = kg.GrowableModel.from_keras(
        keras.Sequential(
            [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
        )
    )
    with pytest.raises(TypeError, match=r"Rescaling\(1 / 255\)"):
        plain(pixels)


def test_an_adapted_normalization_layer_is_kept_and_the_net_grows_behind_it():
    # The usual Keras start of a model: a Normalization layer adapted to
    # the data. Its statistics become constants of the graph, and what
    # reads its output grows.
    data = images(SHAPE, n=32) * 3.0 + 1.0
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(data)
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(norm(inputs))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    user = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    model = kg.GrowableModel.from_keras(user)
    np.testing.assert_allclose(infer(model, data), infer(user, data), atol=EXACT)
    assert model.spec.growth_report()[0].startswith("c1 (c1): 4 units, grows")
    model.grow(model.spec.with_widths((6,)), morphisms=[SplitUnits("c1", [0, 1])])
    np.testing.assert_allclose(infer(model, data), infer(user, data), atol=EXACT)
    np.testing.assert_array_equal(
        np.asarray(model.body.get_layer("norm").mean), np.asarray(norm.mean)
    )
    assert not model.body.get_layer("norm").weights


def _augmented_cnn():
    """keras.io's "image classification from scratch" start: augmentation
    layers in a nested Sequential, inside the model."""
    augment = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(0.1),
            keras.layers.RandomZoom(0.1),
            keras.layers.RandomTranslation(0.1, 0.1),
            keras.layers.RandomContrast(0.2),
            keras.layers.RandomBrightness(0.1, value_range=(0, 1)),
        ],
        name="data_augmentation",
    )
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Resizing(24, 24, name="resize")(augment(inputs))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))


def test_augmentation_layers_inside_the_model_stay_and_the_net_grows_behind_them(
    sample_arrays,
):
    keras.utils.set_random_seed(0)
    user = _augmented_cnn()
    model = kg.GrowableModel.from_keras(user)
    x, y = sample_arrays
    # Identity in inference, random in training, as in the user's model.
    np.testing.assert_array_equal(infer(model, x[:8]), infer(user, x[:8]))
    assert (
        np.abs(np.asarray(model(x[:8], training=True)) - infer(user, x[:8])).max()
        > 1e-3
    )
    assert model.spec.widths == (4, 6)
    before = infer(model, x[:8])
    model.grow(model.spec.with_widths((6, 8)), seed=0)
    np.testing.assert_allclose(infer(model, x[:8]), before, atol=EXACT)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    tiny = kg.callbacks.TINY((x, y), grow_every=1, max_rounds=1, verbose=0)
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[tiny])
    assert np.isfinite(history.history["loss"]).all()
    assert sum(model.spec.widths) > 6 + 8


def test_from_keras_refuses_a_depth_mode_of_its_own_making():
    with pytest.raises(ValueError, match="`depth` must be 'sites'"):
        kg.GrowableModel.from_keras(mlp(), depth="named")
