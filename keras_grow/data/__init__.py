"""Data: `tf.data` pipelines for the embedded sample, local IDX files, tfds."""

from keras_grow.data.idx import CorruptDataError
from keras_grow.data.idx import read_idx
from keras_grow.data.pipeline import info
from keras_grow.data.pipeline import load
from keras_grow.data.pipeline import num_batches
from keras_grow.data.sources import DatasetInfo
from keras_grow.data.sources import DataUnavailableError
