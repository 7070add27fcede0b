import keras
import numpy as np
import pytest

from keras_grow import build
from keras_grow import gated_layers
from keras_grow import specs

CASES = [
    ("Basic3ResNet-2-1-1", (28, 28, 1)),
    ("Bottleneck4ResNet-1-2-1-1", (32, 32, 3)),
    ("Basic4ResNet-1-1-1-1", (128, 128, 3)),
    ("Plain3Net-2-1-1", (28, 28, 1)),
    ("VGG19-4", (28, 28, 1)),
    ("VGG(1,2)-4-5-6", (16, 16, 3)),
    ("MobileNetV1-4", (28, 28, 1)),
    ("MLP-16-8", (28, 28, 1)),
]


def _spec(notation, shape, **kwargs):
    staged = notation.split("-")[0] in ("Basic4ResNet", "Bottleneck4ResNet")
    if staged:
        kwargs.setdefault("widths", (4, 4, 8, 8))
    return specs.parse(notation, shape, 10, **kwargs)


@pytest.mark.parametrize("notation,shape", CASES)
def test_same_spec_same_names(notation, shape):
    spec = _spec(notation, shape)
    first = [layer.name for layer in build.build_body(spec).layers]
    second = [layer.name for layer in build.build_body(spec).layers]
    assert first == second
    assert len(set(first)) == len(first)
    assert first[0] == "images" and first[-1] == "classifier"


@pytest.mark.parametrize("notation,shape", CASES)
def test_structure_names_real_layers(notation, shape):
    spec = _spec(notation, shape)
    body = build.build_body(spec)
    names = {layer.name for layer in body.layers}
    for group in build.unit_groups(spec):
        for name in group.producers + group.norms + group.passthrough + group.consumers:
            assert name in names, (group.name, name)
        widths = {body.get_layer(p).kernel.shape[-1] for p in group.producers}
        assert len(widths) == 1, group
    for block in build.blocks(spec):
        assert block.last_norm is None or block.last_norm in names
    assert body.output_shape == (None, 10)


def test_grown_spec_keeps_every_old_name():
    spec = specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10)
    old = {layer.name for layer in build.build_body(spec).layers}
    new = {layer.name for layer in build.build_body(spec.with_block_added(1)).layers}
    assert old < new
    assert new - old == {
        f"stage2_block2_{op}"
        for op in ("conv1", "bn1", "relu1", "conv2", "bn2", "add", "out")
    }


def test_parameter_count_matches_spec_arithmetic():
    # MLP-16-8 on 28x28: 784*16+16 + 16*8+8 + 8*10+10.
    mlp = build.build_body(specs.parse("MLP-16-8", (28, 28, 1), 10))
    assert mlp.count_params() == 784 * 16 + 16 + 16 * 8 + 8 + 8 * 10 + 10
    # VGG(1,2)-4-5-6, 3 channels: convs without bias + BN (4 params each).
    vgg = build.build_body(specs.parse("VGG(1,2)-4-5-6", (16, 16, 3), 10))
    convs = 9 * (3 * 4 + 4 * 5 + 5 * 6)
    norms = 4 * (4 + 5 + 6)
    assert vgg.count_params() == convs + norms + 6 * 10 + 10
    # Residual stages: the first block of a later stage has a projection.
    res = specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(2, 4, 8))
    expected = 9 * 1 * 2 + 4 * 2  # stem
    expected += 2 * (9 * 2 * 2 + 4 * 2)  # stage 1 (identity shortcut)
    for cin, c in ((2, 4), (4, 8)):
        expected += 9 * cin * c + 9 * c * c + 2 * 4 * c + cin * c + 4 * c
    expected += 8 * 10 + 10
    assert build.build_body(res).count_params() == expected


def test_normalization_and_weight_decay_are_in_the_graph():
    spec = specs.parse(
        "MLP-4", (28, 28, 1), 10, input_mean=(0.3,), input_std=(0.5,), weight_decay=1e-3
    )
    body = build.build_body(spec)
    assert body.layers[1].name == "input_normalization"
    assert isinstance(body.layers[1], keras.layers.Normalization)
    reg = body.get_layer("layer1_dense").kernel_regularizer
    assert reg.l2 == pytest.approx(5e-4)  # PyTorch coupled decay: wd / 2


def test_build_rejects_non_specs():
    with pytest.raises(TypeError, match="Expected a keras_grow spec"):
        build.build_body("Basic3ResNet-1-1-1")


def test_every_registered_family_lowers_to_a_graph_and_has_a_notation():
    # One registry (the spec classes) and one builder: every family is
    # written as layer nodes and built by the graph builder.
    from keras_grow.specs import base

    for cls in base.families():
        assert cls.notation_names or cls is specs.GraphSpec, cls
    spec = specs.parse("VGG11-4", input_shape=(32, 32, 3), num_classes=10)
    lowered = spec.lowered()
    assert isinstance(lowered, specs.GraphSpec)
    assert lowered.depth == "named"
    assert spec.lowered() is lowered  # made once per spec
    assert lowered.lowered() is lowered
    names = [layer.name for layer in build.build_body(spec).layers[1:]]
    assert names == [node["name"] for node in lowered.nodes]


def test_the_unit_slots_cover_the_analysis_roles_in_their_order():
    from keras_grow.build.structure import SLOTS
    from keras_grow.specs.graph_analysis import ROLES

    assert tuple(SLOTS) == ROLES


def test_a_resnets_unit_groups_are_the_graph_analysis_named_by_the_family():
    # Streams join the stem and every block that adds into them; each is
    # listed once the last layer reading it is made, members in the order
    # their layers are made (growth draws new units in this order).
    spec = specs.parse(
        "Basic3ResNet(4,8,16)-2-1-2", input_shape=(32, 32, 3), num_classes=10
    )
    groups = build.unit_groups(spec)
    assert [(g.name, g.width_index) for g in groups] == [
        ("stage1_block1_inner1", 0),
        ("stage1_block2_inner1", 0),
        ("stage2_block1_inner1", 1),
        ("stage1", 0),
        ("stage3_block1_inner1", 2),
        ("stage2", 1),
        ("stage3_block2_inner1", 2),
        ("stage3", 2),
    ]
    stage1, stage2 = groups[3], groups[5]
    assert stage1.producers == (
        "stem_conv",
        "stage1_block1_conv2",
        "stage1_block2_conv2",
    )
    assert stage1.consumers == (
        "stage1_block1_conv1",
        "stage1_block2_conv1",
        "stage2_block1_conv1",
        "stage2_block1_shortcut_conv",
    )
    assert stage2.producers == ("stage2_block1_conv2", "stage2_block1_shortcut_conv")
    assert stage2.norms == ("stage2_block1_bn2", "stage2_block1_shortcut_bn")
    (first, *_) = build.blocks(spec)
    assert first == build.Block(
        "stage1_block1",
        "stage1_block1_bn2",
        residual=True,
        convs=("stage1_block1_conv1", "stage1_block1_conv2"),
        stage=0,
    )
    # A stem narrower than the first stage is a group no width entry sets.
    narrow = spec.replace(stem_width=3)
    assert ("stem", None) in [
        (g.name, g.width_index) for g in build.unit_groups(narrow)
    ]


def test_a_mobilenets_groups_carry_their_depthwise_convs_and_blocks_no_stage():
    spec = specs.parse("MobileNetV1-4", input_shape=(32, 32, 3), num_classes=10)
    stem, block1, *_ = build.unit_groups(spec)
    assert (stem.name, stem.width_index, stem.passthrough) == (
        "stem",
        0,
        ("block1_dw",),
    )
    assert stem.norms == ("stem_bn", "block1_dw_bn")
    assert (block1.name, block1.width_index) == ("block1", 1)
    blocks = build.blocks(spec)
    assert len(blocks) == 13 and not any(b.residual for b in blocks)
    assert blocks[0] == build.Block(
        "block1", "block1_bn", residual=False, convs=("block1_dw", "block1_conv")
    )


def _copy_by_name(source, target):
    """Each variable of `target` gets the value of the variable of the
    same name in `source`'s layer of the same name (flags left alone)."""
    layers = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        values = {v.name: v for v in getattr(layers.get(layer.name), "weights", [])}
        for variable in layer.weights:
            if variable.name != "active":
                variable.assign(values[variable.name].numpy())


def _randomized(body):
    rng = np.random.default_rng(0)
    for variable in body.weights:
        if variable.name == "active":
            continue
        noise = rng.uniform(0.5, 1.5, variable.shape).astype("float32")
        variable.assign(noise if "variance" in variable.name else noise - 1.0)
    return body


def test_reserved_blocks_are_skipped_until_switched_on():
    spec = _spec("Basic3ResNet-1-1-1", (8, 8, 1), widths=(4, 8, 8))
    capacity = spec.with_depths((3, 2, 2))
    reserved = [b.name for b in build.new_blocks(spec, capacity)]
    assert reserved == [
        "stage1_block2",
        "stage1_block3",
        "stage2_block2",
        "stage3_block2",
    ]
    body = _randomized(build.build_body(capacity, reserved=reserved))
    gated = [layer for layer in body.layers if isinstance(layer, gated_layers.Gated)]
    # A basic block: two convs, two norms, two ReLUs and its Add.
    assert len(gated) == 4 * 7
    adds = [layer for layer in gated if isinstance(layer, gated_layers.GatedAdd)]
    assert [layer.pass_index for layer in adds] == [0] * 4  # the shortcut
    assert {layer.name for layer in gated} == build.reserved_layers(capacity, reserved)
    x = np.random.default_rng(1).random((4, 8, 8, 1)).astype("float32")
    active = build.build_body(spec)
    _copy_by_name(body, active)
    np.testing.assert_allclose(body(x), active(x), atol=1e-5)
    for layer in gated:
        layer.switch(True)
    deeper = build.build_body(capacity)
    _copy_by_name(body, deeper)
    np.testing.assert_allclose(body(x), deeper(x), atol=1e-5)
    assert not np.allclose(body(x), active(x), atol=1e-3)


def test_blocks_that_switched_off_would_not_pass_their_input_on_are_refused():
    spec = _spec("Basic3ResNet-1-1-1", (8, 8, 1), widths=(4, 8, 8))
    with pytest.raises(ValueError, match="'stage1_block9' is not a block"):
        build.build_body(spec, reserved=["stage1_block9"])
    plain = _spec("Plain3Net-1-1-1", (8, 8, 1), widths=(4, 8, 8)).with_depths((2, 1, 1))
    with pytest.raises(
        ValueError, match="'stage1_block2' cannot be reserved.*no shortcut"
    ):
        build.build_body(plain, reserved=["stage1_block2"])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_reserve_switched_off_trains_as_the_net_without_it(optimizer):
    """Weight decay in the graph and momentum or Adam slots: the reserve
    adds nothing to the loss, gets no update, and the net around it
    trains step for step as the net without it."""
    spec = _spec("Basic3ResNet-1-1-1", (8, 8, 1), widths=(4, 8, 8), weight_decay=1e-3)
    capacity = spec.with_depths((2, 2, 1))
    reserved = [b.name for b in build.new_blocks(spec, capacity)]
    bodies = {
        "reserve": _randomized(build.build_body(capacity, reserved=reserved)),
        "exact": build.build_body(spec),
    }
    _copy_by_name(bodies["reserve"], bodies["exact"])
    reserve_before = {
        v.path: v.numpy() for v in bodies["reserve"].weights if "block2" in v.path
    }
    rng = np.random.default_rng(2)
    x = rng.random((16, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 16)
    losses = {}
    for name, body in bodies.items():
        if optimizer == "sgd":
            made = keras.optimizers.SGD(0.05, momentum=0.9)
        else:
            made = keras.optimizers.Adam(1e-2)
        body.compile(made, keras.losses.SparseCategoricalCrossentropy(True))
        history = body.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
        losses[name] = history.history["loss"]
    np.testing.assert_allclose(losses["reserve"], losses["exact"], rtol=1e-5)
    exact = {layer.name: layer for layer in bodies["exact"].layers}
    for layer in bodies["reserve"].layers:
        if layer.name in exact:
            for a, b in zip(layer.weights, exact[layer.name].weights):
                np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    for variable in bodies["reserve"].weights:
        if variable.path in reserve_before:
            np.testing.assert_array_equal(
                variable.numpy(), reserve_before[variable.path]
            )
