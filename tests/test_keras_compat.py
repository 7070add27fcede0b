"""Private Keras names are touched in keras_compat.py alone."""

import ast
import pathlib

import keras
import numpy as np
import pytest

from keras_grow import keras_compat

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_grow"


def _keras_private_names():
    """Private attribute names of a compiled, trained Keras model and of its
    optimizer, layers and callbacks."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"])
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0)
    objects = [
        model,
        model.optimizer,
        model.layers[0],
        keras.layers.BatchNormalization(),
        keras.callbacks.Callback(),
    ]
    return {
        name
        for obj in objects
        for name in dir(obj)
        if name.startswith("_") and not name.startswith("__")
    }


def test_no_module_but_keras_compat_names_a_private_keras_attribute():
    private = _keras_private_names()
    assert {"_tracker", "_compile_config", "_maybe_symbolic_build"} <= private
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "keras_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = (
                node.attr
                if isinstance(node, ast.Attribute)
                else node.name
                if isinstance(node, ast.FunctionDef)
                else node.value
                if isinstance(node, ast.Constant) and isinstance(node.value, str)
                else None
            )
            if name in private:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {name}")
    assert found == []


def test_this_keras_has_what_keras_grow_relies_on():
    keras_compat.check_keras()  # also run at import


def test_a_keras_without_an_internal_is_named(monkeypatch):
    # As a Keras that renamed one of them would be.
    names = (*keras_compat._MODEL_METHODS, "_renamed_internal")
    monkeypatch.setattr(keras_compat, "_MODEL_METHODS", names)
    with pytest.raises(keras_compat.KerasInternalsError, match="_renamed_internal"):
        keras_compat.check_keras()
    monkeypatch.setattr(keras, "__version__", "4.0.0")
    with pytest.raises(keras_compat.KerasInternalsError, match="Keras 4.0.0"):
        keras_compat.check_keras()
