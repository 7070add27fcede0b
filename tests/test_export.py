"""TF Serving export: loads without keras_grow, same outputs, clear errors."""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import keras_grow as kg
from tests.helpers import images
from tests.helpers import infer

MNIST = (28, 28, 1)

_FRESH_PROCESS = """
import json, sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
serve = loaded.signatures["serving_default"]
x = np.load(sys.argv[2])
out = serve(images=tf.constant(x))
print(json.dumps({
    "keras_grow_imported": any(m.startswith("keras_grow") for m in sys.modules),
    "inputs": sorted(serve.structured_input_signature[1]),
    "outputs": sorted(out),
    "logits": out["logits"].numpy().tolist(),
    "probabilities": out["probabilities"].numpy().tolist(),
}))
"""


@pytest.fixture(scope="module")
def grown_model():
    spec = kg.specs.parse(
        "Basic3ResNet-1-1-1",
        MNIST,
        10,
        widths=(4, 8, 8),
        input_mean=(0.286,),
        input_std=(0.353,),
    )
    model = kg.GrowableModel(spec)
    model.grow(spec.with_block_added(1), initializer="gaussian", seed=0)
    return model


@pytest.mark.slow
def test_export_loads_in_a_fresh_process_without_keras_grow(tmp_path, grown_model):
    target = grown_model.export_serving(str(tmp_path / "served"))
    assert target == str(tmp_path / "served" / "1")
    assert os.path.exists(os.path.join(target, "saved_model.pb"))
    x = images(MNIST, n=5)
    np.save(tmp_path / "x.npy", x)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, target, str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    )
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["keras_grow_imported"] is False
    assert out["inputs"] == ["images"]
    assert out["outputs"] == ["logits", "probabilities"]
    expected = infer(grown_model, x)
    np.testing.assert_allclose(out["logits"], expected, atol=1e-5)
    probabilities = np.asarray(out["probabilities"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_saved_model_cli_lists_the_signature(tmp_path, grown_model):
    target = grown_model.export_serving(str(tmp_path / "served"), version=3)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "show", "--dir", target, "--all"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "signature_def['serving_default']" in result.stdout
    assert "inputs['images']" in result.stdout
    assert "outputs['probabilities']" in result.stdout
    assert "(-1, 28, 28, 1)" in result.stdout


@pytest.mark.slow
def test_existing_version_refused_unless_overwrite(tmp_path, grown_model):
    base = str(tmp_path / "served")
    first = grown_model.export_serving(base)
    marker = os.path.join(first, "saved_model.pb")
    mtime = os.path.getmtime(marker)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        grown_model.export_serving(base)
    assert os.path.getmtime(marker) == mtime  # untouched
    grown_model.export_serving(base, overwrite=True)
    assert sorted(os.listdir(base)) == ["1"]  # no staging left behind
    grown_model.export_serving(base, version=2)
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_bad_export_arguments(tmp_path, grown_model):
    with pytest.raises(ValueError, match="`version` must be an integer >= 0"):
        grown_model.export_serving(str(tmp_path), version=-1)
    with pytest.raises(ValueError, match="`version` must be an integer >= 0"):
        grown_model.export_serving(str(tmp_path), version="1")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError, match="Cannot create the export directory"):
        grown_model.export_serving(str(blocker / "served"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_directory_is_refused(tmp_path, grown_model):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(PermissionError, match="not writable"):
        grown_model.export_serving(str(locked))


@pytest.mark.slow
@pytest.mark.parametrize("when", ["never called", "grown and trained"])
def test_keras_own_export_writes_the_net_the_model_computes(tmp_path, when):
    """`model.export`, as Keras users call it, before any call (a subclassed
    Keras model has no input signature then) and after growth (the grown
    model tracks what it grew from, which Keras' export could not save)."""
    import keras
    import tensorflow as tf

    plain = keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(6, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    model = kg.GrowableModel.from_keras(plain)
    x = np.random.default_rng(0).random((8, 12), dtype=np.float32)
    if when == "grown and trained":
        model.compile(
            "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        model.fit(x, np.arange(8) % 3, verbose=0)
        model.grow(model.spec.with_widths((9,)))
        model.fit(x, np.arange(8) % 3, verbose=0)
    model.export(str(tmp_path / "exported"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "exported"))
    served = loaded.serve(x).numpy()
    assert served.shape == (8, 3)
    np.testing.assert_allclose(served, infer(model, x), atol=1e-5)
