import json

import pytest

from keras_grow import build
from keras_grow import specs

MNIST = dict(input_shape=(28, 28, 1), num_classes=10)
CIFAR = dict(input_shape=(32, 32, 3), num_classes=10)

ROUND_TRIP = [
    ("Basic3ResNet-3-3-3", MNIST),
    ("Basic4ResNet-2-2-2-2", CIFAR),
    ("Bottleneck4ResNet-3-4-6-3", dict(input_shape=(224, 224, 3), num_classes=1000)),
    ("Plain3Net-1-2-3", MNIST),
    ("Plain4Net-1-1-1-1", CIFAR),
    ("VGG19-16", CIFAR),
    ("VGG11-8", MNIST),
    ("VGG11-8-8-16-16-16-16-16-24", MNIST),
    ("VGG(2,2,5,4,4)-8", CIFAR),
    ("MobileNetV1-32", CIFAR),
    ("MLP-64-64", MNIST),
    ("MLP-10-20-30", MNIST),
]


@pytest.mark.parametrize("notation,shape", ROUND_TRIP)
def test_notation_round_trips(notation, shape):
    spec = specs.parse(notation, **shape)
    assert spec.notation == notation
    assert specs.parse(spec.notation, **shape) == spec


@pytest.mark.parametrize("notation,shape", ROUND_TRIP)
def test_json_round_trips(notation, shape):
    spec = specs.parse(
        notation,
        **shape,
        input_mean=(0.5,) * shape["input_shape"][-1],
        input_std=(0.25,) * shape["input_shape"][-1],
        weight_decay=5e-4,
    )
    text = spec.to_json()
    json.loads(text)
    assert specs.from_json(text) == spec
    assert specs.from_dict(spec.to_dict()) == spec


def test_specs_are_immutable_and_hashable():
    spec = specs.parse("Basic3ResNet-1-1-1", **MNIST)
    with pytest.raises(AttributeError):
        spec.depths = (2, 2, 2)
    assert hash(spec) == hash(specs.parse("Basic3ResNet-1-1-1", **MNIST))


def test_staged_defaults_follow_the_papers():
    small = specs.parse("Basic3ResNet-1-1-1", **MNIST)
    assert small.widths == (16, 32, 64) and small.stem_width == 16
    assert small.stem == "cifar"
    big = specs.parse("Basic4ResNet-2-2-2-2", **CIFAR)
    assert big.widths == (64, 128, 256, 512) and big.stem == "cifar"
    imagenet = specs.parse(
        "Bottleneck4ResNet-3-4-6-3", input_shape=(224, 224, 3), num_classes=1000
    )
    assert imagenet.stem == "imagenet" and imagenet.expansion == 4


def test_uniform_width_notation_expands_per_layer():
    vgg = specs.parse("VGG19-16", **CIFAR)
    assert vgg.widths == (16,) * 16
    assert specs.parse("VGG11-8", **MNIST).widths == (8,) * 8
    assert specs.parse("MobileNetV1", **CIFAR).widths[-1] == 1024
    assert specs.parse("VGG19", **CIFAR).widths[0] == 64


def test_successors_return_new_specs():
    spec = specs.parse("Basic3ResNet-1-1-1", **MNIST)
    assert spec.with_block_added(1).notation == "Basic3ResNet-1-2-1"
    assert spec.with_depths((7, 6, 6)).notation == "Basic3ResNet-7-6-6"
    wider = spec.with_layer_widened(0, 24)
    assert wider.widths == (24, 32, 64) and wider.stem_width == 24
    assert spec.depths == (1, 1, 1)  # untouched
    vgg = specs.parse("VGG11-8", **MNIST)
    grown = vgg.with_layer_widened(3, 11)
    assert grown.notation == "VGG11-8-8-8-11-8-8-8-8"
    assert specs.parse(grown.notation, **MNIST) == grown
    assert vgg.with_widths([9] * 8).notation == "VGG11-9"


@pytest.mark.parametrize(
    "notation,shape,message",
    [
        ("ResNet50-1", MNIST, "Unknown family 'ResNet50'"),
        ("Basic3ResNet-1-1", MNIST, "has 3 stages; received 2 depths"),
        ("Basic4ResNet-1-1-1", CIFAR, "has 4 stages; received 3 depths"),
        ("Basic3ResNet-0-1-1", MNIST, "stage depth must be >= 1"),
        ("Plain3Net-1--1-1", MNIST, "Malformed spec notation"),
        ("Basic3ResNet-1-x-1", MNIST, "Malformed spec notation"),
        ("VGG19-0", CIFAR, "layer width must be >= 1"),
        ("VGG19-16-16", CIFAR, "1 width (uniform) or 16 widths"),
        ("MobileNetV1-8-8", CIFAR, "1 width (uniform) or 14 widths"),
        ("MLP", MNIST, "MLP needs one width per hidden layer"),
        ("MLP-0", MNIST, "layer width must be >= 1"),
        (
            "VGG19-8",
            dict(input_shape=(16, 16, 3), num_classes=10),
            "too small for VGG19",
        ),
        (
            "Basic4ResNet-1-1-1-1",
            dict(input_shape=(4, 4, 3), num_classes=10),
            "too small for Basic4ResNet",
        ),
        (
            "Basic3ResNet-1-1-1",
            dict(input_shape=(28, 28), num_classes=10),
            "takes images (height, width, channels)",
        ),
        (
            "Basic3ResNet-1-1-1",
            dict(input_shape=(28, 28, 1), num_classes=0),
            "`num_classes` must be an integer >= 1",
        ),
    ],
)
def test_invalid_specs_raise_clear_errors(notation, shape, message):
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        specs.parse(notation, **shape)


def test_invalid_fields_raise_clear_errors():
    spec = specs.parse("Basic3ResNet-1-1-1", **MNIST)
    with pytest.raises(ValueError, match=r"stage width must be >= 1"):
        spec.with_widths((16, 0, 64))
    with pytest.raises(ValueError, match=r"`stage` must be an integer in \[0, 2\]"):
        spec.with_block_added(3)
    with pytest.raises(ValueError, match="given together"):
        specs.parse("MLP-4", **MNIST, input_mean=(0.5,))
    with pytest.raises(ValueError, match="one value per input channel"):
        specs.parse("MLP-4", **MNIST, input_mean=(0.5, 0.5), input_std=(1.0, 1.0))
    with pytest.raises(ValueError, match="`weight_decay` must be a number >= 0"):
        specs.parse("MLP-4", **MNIST, weight_decay=-1.0)
    with pytest.raises(TypeError, match="must be a str"):
        specs.parse(3, **MNIST)
    with pytest.raises(ValueError, match="Unknown spec kind"):
        specs.from_dict({"kind": "transformer"})
    with pytest.raises(ValueError, match="Unknown fields"):
        specs.from_dict({**spec.to_dict(), "dropout": 0.5})


_SPECS_ONLY = """
import importlib.util, os, sys, types
# Load keras_grow.specs without running keras_grow/__init__ (which imports
# Keras for the model): a bare package object pointing at the source tree.
origin = importlib.util.find_spec("keras_grow").origin
package = types.ModuleType("keras_grow")
package.__path__ = [os.path.dirname(origin)]
sys.modules["keras_grow"] = package
from keras_grow import specs
specs.parse("VGG19-16", (32, 32, 3), 10).with_layer_widened(0, 20).to_json()
print("tensorflow" in sys.modules, "keras" in sys.modules)
"""


def test_specs_do_not_import_tensorflow_or_keras():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _SPECS_ONLY], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    "notation,stages,units",
    [
        ("Basic3ResNet-1-1-1", 3, 1),
        ("Bottleneck4ResNet-1-1-1-1", 4, 4),
        ("VGG11-8", 5, 1),
        ("MLP-8-8", 1, 1),
        ("MobileNetV1-8", 0, 1),
    ],
)
def test_specs_declare_what_growth_can_do(notation, stages, units):
    spec = specs.parse(notation, (32, 32, 3), 10)
    assert (spec.depth_stages, spec.units_per_width) == (stages, units)
    for stage in range(stages):
        deeper = spec.with_block_added(stage)
        assert build_depth(deeper) == build_depth(spec) + 1
    with pytest.raises(ValueError, match="stage|fixed layout"):
        spec.with_block_added(stages)


def build_depth(spec):
    """Blocks depth growth can add, counted from the built description."""
    return len(build.blocks(spec))


def test_staged_notation_round_trips_custom_widths():
    for notation, widths in (
        ("Basic3ResNet-2-3-3", (4, 8, 16)),
        ("Plain3Net-1-1-2", (16, 32, 48)),
        ("Bottleneck4ResNet-1-2-1-1", (8, 8, 16, 16)),
    ):
        shape = (28, 28, 1) if "3" in notation.split("-")[0] else (32, 32, 3)
        spec = specs.parse(notation, shape, 10, widths=widths)
        text = spec.notation
        assert "(" + ",".join(str(w) for w in widths) + ")" in text
        assert specs.parse(text, shape, 10) == spec
        assert specs.parse(text, shape, 10, widths=widths) == spec
    default = specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10)
    assert default.notation == "Basic3ResNet-1-1-1"  # the paper's, unchanged
    with pytest.raises(ValueError, match="give them once"):
        specs.parse("Basic3ResNet(4,8,16)-1-1-1", (28, 28, 1), 10, widths=(8, 8, 8))


def test_messages_name_a_class_with_its_article():
    from keras_grow.specs.base import a_or_an

    assert a_or_an("Embedding") == "an Embedding"
    assert a_or_an("Dense") == "a Dense"
    assert a_or_an("Sequential") == "a Sequential"
    assert a_or_an("UnitNormalization") == "a UnitNormalization"
    assert a_or_an("UpSampling2D") == "an UpSampling2D"
    # Acronyms by their first letter's name.
    assert a_or_an("RNN") == "an RNN"
    assert a_or_an("LSTM") == "an LSTM"
    assert a_or_an("GRU") == "a GRU"
    assert a_or_an("MLP") == "an MLP"
