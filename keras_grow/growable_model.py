"""`GrowableModel`: a Keras model whose architecture can grow, even mid-fit."""

import contextlib
import time

import keras

from keras_grow import build
from keras_grow import depth_reserve
from keras_grow import export
from keras_grow import gated_layers
from keras_grow import growth
from keras_grow import growth_events
from keras_grow import in_place
from keras_grow import input_checks
from keras_grow import keras_compat
from keras_grow import losses
from keras_grow import multi_worker
from keras_grow import optimizer_carry
from keras_grow import specs
from keras_grow import step_functions
from keras_grow import transfer
from keras_grow import weights_files
from keras_grow.build.graph import leaf_layers
from keras_grow.build.graph import spec_from_keras
from keras_grow.finite_inputs import WatchedInputs
from keras_grow.transfer.weights import copy_weights


@keras.saving.register_keras_serializable(package="keras_grow")
class GrowableModel(
    growth_events.GrowthLog,
    weights_files.SpecWeights,
    WatchedInputs,
    step_functions.TimedSteps,
    multi_worker.MultiWorkerSteps,
    keras.Model,
):
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
        self._reserve = None
        self._start_log(growth_log)
        self.body = in_place.resizable_body(spec)
        self.build((None,) + tuple(spec.input_shape))
        # What `rollback` restores: the last growth's pre-growth state.
        self._undo = None

    def build(self, input_shape=None):
        # The body is built by construction; nothing to create here.
        self.built = True

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, after `keras_grow.input_checks.check_fit`
        (callbacks, labels, losses, oneDNN, bfloat16). `compile` is Keras'
        own, so that `keras.models.load_model` compiles a saved model."""
        return super().fit(**input_checks.check_fit(self, args, kwargs))

    def make_train_function(self, force=False):
        in_place.build_optimizer(self)  # its slots made before a step reads them
        return super().make_train_function(force)

    def call(self, inputs, training=None):
        input_checks.check_inputs(self._spec, inputs)  # once per trace
        return self.body(losses.net_inputs(inputs), training=training)

    @property
    def spec(self):
        """The spec of the current architecture."""
        return self._spec

    @property
    def reserve(self):
        """The body's `keras_grow.depth_reserve.Reserve` (blocks built
        ahead of depth growth, switched off), or `None`."""
        return self._reserve

    def count_params(self):
        """int. The parameters of the net the model computes (a reserve's
        switched-off blocks not counted)."""
        return gated_layers.count_params(self.net_layers())

    def net_layers(self):
        """list. The layers of the body the net computes (a reserve's
        switched-off blocks left out)."""
        return depth_reserve.net_layers(self.body, self._reserve, self._spec)

    def reserve_depth(self, depths):
        """Builds blocks ahead of depth growth, so that growing into them
        costs no retrace (`keras_grow.depth_reserve`).

        The body is rebuilt with each chain `depths[i]` blocks deep, the
        blocks beyond the spec's switched off: the model computes what it
        computed, and a later `grow` whose spec the reserve holds starts
        the new blocks and switches them on in place; one it does not
        hold rebuilds with a reserve twice as deep. Rebuilding costs one
        retrace if the step functions were traced; before the first step
        (as `AutoGrow` calls it, at the start of `fit`) it costs none.
        Does nothing where the model's reserve already holds `depths`, or
        where its spec cannot hold one (a net without residual blocks).

        Args:
            depths: sequence of int. Each chain's capacity, in blocks
                (`spec.depths` entries or more).

        Returns:
            The model's `Reserve`, or `None`.

        Raises:
            ValueError: for a capacity below a chain's depth.
        """
        wanted = depth_reserve.plan(self._spec, depths)
        current = self._reserve
        if wanted is None or (
            current is not None
            and all(c >= w for c, w in zip(current.depths, wanted.depths))
        ):
            return current
        self._rebuild_body(wanted)
        self.record_event(
            "reserve", {"depths": list(wanted.depths), "blocks": list(wanted.blocks)}
        )
        return wanted

    def _rebuild_body(self, reserve):
        """The body of the model's spec built anew with `reserve`, the
        weights and optimizer state carried (a retrace)."""
        options = dict(initializer="identity", initializer_scale=1.0, morphisms=())
        options.update(values=None, seed=None, block_copies=None)
        parts = growth.grown_parts(self, self._spec, options, reserve)
        self._install(parts.body, self._spec, parts.optimizer, reserve)
        self._undo = None
        step_functions.reset(self)

    def grow(
        self,
        new_spec,
        *,
        initializer="identity",
        initializer_scale=1.0,
        morphisms=(),
        values=None,
        block_copies=None,
        seed=None,
        info=None,
    ):
        """Grows the model into `new_spec`, keeping what it has learnt.

        Builds the new graph, transfers the weights
        (`keras_grow.transfer.transfer_weights`), carries the optimizer's
        state (`keras_grow.optimizer_carry`) and swaps them in, in the
        model's distribution strategy scope. A width growth of unit groups
        without convolutions, attention or Layer normalisation is made in
        place instead: the grown values go into the variables the traced
        steps read, and nothing is traced again (`keras_grow.in_place`).

        Args:
            new_spec: the grown spec: same kind, input shape and classes.
            initializer: str. How new sub-modules start (see
                `keras_grow.transfer.blocks`). `"identity"` (the default)
                preserves the function on every family; `"zero"` on
                residual blocks only (refused elsewhere, before anything
                is built); `"gaussian"`, `"uniform"`, `"uniform_authors"`
                and `"default"` do not.
            initializer_scale: float. Std of the random initialisers.
                Defaults to `1.0` (AutoGrow's).
            morphisms: sequence of `keras_grow.transfer.SplitUnits` /
                `AddUnits`, applied to the old weights in order. Wider groups
                they do not explain get new units with zero outgoing weights.
            values: dict or `None`. `{layer: {variable: array}}`: exact
                weights for layers of the grown graph, applied last (how
                Firefly installs the net it selected).
            block_copies: dict or `None`. `{block: source block}` of the
                grown graph: blocks that start as copies of others (depth
                growth by stacking; `keras_grow.transfer.copy_blocks`).
            seed: int or `None`. Seeds every random draw of the growth:
                the new graph's default initialisation and the transfer's.
            info: dict or `None`. Extra fields for the growth event; a
                `kind` in it names the event otherwise than `"grow"`.

        Returns:
            dict. The growth event, also appended to `growth_log`.

        Raises:
            TypeError: if `new_spec` is not a spec of the same kind.
            ValueError: if input shape or classes differ, or the transfer
                rejects the change (see `transfer_weights`).
        """
        growth.check_successor(self._spec, new_spec)
        transfer.check_initializer(self._spec, new_spec, initializer, block_copies)
        start = time.perf_counter()
        old_spec, params_before = self._spec, self.count_params()
        options = dict(initializer=initializer, initializer_scale=initializer_scale)
        options.update(morphisms=morphisms, values=values, seed=seed)
        options.update(block_copies=block_copies)
        if not morphisms and depth_reserve.fits(self._reserve, new_spec):
            parts = growth.reserve_parts(self, new_spec, options)
            self._undo = growth.undo_point(self, parts, len(self._growth_log))
            depth_reserve.switch(self.body, self._reserve, new_spec, old_spec)
            self._spec = new_spec  # the traced steps read the same variables
        else:
            reserve = depth_reserve.for_rebuild(self._reserve, new_spec)
            parts = growth.grown_parts(self, new_spec, options, reserve)
            self._undo = growth.undo_point(self, parts, len(self._growth_log))
            if parts.resize is None:
                self._install(parts.body, new_spec, parts.optimizer, reserve)
                step_functions.reset(self)
            else:  # the traced steps read the same variables, resized
                in_place.apply(parts.resize)
                optimizer = getattr(self, "optimizer", None)
                self._install(parts.body, new_spec, optimizer, reserve)
        done = dict(initializer=initializer, morphisms=morphisms)
        done.update(params_before=params_before, params_after=self.count_params())
        done.update(seconds=time.perf_counter() - start)
        event = growth_events.grow_event(
            len(self._growth_log), old_spec, new_spec, parts, done, info
        )
        return self._append_event(event, change=True)

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
        if undo.snapshot is not None:  # a growth into the reserve
            for variable, value in undo.snapshot:
                variable.assign(value)  # the switches included
            self._spec = undo.spec
        elif undo.resize is None:
            self._install(undo.body, undo.spec, undo.optimizer, undo.reserve)
            step_functions.restore_or_reset(
                self, undo.step_functions, undo.compiled_as, undo.optimizer is not None
            )
        else:
            in_place.undo(undo.resize)
            optimizer = getattr(self, "optimizer", None)
            self._install(undo.body, undo.spec, optimizer, undo.reserve)
        info = {"from": grown.notation, "to": undo.spec.notation}
        info.update(undoes=undo.index, reason=str(reason))
        return self._append_event(self._event("rollback", info), change=True)

    def rebuild(self, spec, growth_log=(), reserve=None):
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
            reserve: a `keras_grow.depth_reserve.Reserve` holding `spec`
                (a checkpoint's), or `None`.
        """
        growth.check_successor(self._spec, spec)
        with self.distribute_strategy.scope():
            body = in_place.resizable_body(spec, reserve=reserve)
            self._install(body, spec, reserve=reserve)
        self._start_log(growth_log)
        self._undo = None
        step_functions.reset(self)

    def _install(self, body, spec, optimizer=None, reserve=None):
        """Makes `body` (holding `reserve`) and `spec` the model's. With
        `optimizer`, that one too (also in Keras' compile config);
        without, a built optimizer gives way to an unbuilt copy of itself,
        which builds on `body` (one still unbuilt is kept)."""
        # The one place a body is replaced (see keras_compat for why).
        keras_compat.replace_tracked_layer(self, "body", body)
        self._spec, self._reserve = spec, reserve
        current = getattr(self, "optimizer", None)
        if optimizer is None and current is not None and current.built:
            optimizer = optimizer_carry.unbuilt_copy(current, self.distribute_strategy)
        if optimizer is not None:
            self.optimizer = optimizer
            keras_compat.set_compiled_optimizer(self, optimizer)

    def summary(self, *args, print_fn=None, **kwargs):
        """Prints the spec notation, parameter count, the growths it went
        through (other log events, such as a stage stopping, not counted)
        and the body's layers."""
        growths = len(growth_events.growths(self._growth_log))
        header = (
            f"GrowableModel '{self.name}': {self._spec.notation}, "
            f"{self.count_params():,} parameters, "
            f"{growths} growth{'s' if growths != 1 else ''}"
        )
        reserve = self._reserve
        off = depth_reserve.off_blocks(reserve, self._spec)
        if off:
            header += f"; {len(off)} reserved blocks switched off (not listed)"
        (print_fn or print)(header)
        body = self.body if reserve is None else self.net_body()
        body.summary(*args, print_fn=print_fn, **kwargs)

    def _net_variables(self):
        """The variables of the net the model computes, in the order a
        plain body of its spec lists them (`get_weights`)."""
        return [
            variable
            for layer in self.net_layers()
            for variable in layer.weights
            if not gated_layers.is_switch(layer, variable)
        ]

    def get_weights(self):
        """`keras.Model.get_weights()` of the net the model computes (a
        reserve left out), naming its spec (see `SpecWeights`)."""
        if self._reserve is None:
            return super().get_weights()
        arrays = [keras.ops.convert_to_numpy(v) for v in self._net_variables()]
        return weights_files.ArchitectureWeights(arrays, self._spec)

    def set_weights(self, weights):
        """`keras.Model.set_weights()`, also across growth (see
        `SpecWeights.set_weights`); arrays of the model's spec go to the
        net it computes (a reserve left as it is)."""
        spec = getattr(weights, "spec", self._spec)
        if self._reserve is None or spec != self._spec:
            return super().set_weights(weights)
        variables = self._net_variables()
        if len(weights) != len(variables):
            raise ValueError(
                f"{self._spec.notation} has {len(variables)} weight arrays; "
                f"received {len(weights)}."
            )
        for variable, value in zip(variables, weights):
            variable.assign(value)

    def net_body(self):
        """A plain functional body of the spec (no reserve, fixed shapes)
        with the model's weights: what saved files and exports hold."""
        body = build.build_body(self._spec)
        copy_weights(self.body, body)
        return body

    @contextlib.contextmanager
    def _as_net(self):
        """Inside, the model holds `net_body()` and an optimizer carried
        onto it, so that what Keras saves is the spec's net alone; the
        body with its reserve and its optimizer come back after."""
        if self._reserve is None:
            yield
            return
        body, reserve = self.body, self._reserve
        optimizer = getattr(self, "optimizer", None)
        with self.distribute_strategy.scope():
            net = self.net_body()
            carried = None
            if optimizer is not None and optimizer.built:
                carried, _ = optimizer_carry.carry_optimizer(
                    optimizer, net.trainable_variables
                )
        self._install(net, self._spec, carried)
        try:
            yield
        finally:
            self._install(body, self._spec, optimizer, reserve)

    def save(self, filepath, *args, **kwargs):
        """`keras.Model.save`, of the spec's net (a reserve left out)."""
        with self._as_net():
            return super().save(filepath, *args, **kwargs)

    def save_weights(self, filepath, overwrite=True):
        """`keras.Model.save_weights` with the spec and growth log in the
        file (`from_weights`); the spec's net alone (a reserve left out)."""
        with self._as_net():
            return super().save_weights(filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False, **kwargs):
        """`keras.Model.load_weights` (see `SpecWeights.load_weights`);
        a body with a reserve gives it up first, as the file holds the
        spec's net alone."""
        if self._reserve is not None:
            self._rebuild_body(None)
        return super().load_weights(filepath, skip_mismatch=skip_mismatch, **kwargs)

    def export(
        self,
        filepath,
        format="tf_saved_model",
        verbose=None,
        input_signature=None,
        **kwargs,
    ):
        """`keras.Model.export` of the net alone (`net_body()`).

        Keras exports what the model tracks; a grown model tracks what it
        grew from and any reserve, and a model never called has no input
        signature for Keras to read. The net built from the spec has
        neither problem, and computes what the model computes. Its
        `serve` endpoint takes the model's inputs and returns its logits;
        `export_serving` writes TF Serving's `serving_default` signature
        with named logits and probabilities instead.

        Args: as `keras.Model.export` (`format`: `"tf_saved_model"`,
            `"onnx"`, `"openvino"`, `"litert"` where their packages are
            installed).
        """
        return self.net_body().export(
            filepath,
            format=format,
            verbose=verbose,
            input_signature=input_signature,
            **kwargs,
        )

    def export_serving(self, path, version=1, overwrite=False):
        """Writes a TF Serving SavedModel to `path/<version>/`.

        See `keras_grow.export.export_serving`.
        """
        return export.export_serving(self, path, version=version, overwrite=overwrite)

    @classmethod
    def from_keras(cls, model, depth="sites", **kwargs):
        """A `GrowableModel` of a user's own Keras model, weights kept.

        The model becomes a `keras_grow.specs.GraphSpec` (its layers,
        configs and connections as data; `spec.growth_report()` says what
        grows). The given model is left untouched and is not compiled.

        Args:
            model: a built `keras.Sequential` or functional `keras.Model`
                (nested ones, KerasHub backbones included, are read layer
                by layer) with one output and one input of examples (and
                masks beside it, as a dict), of the layers in
                `keras_grow.specs.graph_analysis.SUPPORTED`, outputting
                logits.
            depth: str. `GraphSpec.depth`: `"sites"` (the default) adds a
                layer after a layer, `"blocks"` repeats residual blocks.
            **kwargs: passed to `GrowableModel` (e.g. `name`).

        Returns:
            A `GrowableModel` computing what `model` computes.

        Raises:
            ValueError: naming every layer it cannot take, and why.

        Example:

        >>> import keras, keras_grow as kg
        >>> inputs = keras.Input((8,))
        >>> hidden = keras.layers.Dense(4, activation="relu", name="hidden")(inputs)
        >>> user = keras.Model(inputs, keras.layers.Dense(3, name="logits")(hidden))
        >>> model = kg.GrowableModel.from_keras(user)
        >>> model.spec.notation
        'Graph(functional)-4'
        """
        grown = cls(spec_from_keras(model, depth), **kwargs)
        copy_weights(leaf_layers(model), grown.body)
        return grown
