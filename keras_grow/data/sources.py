"""Where examples come from: the embedded sample, local IDX files, tfds.

A source yields unbatched `(uint8 image (H, W, C), int64 label)` examples
per split; `keras_grow.data.pipeline` turns them into training batches.
"""

import dataclasses
import os

import numpy as np

from keras_grow.data import idx

SAMPLE_FILE = os.path.join(os.path.dirname(__file__), "fashion_mnist_sample.npz")
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_DIR_ENV = "KERAS_GROW_FASHION_MNIST_DIR"
_FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
SPLITS = ("train", "validation", "test", "train+validation")

# Per-channel mean / std of the training pixels scaled to [0, 1].
_KNOWN_STATS = {
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn_cropped": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "imagenet2012": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class DataUnavailableError(OSError):
    """The data set is not on this machine and cannot be fetched."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a data set.

    Args:
        name: str. The data set's name for `keras_grow.data.load`.
        input_shape: tuple of int. (height, width, channels).
        num_classes: int.
        mean, std: tuple of float or `None`. Per-channel statistics of the
            training pixels in [0, 1], for a spec's `input_mean`/`input_std`.
        num_train, num_test: int or `None`. Examples in the original splits.
    """

    name: str
    input_shape: tuple
    num_classes: int
    mean: tuple | None
    std: tuple | None
    num_train: int | None
    num_test: int | None


def _with_channel_axis(images):
    return images[..., None] if images.ndim == 3 else images


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; allowed: {list(SPLITS)}.")


def validation_indices(num_examples, fraction, seed):
    """(train indices, validation indices): a seeded, sorted partition."""
    if not 0 <= fraction < 1:
        raise ValueError(
            f"`validation_fraction` must be in [0, 1); received {fraction!r}."
        )
    order = np.random.default_rng(seed).permutation(num_examples)
    num_validation = int(round(num_examples * fraction))
    return np.sort(order[num_validation:]), np.sort(order[:num_validation])


class ArraySource:
    """A data set held in memory as uint8 arrays (small data sets).

    Args:
        name: str.
        arrays: dict with `x_train`, `y_train`, `x_test`, `y_test`.
        num_classes: int.
        stats_of: str or `None`. Whose pixel statistics to report (a sample
            reports its full data set's). Defaults to `name`.
    """

    def __init__(self, name, arrays, num_classes, stats_of=None):
        self.name = name
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.arrays["x_train"] = _with_channel_axis(self.arrays["x_train"])
        self.arrays["x_test"] = _with_channel_axis(self.arrays["x_test"])
        mean, std = _KNOWN_STATS.get(stats_of or name, (None, None))
        self.info = DatasetInfo(
            name=name,
            input_shape=tuple(self.arrays["x_train"].shape[1:]),
            num_classes=num_classes,
            mean=mean,
            std=std,
            num_train=len(self.arrays["y_train"]),
            num_test=len(self.arrays["y_test"]),
        )

    def examples(self, split, validation_fraction, seed):
        """Returns `(images, labels)` numpy arrays of a split."""
        _check_split(split)
        if split == "test":
            return self.arrays["x_test"], self.arrays["y_test"]
        x, y = self.arrays["x_train"], self.arrays["y_train"]
        if split == "train+validation":
            return x, y
        train, validation = validation_indices(len(y), validation_fraction, seed)
        chosen = train if split == "train" else validation
        return x[chosen], y[chosen]

    def dataset(self, split, validation_fraction, seed):
        import tensorflow as tf

        x, y = self.examples(split, validation_fraction, seed)
        return tf.data.Dataset.from_tensor_slices((x, y.astype(np.int64)))


def _check_labels(arrays, path, num_classes=10):
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise idx.CorruptDataError(
                f"Fashion-MNIST files in {path} disagree: {part} images have "
                f"shape {x.shape}, labels {y.shape}."
            )
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise idx.CorruptDataError(
                f"Fashion-MNIST {part} labels in {path} must lie in "
                f"[0, {num_classes}); found [{y.min()}, {y.max()}]."
            )


def _find_file(directory, stem):
    for candidate in (stem, stem + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    return None


def read_fashion_mnist_dir(directory):
    """Reads the four original Fashion-MNIST IDX files of `directory`.

    Returns:
        dict with `x_train` (60000, 28, 28), `y_train`, `x_test`, `y_test`.

    Raises:
        FileNotFoundError: if a file is missing (naming it).
        CorruptDataError: if a file is malformed or the files disagree.
    """
    arrays = {}
    for key, stem in _FASHION_MNIST_FILES.items():
        path = _find_file(directory, stem)
        if path is None:
            raise FileNotFoundError(
                f"{directory} lacks {stem} (or {stem}.gz) of Fashion-MNIST."
            )
        arrays[key] = idx.read_idx(path)
    _check_labels(arrays, directory)
    return arrays


def sample_from_idx(directory, train_per_class, test_per_class, seed):
    """The embedded sample: a seeded, class-balanced subset of the IDX files.

    Returns:
        dict of uint8 arrays `x_train`, `y_train`, `x_test`, `y_test`, with
        examples in the order of the seeded permutation.
    """
    full = read_fashion_mnist_dir(directory)
    rng = np.random.default_rng(seed)
    sample = {}
    for part, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = full[f"y_{part}"]
        order = rng.permutation(len(labels))
        chosen = np.concatenate(
            [order[labels[order] == c][:per_class] for c in range(10)]
        )
        chosen = chosen[rng.permutation(len(chosen))]
        sample[f"x_{part}"] = full[f"x_{part}"][chosen]
        sample[f"y_{part}"] = full[f"y_{part}"][chosen].astype(np.uint8)
    return sample


def sample_source(data_dir=None, download=True):
    """The Fashion-MNIST sample shipped inside the package."""
    del data_dir, download  # always present
    with np.load(SAMPLE_FILE) as arrays:
        return ArraySource(
            "fashion_mnist_sample", dict(arrays), 10, stats_of="fashion_mnist"
        )


def fashion_mnist_dir(data_dir=None):
    """The first directory holding the Fashion-MNIST IDX files, or `None`.

    Looks at `data_dir`, then `$KERAS_GROW_FASHION_MNIST_DIR`, then Debian's
    `dataset-fashion-mnist` location.
    """
    candidates = [
        data_dir,
        os.environ.get(FASHION_MNIST_DIR_ENV),
        DEBIAN_FASHION_MNIST_DIR,
    ]
    for directory in candidates:
        if directory and _find_file(directory, _FASHION_MNIST_FILES["x_train"]):
            return directory
    return None


def fashion_mnist_source(data_dir=None, download=True):
    """Full Fashion-MNIST from local IDX files, else through tfds."""
    directory = fashion_mnist_dir(data_dir)
    if directory is not None:
        return ArraySource("fashion_mnist", read_fashion_mnist_dir(directory), 10)
    try:
        return TfdsSource("fashion_mnist", data_dir, download)
    except DataUnavailableError as error:
        raise DataUnavailableError(
            "Fashion-MNIST was not found. Ways to get it: `apt-get install "
            f"dataset-fashion-mnist` (Debian; files land in "
            f"{DEBIAN_FASHION_MNIST_DIR}); or put the four IDX files in a "
            f"directory and pass data_dir=... or set ${FASHION_MNIST_DIR_ENV};"
            f" or let tensorflow-datasets download it (needs network). "
            f"tfds said: {error}"
        ) from error


class TfdsSource:
    """Any `tensorflow_datasets` image classification data set.

    The validation split is the last `validation_fraction` of tfds' train
    split (tfds split slicing: deterministic, no seed involved).

    Args:
        name: str. A tfds name, e.g. `"cifar10"`.
        data_dir: str or `None`. tfds' data directory.
        download: bool. Let tfds download and prepare missing data.

    Raises:
        ValueError: if tfds has no such data set.
        DataUnavailableError: if the data is absent and cannot be fetched.
    """

    def __init__(self, name, data_dir=None, download=True):
        import tensorflow_datasets as tfds

        self.name = name
        try:
            self.builder = tfds.builder(name, data_dir=data_dir)
        except tfds.core.registered.DatasetNotFoundError as error:
            raise ValueError(
                f"Unknown data set {name!r}: neither keras_grow "
                f"({', '.join(sorted(_SOURCES))}) nor tensorflow-datasets "
                f"knows it."
            ) from error
        if not self.builder.is_prepared():
            self._prepare(download)
        features = self.builder.info.features
        mean, std = _KNOWN_STATS.get(name, (None, None))
        splits = self.builder.info.splits
        self.info = DatasetInfo(
            name=name,
            input_shape=tuple(features["image"].shape),
            num_classes=features["label"].num_classes,
            mean=mean,
            std=std,
            num_train=splits["train"].num_examples if "train" in splits else None,
            num_test=splits["test"].num_examples if "test" in splits else None,
        )

    def _prepare(self, download):
        where = self.builder.data_dir
        if not download:
            raise DataUnavailableError(
                f"tfds data set {self.name!r} is not prepared in {where} and "
                f"download=False. Prepare it on a machine with network "
                f"(`tfds build {self.name}`) and pass its data_dir, or allow "
                f"download=True."
            )
        try:
            self.builder.download_and_prepare()
        except Exception as error:  # tfds raises many kinds when offline.
            raise DataUnavailableError(
                f"tfds could not download {self.name!r} into {where}: "
                f"{error}. Prepare it on a machine with network and pass "
                f"data_dir=..., or (for ImageNet) place the archives in "
                f"tfds' manual_dir."
            ) from error

    def dataset(self, split, validation_fraction, seed):
        del seed  # tfds slicing is deterministic.
        _check_split(split)
        percent = int(round(100 * (1 - validation_fraction)))
        tfds_split = {
            "train": f"train[:{percent}%]",
            "validation": f"train[{percent}%:]",
            "train+validation": "train",
            "test": "test",
        }[split]
        return self.builder.as_dataset(split=tfds_split, as_supervised=True)


# name -> source factory(data_dir, download); anything else goes to tfds.
_SOURCES = {
    "fashion_mnist_sample": sample_source,
    "fashion_mnist": fashion_mnist_source,
}


def get_source(name, data_dir=None, download=True):
    """Returns the source of data set `name` (see `keras_grow.data.load`)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"Data set name must be a non-empty str; received {name!r}.")
    factory = _SOURCES.get(name)
    if factory is not None:
        return factory(data_dir=data_dir, download=download)
    return TfdsSource(name, data_dir=data_dir, download=download)
