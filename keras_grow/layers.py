"""Layers a growable model may need that Keras itself does not ship."""

import keras


@keras.saving.register_keras_serializable(package="keras_grow")
class PositionEmbedding(keras.layers.Layer):
    """A learned vector per position, to add to a sequence's features.

    The layer returns the position embeddings broadcast to its input's
    shape; add them to the input yourself (as KerasHub's
    `PositionEmbedding` does), so the graph shows the sum:

    >>> import keras, keras_grow as kg
    >>> tokens = keras.Input((16, 32))
    >>> x = keras.layers.Add()([tokens, kg.layers.PositionEmbedding(16)(tokens)])
    >>> tuple(x.shape)
    (None, 16, 32)

    Its width is its input's, so it grows with the units it is added to.

    Args:
        sequence_length: int. The most positions an input may have; an
            input of fewer positions uses the first ones.
        initializer: the embeddings' initializer. Defaults to
            `"glorot_uniform"`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, int):
            raise ValueError(
                "`sequence_length` must be a positive integer; received "
                f"{sequence_length!r}."
            )
        if sequence_length < 1:
            raise ValueError(
                f"`sequence_length` must be >= 1; received {sequence_length}."
            )
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(
                "PositionEmbedding reads (batch, positions, features) inputs; "
                f"received shape {tuple(input_shape)}."
            )
        if input_shape[-2] is not None and input_shape[-2] > self.sequence_length:
            raise ValueError(
                f"PositionEmbedding has {self.sequence_length} positions; its "
                f"input has {input_shape[-2]}. Give sequence_length >= "
                f"{input_shape[-2]}."
            )
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, input_shape[-1]),
            initializer=self.initializer,
        )

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        positions = keras.ops.slice(
            keras.ops.convert_to_tensor(self.embeddings),
            (0, 0),
            (shape[-2], shape[-1]),
        )
        return keras.ops.broadcast_to(positions, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            sequence_length=self.sequence_length,
            initializer=keras.initializers.serialize(self.initializer),
        )
        return config
