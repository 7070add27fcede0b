"""Weights files that know their architecture.

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

    spec = weights_spec(filepath)
    if spec is None:
        raise ValueError(
            f"{filepath} records no keras_grow spec (it was not written by "
            f"GrowableModel.save_weights); build the model and call "
            f"load_weights, or save with model.save('m.keras')."
        )
    with h5py.File(filepath, "r") as handle:
        return spec, json.loads(handle.attrs.get(LOG_ATTR, "[]"))


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
