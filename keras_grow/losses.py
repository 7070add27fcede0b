"""The model's loss and labels as growth code reads them, written once.

Firefly's scores, step one and AutoGrow's AdamInit train or evaluate with
the loss the user compiled, on the labels the user's data holds: sparse
class indices (any shape that flattens to one per example) or one-hot /
probability rows, whichever the compiled loss expects. Every net keras_grow
builds outputs logits, so a loss that expects probabilities is a silent
mistake worth a warning.
"""

import warnings

import keras
import tensorflow as tf

# Keras' losses that read probabilities unless told `from_logits=True`.
_PROBABILITY_LOSSES = {
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
}


def compiled_loss(model, who):
    """The model's compiled loss as `(y, logits) -> scalar` (mean over the
    batch), for growth code that trains or scores outside `fit`.

    Raises:
        ValueError: naming `who` if the model is not compiled with a loss.
    """
    loss = getattr(model, "loss", None)
    if loss is None:
        raise ValueError(
            f"{who} uses the model's loss; compile the model (with a loss) "
            f"before fitting."
        )
    loss = keras.losses.get(loss)
    if isinstance(loss, keras.losses.Loss):
        return loss
    return lambda y, logits: tf.reduce_mean(loss(y, logits))  # a bare function


def class_indices(labels):
    """int64 class indices, one per example, from sparse or one-hot labels.

    A rank-2 (or higher) label tensor whose last axis is longer than 1 is
    read as one-hot or probability rows (argmax); anything else as sparse
    indices, flattened.
    """
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank is not None and labels.shape.rank >= 2:
        if labels.shape[-1] is not None and labels.shape[-1] > 1:
            return tf.argmax(labels, axis=-1, output_type=tf.int64)
    return tf.cast(tf.reshape(labels, [-1]), tf.int64)


def probability_loss_name(loss):
    """The Keras loss class name if `loss` reads probabilities (a string
    name or a loss object with `from_logits=False`), else `None`."""
    if isinstance(loss, str):
        return _PROBABILITY_LOSSES.get(loss.lower())
    if isinstance(loss, keras.losses.Loss):
        config = loss.get_config()
        if config.get("from_logits") is False:
            return type(loss).__name__
    return None


def warn_if_probability_loss(loss):
    """Warns when `loss` expects probabilities: keras_grow nets output
    logits, so such a loss trains near chance without any error."""
    name = probability_loss_name(loss)
    if name is None:
        return
    warnings.warn(
        f"The loss {loss!r} reads probabilities, but keras_grow nets output "
        f"logits (no softmax): training would stay near chance. Use "
        f"keras.losses.{name}(from_logits=True).",
        UserWarning,
        stacklevel=3,  # the user's fit call
    )
