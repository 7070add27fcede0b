"""Weight transfer across growth: by-name copy, block initialisers, width
morphisms, on `{layer: {variable: array}}`; the morphisms' math on one
variable is `unit_ops` (TensorFlow, shared with Firefly's neighbourhood).
No per-layer special cases outside this package."""

from keras_grow.transfer.blocks import BLOCK_INITIALIZERS
from keras_grow.transfer.blocks import block_layer_names
from keras_grow.transfer.blocks import check_new_blocks
from keras_grow.transfer.blocks import copy_blocks
from keras_grow.transfer.blocks import copy_problem
from keras_grow.transfer.blocks import get_block_initializer
from keras_grow.transfer.rebuild import TransferReport
from keras_grow.transfer.rebuild import apply_width_changes
from keras_grow.transfer.rebuild import check_initializer
from keras_grow.transfer.rebuild import start_new_blocks
from keras_grow.transfer.rebuild import transfer_weights
from keras_grow.transfer.weights import read_weights
from keras_grow.transfer.width import AddUnits
from keras_grow.transfer.width import SplitUnits
from keras_grow.transfer.width import apply_morphism
