"""keras_grow says it needs Keras' TensorFlow backend, whatever picks
another: the environment, or ~/.keras/keras.json."""

import json
import os
import subprocess
import sys

import pytest


def _import_keras_grow(tmp_path, backend_variable=None, config_backend=None):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path)
    if backend_variable:
        env["KERAS_BACKEND"] = backend_variable
    if config_backend:
        (tmp_path / "keras.json").write_text(json.dumps({"backend": config_backend}))
    return subprocess.run(
        [sys.executable, "-c", "import keras_grow"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("backend", ["jax", "torch", "numpy"])
def test_another_backend_in_the_environment_names_the_fix(tmp_path, backend):
    result = _import_keras_grow(tmp_path, backend_variable=backend)
    assert result.returncode != 0
    assert f"KERAS_BACKEND is '{backend}'" in result.stderr
    assert "keras_grow needs Keras' TensorFlow backend" in result.stderr


def test_another_backend_in_keras_json_names_the_fix(tmp_path):
    result = _import_keras_grow(tmp_path, config_backend="numpy")
    assert result.returncode != 0
    # Keras' numpy backend imports scipy, which a machine may lack: then
    # Keras' own import fails first, and the message still names the fix.
    assert (
        "Keras runs on its 'numpy' backend" in result.stderr
        or "Keras failed to import" in result.stderr
    )
    assert "keras_grow needs Keras' TensorFlow backend" in result.stderr
