"""Checkpoints of a growing run: architecture, weights, optimizer, run state.

A checkpoint is a directory `ckpt-<epochs done, 6 digits>` (or, written
in the middle of an epoch, `ckpt-<epochs done>-<batches done of the next
epoch, 6 digits>`) holding `arrays.npz` (every model variable and every
optimizer variable, slots and iteration count included, in their tracking
order; mid-epoch, the metrics' running state too) and `checkpoint.json`
(the spec, the growth log, the variables' paths and shapes, the SHA-256 of
`arrays.npz`, and a free `state` dict: callback states, history). It is
written into a hidden staging directory first and renamed into place, so a
run killed while saving leaves the previous checkpoints intact; one that is
torn or altered anyway fails its checksum or its parse, and `latest` reports
it and falls back to the one before.
"""

import dataclasses
import hashlib
import json
import os
import re
import shutil

import keras
import numpy as np
from absl import logging

from keras_grow import depth_reserve
from keras_grow import in_place
from keras_grow import specs

FORMAT = 1
_NAME = re.compile(r"^ckpt-(\d{6,})(?:-(\d{6,}))?$")
_ARRAYS = "arrays.npz"
_META = "checkpoint.json"


class CorruptCheckpointError(ValueError):
    """No checkpoint in a directory can be read, though some are there."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back and verified.

    Attributes:
        path: str. Its directory.
        epoch: int. Epochs completed when it was written.
        spec: the spec of the architecture it holds.
        growth_log: list of dict.
        state: dict. What the writer stored besides the model.
        model_arrays, optimizer_arrays: list of np.ndarray, tracking order.
        model_paths, optimizer_paths: list of str. The variables' paths.
        batch: int. Batches of epoch `epoch` (counted from 0) done when it
            was written in the middle of that epoch; 0 for an epoch's end.
        metric_arrays, metric_paths: the metrics' running state (sums and
            counts) of a mid-epoch checkpoint; empty otherwise.
        reserve: the body's `keras_grow.depth_reserve.Reserve` (blocks
            built ahead of growth, switched off), or `None`.
    """

    path: str
    epoch: int
    spec: object
    growth_log: list
    state: dict
    model_arrays: list
    optimizer_arrays: list
    model_paths: list
    optimizer_paths: list
    batch: int = 0
    metric_arrays: list = dataclasses.field(default_factory=list)
    metric_paths: list = dataclasses.field(default_factory=list)
    reserve: object = None


def _optimizer_variables(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return []
    # Built as the first train step would (in the model's strategy scope,
    # slots resizable), so that a restored run still grows in place.
    in_place.build_optimizer(model)
    return list(optimizer.variables)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_arrays(path, arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    _fsync(path)


def _key(prefix, index):
    """The name of a variable's array in arrays.npz."""
    return f"{prefix}_{index:05d}"


def checkpoint_name(epoch, batch=0):
    if batch:
        return f"ckpt-{epoch:06d}-{batch:06d}"
    return f"ckpt-{epoch:06d}"


def save(directory, model, epoch, state=None, keep=2, batch=0):
    """Writes a checkpoint of `model` after `epoch` completed epochs (and
    `batch` batches of the next one).

    Args:
        directory: str. Created if missing; holds only checkpoints.
        model: a `keras_grow.GrowableModel`.
        epoch: int. Epochs completed.
        state: dict or `None`. JSON-serialisable run state.
        keep: int. How many checkpoints to keep (newest first), >= 1.
        batch: int. Batches done of epoch `epoch` (0: at an epoch's end).
            A mid-epoch checkpoint also holds the metrics' running state,
            so the epoch's logged metrics come out as if never interrupted.

    Returns:
        str. The checkpoint's directory.
    """
    os.makedirs(directory, exist_ok=True)
    name = checkpoint_name(epoch, batch)
    final = os.path.join(directory, name)
    staging = os.path.join(directory, f".{name}.tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    model_variables = list(model.weights)
    optimizer_variables = _optimizer_variables(model)
    metric_variables = list(model.metrics_variables) if batch else []
    arrays = {
        _key(prefix, i): keras.ops.convert_to_numpy(v)
        for prefix, variables in (
            ("model", model_variables),
            ("optimizer", optimizer_variables),
            ("metric", metric_variables),
        )
        for i, v in enumerate(variables)
    }
    arrays_path = os.path.join(staging, _ARRAYS)
    _write_arrays(arrays_path, arrays)
    meta = {
        "format": FORMAT,
        "epoch": int(epoch),
        "batch": int(batch),
        "spec": model.spec.to_dict(),
        # The body's blocks built ahead, whose variables the arrays hold.
        "reserve": None if model.reserve is None else model.reserve.to_dict(),
        "growth_log": model.growth_log,
        "model_paths": [v.path for v in model_variables],
        "optimizer_paths": [v.path for v in optimizer_variables],
        "metric_paths": [v.path for v in metric_variables],
        "sha256": _sha256(arrays_path),
        "state": state or {},
    }
    meta_path = os.path.join(staging, _META)
    with open(meta_path, "w") as handle:
        json.dump(meta, handle, indent=1, sort_keys=True)
    _fsync(meta_path)
    if os.path.exists(final):  # the same epoch saved again (a rerun's end)
        retired = os.path.join(directory, f".{name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(final, retired)
        shutil.rmtree(retired)
    os.replace(staging, final)
    _fsync(directory)
    _prune(directory, keep)
    return final


def _listed(directory):
    """[((epoch, batch), path)] of the checkpoints in `directory`, newest
    first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _NAME.match(name)
        if match:
            position = (int(match.group(1)), int(match.group(2) or 0))
            found.append((position, os.path.join(directory, name)))
    return sorted(found, reverse=True)


def _prune(directory, keep):
    for _, path in _listed(directory)[keep:]:
        shutil.rmtree(path, ignore_errors=True)
    for name in os.listdir(directory):  # staging left by a killed writer
        if name.startswith(".ckpt-"):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def read(path):
    """Reads and verifies the checkpoint at `path`.

    Raises:
        CorruptCheckpointError: naming what is wrong with it.
    """
    try:
        with open(os.path.join(path, _META)) as handle:
            meta = json.load(handle)
    except (OSError, ValueError) as error:
        raise CorruptCheckpointError(f"{_META} unreadable ({error})") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CorruptCheckpointError(
            f"{_META} is not a format-{FORMAT} keras_grow checkpoint"
        )
    arrays_path = os.path.join(path, _ARRAYS)
    try:
        digest = _sha256(arrays_path)
    except OSError as error:
        raise CorruptCheckpointError(f"{_ARRAYS} unreadable ({error})") from error
    if digest != meta.get("sha256"):
        raise CorruptCheckpointError(f"{_ARRAYS} does not match its checksum")
    try:
        with np.load(arrays_path) as stored:
            arrays = {key: stored[key] for key in stored.files}
        model_paths = list(meta["model_paths"])
        optimizer_paths = list(meta["optimizer_paths"])
        metric_paths = list(meta.get("metric_paths", []))
        checkpoint = Checkpoint(
            path=path,
            epoch=int(meta["epoch"]),
            spec=specs.from_dict(meta["spec"]),
            growth_log=list(meta["growth_log"]),
            state=dict(meta["state"]),
            model_arrays=[arrays[_key("model", i)] for i in range(len(model_paths))],
            optimizer_arrays=[
                arrays[_key("optimizer", i)] for i in range(len(optimizer_paths))
            ],
            model_paths=model_paths,
            optimizer_paths=optimizer_paths,
            batch=int(meta.get("batch", 0)),
            metric_arrays=[arrays[_key("metric", i)] for i in range(len(metric_paths))],
            metric_paths=metric_paths,
            reserve=_reserve(meta.get("reserve")),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CorruptCheckpointError(f"inconsistent contents ({error})") from error
    return checkpoint


def _reserve(data):
    return None if data is None else depth_reserve.Reserve.from_dict(data)


def latest(directory):
    """The newest readable checkpoint in `directory`, or `None` if none.

    A checkpoint that fails verification is reported (an absl warning
    naming it and the fault) and the one before it is tried.

    Raises:
        CorruptCheckpointError: if there are checkpoints but none is
            readable (nothing is deleted; move them away to start over).
    """
    faults = []
    for _, path in _listed(directory):
        try:
            return read(path)
        except CorruptCheckpointError as error:
            faults.append(f"{path}: {error}")
            logging.warning(
                "Checkpoint %s is corrupt (%s); trying the one before.", path, error
            )
    if faults:
        raise CorruptCheckpointError(
            f"No readable checkpoint in {directory!r}: "
            + "; ".join(faults)
            + ". Move the directory away to start the run over."
        )
    return None


def restore(model, checkpoint):
    """Puts `checkpoint`'s architecture, weights and optimizer into `model`.

    Raises:
        ValueError: if the checkpoint's variables do not match the model
            rebuilt from its spec (another model, or another optimizer).
    """
    model.rebuild(checkpoint.spec, checkpoint.growth_log, checkpoint.reserve)
    _assign(model.weights, checkpoint.model_arrays, checkpoint.model_paths, "model")
    if checkpoint.optimizer_arrays:
        optimizer_variables = _optimizer_variables(model)
        if not optimizer_variables:
            raise ValueError(
                f"Checkpoint {checkpoint.path} holds optimizer state but the "
                "model is not compiled: compile it before restoring."
            )
        _assign(
            optimizer_variables,
            checkpoint.optimizer_arrays,
            checkpoint.optimizer_paths,
            "optimizer",
        )


def restore_metrics(model, checkpoint):
    """Puts a mid-epoch checkpoint's metric state into `model`'s metrics
    (which must be built: Keras builds them with the train step).

    Raises:
        ValueError: if the metrics differ from those that were saved.
    """
    _assign(
        list(model.metrics_variables),
        checkpoint.metric_arrays,
        checkpoint.metric_paths,
        "metric",
    )


def _relative(path):
    # An optimizer's variables are prefixed by its name, which Keras makes
    # unique per process (`sgd`, `sgd_1`, ...): compare what follows.
    return path.split("/", 1)[-1]


def _assign(variables, arrays, paths, what):
    found = [v.path for v in variables]
    if what == "optimizer":
        found, paths = [_relative(p) for p in found], [_relative(p) for p in paths]
    if found != paths:
        raise ValueError(
            f"The checkpoint's {what} variables do not match this model's "
            f"({len(paths)} saved, {len(found)} here; first difference: "
            f"{next((p for p, q in zip(paths, found) if p != q), 'count')}). "
            "Restore into the same kind of model, compiled with the same "
            "optimizer class."
        )
    for variable, array, path in zip(variables, arrays, paths):
        if tuple(variable.shape) != array.shape:
            raise ValueError(
                f"The checkpoint's {what} variable {path} has shape "
                f"{array.shape}; the model's has {tuple(variable.shape)}."
            )
        variable.assign(array)
