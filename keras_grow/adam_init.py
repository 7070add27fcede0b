"""AutoGrow's AdamInit: train only a new block's last BN, with Adam."""

import keras
import numpy as np
import tensorflow as tf

from keras_grow import losses


def adam_init_norm(
    model,
    norm_name,
    data,
    target_accuracy,
    max_epochs=10,
    learning_rate=1e-3,
    tolerance=0.0,
):
    """Trains only `norm_name`'s gamma and beta until `target_accuracy`.

    Each epoch is one pass over `data` in training mode with a private Adam
    optimizer on the two variables, from wherever they are (AutoGrow: the
    default BN, gamma 1 and beta 0, as the authors' code); it stops after
    the first epoch whose training accuracy is within `tolerance` of
    `target_accuracy` (the shallower net's), or after `max_epochs`.
    Everything else is left as it was: the other weights get no gradient,
    every other BN's moving statistics are put back, and the model's own
    optimizer is never touched.

    Args:
        model: a `GrowableModel`.
        norm_name: str. The BatchNormalization layer to train.
        data: `tf.data.Dataset` of (x, y) or (x, y, sample_weight)
            batches; y whatever the compiled loss takes (sparse class
            indices or one-hot rows). The loss and the accuracy weigh the
            examples as `fit` does.
        target_accuracy: float or `None`. Training accuracy to reach; `None`
            trains `max_epochs` epochs.
        max_epochs: int. Defaults to `10` (the paper's).
        learning_rate: float. Adam's. Defaults to `1e-3`.
        tolerance: float. How far below `target_accuracy` counts as
            reached. Defaults to `0.0` (AutoGrow passes the authors' 0.005).

    Returns:
        dict with `epochs`, `train_accuracy`, `target_accuracy`, `reached`.
    """
    norm = model.body.get_layer(norm_name)
    trained = [norm.gamma, norm.beta]
    own = {id(v) for v in norm.weights}
    kept = [v for v in model.body.non_trainable_variables if id(v) not in own]
    kept_values = [v.numpy() for v in kept]
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(trained)
    loss_fn = losses.compiled_loss(model, "AdamInit")
    head = losses.model_head(model)
    body = model.body

    @tf.function
    def step(x, y, weights):
        with tf.GradientTape() as tape:
            outputs = body(x, training=True)
            loss = loss_fn(y, outputs, weights)
        optimizer.apply(tape.gradient(loss, trained), trained)
        # Weighted as fit weighs the accuracy the target was read from.
        right = tf.cast(head.predicted_correctly(y, outputs), tf.float32)
        while weights.shape.rank < right.shape.rank:
            weights = weights[..., None]
        weights = tf.broadcast_to(weights, tf.shape(right))
        return tf.reduce_sum(right * weights), tf.reduce_sum(weights)

    target = None if target_accuracy is None else target_accuracy - tolerance
    accuracy, epochs = None, 0
    while epochs < max_epochs:
        epochs += 1
        correct = seen = 0.0
        for batch in data:
            c, n = step(*losses.batch_parts(batch))
            correct, seen = correct + float(c), seen + float(n)
        accuracy = correct / seen if seen > 0 else 0.0
        if target is not None and accuracy >= target:
            break
    for variable, value in zip(kept, kept_values):
        variable.assign(value)
    return {
        "epochs": epochs,
        "train_accuracy": float(np.round(accuracy, 6)),
        "target_accuracy": target_accuracy,
        "tolerance": tolerance,
        "reached": target is not None and accuracy >= target,
    }
