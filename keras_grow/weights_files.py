"""Weights files (and configs) that know their architecture.

`GrowableModel.save_weights` writes Keras' `.weights.h5` and adds the spec
and growth log as HDF5 attributes, so a grown model's weights can be
loaded without knowing its architecture (`GrowableModel.from_weights`),
and loading them into another architecture is refused with the spec they
need.
"""

import json

from keras_grow import specs

SPEC_ATTR = "keras_grow_spec"
LOG_ATTR = "keras_grow_growth_log"


def record(filepath, spec, growth_log):
    """Adds `spec` and `growth_log` to the weights file `filepath`."""
    import h5py

    with h5py.File(filepath, "a") as handle:
        handle.attrs[SPEC_ATTR] = spec.to_json()
        handle.attrs[LOG_ATTR] = json.dumps(growth_log)


def weights_spec(filepath):
    """The spec `record` wrote into `filepath`, or `None` (another
    writer, or not an HDF5 file)."""
    import h5py

    try:
        with h5py.File(filepath, "r") as handle:
            text = handle.attrs.get(SPEC_ATTR)
    except OSError:
        return None
    return None if text is None else specs.from_json(text)


def recorded(filepath):
    """(spec, growth log) that `record` wrote into `filepath`.

    Raises:
        ValueError: if the file records no spec.
    """
    import h5py

    try:
        with h5py.File(filepath, "r") as handle:
            spec, log = handle.attrs.get(SPEC_ATTR), handle.attrs.get(LOG_ATTR, "[]")
    except OSError:  # not an HDF5 file
        spec = None
    if spec is None:
        raise ValueError(
            f"{filepath} records no keras_grow spec (it was not written by "
            f"GrowableModel.save_weights); build the model and call "
            f"load_weights, or save with model.save('m.keras')."
        )
    return specs.from_json(spec), json.loads(log)


def check_fits(filepath, spec):
    """Raises unless the weights in `filepath` are of `spec` (or record no
    spec).

    Raises:
        ValueError: naming the file's spec and `spec`, and
            `GrowableModel.from_weights(filepath)`.
    """
    saved = weights_spec(filepath)
    if saved is not None and saved != spec:
        raise ValueError(
            f"{filepath} holds the weights of {saved.notation}, but this "
            f"model is {spec.notation}. Build the model from the "
            f"file: kg.GrowableModel.from_weights({filepath!r})."
        )


def unrecorded_mismatch(filepath, spec, error):
    """The error for weights without a spec that do not fit `spec`."""
    return ValueError(
        f"{filepath} does not fit {spec.notation} ({error}). Weights "
        f"saved before keras_grow recorded the spec cannot say which "
        f"net they belong to: save grown models with model.save('m.keras')."
    )


class ArchitectureWeights(list):
    """`GrowableModel.get_weights()`: the weight arrays, and the spec they
    belong to (`spec`), so that `set_weights` can put them back after the
    model has grown (as `keras.callbacks.EarlyStopping` does with its best
    epoch's weights)."""

    def __init__(self, arrays, spec):
        super().__init__(arrays)
        self.spec = spec


class SpecWeights:
    """Mixin for `GrowableModel`: Keras' saving methods for a model whose
    spec and growth log travel with what it saves (its config, weights
    files, `get_weights` lists). Needs the model's `spec`, `growth_log`,
    `rebuild` and `record_event`."""

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "spec": self.spec.to_dict(),
            "growth_log": self.growth_log,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        spec = specs.from_dict(config.pop("spec"))
        return cls(spec, growth_log=config.pop("growth_log", None), **config)

    def get_weights(self):
        """`keras.Model.get_weights()`, as `ArchitectureWeights`: a list
        of arrays that also names the spec they belong to."""
        return ArchitectureWeights(super().get_weights(), self.spec)

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
        if spec is None or spec == self.spec:
            super().set_weights(weights)
            return
        current = self.spec.notation
        self.rebuild(spec, self.growth_log)
        super().set_weights(weights)
        self.record_event("restore_weights", {"from": current, "to": spec.notation})

    def save_weights(self, filepath, overwrite=True):
        """`keras.Model.save_weights`, with the spec and growth log written
        into the file too, so that a grown model's weights load without
        knowing its architecture (`from_weights`)."""
        super().save_weights(filepath, overwrite=overwrite)
        record(filepath, self.spec, self.growth_log)

    def load_weights(self, filepath, skip_mismatch=False, **kwargs):
        """`keras.Model.load_weights`; weights of another architecture (a
        grown net into its seed, say) are refused with the spec they need.

        Raises:
            ValueError: naming the file's spec and this model's, and
                `GrowableModel.from_weights(filepath)`.
        """
        check_fits(filepath, self.spec)
        try:
            super().load_weights(filepath, skip_mismatch=skip_mismatch, **kwargs)
        except ValueError as error:
            raise unrecorded_mismatch(filepath, self.spec, error) from error

    @classmethod
    def from_weights(cls, filepath):
        """A model of the spec saved with `filepath` (by `save_weights`),
        with those weights and growth log (not compiled)."""
        spec, log = recorded(filepath)
        model = cls(spec, growth_log=log)
        model.load_weights(filepath)
        return model
