"""`GrowableModel`: a Keras model whose architecture can grow, even mid-fit."""

import contextlib
import copy
import dataclasses
import json
import random
import time

import keras
import numpy as np
import tensorflow as tf

from keras_grow import build
from keras_grow import export
from keras_grow import fit_checks
from keras_grow import losses
from keras_grow import multi_worker
from keras_grow import onednn
from keras_grow import precision
from keras_grow import specs
from keras_grow import transfer
from keras_grow.build.graph import spec_from_keras
from keras_grow.finite_inputs import FiniteInputs
from keras_grow.optimizer_carry import carry_optimizer
from keras_grow.transfer.weights import assign_layer
from keras_grow.transfer.weights import read_weights


@contextlib.contextmanager
def _python_random_seeded(seed):
    """Seeds Python's `random` inside (if `seed` is not None), restoring the
    outer state after. Keras' unseeded initialisers take their seeds from
    it when a layer is made, so a body built inside starts from weights
    that depend on `seed` only: a growth with a seed is reproducible,
    whatever ran before it in the process (a resumed run included)."""
    if seed is None:
        yield
        return
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def _carry_counts(carry):
    """The optimizer carry's report as counts, or `None` without one."""
    if carry is None:
        return None
    return {
        "copied": len(carry.copied),
        "padded": len(carry.padded),
        "fresh": len(carry.fresh),
    }


def _jsonable(value):
    """Makes a growth-log value JSON-serialisable (numpy -> Python)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


@dataclasses.dataclass(frozen=True)
class _Undo:
    """The state before a growth: body, spec, optimizer, its log index, and
    Keras' step functions traced for them (with what they were compiled
    with), reused by a rollback instead of tracing them again."""

    body: keras.Model
    spec: specs.NetSpec
    optimizer: object
    index: int
    step_functions: tuple = (None, None, None)
    compiled_as: tuple = ()


def shape_hint(expected, received):
    """str. The likely fix for inputs of shape `received` (with the batch
    axis) given to a net that takes examples of shape `expected`."""
    received = tuple(received)
    if received == expected:
        return (
            "That is one example without the batch axis: add it "
            "(x[None] or np.expand_dims(x, 0))."
        )
    if len(received) == len(expected) and received[1:] + (1,) == expected:
        return "Add the channel axis: x[..., None] (or np.expand_dims(x, -1))."
    known = [d for d in received[1:] if d is not None]
    if len(known) == len(received) - 1 and int(np.prod(known)) == int(
        np.prod(expected)
    ):
        return (
            f"Same number of values per example: reshape the data to "
            f"(-1, {', '.join(map(str, expected))})."
        )
    return (
        f"Build the spec for these inputs (input_shape={received[1:]}), or "
        f"resize the data to {expected}."
    )


_SPEC_ATTR = "keras_grow_spec"
_LOG_ATTR = "keras_grow_growth_log"


def weights_spec(filepath):
    """The spec `GrowableModel.save_weights` recorded in `filepath`, or
    `None` (another writer, or not an HDF5 file)."""
    import h5py

    try:
        with h5py.File(filepath, "r") as handle:
            text = handle.attrs.get(_SPEC_ATTR)
    except OSError:
        return None
    return None if text is None else specs.from_json(text)


class ArchitectureWeights(list):
    """`GrowableModel.get_weights()`: the weight arrays, and the spec they
    belong to (`spec`), so that `set_weights` can put them back after the
    model has grown (as `keras.callbacks.EarlyStopping` does with its best
    epoch's weights)."""

    def __init__(self, arrays, spec):
        super().__init__(arrays)
        self.spec = spec


@keras.saving.register_keras_serializable(package="keras_grow")
class GrowableModel(keras.Model):
    """A `keras.Model` built from a spec, that `grow` rebuilds bigger.

    The model's body is a plain functional `keras.Model` built from `spec`.
    `grow(new_spec)` builds the body of a grown spec, transfers the weights
    (by layer name, with width morphisms and block initialisers for what is
    new), carries the optimizer's state, swaps the body in and makes the
    next train/test/predict step use it. It works before `compile`, after
    it, and from a callback in the middle of `fit`.

    Args:
        spec: a `keras_grow.specs` spec (e.g. from `keras_grow.specs.parse`).
        growth_log: list of dict or `None`. Earlier growth events (used by
            `from_config`). Defaults to `None`.
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:

    >>> import keras_grow as kg
    >>> spec = kg.specs.parse("Basic3ResNet-1-1-1", input_shape=(28, 28, 1),
    ...                       num_classes=10, widths=(8, 16, 32))
    >>> model = kg.GrowableModel(spec)
    >>> event = model.grow(spec.with_block_added(0), initializer="identity")
    >>> model.spec.notation
    'Basic3ResNet(8,16,32)-2-1-1'
    """

    def __init__(self, spec, growth_log=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(spec, specs.NetSpec):
            raise TypeError(
                "`spec` must be a keras_grow spec, e.g. "
                "kg.specs.parse('Basic3ResNet-1-1-1', input_shape=..., "
                f"num_classes=...); received {spec!r}."
            )
        self._spec = spec
        self._growth_log = [_jsonable(dict(e)) for e in (growth_log or [])]
        self.body = build.build_body(spec)
        self.build((None,) + tuple(spec.input_shape))
        # What `rollback` restores: the last growth's pre-growth state.
        self._undo = None
        self._finite_inputs = None  # see `watch_inputs`
        # The log index of the latest grow/rollback made in this process:
        # `last_change`, whose retrace `_timed_first_call` times.
        self._retrace_event = None

    def build(self, input_shape=None):
        # The body is built by construction; nothing to create here.
        self.built = True

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, after its checks: a warning for a compiled loss
        that expects probabilities (the body outputs logits; see
        `keras_grow.losses`), and the callbacks a growing model needs and
        the labels (`keras_grow.fit_checks`: Keras' own
        `BackupAndRestore` is refused, ours finds the growth callbacks;
        labels beyond `num_classes` are refused), and a warning where
        TensorFlow's oneDNN kernels may crash (`keras_grow.onednn`) and
        where bfloat16 is slower than float32 (`keras_grow.precision`).
        `compile` is Keras' own, so that `keras.models.load_model` compiles
        a saved model."""
        losses.warn_if_probability_loss(getattr(self, "loss", None))
        # fit(x, y, batch_size, epochs, verbose, callbacks, ...)
        callbacks = kwargs.get("callbacks", args[5] if len(args) > 5 else None)
        fit_checks.check_fit_callbacks(callbacks)
        x = kwargs.get("x", args[0] if args else None)
        y = kwargs.get("y", args[1] if len(args) > 1 else None)
        fit_checks.check_labels(x, y, self.spec.num_classes)
        precision.warn_if_slow_bfloat16(self.body)
        onednn.warn_if_crash_prone(
            self.body, x, kwargs.get("batch_size", args[2] if len(args) > 2 else None)
        )
        if isinstance(x, tf.data.Dataset) and len(args) < 9:
            # A dataset shuffles itself; Keras' default shuffle=True only
            # warns that it is ignored.
            kwargs.setdefault("shuffle", False)
        return super().fit(*args, **kwargs)

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        return self.body(inputs, training=training)

    def _check_inputs(self, inputs):
        # Static checks (once per trace): a clear error instead of one from
        # deep inside the graph, or silent training on 0-255 pixels.
        shape = tuple(getattr(inputs, "shape", ()))
        if not self._spec.accepts_shape(shape):
            expected = tuple(self._spec.input_shape)
            raise ValueError(
                f"{self._spec.notation} takes inputs of shape (batch, "
                f"{', '.join(map(str, expected))}); received shape {shape}. "
                f"{shape_hint(expected, shape)}"
            )
        dtype = keras.backend.standardize_dtype(getattr(inputs, "dtype", "float32"))
        if not dtype.startswith(("float", "bfloat")) and not (
            self._spec.takes_integer_inputs
        ):
            raise TypeError(
                f"GrowableModel takes float pixels in [0, 1]; received {dtype} "
                "inputs. Convert them (e.g. images / 255.0), load them with "
                "kg.data.load, or (a model of your own) start it with "
                "keras.layers.Rescaling(1 / 255)."
            )

    @property
    def spec(self):
        """The spec of the current architecture."""
        return self._spec

    @property
    def growth_log(self):
        """list of dict. Events oldest first (a copy): one per `grow` call
        (`kind` "grow") and any a callback recorded (`record_event`)."""
        return copy.deepcopy(self._growth_log)

    @property
    def last_change(self):
        """dict or `None`. The log event (a copy) of the latest `grow` or
        `rollback` made in this process since the model was built or loaded
        (a restored log's events do not count). Its `timing` gains
        `retrace_train` / `retrace_test`: the seconds of the first train and
        test calls after it, which trace Keras' step functions anew."""
        if self._retrace_event is None:
            return None
        return copy.deepcopy(self._growth_log[self._retrace_event])

    def grow(
        self,
        new_spec,
        *,
        initializer="identity",
        initializer_scale=1.0,
        morphisms=(),
        values=None,
        seed=None,
        info=None,
    ):
        """Grows the model into `new_spec`, keeping what it has learnt.

        Builds the new graph, transfers weights (see
        `keras_grow.transfer.transfer_weights`), rebuilds the optimizer with
        its state carried (see `keras_grow.optimizer_carry`), swaps the body
        and rebuilds the compiled step functions, all inside the model's
        distribution strategy scope.

        Args:
            new_spec: the grown spec: same kind, input shape and classes.
            initializer: str. How new sub-modules start. Function-preserving
                (in inference): `"identity"` on every family (a residual
                block's last BN zeroed; a single conv/dense layer given a
                Dirac kernel and a pass-through BN) and `"zero"` on residual
                blocks (refused on blocks without a shortcut, where it would
                make the output constant). Not preserving: `"gaussian"`,
                `"uniform"` (zero-mean), `"uniform_authors"` (U(0, scale),
                as the AutoGrow authors' code), which draw the last BN's
                gamma and beta, and `"default"` (Keras' initialisation).
                Checked before anything is built (see
                `keras_grow.transfer.blocks.block_problem`). Defaults to
                `"identity"`.
            initializer_scale: float. Std of the random initialisers.
                Defaults to `1.0` (AutoGrow's).
            morphisms: sequence of `keras_grow.transfer.SplitUnits` /
                `AddUnits`, applied to the old weights in order. Wider groups
                they do not explain get new units with zero outgoing weights.
            values: dict or `None`. `{layer: {variable: array}}`: exact
                weights for layers of the grown graph, applied last (how
                Firefly installs the net it selected).
            seed: int or `None`. Seeds every random draw of the growth:
                the new graph's default initialisation and the transfer's.
            info: dict or `None`. Extra fields for the growth event (a
                callback's epoch, reason, metric values); a `kind` in it
                names the event otherwise than `"grow"` (AutoGrow's
                `"remove_block"`).

        Returns:
            dict. The growth event, also appended to `growth_log`.

        Raises:
            TypeError: if `new_spec` is not a spec of the same kind.
            ValueError: if input shape or classes differ, or the transfer
                rejects the change (see `transfer_weights`).
        """
        self._check_successor(new_spec)
        transfer.check_initializer(self._spec, new_spec, initializer)
        start = time.perf_counter()
        old_spec, params_before = self._spec, self.body.count_params()
        transfer_options = dict(
            initializer=initializer,
            initializer_scale=initializer_scale,
            morphisms=morphisms,
            values=values,
            seed=seed,
        )
        new_body, report, new_optimizer, carry, timing = self._grown_parts(
            new_spec, transfer_options
        )
        self._undo = _Undo(
            body=self.body,
            spec=old_spec,
            optimizer=self.optimizer if new_optimizer is not None else None,
            index=len(self._growth_log),
            step_functions=self._step_functions(),
            compiled_as=self._compiled_as(),
        )
        self._swap_body(new_body)
        self._spec = new_spec
        if new_optimizer is not None:
            self._set_optimizer(new_optimizer)
        self._reset_step_functions()
        event = {
            "kind": "grow",
            "index": len(self._growth_log),
            "from": old_spec.notation,
            "to": new_spec.notation,
            "params_before": params_before,
            "params_after": new_body.count_params(),
            "initializer": initializer,
            "new_blocks": list(report.new_blocks),
            "widened": {k: list(v) for k, v in report.widened.items()},
            "morphisms": [type(m).__name__ for m in morphisms],
            "optimizer_state": _carry_counts(carry),
            "spec": new_spec.to_dict(),
            **(info or {}),
        }
        event["seconds"] = time.perf_counter() - start
        event["timing"] = timing  # the retrace happens at the next step
        event = _jsonable(event)
        self._growth_log.append(event)
        self._retrace_event = event["index"]
        return copy.deepcopy(event)

    def _grown_parts(self, new_spec, transfer_options):
        """Builds the new graph, fills it and carries the optimizer, in the
        strategy's scope; nothing of the model changes yet.

        Returns:
            (new body, `TransferReport`, new optimizer or `None`, carry
            report or `None`, `{build, transfer, optimizer}` seconds).
        """
        start = time.perf_counter()
        with self.distribute_strategy.scope():
            with _python_random_seeded(transfer_options["seed"]):
                new_body = build.build_body(new_spec)
            built = time.perf_counter()
            report = transfer.transfer_weights(
                self.body, new_body, self._spec, new_spec, **transfer_options
            )
            # Under several workers, the chief's new units for everyone.
            multi_worker.assign_from_chief(new_body.weights, self.distribute_strategy)
            transferred = time.perf_counter()
            new_optimizer, carry = self._carried_optimizer(new_body)
        timing = {
            "build": built - start,
            "transfer": transferred - built,
            "optimizer": time.perf_counter() - transferred,
        }
        return new_body, report, new_optimizer, carry, timing

    def rollback(self, reason):
        """Undoes the last `grow`: the graph, weights and optimizer before it.

        The pre-growth body is kept, untouched (training after a growth
        updates the grown body only), with the optimizer as it was at the
        growth, until the next `grow`: rolling back restores both exactly
        and drops what was learnt since. For a growth that went wrong
        (see `keras_grow.callbacks.GrowthGuard`).

        Args:
            reason: str. Why, for the growth log.

        Returns:
            dict. The `rollback` event, also appended to `growth_log`.

        Raises:
            ValueError: if there is no growth to undo (none since the model
                was built or loaded, or it was already rolled back).
        """
        if self._undo is None:
            raise ValueError(
                "Nothing to roll back: the model has not grown since it was "
                "built or loaded, or its last growth was already rolled back."
            )
        undo, self._undo = self._undo, None
        grown = self._spec
        self._swap_body(undo.body)
        self._spec = undo.spec
        if undo.optimizer is not None:
            self._set_optimizer(undo.optimizer)
        else:
            # It was unbuilt at the growth and may have been built on the
            # grown body since: a fresh copy builds on the restored one.
            self._unbuild_optimizer()
        self._retrace_event = len(self._growth_log)
        if undo.optimizer is not None and all(
            x is y for x, y in zip(undo.compiled_as, self._compiled_as())
        ):
            # The same body, optimizer and compile settings as when these
            # were traced: no retrace (functions never called are traced at
            # their first call, and timed as usual).
            self.train_function, self.test_function, self.predict_function = (
                undo.step_functions
            )
        else:
            self._reset_step_functions()
        return self.record_event(
            "rollback",
            {
                "from": grown.notation,
                "to": undo.spec.notation,
                "undoes": undo.index,
                "reason": str(reason),
            },
        )

    def rebuild(self, spec, growth_log=()):
        """Replaces the architecture by `spec`'s, freshly initialised.

        For restoring a checkpoint (see `keras_grow.checkpoints`), whose
        weights and optimizer state are assigned next: the body is built
        from `spec`, the growth log replaced by `growth_log`, and a
        built optimizer replaced by an unbuilt copy of itself (same
        class and config). Nothing is transferred and there is nothing
        to roll back afterwards.

        Args:
            spec: a spec of the same kind, input shape and classes.
            growth_log: list of dict. The log that led to `spec`.
        """
        self._check_successor(spec)
        with self.distribute_strategy.scope():
            body = build.build_body(spec)
        self._unbuild_optimizer()
        self._swap_body(body)
        self._spec = spec
        self._growth_log = [_jsonable(dict(e)) for e in growth_log]
        self._undo = None
        self._retrace_event = None
        self._reset_step_functions()

    def _unbuild_optimizer(self):
        """Replaces a built optimizer by an unbuilt copy (same class and
        config), which builds on whatever body the model has next."""
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None and optimizer.built:
            with self.distribute_strategy.scope():
                self._set_optimizer(
                    keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
                )

    def record_event(self, kind, info=None):
        """Appends a non-growth event (e.g. a stage stopping) to the log.

        Args:
            kind: str. What happened, e.g. `"stop_stage"`, `"fine_tune"`.
            info: dict or `None`. JSON-serialisable details.

        Returns:
            dict. The event as logged.
        """
        event = _jsonable(
            {
                "kind": kind,
                "index": len(self._growth_log),
                "spec_notation": self._spec.notation,
                "params": self.body.count_params(),
                **(info or {}),
            }
        )
        self._growth_log.append(event)
        return copy.deepcopy(event)

    def _check_successor(self, new_spec):
        if type(new_spec) is not type(self._spec):
            raise TypeError(
                f"`new_spec` must be a {type(self._spec).__name__} like the "
                f"current spec ({self._spec.notation}); received {new_spec!r}."
            )
        for field in ("input_shape", "num_classes", "input_mean", "input_std"):
            old, new = getattr(self._spec, field), getattr(new_spec, field)
            if old != new:
                raise ValueError(
                    f"Growth keeps `{field}`: the model has {old!r}, "
                    f"`new_spec` has {new!r}."
                )

    def _carried_optimizer(self, new_body):
        optimizer = getattr(self, "optimizer", None)
        if optimizer is None or not optimizer.built:
            # Not compiled or not trained yet: it builds on the new body.
            return None, None
        return carry_optimizer(optimizer, new_body.trainable_variables)

    def _set_optimizer(self, optimizer):
        """Makes `optimizer` the model's, also in Keras' compile config,
        which saved files record and which would otherwise keep the
        optimizer `compile` was given (and its variables) alive."""
        self.optimizer = optimizer
        config = getattr(getattr(self, "_compile_config", None), "config", None)
        if config is not None and "optimizer" in config:
            config["optimizer"] = optimizer

    def _swap_body(self, new_body):
        # The one place that touches Keras' state tracking. A built Keras 3
        # layer locks its tracker (assigning a new sub-layer would raise),
        # and reassigning an attribute never untracks the old value: the old
        # body would stay in `self._layers` and its variables in
        # `self.weights`, `trainable_variables` and saved files.
        tracker = self._tracker
        was_locked = tracker.locked
        tracker.unlock()
        try:
            tracker.untrack(self.body)
            self.body = new_body
            state = getattr(self, "_compiled_trainable_state", None)
            if state is not None:
                # Keras' compile-time {layer: trainable}: keyed by layer
                # objects, it would keep the compiled body alive.
                state.clear()
                state.update(
                    {layer: layer.trainable for layer in self._flatten_layers()}
                )
        finally:
            if was_locked:
                tracker.lock()

    def watch_inputs(self, watch=True):
        """Makes each train step count the non-finite entries of its batch
        (read with `nonfinite_inputs()`); `GrowthGuard` turns it on so
        that it does not blame a growth for NaN in the data. Takes effect
        at the next trace of the train step (every growth makes one)."""
        if watch and self._finite_inputs is None:
            with self.distribute_strategy.scope():
                self._finite_inputs = FiniteInputs()
        elif not watch:
            self._finite_inputs = None

    def nonfinite_inputs(self):
        """int or `None`. Non-finite entries (NaN, inf) in the inputs,
        labels and sample weights of the last batch trained on; `None`
        unless `watch_inputs()` is on."""
        return None if self._finite_inputs is None else self._finite_inputs.last_batch()

    def train_step(self, data):
        if self._finite_inputs is not None:
            self._finite_inputs.record(data)
        return multi_worker.one_element_logs(
            super().train_step(data), self.distribute_strategy
        )

    def test_step(self, data):
        return multi_worker.one_element_logs(
            super().test_step(data), self.distribute_strategy
        )

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras builds from a batch all-reduced across workers, which fails
        # under several (keras_grow.multi_worker); build from this worker's.
        if iterator is not None and multi_worker.is_multi_worker(
            self.distribute_strategy
        ):
            for _, _, batches in iterator:
                batch = next(batches)
                data_batch = multi_worker.first_local_batch(
                    batch, self.distribute_strategy
                )
                break
            iterator = None
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def make_train_function(self, force=False):
        return self._timed_step_function("train", super().make_train_function, force)

    def make_test_function(self, force=False):
        return self._timed_step_function("test", super().make_test_function, force)

    def _timed_step_function(self, kind, make, force):
        """Keras' `make_<kind>_function`, whose new function is wrapped by
        `_timed_first_call`."""
        attribute = f"{kind}_function"
        made = force or getattr(self, attribute) is None
        make(force)
        if made:
            setattr(self, attribute, self._timed_first_call(attribute, kind))
        return getattr(self, attribute)

    def _timed_first_call(self, attribute, kind):
        """The function in `attribute`, wrapped so that its first call after
        a growth or rollback is timed.

        Keras traces its step functions at their first call, so that call
        holds what an architecture change really costs beyond `grow`'s own
        seconds: the retrace (and one step). The seconds go to the change's
        log event, `timing["retrace_<kind>"]`, once per architecture. After
        its first call the wrapper puts Keras' function back, so the steps
        that follow pay nothing.
        """
        function = getattr(self, attribute)

        def timed(*args, **kwargs):
            if getattr(self, attribute) is timed:
                setattr(self, attribute, function)
            index = self._retrace_event
            if index is None:
                return function(*args, **kwargs)
            start = time.perf_counter()
            outputs = function(*args, **kwargs)
            timing = self._growth_log[index].setdefault("timing", {})
            timing.setdefault(f"retrace_{kind}", round(time.perf_counter() - start, 4))
            return outputs

        return timed

    def _step_functions(self):
        return (self.train_function, self.test_function, self.predict_function)

    def _compiled_as(self):
        """What Keras' step functions were traced with besides the body and
        optimizer: the compiled loss and metrics objects and settings."""
        return (
            getattr(self, "_compile_loss", None),
            getattr(self, "_compile_metrics", None),
            getattr(self, "jit_compile", None),
            getattr(self, "steps_per_execution", 1),
        )

    def _reset_step_functions(self):
        # `fit` calls `self.train_function` anew every step, so a rebuilt
        # function trains the grown graph from the very next batch; test and
        # predict functions are rebuilt lazily when next needed.
        rebuild_train = self.train_function is not None
        self.train_function = None
        self.test_function = None
        self.predict_function = None
        if rebuild_train:
            self.make_train_function()

    def summary(self, *args, print_fn=None, **kwargs):
        """Prints the spec notation, parameter count, the growths it went
        through (other log events, such as a stage stopping, not counted)
        and the body's layers."""
        growths = sum(e["kind"] == "grow" for e in self._growth_log)
        header = (
            f"GrowableModel '{self.name}': {self._spec.notation}, "
            f"{self.body.count_params():,} parameters, "
            f"{growths} growth{'s' if growths != 1 else ''}"
        )
        (print_fn or print)(header)
        self.body.summary(*args, print_fn=print_fn, **kwargs)

    def export_serving(self, path, version=1, overwrite=False):
        """Writes a TF Serving SavedModel to `path/<version>/`.

        See `keras_grow.export.export_serving`.
        """
        return export.export_serving(self, path, version=version, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """`keras.Model.save_weights`, with the spec and growth log written
        into the file too (HDF5 attributes), so that a grown model's weights
        can be loaded without knowing its architecture
        (`GrowableModel.from_weights`)."""
        super().save_weights(filepath, overwrite=overwrite)
        import h5py

        with h5py.File(filepath, "a") as handle:
            handle.attrs[_SPEC_ATTR] = self._spec.to_json()
            handle.attrs[_LOG_ATTR] = json.dumps(self._growth_log)

    def get_weights(self):
        """`keras.Model.get_weights()`, as `ArchitectureWeights`: a list
        of arrays that also names the spec they belong to."""
        return ArchitectureWeights(super().get_weights(), self._spec)

    def set_weights(self, weights):
        """`keras.Model.set_weights()`, also across growth.

        Weights from `get_weights()` of another architecture of this model
        (an earlier epoch's, before a growth) first return the model to
        that architecture: the body is rebuilt from their spec, a
        `restore_weights` event is logged, and the optimizer's state
        starts afresh, as after loading a checkpoint. This is how
        `keras.callbacks.EarlyStopping(restore_best_weights=True)` restores
        the best epoch's net beside a growth callback. A plain list must
        fit the current architecture, as in Keras.
        """
        spec = getattr(weights, "spec", None)
        if spec is None or spec == self._spec:
            super().set_weights(weights)
            return
        current = self._spec.notation
        self.rebuild(spec, self._growth_log)
        super().set_weights(weights)
        self.record_event("restore_weights", {"from": current, "to": spec.notation})

    def load_weights(self, filepath, skip_mismatch=False, **kwargs):
        """`keras.Model.load_weights`; weights of another architecture (a
        grown net into its seed, say) are refused with the spec they need.

        Raises:
            ValueError: naming the file's spec and this model's, and
                `GrowableModel.from_weights(filepath)`.
        """
        saved = weights_spec(filepath)
        if saved is not None and saved != self._spec:
            raise ValueError(
                f"{filepath} holds the weights of {saved.notation}, but this "
                f"model is {self._spec.notation}. Build the model from the "
                f"file: kg.GrowableModel.from_weights({filepath!r})."
            )
        try:
            super().load_weights(filepath, skip_mismatch=skip_mismatch, **kwargs)
        except ValueError as error:
            raise ValueError(
                f"{filepath} does not fit {self._spec.notation} ({error}). Weights "
                f"saved before keras_grow recorded the spec cannot say which "
                f"net they belong to: save grown models with model.save('m.keras')."
            ) from error

    @classmethod
    def from_weights(cls, filepath):
        """A `GrowableModel` of the spec saved with `filepath` (by
        `save_weights`), with those weights and growth log (not compiled)."""
        saved = weights_spec(filepath)
        if saved is None:
            raise ValueError(
                f"{filepath} records no keras_grow spec (it was not written by "
                f"GrowableModel.save_weights); build the model and call "
                f"load_weights, or save with model.save('m.keras')."
            )
        import h5py

        with h5py.File(filepath, "r") as handle:
            log = json.loads(handle.attrs.get(_LOG_ATTR, "[]"))
        model = cls(saved, growth_log=log)
        model.load_weights(filepath)
        return model

    @classmethod
    def from_keras(cls, model, **kwargs):
        """A `GrowableModel` of a user's own Keras model, weights kept.

        The model becomes a `keras_grow.specs.GraphSpec` (the graph family):
        its layers, configs and connections as data. Width growth acts on
        the units of its Dense and Conv2D layers (both branches of an `Add`
        together); depth growth inserts identity-initialisable layers after
        any layer but the output. `model.spec.growth_report()` says which units grow
        and why the others do not. The given model is left untouched (the
        new one has its own copy of the weights) and is not compiled.

        Args:
            model: a built `keras.Sequential` or functional `keras.Model`
                with one input and one output, made of Dense, Conv2D,
                DepthwiseConv2D, BatchNormalization, LayerNormalization,
                activations, pooling, Flatten, Dropout, Add and Concatenate
                layers (`keras_grow.specs.graph_analysis.SUPPORTED`), outputting
                logits.
            **kwargs: passed to `GrowableModel` (e.g. `name`).

        Returns:
            A `GrowableModel` computing what `model` computes.

        Raises:
            ValueError: naming the layer and why, for what cannot be grown
                (see `keras_grow.build.graph.spec_from_keras`).

        Example:

        >>> import keras, keras_grow as kg
        >>> inputs = keras.Input((8,))
        >>> hidden = keras.layers.Dense(4, activation="relu", name="hidden")(inputs)
        >>> user = keras.Model(inputs, keras.layers.Dense(3, name="logits")(hidden))
        >>> model = kg.GrowableModel.from_keras(user)
        >>> model.spec.notation
        'Graph(functional)-4'
        """
        grown = cls(spec_from_keras(model), **kwargs)
        weights = read_weights(model)
        for layer in grown.body.layers:
            if layer.weights:
                assign_layer(layer, weights[layer.name])
        return grown

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "spec": self._spec.to_dict(),
            "growth_log": copy.deepcopy(self._growth_log),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        spec = specs.from_dict(config.pop("spec"))
        return cls(spec, growth_log=config.pop("growth_log", None), **config)
