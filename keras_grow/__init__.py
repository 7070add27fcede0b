"""keras_grow: grow neural networks while they train, in plain Keras 3."""

from keras_grow.backend import require_tensorflow

require_tensorflow()

# The package's modules import keras, which the check above must precede.
from keras_grow import build  # noqa: E402
from keras_grow import callbacks  # noqa: E402
from keras_grow import checkpoints  # noqa: E402
from keras_grow import data  # noqa: E402
from keras_grow import descent  # noqa: E402
from keras_grow import export  # noqa: E402
from keras_grow import growth_events  # noqa: E402
from keras_grow import layers  # noqa: E402
from keras_grow import multi_worker  # noqa: E402
from keras_grow import optimizer_carry  # noqa: E402
from keras_grow import schedules  # noqa: E402
from keras_grow import specs  # noqa: E402
from keras_grow import transfer  # noqa: E402
from keras_grow.growable_model import GrowableModel  # noqa: E402

__version__ = "0.1.0"
