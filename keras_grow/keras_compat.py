"""Every private Keras and TensorFlow name keras_grow touches, in one place.

Growing a compiled model inside `fit` needs a few things Keras does not
expose: a model's tracked sub-layer replaced, the optimizer of its compile
config swapped, the batch its symbolic build reads chosen. Each is one
function (or the one mixin) here, saying why it is needed. Nothing else in
the package names a private Keras or TensorFlow attribute.

The names were checked against the Keras in `TESTED_KERAS`. Keras 3
renames its internals now and then: `check_keras()` (run at import) finds
each class-level name, and each instance-level one is looked up through
`_private`, so a Keras without one fails with an error naming it and the
tested version, not an `AttributeError` deep inside a growth.
"""

import contextlib

import keras
import tensorflow as tf

TESTED_KERAS = "3.15"

# Class-level private names: checked once, at import.
_MODEL_METHODS = ("_maybe_symbolic_build", "_symbolic_build", "_flatten_layers")


class KerasInternalsError(ImportError):
    """This Keras lacks an internal name keras_grow relies on."""


def _missing(what):
    return KerasInternalsError(
        f"keras_grow relies on Keras' private {what}, which Keras "
        f"{keras.__version__} does not have (keras_grow was checked with Keras "
        f"{TESTED_KERAS}). Install keras=={TESTED_KERAS}.*, or a keras_grow "
        "release made for this Keras."
    )


def check_keras():
    """Raises `KerasInternalsError` unless this is Keras 3 with every
    class-level private name keras_grow uses."""
    if not keras.__version__.startswith("3."):
        raise _missing(f"3.x API (this is Keras {keras.__version__})")
    for name in _MODEL_METHODS:
        if not hasattr(keras.Model, name):
            raise _missing(f"keras.Model.{name}")


def _private(obj, name):
    try:
        return getattr(obj, name)
    except AttributeError:
        raise _missing(f"{type(obj).__name__}.{name}") from None


def replace_tracked_layer(model, attribute, layer):
    """Sets `model.<attribute> = layer`, forgetting the layer it replaces.

    A built Keras 3 layer locks its tracker (assigning a new sub-layer
    would raise), and reassigning an attribute never untracks the old
    value: the old layer would stay in `model._layers` and its variables in
    `model.weights`, `trainable_variables` and saved files. Keras' compiled
    `{layer: trainable}` state is keyed by layer objects, so it is rebuilt
    too (it would keep the old layer alive).
    """
    tracker = _private(model, "_tracker")
    was_locked = tracker.locked
    tracker.unlock()
    try:
        tracker.untrack(getattr(model, attribute))
        setattr(model, attribute, layer)
        state = getattr(model, "_compiled_trainable_state", None)
        if state is not None:
            state.clear()
            state.update({x: x.trainable for x in model._flatten_layers()})
    finally:
        if was_locked:
            tracker.lock()


def set_compiled_optimizer(model, optimizer):
    """Makes `optimizer` the one of `model`'s compile config, which saved
    files record and which would otherwise keep the optimizer `compile`
    was given (and its variables) alive."""
    config = getattr(getattr(model, "_compile_config", None), "config", None)
    if config is not None and "optimizer" in config:
        config["optimizer"] = optimizer


def compiled_loss_and_metrics(model):
    """(loss, metrics): the objects Keras' step functions were traced
    with; new ones (a `compile`) mean the traces are stale."""
    return (
        getattr(model, "_compile_loss", None),
        getattr(model, "_compile_metrics", None),
    )


def computes_its_graph(model):
    """Whether `model` computes exactly its graph of layers, which
    `model.input` and `model.output` span: a Sequential or functional
    model, or a subclass of Keras' private functional class that keeps its
    `call` (a KerasHub backbone builds its graph in `__init__`)."""
    if isinstance(model, keras.Sequential):
        return True
    from keras.src.models import functional  # private; no public name

    functional_class = functional.Functional
    return isinstance(model, functional_class) and (
        type(model).call is functional_class.call
    )


def symbolic_build(model, data_batch):
    """Builds `model`'s compiled metrics from `data_batch`, as Keras does
    before the first step (a resume mid-epoch restores metric variables
    before any step has built them)."""
    _private(model, "_symbolic_build")(data_batch=data_batch)


def set_initial_epoch(model, epoch):
    """The epoch `fit` starts at; what Keras' own `BackupAndRestore` sets
    when it resumes (`None`: `fit`'s `initial_epoch` argument)."""
    model._initial_epoch = epoch


def learning_rate(optimizer):
    """The optimizer's learning rate as it holds it: a variable for a
    constant rate, a `LearningRateSchedule` otherwise
    (`optimizer.learning_rate` gives a schedule's current value and hides
    it)."""
    return getattr(optimizer, "_learning_rate", None)


def onednn_enabled():
    """bool or `None`. Whether TensorFlow runs its oneDNN kernels in this
    process (`None` if this TensorFlow does not say): TensorFlow has no
    public probe."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def backing(variable):
    """The `tf.Variable` behind the Keras `variable`: kept across a growth
    in place (`keras_grow.in_place`), replaced by a rebuild."""
    return _private(variable, "_value")


def unknown_axes(variable):
    """frozenset of int. The axes of `variable` whose sizes its traced
    readers do not know (see `make_axes_unknown`)."""
    backing = _private(variable, "_value")
    return frozenset(a for a, d in enumerate(backing.shape.as_list()) if d is None)


def make_axes_unknown(variable, axes):
    """Backs the Keras `variable` by a `tf.Variable` of the same value whose
    `axes` have unknown size: a function traced while reading it stays
    valid when it is later assigned a value of another size along them
    (`assign_resized`). Keras creates its variables of fixed shape and has
    no public way to change one's shape; the backing is `_value`. Call it
    before anything (an optimizer, a traced function) holds the backing.
    """
    backing = _private(variable, "_value")
    if isinstance(backing, tf.distribute.DistributedValues):
        return  # a strategy's variables keep their shapes
    dims = backing.shape.as_list()
    wanted = [None if a in axes else d for a, d in enumerate(dims)]
    if wanted == dims:
        return
    variable._value = tf.Variable(
        backing.read_value(),
        shape=tf.TensorShape(wanted),
        trainable=backing.trainable,
        dtype=backing.dtype,
        name=backing.name.split(":")[0],
        aggregation=backing.aggregation,
        synchronization=backing.synchronization,
    )


def assign_resized(variable, value):
    """Assigns `value`, of any size along the `unknown_axes`, to the Keras
    `variable`, whose shape becomes `value`'s (Keras keeps a variable's
    shape in `_shape` and checks assignments against it)."""
    _private(variable, "_value").assign(value)
    variable._shape = tuple(value.shape)


@contextlib.contextmanager
def shapes_of(pairs):
    """Within the block, each Keras variable of `pairs` (`(variable,
    tensor)`) has the static shape of its tensor, unknown axes included,
    so that `stateless_call` accepts a value whose unit axes a trace leaves
    unknown (its `StatelessScope` checks each value's shape against the
    variable's `_shape`)."""
    saved = [(variable, _private(variable, "_shape")) for variable, _ in pairs]
    try:
        for variable, value in pairs:
            variable._shape = tuple(value.shape)
        yield
    finally:
        for variable, shape in saved:
            variable._shape = shape


def share_backing(variable, source):
    """Makes the Keras `variable` read and write `source`'s backing
    `tf.Variable`, which functions traced before hold; `variable` keeps
    its own path and shape."""
    variable._value = _private(source, "_value")


class SymbolicBuildBatch:
    """Mixin for a `keras.Model`: lets it choose the batch Keras' symbolic
    build reads, through `symbolic_build_batch(iterator)` (a batch, or
    `None` for Keras' own choice).

    Keras 3 builds a compiled model from a batch all-reduced across workers,
    which fails under `MultiWorkerMirroredStrategy`
    (keras-team/keras#20585); a `GrowableModel` builds from this worker's.
    """

    def symbolic_build_batch(self, iterator):
        return None

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            batch = self.symbolic_build_batch(iterator)
            if batch is not None:
                iterator, data_batch = None, batch
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)


check_keras()
