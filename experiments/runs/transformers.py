"""The transformers the experiments grow, written in plain Keras: a ViT on
28x28 images and a text classifier over token ids, and the synthetic text
task the latter learns."""

import keras
import numpy as np

import keras_grow as kg

KEY_DIM = 8
VOCABULARY = 64
POSITIONS = 24


def encoder(x, width, heads, layers):
    """Pre-norm encoder layers on a (batch, positions, width) stream."""
    for i in range(layers):
        y = keras.layers.LayerNormalization(name=f"layer{i}_norm1")(x)
        y = keras.layers.MultiHeadAttention(heads, KEY_DIM, name=f"layer{i}_attention")(
            y, y
        )
        x = keras.layers.Add(name=f"layer{i}_add1")([x, y])
        y = keras.layers.LayerNormalization(name=f"layer{i}_norm2")(x)
        y = keras.layers.Dense(2 * width, activation="gelu", name=f"layer{i}_ff1")(y)
        y = keras.layers.Dense(width, name=f"layer{i}_ff2")(y)
        x = keras.layers.Add(name=f"layer{i}_add2")([x, y])
    return keras.layers.LayerNormalization(name="final_norm")(x)


def vit(width, heads, layers, num_classes=10):
    """A ViT on 28x28 images: 7x7 patches, learned positions, mean pool."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(width, 7, strides=7, name="patches")(inputs)
    x = keras.layers.Reshape((16, width), name="tokens")(x)
    positions = kg.layers.PositionEmbedding(16, name="positions")(x)
    x = keras.layers.Add(name="embedded")([x, positions])
    x = encoder(x, width, heads, layers)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="vit")


def text_classifier(width, heads, layers, num_classes=3):
    """Token ids in: embeddings, learned positions, encoder, max pool."""
    inputs = keras.Input((POSITIONS,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(VOCABULARY, width, name="tokens")(inputs)
    positions = kg.layers.PositionEmbedding(POSITIONS, name="positions")(x)
    x = keras.layers.Add(name="embedded")([x, positions])
    x = encoder(x, width, heads, layers)
    x = keras.layers.GlobalMaxPooling1D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="text")


def synthetic_text(count, seed):
    """(token ids, labels): random sequences over `VOCABULARY` tokens in
    which tokens 1, 2 and 3 each appear once; the label is which of them
    comes first, a task that needs attention over positions."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(4, VOCABULARY, (count, POSITIONS)).astype("int32")
    for row in tokens:
        row[rng.choice(POSITIONS, 3, replace=False)] = rng.permutation([1, 2, 3])
    labels = np.array(
        [min(range(3), key=lambda c: list(r).index(c + 1)) for r in tokens]
    )
    return tokens, labels
