"""Data: IDX reading, the embedded sample, pipelines, missing/corrupt data."""

import gzip
import os

import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow.data import idx
from keras_grow.data import sources
from keras_grow.data.pipeline import resized_crop_flip

DEBIAN = sources.DEBIAN_FASHION_MNIST_DIR
needs_debian_files = pytest.mark.skipif(
    not os.path.exists(os.path.join(DEBIAN, "train-images-idx3-ubyte.gz")),
    reason="apt-get install dataset-fashion-mnist (the Makefile does)",
)


def write_idx(path, array, compress=False):
    type_code = {np.uint8: 0x08, np.int32: 0x0C}[array.dtype.type]
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    with open(path, "wb") as handle:
        handle.write(gzip.compress(data) if compress else data)


def write_fashion_dir(directory, n_train=40, n_test=20, compress=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    arrays = {
        "train-images-idx3-ubyte": rng.integers(
            0, 256, (n_train, 28, 28), dtype=np.uint8
        ),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(
            0, 256, (n_test, 28, 28), dtype=np.uint8
        ),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_idx(os.path.join(directory, name + suffix), array, compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.int32).reshape(2, 3, 4) - 5
    write_idx(tmp_path / "a.idx", array, compress)
    result = idx.read_idx(tmp_path / "a.idx")
    np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x02ab", "is not an IDX file"),
        (b"\x00\x00\x42\x01\x00\x00\x00\x02ab", "unknown IDX type code"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated in its IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05ab", "declares shape (5,)"),
        (b"\x1f\x8b\x08\x00garbage", "cannot be read as an IDX file"),
    ],
)
def test_corrupt_idx_files_raise_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(
        idx.CorruptDataError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        idx.read_idx(path)
    assert issubclass(idx.CorruptDataError, ValueError)


def test_fashion_mnist_from_a_directory_argument(tmp_path):
    arrays = write_fashion_dir(tmp_path)
    ds = kg.data.load("fashion_mnist", "test", batch_size=8, data_dir=str(tmp_path))
    images, labels = next(iter(ds))
    assert images.shape == (8, 28, 28, 1) and images.dtype.name == "float32"
    np.testing.assert_allclose(
        images.numpy()[..., 0] * 255, arrays["t10k-images-idx3-ubyte"][:8], atol=1e-3
    )
    np.testing.assert_array_equal(labels.numpy(), arrays["t10k-labels-idx1-ubyte"][:8])


def test_fashion_mnist_from_the_environment_variable(tmp_path, monkeypatch):
    write_fashion_dir(tmp_path, compress=False)
    monkeypatch.setenv(sources.FASHION_MNIST_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "none"))
    assert kg.data.info("fashion_mnist").num_train == 40


def test_corrupt_fashion_mnist_directory(tmp_path):
    write_fashion_dir(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-12])
    with pytest.raises(idx.CorruptDataError, match="train-labels"):
        kg.data.load("fashion_mnist", "train", data_dir=str(tmp_path))
    write_idx(labels, np.full(40, 11, np.uint8), compress=True)
    with pytest.raises(idx.CorruptDataError, match=r"must lie in \[0, 10\)"):
        kg.data.load("fashion_mnist", "train", data_dir=str(tmp_path))


def test_missing_data_offline_names_the_ways_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "none"))
    monkeypatch.delenv(sources.FASHION_MNIST_DIR_ENV, raising=False)
    with pytest.raises(kg.data.DataUnavailableError) as error:
        kg.data.load("fashion_mnist", "train", data_dir=str(tmp_path), download=False)
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert sources.FASHION_MNIST_DIR_ENV in message
    assert isinstance(error.value, OSError)
    with pytest.raises(kg.data.DataUnavailableError, match="tfds build cifar10"):
        kg.data.load("cifar10", "train", data_dir=str(tmp_path), download=False)


def test_bad_names_and_arguments():
    with pytest.raises(ValueError, match="Unknown data set 'no_such_data'"):
        kg.data.load("no_such_data", "train")
    with pytest.raises(ValueError, match="Unknown split 'dev'"):
        kg.data.load("fashion_mnist_sample", "dev")
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        kg.data.load("fashion_mnist_sample", "train", batch_size=0)
    with pytest.raises(ValueError, match=r"`validation_fraction` must be in \[0, 1\)"):
        kg.data.load("fashion_mnist_sample", "train", validation_fraction=1.5)


def test_sample_is_real_balanced_and_split_without_overlap():
    info = kg.data.info("fashion_mnist_sample")
    assert (info.num_train, info.num_test, info.num_classes) == (6000, 1000, 10)
    assert info.input_shape == (28, 28, 1) and info.mean == (0.2860,)
    source = sources.sample_source()
    _, y_test = source.examples("test", 0.1, 0)
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10
    x_train, _ = source.examples("train", 0.1, 0)
    x_val, _ = source.examples("validation", 0.1, 0)
    assert len(x_train) == 5400 and len(x_val) == 600
    train_rows = {row.tobytes() for row in x_train}
    assert not any(row.tobytes() in train_rows for row in x_val)
    assert os.path.getsize(sources.SAMPLE_FILE) < 4_200_000


@needs_debian_files
def test_embedded_sample_is_what_the_script_makes_from_the_idx_files():
    made = sources.sample_from_idx(DEBIAN, 600, 100, seed=0)
    with np.load(sources.SAMPLE_FILE) as shipped:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            np.testing.assert_array_equal(shipped[key], made[key])


@needs_debian_files
def test_full_fashion_mnist_from_debian_files():
    info = kg.data.info("fashion_mnist")
    assert (info.num_train, info.num_test) == (60000, 10000)
    ds = kg.data.load("fashion_mnist", "validation", batch_size=1000)
    assert sum(int(x.shape[0]) for x, _ in ds) == 6000


def test_pipeline_batches_shuffles_and_augments_reproducibly():
    def first_batch(seed, take=None):
        ds = kg.data.load("fashion_mnist_sample", "train", 32, seed=seed, take=take)
        it = iter(ds)
        return next(it), next(iter(ds))  # epoch 1 and epoch 2 first batches

    (a_images, a_labels), (a2_images, _) = first_batch(seed=5)
    (b_images, b_labels), _ = first_batch(seed=5)
    (c_images, _), _ = first_batch(seed=6)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_labels, b_labels)
    assert not np.array_equal(a_images, c_images)
    assert not np.array_equal(a_images, a2_images)  # new order/augmentation per epoch
    assert 0.0 <= float(np.min(a_images)) and float(np.max(a_images)) <= 1.0


def test_augmentation_is_pad_crop_flip_of_the_original():
    plain = kg.data.load(
        "fashion_mnist_sample", "train", 64, augment=False, shuffle=False
    )
    augmented = kg.data.load(
        "fashion_mnist_sample", "train", 64, augment=True, shuffle=False
    )
    x, _ = next(iter(plain))
    xa, _ = next(iter(augmented))
    x, xa = x.numpy()[..., 0], xa.numpy()[..., 0]
    for original, shifted in zip(x[:16], xa[:16]):
        padded = np.pad(original, 4)
        matches = [
            np.array_equal(shifted, view)
            for dy in range(9)
            for dx in range(9)
            for view in (
                padded[dy : dy + 28, dx : dx + 28],
                padded[dy : dy + 28, dx : dx + 28][:, ::-1],
            )
        ]
        assert any(matches)


def test_resized_crop_flip_is_a_crop_of_the_original_resized_back():
    x = np.random.default_rng(0).uniform(size=(64, 28, 28, 1)).astype("float32")
    seed = tf.constant([3, 4])
    out = resized_crop_flip(tf.constant(x), seed).numpy()
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, resized_crop_flip(tf.constant(x), seed))
    assert not np.array_equal(out, resized_crop_flip(tf.constant(x), seed + 1))
    # Bilinear resizing interpolates: every value within the image's range.
    assert out.min() >= x.min() - 1e-6 and out.max() <= x.max() + 1e-6
    # A left-to-right ramp stays monotone in every row, rising or (flipped)
    # falling: a crop, not a shuffle; about half the images flipped.
    ramp = np.broadcast_to(np.linspace(0, 1, 28, dtype="float32"), (64, 28, 28))
    rows = resized_crop_flip(tf.constant(ramp[..., None]), seed).numpy()[..., 0]
    steps = np.diff(rows, axis=2)
    rising = np.all(steps >= -1e-6, axis=(1, 2))
    falling = np.all(steps <= 1e-6, axis=(1, 2))
    assert np.all(rising | falling)
    assert 16 <= int(falling.sum()) <= 48


def test_augmentation_by_name_and_unknown_names():
    ds = kg.data.load(
        "fashion_mnist_sample", "train", 32, augment="resized_crop_flip", take=64
    )
    images, _ = next(iter(ds))
    assert tuple(images.shape) == (32, 28, 28, 1)
    with pytest.raises(ValueError, match="Unknown augmentation 'mixup'; allowed"):
        kg.data.load("fashion_mnist_sample", "train", augment="mixup")


def test_evaluation_splits_are_not_shuffled_or_augmented():
    a = [y.numpy() for _, y in kg.data.load("fashion_mnist_sample", "test", 100)]
    b = [
        y.numpy() for _, y in kg.data.load("fashion_mnist_sample", "test", 100, seed=9)
    ]
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))


def test_take_keeps_a_fixed_subset():
    ds = kg.data.load("fashion_mnist_sample", "train", 50, take=120)
    assert sum(int(x.shape[0]) for x, _ in ds) == 120


def _subset(seed, subset):
    """The sorted pixel sums of a 200-image subset: which images it holds."""
    ds = kg.data.load(
        "fashion_mnist_sample",
        "train",
        50,
        take=200,
        subset=subset,
        seed=seed,
        shuffle=False,
        augment=False,
        validation_fraction=0.0,
    )
    return np.sort(np.concatenate([x.numpy().sum(axis=(1, 2, 3)) for x, _ in ds]))


def test_a_random_subset_is_drawn_with_the_seed():
    """`subset="first"` keeps the same images for every seed (without a
    validation carve-out); `"random"` draws them with the seed: the same
    at every pass and for the same seed, other ones for another."""
    np.testing.assert_array_equal(_subset(0, "first"), _subset(1, "first"))
    a, again, b = _subset(0, "random"), _subset(0, "random"), _subset(1, "random")
    np.testing.assert_array_equal(a, again)
    assert len(a) == len(b) == 200
    shared = np.intersect1d(a, b).size
    assert shared < 60  # ~200 * 200 / 6000 expected by chance
    assert (
        kg.data.num_batches(
            "fashion_mnist_sample", "train", 64, take=200, subset="random"
        )
        == 4
    )
    with pytest.raises(ValueError, match="`subset` must be one of"):
        kg.data.load("fashion_mnist_sample", "train", take=10, subset="last")


def test_repeat_and_drop_remainder():
    ds = kg.data.load(
        "fashion_mnist_sample", "train", 64, take=100, repeat=True, drop_remainder=True
    )
    shapes = [int(x.shape[0]) for x, _ in ds.take(5)]  # past one pass of 100
    assert shapes == [64] * 5
