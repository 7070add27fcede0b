"""keras_grow: grow neural networks while they train, in plain Keras 3."""

from keras_grow import build
from keras_grow import callbacks
from keras_grow import checkpoints
from keras_grow import data
from keras_grow import descent
from keras_grow import export
from keras_grow import multi_worker
from keras_grow import optimizer_carry
from keras_grow import specs
from keras_grow import transfer
from keras_grow.growable_model import GrowableModel

__version__ = "0.1.0"
