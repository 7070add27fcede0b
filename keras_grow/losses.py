"""The model's loss and labels as growth code reads them, written once.

Firefly's scores, step one and AutoGrow's AdamInit train or evaluate with
the loss the user compiled, on the labels the user's data holds. What the
net's output is (logits or probabilities, of classes or of independent
labels, or plain values) is read once, from the compiled loss and the
output layer's activation (`Head`); the label checks, the warnings for a
loss that does not match the output, AdamInit's accuracy and the serving
signature all follow it.
"""

import dataclasses
import warnings

import keras
import tensorflow as tf

# Keras' losses whose labels keras_grow can check, by class name (a string
# or function name, `binary_crossentropy`, reads as its class's): sparse
# class indices, rows over the classes (one-hot or soft), or independent
# labels in [0, 1].
_LOSS_KINDS = {
    "SparseCategoricalCrossentropy": "classes",
    "CategoricalCrossentropy": "one_hot",
    "CategoricalFocalCrossentropy": "one_hot",
    "BinaryCrossentropy": "binary",
    "BinaryFocalCrossentropy": "binary",
}
# Output activations whose values are probabilities.
PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


@dataclasses.dataclass(frozen=True)
class Head:
    """What the net's output is, as its compiled loss and output layer say.

    Args:
        kind: str. `"classes"` (one class per example, sparse indices:
            softmax over the outputs), `"one_hot"` (the same classes, as
            rows of probabilities), `"binary"` (independent labels in
            [0, 1], one sigmoid per output) or `"values"` (any other loss:
            regression, or a loss keras_grow does not know; nothing about
            the labels is assumed).
        from_logits: bool. Whether the loss applies the softmax or sigmoid
            itself (its `from_logits`); `False` for `"values"`.
        activation: str. The output layer's (`NetSpec.output_activation`).
        loss_class: str. The Keras loss class, for messages.
        ignore_class: int or `None`. A sparse label the loss skips (its
            `ignore_class`, e.g. a tagger's padding).
    """

    kind: str
    from_logits: bool
    activation: str
    loss_class: str = ""
    ignore_class: int | None = None

    @property
    def classifies(self):
        """bool. Whether the outputs score classes or labels."""
        return self.kind != "values"

    @property
    def outputs_probabilities(self):
        """bool. Whether the output layer applies softmax or sigmoid."""
        return self.activation in PROBABILITY_ACTIVATIONS

    def mismatch(self):
        """str or `None`: what is wrong where the loss reads the output as
        what it is not (both wrongs train, badly, without an error)."""
        if not self.classifies or self.from_logits != self.outputs_probabilities:
            return None
        if self.from_logits:
            return (
                f"The net's output layer applies {self.activation}, but the "
                f"loss {self.loss_class}(from_logits=True) applies it again: "
                f"training learns little. Use {self.loss_class}() (or its "
                f"string name), or leave the activation out."
            )
        return (
            f"The loss {self.loss_class} reads probabilities, but the net "
            f"outputs logits (its output layer applies no softmax or sigmoid): "
            f"training would stay near chance. Use "
            f"keras.losses.{self.loss_class}(from_logits=True)."
        )

    def predicted_correctly(self, labels, outputs):
        """bool tensor: whether each prediction is right (per example for
        classes, per label for binary outputs), as Keras' accuracy.

        Raises:
            ValueError: for a `"values"` head, which predicts no class.
        """
        if not self.classifies:
            raise ValueError(
                f"Accuracy needs a classification loss (cross-entropy); the "
                f"model is compiled with {self.loss_class or 'another loss'}."
            )
        outputs = tf.convert_to_tensor(outputs)
        if self.kind == "binary":
            threshold = 0.0 if self.from_logits else 0.5
            labels = tf.reshape(tf.cast(labels, outputs.dtype), tf.shape(outputs))
            return (outputs > threshold) == (labels > 0.5)
        predicted = tf.argmax(outputs, axis=-1, output_type=tf.int64)
        if self.kind == "one_hot":
            truth = tf.argmax(labels, axis=-1, output_type=tf.int64)
        else:  # class indices, shaped as the outputs without their last axis
            truth = tf.reshape(tf.cast(labels, tf.int64), tf.shape(predicted))
        return predicted == truth

    def named_outputs(self, outputs):
        """`{name: tensor}` of a served net's `outputs`, as TF Serving
        clients read them: `probabilities` (and the `logits` they come from
        where the net outputs logits) for a classifier, `outputs` for any
        other net."""
        if self.outputs_probabilities:
            return {"probabilities": outputs}
        if not self.classifies:
            return {"outputs": outputs}
        squash = tf.nn.sigmoid if self.kind == "binary" else tf.nn.softmax
        return {"logits": outputs, "probabilities": squash(outputs)}


def head(loss, activation="linear"):
    """The `Head` of a net whose output layer applies `activation`, trained
    with `loss` (a string name, a `keras.losses.Loss` or a function, as
    `compile` takes it); `None` where there is no loss."""
    if loss is None:
        return None
    config = {}
    if isinstance(loss, str):
        name = loss.lower()
    elif isinstance(loss, keras.losses.Loss):
        name, config = type(loss).__name__, loss.get_config()
    else:
        name = getattr(loss, "__name__", "")
    from_logits = bool(config.get("from_logits", False))
    loss_class = (
        "".join(w.capitalize() for w in name.split("_")) if "_" in name else name
    )
    kind = _LOSS_KINDS.get(loss_class, "values")
    if kind == "values":
        from_logits = False
    return Head(kind, from_logits, activation, loss_class, config.get("ignore_class"))


def model_head(model):
    """The `Head` of a compiled `GrowableModel` (`None` if not compiled)."""
    return head(getattr(model, "loss", None), model.spec.output_activation)


def served_head(model):
    """The `Head` a `GrowableModel` is served with: its compiled one, else
    a named family's (class logits, its only kind), else a model of your
    own's read as plain outputs (nothing says what they mean)."""
    found = model_head(model)
    if found is not None:
        return found
    activation = model.spec.output_activation
    if model.spec.kind == "graph":
        return Head("values", False, activation)
    return Head("classes", True, activation)


def compiled_loss(model, who):
    """The model's compiled loss as `(y, outputs, sample_weight=None) ->
    scalar`, reduced over the batch as `fit` reduces it (a bare function,
    such as a string loss, wrapped as `compile` wraps it), for growth code
    that trains or scores outside `fit` on the objective `fit` trains.

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
    return _FunctionLoss(loss)


class _FunctionLoss(keras.losses.Loss):
    """A bare loss function as `compile` wraps it: labels and outputs of
    one rank (`same_rank`), and `Loss.__call__` weighs and reduces what
    the function returns per example."""

    def __init__(self, fn):
        super().__init__(name=getattr(fn, "__name__", "loss"))
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(*same_rank(y_true, y_pred))


def same_rank(y_true, y_pred):
    """`y_true` and `y_pred` made one rank where they differ by a last axis
    of 1, as Keras matches them before a loss: labels of shape (batch,)
    beside outputs of shape (batch, 1), a binary classifier's, gain the
    axis; a (batch, 1) beside a rank-2-or-more other loses it."""
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
        if pred_rank == 1:
            y_pred = keras.ops.expand_dims(y_pred, -1)
        else:
            y_true = keras.ops.squeeze(y_true, -1)
    if pred_rank == true_rank + 1 and y_pred.shape[-1] == 1:
        if true_rank == 1:
            y_true = keras.ops.expand_dims(y_true, -1)
        else:
            y_pred = keras.ops.squeeze(y_pred, -1)
    return y_true, y_pred


def batch_parts(batch):
    """`(x, y, sample_weight)` of one batch as `fit` reads it, the weights
    float32 ones where the batch has none, so that weighted and unweighted
    data share one traced step and one reduction."""
    x, y, weights = keras.utils.unpack_x_y_sample_weight(batch)
    if weights is None:
        weights = tf.ones(tf.shape(y)[:1], tf.float32)
    return net_inputs(x), y, tf.cast(weights, tf.float32)


def net_inputs(inputs):
    """`inputs` as a net's body takes them: a dict of one input by name
    (`{"token_ids": x}`, as Keras takes a one-input model's inputs too)
    is its tensor, since a body of one input takes one tensor; a dict of
    several (a padding mask beside the examples) is kept."""
    if isinstance(inputs, dict) and len(inputs) == 1:
        (inputs,) = inputs.values()
    return inputs


def warn_if_mismatched(head):
    """Warns where the compiled loss reads the output as what it is not
    (`Head.mismatch` of `head`, `None` when not compiled): logits read as
    probabilities, or probabilities given a loss that applies softmax or
    sigmoid again."""
    problem = head and head.mismatch()
    if problem:
        warnings.warn(problem, UserWarning, stacklevel=3)  # the user's fit call
