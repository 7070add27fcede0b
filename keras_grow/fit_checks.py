"""What `GrowableModel.fit` checks before training: its callbacks, labels.

The growth callbacks are recognised by what they say of themselves
(`sets_learning_rate`, `carries_growth_state`, `growth_data`), so this
module, below the callbacks, imports none of them.
"""

import warnings

import keras
import numpy as np
import tensorflow as tf


def _is_backup(callback):
    """keras_grow's `BackupAndRestore`."""
    return getattr(callback, "carries_growth_state", False)


def _stateful(callback):
    return (
        hasattr(callback, "get_state")
        and hasattr(callback, "set_state")
        and not _is_backup(callback)
    )


def check_fit_callbacks(callbacks):
    """Checks (and completes) the callbacks of one `fit` of a growing model.

    - Keras' own `BackupAndRestore` restores weights into a graph of the
      size it saved: after a growth it cannot resume. It is refused, naming
      `kg.callbacks.BackupAndRestore`.
    - A `kg.callbacks.BackupAndRestore` given no `callbacks` carries the
      state of every growth callback of this fit (AutoGrow's phase,
      Firefly's rounds, ...): without it a resumed run would start growing
      from scratch.
    - One given some growth callbacks but not all of this fit's is refused:
      the others would restart on resume.
    - `keras.callbacks.LearningRateScheduler` sets the rate every epoch:
      beside a growth callback that sets it too (AutoGrow's fine-tune,
      Firefly's period schedule) it owns the rate, the growth callback
      sets none, and a warning says so.

    Args:
        callbacks: the list passed to `fit` (or `None`).

    Raises:
        ValueError: as above, naming the callbacks.
    """
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = callbacks.callbacks
    callbacks = list(callbacks or [])
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.BackupAndRestore):
            raise ValueError(
                "keras.callbacks.BackupAndRestore cannot resume a growing model "
                "(it restores weights into the graph it saved, which growth "
                "replaces). Use kg.callbacks.BackupAndRestore(backup_dir), which "
                "saves the spec, weights, optimizer and growth state."
            )
    _assign_learning_rate_owner(callbacks)
    stateful = [c for c in callbacks if _stateful(c)]
    for backup in (c for c in callbacks if _is_backup(c)):
        if not backup.stateful_callbacks:
            backup.stateful_callbacks = tuple(stateful)
            continue
        missing = [c for c in stateful if c not in backup.stateful_callbacks]
        if missing:
            names = ", ".join(type(c).__name__ for c in missing)
            raise ValueError(
                f"kg.callbacks.BackupAndRestore(callbacks=...) leaves out {names} "
                f"of this fit: its state would restart on resume. Pass every "
                f"growth callback, or none (then it finds them itself)."
            )


def _weighs_examples(data):
    """Whether `data` (a dataset, or arrays as `fit` takes them) holds
    (x, y, sample_weight)."""
    if isinstance(data, tf.data.Dataset):
        element = data.element_spec
        return isinstance(element, tuple) and len(element) == 3
    return isinstance(data, (tuple, list)) and len(data) == 3


def _examples_of(data):
    """The examples' array of growth data given as arrays, else `None`."""
    if isinstance(data, (tuple, list)) and data and isinstance(data[0], np.ndarray):
        return data[0]
    return None


def check_growth_data(x, sample_weight, class_weight, validation_split, callbacks):
    """Warns where the data a growth callback measures on (its
    `growth_data`, `{argument: data as given}`) is not what `fit` trains on:

    - `fit` weighs its examples (`sample_weight`, `class_weight`, or a
      dataset of (x, y, sample_weight) batches) and the growth data has no
      weights: growth would choose what to add by the unweighted loss;
    - `fit` holds out the last `validation_split` of `x` for validation
      and the growth data's arrays hold them (`x` itself): growth would
      choose on the validation examples, and the validation metrics would
      no longer be held out.
    """
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = callbacks.callbacks
    if class_weight is not None:
        weighs = "class_weight"
    elif sample_weight is not None:
        weighs = "sample_weight"
    elif isinstance(x, tf.data.Dataset) and _weighs_examples(x):
        weighs = "a dataset of (x, y, sample_weight)"
    else:
        weighs = None
    held_out = bool(validation_split) and isinstance(x, np.ndarray)
    kept = int(len(x) * (1 - validation_split)) if held_out else 0  # as Keras
    for callback in callbacks or []:
        for argument, data in getattr(callback, "growth_data", {}).items():
            who = f"{type(callback).__name__}'s `{argument}`"
            if weighs and not _weighs_examples(data):
                warnings.warn(
                    f"fit weighs its examples ({weighs}), but {who} has no "
                    f"sample weights: growth would score what to add by the "
                    f"unweighted loss. Pass {argument}=(x, y, sample_weight) "
                    f"(class weights as sample weights: "
                    f"np.vectorize(class_weight.get)(y)), or a dataset of "
                    f"(x, y, sample_weight) batches.",
                    UserWarning,
                    stacklevel=4,  # the user's fit call
                )
            examples = _examples_of(data)
            if (
                held_out
                and examples is not None
                and np.may_share_memory(examples, x[kept:])
            ):
                warnings.warn(
                    f"fit holds out the last {validation_split:g} of x for "
                    f"validation (validation_split), but {who} holds them: "
                    f"growth would decide on the validation examples, and "
                    f"the validation metrics would not be held out. Pass "
                    f"{argument}=(x[:{kept}], y[:{kept}]), the examples fit "
                    f"trains on.",
                    UserWarning,
                    stacklevel=4,  # the user's fit call
                )


def _assign_learning_rate_owner(callbacks):
    """Tells each growth callback that sets the learning rate whether a
    `LearningRateScheduler` of this fit owns it (see `check_fit_callbacks`)."""
    setters = [c for c in callbacks if getattr(c, "sets_learning_rate", False)]
    owners = [
        c for c in callbacks if isinstance(c, keras.callbacks.LearningRateScheduler)
    ]
    owner = type(owners[0]).__name__ if owners else None
    for callback in setters:
        callback.learning_rate_owner = owner
    if owner and setters:
        names = " and ".join(type(c).__name__ for c in setters)
        warnings.warn(
            f"keras.callbacks.{owner} sets the learning rate every epoch, so it "
            f"owns the rate in this fit: {names} sets none (AutoGrow's "
            f"fine-tune drops, a period schedule). Write the drops into your "
            f"schedule, or leave {owner} out to use theirs. "
            f"ReduceLROnPlateau composes with them instead.",
            UserWarning,
            stacklevel=3,
        )


def _labels_of(x, y):
    """Labels to check cheaply: `y` given as an array, or the first batch
    of a `tf.data.Dataset` of (x, y) pairs; `None` otherwise."""
    if y is not None:
        return np.asarray(y) if isinstance(y, (np.ndarray, list)) else None
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        if isinstance(spec, tuple) and len(spec) >= 2:
            for batch in x.take(1):
                return np.asarray(batch[1])
    return None


def check_labels(x, y, head, num_classes, output_rank=2):
    """Raises if the labels do not fit the net's outputs.

    What is checked follows the compiled loss (`head`, a
    `keras_grow.losses.Head`): sparse class indices (shaped as the outputs
    without their class axis, e.g. one per token of a tagger) must be whole
    numbers in [0, num_classes), but for the loss's `ignore_class`;
    one-hot (or soft) rows must have `num_classes` entries; binary labels
    must lie in [0, 1]. Labels of any other loss (regression) are the
    loss's business. Checked on label arrays and on the first batch of a
    dataset: on CPU TensorFlow would fail deep in a graph traceback, and
    under XLA or on a GPU not at all (the loss is then garbage).

    Args:
        x, y: what `fit` was given.
        head: `keras_grow.losses.Head` or `None` (not compiled).
        num_classes: int. The spec's (the outputs' last axis).
        output_rank: int. The rank of the net's outputs, batch included:
            `2` for one prediction per example, `3` for one per position.

    Raises:
        ValueError: naming the bad label, the loss and `num_classes`.
    """
    if head is None or not head.classifies:
        return
    labels = _labels_of(x, y)
    if labels is None or labels.size == 0 or not np.issubdtype(labels.dtype, np.number):
        return
    check = {"binary": _check_binary, "one_hot": _check_rows}.get(
        head.kind, _check_class_indices
    )
    check(labels, head, num_classes, output_rank)


def _check_binary(labels, head, num_classes, output_rank):
    low, high = labels.min(), labels.max()
    if low < 0 or high > 1:
        raise ValueError(
            f"Label {low if low < 0 else high:g} is outside [0, 1], which "
            f"{head.loss_class} needs (one independent label per output). "
            f"For one class out of {max(num_classes, 2)} use sparse class "
            f"indices and SparseCategoricalCrossentropy."
        )


def _check_rows(labels, head, num_classes, output_rank):
    if labels.ndim < output_rank:
        raise ValueError(
            f"{head.loss_class} takes rows of {num_classes} (one-hot or "
            f"soft labels), but the labels have shape {labels.shape}: "
            f"class indices? Compile with SparseCategoricalCrossentropy, "
            f"or give keras.utils.to_categorical(labels, {num_classes})."
        )
    if labels.shape[-1] != num_classes:
        raise ValueError(
            f"The labels are rows of {labels.shape[-1]} (one-hot?), but the "
            f"net has {num_classes} classes. Build the spec with "
            f"num_classes={labels.shape[-1]}, or fix the labels."
        )


def _check_class_indices(labels, head, num_classes, output_rank):
    if labels.ndim == output_rank and labels.shape[-1] > 1:
        raise ValueError(
            f"The labels are rows of {labels.shape[-1]} (one-hot?), but "
            f"{head.loss_class} takes class indices, one per prediction. "
            f"Compile with CategoricalCrossentropy for rows, or give the "
            f"indices (np.argmax(labels, axis=-1))."
        )
    if head.ignore_class is not None:
        labels = labels[labels != head.ignore_class]
        if labels.size == 0:
            return
    low, high = labels.min(), labels.max()
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise ValueError(
            f"Label {bad:g} is outside [0, {num_classes}): the net has "
            f"{num_classes} classes (spec num_classes). Build the spec with "
            f"the number of classes the data has, or fix the labels."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        fractional = labels[labels != np.round(labels)]
        if fractional.size:
            raise ValueError(
                f"Label {fractional.flat[0]:g} is not a class index: sparse "
                f"labels are whole numbers in [0, {num_classes}). For one-hot "
                f"or soft labels give rows of {num_classes} and a categorical "
                f"loss."
            )
