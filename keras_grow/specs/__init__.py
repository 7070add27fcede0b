"""Architecture specs: immutable, validated, JSON-serialisable, no Keras."""

from keras_grow.specs import progression  # noqa: F401 - kg.specs.progression
from keras_grow.specs.base import NetSpec
from keras_grow.specs.base import from_dict
from keras_grow.specs.base import from_json
from keras_grow.specs.graph import GraphSpec
from keras_grow.specs.layered import LayeredSpec
from keras_grow.specs.layered import MLPSpec
from keras_grow.specs.layered import MobileNetV1Spec
from keras_grow.specs.layered import VGGSpec
from keras_grow.specs.notation import known_families
from keras_grow.specs.notation import parse
from keras_grow.specs.staged import StagedNetSpec
