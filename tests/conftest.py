"""Test set-up: quiet TensorFlow, two logical CPUs, shared small fixtures."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The suite fits ResNets at odd batch sizes: where TensorFlow's oneDNN
# kernels are on by default, that can crash the process (keras_grow.onednn).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# MirroredStrategy tests need two devices; logical devices must be set up
# before TensorFlow initialises its runtime, i.e. before any test runs.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)

import keras  # noqa: E402
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests: "ci" (the default: few examples, derandomised so CI is
# reproducible) and "nightly" (`HYPOTHESIS_PROFILE=nightly`: many, random).
settings.register_profile(
    "ci",
    max_examples=4,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "nightly",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)
    yield
    # Without Keras' gc.collect(): Python collects as it goes, and a
    # collection after every test costs the suite more than it frees.
    keras.backend.clear_session(free_memory=False)


@pytest.fixture(scope="session")
def sample_arrays():
    """(x, y): 256 real Fashion-MNIST training images in [0, 1] and labels."""
    from keras_grow.data import sources

    x, y = sources.sample_source().examples("train", 0.1, seed=0)
    return (x[:256].astype("float32") / 255.0), y[:256].astype("int64")


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs for every test.

    TensorFlow caches collective instances process-wide by key, and each
    new strategy counts its keys from the same start: a second strategy's
    all-reduce of another shape then fails with a shape mismatch. Real
    programs make one strategy; so do the tests.
    """
    devices = tf.config.list_logical_devices("CPU")
    assert len(devices) >= 2, "two logical CPUs are set up above"
    return tf.distribute.MirroredStrategy([d.name for d in devices[:2]])


@pytest.fixture
def mixed_bfloat16():
    """The mixed_bfloat16 policy (mixed precision on CPU) for one test."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def compile_sgd(model, learning_rate=0.05, momentum=0.9, **kwargs):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=momentum),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        **kwargs,
    )
    return model


def sample_model(notation="VGG11-2", **extra):
    """A compiled `GrowableModel` of `notation` for the embedded sample
    (its shape, classes and normalisation)."""
    import keras_grow as kg

    info = kg.data.info("fashion_mnist_sample")
    spec = kg.specs.parse(
        notation,
        info.input_shape,
        info.num_classes,
        input_mean=info.mean,
        input_std=info.std,
        **extra,
    )
    return compile_sgd(kg.GrowableModel(spec))


def max_abs_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
