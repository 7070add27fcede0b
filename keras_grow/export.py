"""Export a model as a TF Serving SavedModel that needs no keras_grow."""

import os
import shutil
import tempfile

import keras
import tensorflow as tf

from keras_grow import losses

SERVING_SIGNATURE = "serving_default"


def _check_version(version):
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(
            f"`version` must be an integer >= 0 (TF Serving's version "
            f"directory); received {version!r}."
        )


def _prepare_parent(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"Cannot create the export directory {path!r}: {error}. Choose "
            f"a writable path."
        ) from error
    if not os.access(path, os.W_OK):
        raise PermissionError(
            f"The export directory {path!r} is not writable. Choose a "
            f"writable path or fix its permissions."
        )


def _serving_archive(body, model_inputs, head):
    archive = keras.export.ExportArchive()
    archive.track(body)
    signature = [
        tf.TensorSpec((None,) + i.shape, i.dtype, i.name) for i in model_inputs
    ]

    def serve(*tensors):
        if len(tensors) == 1:
            (inputs,) = tensors
        else:
            inputs = {i.name: t for i, t in zip(model_inputs, tensors)}
        return head.named_outputs(tf.cast(body(inputs, training=False), tf.float32))

    archive.add_endpoint(SERVING_SIGNATURE, serve, input_signature=signature)
    return archive


def export_serving(model, path, version=1, overwrite=False):
    """Writes `model` as a TF Serving SavedModel to `path/<version>/`.

    The `serving_default` signature takes `images`: float32 pixels of shape
    `(batch,) + input_shape`, in the range the model was trained on (the
    `keras_grow.data` pipelines give [0, 1]); any input normalisation of the
    spec is inside the graph. A model of your own takes its inputs' dtype,
    under the name of its `keras.Input` (`images` where Keras named it or
    the name can be no argument's: `GraphSpec.model_inputs`),
    and a model with side inputs (a padding mask) each of its inputs by
    name (`spec.model_inputs`). It returns float32 `(batch, num_classes)`
    tensors named by what the compiled loss says the net outputs
    (`keras_grow.losses.Head.named_outputs`): `logits` and `probabilities`
    (softmax, or sigmoid under a binary cross-entropy) for a net that
    outputs logits, `probabilities` alone for one whose output layer
    applies softmax or sigmoid, and `outputs` under any other loss
    (regression). An uncompiled named family is served as class logits, an
    uncompiled model of your own as `outputs`. Loading it needs only
    TensorFlow (`tf.saved_model.load`, or TF Serving pointed at `path`).

    The SavedModel is written to a temporary directory beside the target
    and renamed into place, so a failed export leaves any earlier export
    untouched.

    Args:
        model: a `keras_grow.GrowableModel`.
        path: str. The model's base directory (TF Serving's `model_base_path`).
        version: int. The version directory, >= 0. Defaults to `1`.
        overwrite: bool. Replace an existing `path/<version>/`. Defaults to
            `False`.

    Returns:
        str. The directory written, `path/<version>`.

    Raises:
        FileExistsError: if `path/<version>` exists and `overwrite` is
            `False`.
        OSError: if `path` cannot be created or written.
        ValueError: for a bad `version`.

    Example:

    >>> model.export_serving("out/found_net")  # doctest: +SKIP
    'out/found_net/1'
    """
    _check_version(version)
    path = os.fspath(path)
    target = os.path.join(path, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(
            f"{target!r} already exists. Pass overwrite=True to replace it, "
            f"or export another version (version={version + 1})."
        )
    _prepare_parent(path)
    staging = tempfile.mkdtemp(prefix=f".export-{version}-", dir=path)
    try:
        # Built anew from the spec: a body that grew in place has variables
        # of unknown unit sizes (`keras_grow.in_place`), which a SavedModel
        # would record as such, and one with a reserve holds blocks the net
        # does not compute.
        archive = _serving_archive(
            model.net_body(), model.spec.model_inputs, losses.served_head(model)
        )
        archive.write_out(os.path.join(staging, "model"), verbose=False)
        if os.path.exists(target):
            shutil.move(target, os.path.join(staging, "previous"))
        os.rename(os.path.join(staging, "model"), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
