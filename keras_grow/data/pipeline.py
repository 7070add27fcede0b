"""`load`: a `tf.data` pipeline of (image, label) batches for training."""

import math

import tensorflow as tf

from keras_grow.data import sources

PAD = 4
# ImageNet-style crops: a fraction of the image area and an aspect ratio.
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


def _to_float(image, label):
    return tf.cast(image, tf.float32) / 255.0, label


def pad_crop_flip(images, seed):
    """The papers' augmentation on a batch: pad 4 pixels, random crop back,
    random horizontal flip, drawn independently for every image.

    Vectorised over the batch (two gathers and a select), which on a 2-core
    CPU delivers several times the images per second of the per-image
    `tf.image` ops (docs/benchmarks.md).

    Args:
        images: float tensor (batch, H, W, C).
        seed: int tensor of shape (2,), a stateless seed.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    padded = tf.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    offset_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2)
    )
    offsets = tf.random.stateless_uniform(
        [batch, 2], offset_seed, minval=0, maxval=2 * PAD + 1, dtype=tf.int32
    )
    rows = offsets[:, :1] + tf.range(height)[None, :]  # (batch, H)
    cols = offsets[:, 1:] + tf.range(width)[None, :]  # (batch, W)
    flip = tf.random.stateless_uniform([batch], flip_seed) < 0.5
    cols = tf.where(flip[:, None], tf.reverse(cols, axis=[1]), cols)
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def resized_crop_flip(images, seed):
    """ImageNet-style augmentation on a batch (the AutoGrow authors'
    ImageNet recipe): a random crop covering a random part of the image
    area (8% to 100%) with a random aspect ratio (3/4 to 4/3), resized back
    to the image size (bilinear), then a random horizontal flip; drawn
    independently for every image.

    Args:
        images: float tensor (batch, H, W, C).
        seed: int tensor of shape (2,), a stateless seed.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    area_seed, ratio_seed, place_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=4)
    )
    area = tf.random.stateless_uniform([batch], area_seed, *CROP_SCALE)
    ratio = tf.exp(
        tf.random.stateless_uniform(
            [batch], ratio_seed, math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
        )
    )
    aspect = tf.cast(width, tf.float32) / tf.cast(height, tf.float32)
    # Box sides as fractions of the image's, so that h * w = area.
    box_w = tf.minimum(tf.sqrt(area * ratio / aspect), 1.0)
    box_h = tf.minimum(tf.sqrt(area / ratio * aspect), 1.0)
    place = tf.random.stateless_uniform([batch, 2], place_seed)
    top, left = place[:, 0] * (1.0 - box_h), place[:, 1] * (1.0 - box_w)
    boxes = tf.stack([top, left, top + box_h, left + box_w], axis=1)
    crops = tf.image.crop_and_resize(
        images, boxes, tf.range(batch), tf.stack([height, width])
    )
    flip = tf.random.stateless_uniform([batch], flip_seed) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(crops, axis=[2]), crops)


# name -> batch augmentation `(images, stateless seed) -> images`.
AUGMENTATIONS = {
    "crop_flip": pad_crop_flip,  # CIFAR, Fashion-MNIST: the papers'
    "resized_crop_flip": resized_crop_flip,  # ImageNet: the AutoGrow authors'
}


def get_augmentation(augment):
    """The batch augmentation `augment` names (`True`: `"crop_flip"`), or
    `None` for `False`/`None`.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if augment is None or augment is False:
        return None
    name = "crop_flip" if augment is True else augment
    if name not in AUGMENTATIONS:
        raise ValueError(
            f"Unknown augmentation {augment!r}; allowed: True, False or one of "
            f"{sorted(AUGMENTATIONS)}."
        )
    return AUGMENTATIONS[name]


def _augment(dataset, seed, augmentation):
    # One seed per batch, drawn in order (a cheap sequential map) from a
    # seeded generator whose state runs on across epochs: the same seed
    # gives the same augmentations, every epoch new ones; the crops and
    # flips run in parallel on stateless ops.
    generator = tf.random.Generator.from_seed(seed)
    dataset = dataset.map(
        lambda images, labels: (images, labels, generator.make_seeds(1)[:, 0])
    )
    return dataset.map(
        lambda images, labels, op_seed: (augmentation(images, op_seed), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _check_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}; received {value!r}."
        )


SUBSETS = ("first", "random")


def _examples(
    name,
    split,
    batch_size,
    seed,
    validation_fraction,
    take,
    data_dir,
    download,
    subset="first",
):
    """(source, unbatched examples of the split, `take` of them: the first,
    or a random subset drawn with `seed`), after checking the sizes."""
    _check_int(batch_size, "batch_size")
    if take is not None:
        _check_int(take, "take")
    if subset not in SUBSETS:
        raise ValueError(f"`subset` must be one of {SUBSETS}; received {subset!r}.")
    source = sources.get_source(name, data_dir=data_dir, download=download)
    dataset = source.dataset(split, validation_fraction, seed)
    if take is not None:
        if subset == "random":
            # One permutation of the whole split, the same at every pass.
            dataset = dataset.shuffle(
                _buffer_size(source, None), seed=seed, reshuffle_each_iteration=False
            )
        dataset = dataset.take(take)
    return source, dataset


def load(
    name,
    split,
    batch_size=128,
    *,
    augment=None,
    shuffle=None,
    seed=0,
    validation_fraction=0.1,
    take=None,
    subset="first",
    data_dir=None,
    download=True,
    cache=True,
    drop_remainder=False,
    repeat=False,
    start_epoch=None,
):
    """Returns a `tf.data.Dataset` of `(images, labels)` batches.

    Images are float32 in [0, 1] with shape `(batch, H, W, C)`; labels are
    int64 class indices. The pipeline caches decoded uint8 examples,
    shuffles with `seed`, augments on the graph (pad-4 random crop and
    horizontal flip, as the papers do), batches and prefetches.

    Args:
        name: str. `"fashion_mnist_sample"` (the real sample shipped in the
            package: 6000 train / 1000 test images), `"fashion_mnist"`
            (local IDX files from Debian's `dataset-fashion-mnist`,
            `data_dir` or `$KERAS_GROW_FASHION_MNIST_DIR`; tfds otherwise),
            or any tfds image classification name (`"cifar10"`, ...).
        split: str. `"train"` (train minus validation), `"validation"` (a
            held-out part of train), `"test"`, or `"train+validation"`.
        batch_size: int. Defaults to `128`.
        augment: bool, str or `None`. `True` or `"crop_flip"`: pad-4
            random crop and flip (the papers' CIFAR recipe);
            `"resized_crop_flip"`: random resized crop and flip (ImageNet);
            `False`: none. Defaults to `True` for training splits.
        shuffle: bool or `None`. Defaults to `True` for training splits.
        seed: int. Seeds the validation carve-out, shuffling and
            augmentation. Defaults to `0`.
        validation_fraction: float. Part of train held out as validation.
            Defaults to `0.1`.
        take: int or `None`. Keep only `take` examples of the split (for
            quick runs). Defaults to all.
        subset: str. Which `take` examples: `"first"` (default; the same
            ones whatever the seed, but for the seeded validation
            carve-out) or `"random"` (a subset drawn with `seed`, so that
            runs with different seeds see different data).
        data_dir: str or `None`. Where to look for the data.
        download: bool. Let tfds download missing data. Defaults to `True`.
        cache: bool. Cache decoded examples in memory. Defaults to `True`.
        drop_remainder: bool. Drop a last partial batch.
        repeat: bool. Repeat forever (then pass `steps_per_epoch` to fit).
        start_epoch: int or `None`. Epoch-seeded mode, for runs that must
            resume exactly: the dataset repeats forever, epoch `e`'s order
            and augmentations depend only on `seed` and `e`, and the stream
            starts at epoch `start_epoch`. Pass `steps_per_epoch=
            kg.data.num_batches(...)` to `fit`. Defaults to `None` (one
            epoch per iteration, reshuffled each time; `repeat` applies).

    Returns:
        A batched `tf.data.Dataset`.

    Raises:
        ValueError: for an unknown name or split, or bad sizes.
        DataUnavailableError: (an `OSError`) if the data is not here and
            cannot be fetched; the message lists the ways to get it.
        CorruptDataError: (a `ValueError`) if data files are malformed.

    Example:

    >>> import keras_grow as kg
    >>> train = kg.data.load("fashion_mnist_sample", "train", batch_size=64)
    >>> images, labels = next(iter(train))
    >>> tuple(images.shape)
    (64, 28, 28, 1)
    """
    if start_epoch is not None:
        _check_int(start_epoch, "start_epoch", minimum=0)
    training = split in ("train", "train+validation")
    augmentation = get_augmentation(training if augment is None else augment)
    source, dataset = _examples(
        name,
        split,
        batch_size,
        seed,
        validation_fraction,
        take,
        data_dir,
        download,
        subset,
    )
    shuffle = training if shuffle is None else shuffle
    if cache:
        dataset = dataset.cache()
    if start_epoch is not None:
        return _epoch_seeded(
            dataset,
            start_epoch,
            seed=seed,
            buffer_size=_buffer_size(source, take) if shuffle else None,
            batch_size=batch_size,
            drop_remainder=drop_remainder,
            augmentation=augmentation,
        )
    if shuffle:
        dataset = dataset.shuffle(
            _buffer_size(source, take), seed=seed, reshuffle_each_iteration=True
        )
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if augmentation is not None:
        dataset = _augment(dataset, seed, augmentation)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _epoch_seeded(
    dataset,
    start_epoch,
    *,
    seed,
    buffer_size,
    batch_size,
    drop_remainder,
    augmentation,
):
    """Epochs `start_epoch, start_epoch + 1, ...`, each a pure function of
    (`seed`, epoch): a resumed run sees the batches an uninterrupted one
    would have."""
    seed = tf.constant(seed, tf.int64)

    def one_epoch(epoch):
        epoch_seed = tf.stack([seed, epoch])
        examples = dataset
        if buffer_size is not None:
            shuffle_seed = tf.random.experimental.stateless_fold_in(epoch_seed, -1)
            examples = _stateless_shuffle(examples, buffer_size, shuffle_seed)
        batches = examples.batch(batch_size, drop_remainder=drop_remainder)
        batches = batches.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
        if augmentation is None:
            return batches
        return batches.enumerate().map(
            lambda index, batch: (
                augmentation(
                    batch[0],
                    tf.random.experimental.stateless_fold_in(epoch_seed, index),
                ),
                batch[1],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    epochs = tf.data.Dataset.range(start_epoch, 2**62)
    return epochs.flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)


def _stateless_shuffle(examples, block, seed):
    """Shuffles within blocks of `block` examples, a pure function of `seed`
    (Dataset.shuffle cannot take a per-epoch seed tensor when the global
    seed is 0). With `block` >= the split, a uniform shuffle."""

    def permute(index, chunk):
        order = tf.argsort(
            tf.random.stateless_uniform(
                tf.shape(chunk[0])[:1],
                tf.random.experimental.stateless_fold_in(seed, index),
            )
        )
        return tuple(tf.gather(part, order) for part in chunk)

    return examples.batch(block).enumerate().map(permute).unbatch()


def num_batches(
    name,
    split,
    batch_size=128,
    *,
    seed=0,
    validation_fraction=0.1,
    take=None,
    subset="first",
    data_dir=None,
    download=True,
    drop_remainder=False,
):
    """The number of batches in one epoch of `load(...)` with these arguments.

    For `fit(steps_per_epoch=...)` with an epoch-seeded (`start_epoch`)
    dataset, which repeats forever.

    Returns:
        int.
    """
    _, dataset = _examples(
        name,
        split,
        batch_size,
        seed,
        validation_fraction,
        take,
        data_dir,
        download,
        subset,
    )
    examples = int(dataset.cardinality())
    if examples < 0:  # unknown or infinite: count once
        examples = int(dataset.reduce(0, lambda count, _: count + 1))
    if drop_remainder:
        return examples // batch_size
    return -(-examples // batch_size)


def _buffer_size(source, take):
    size = source.info.num_train or 10_000
    size = min(size, take) if take else size
    return max(1, min(size, 60_000))


def info(name, data_dir=None, download=True):
    """Returns the `DatasetInfo` (shape, classes, mean/std) of `name`."""
    return sources.get_source(name, data_dir=data_dir, download=download).info
