"""The benchmark nets in PyTorch, layer for layer as `keras_grow.build`
makes them from the same spec (for `experiments/bench_peers.py`).

Same widths, kernels, strides, "same" padding, convolutions without bias,
BatchNorm with PyTorch's momentum 0.1 (Keras' 0.9) and epsilon 1e-5, max
pooling that rounds up (Keras' `padding="same"` on odd sizes), the input
normalisation, global average pooling and the dense classifier. Only the
layout differs: PyTorch's channels-first. PyTorch is imported here only;
the library never imports it.
"""

import torch
from torch import nn

import keras_grow as kg


class _Normalise(nn.Module):
    def __init__(self, spec):
        super().__init__()
        mean = torch.tensor(spec.input_mean or [0.0] * spec.input_shape[-1])
        std = torch.tensor(spec.input_std or [1.0] * spec.input_shape[-1])
        self.register_buffer("mean", mean.view(1, -1, 1, 1))
        self.register_buffer("std", std.view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def _conv_bn(in_width, out_width, kernel, stride):
    return [
        nn.Conv2d(in_width, out_width, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_width, eps=1e-5, momentum=0.1),
    ]


class _BasicBlock(nn.Module):
    def __init__(self, in_width, width, stride):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(in_width, width, 3, stride),
            nn.ReLU(),
            *_conv_bn(width, width, 3, 1),
        )
        self.shortcut = (
            nn.Sequential(*_conv_bn(in_width, width, 1, stride))
            if stride != 1 or in_width != width
            else nn.Identity()
        )

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def _head(width, num_classes):
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes)]


def _basic_resnet(spec):
    if spec.family_name != "Basic3ResNet":
        raise ValueError(f"No PyTorch twin for {spec.family_name!r}.")
    width = spec.stem_width
    layers = [_Normalise(spec), *_conv_bn(spec.input_shape[-1], width, 3, 1), nn.ReLU()]
    for stage, (depth, stage_width) in enumerate(zip(spec.depths, spec.widths)):
        for block in range(depth):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(_BasicBlock(width, stage_width, stride))
            width = stage_width
    return nn.Sequential(*layers, *_head(width, spec.num_classes))


def _vgg(spec):
    layers, width, index = [_Normalise(spec)], spec.input_shape[-1], 0
    for depth in spec.stage_depths:
        for _ in range(depth):
            layers += [*_conv_bn(width, spec.widths[index], 3, 1), nn.ReLU()]
            width = spec.widths[index]
            index += 1
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
    return nn.Sequential(*layers, *_head(width, spec.num_classes))


def _mlp(spec):
    layers, width = [_Normalise(spec), nn.Flatten()], 1
    for size in spec.input_shape:
        width *= size
    for units in spec.widths:
        layers += [nn.Linear(width, units), nn.ReLU()]
        width = units
    return nn.Sequential(*layers, nn.Linear(width, spec.num_classes))


def build(spec):
    """nn.Module. The PyTorch twin of `kg.GrowableModel(spec).body`."""
    if isinstance(spec, kg.specs.StagedNetSpec):
        return _basic_resnet(spec)
    if isinstance(spec, kg.specs.VGGSpec):
        return _vgg(spec)
    if isinstance(spec, kg.specs.MLPSpec):
        return _mlp(spec)
    raise ValueError(f"No PyTorch twin for {type(spec).__name__}.")


def param_count(module):
    """int. Trainable and non-trainable (BN statistics) values, as Keras
    counts them."""
    return sum(p.numel() for p in module.parameters()) + sum(
        b.numel()
        for name, b in module.named_buffers()
        if name.endswith(("running_mean", "running_var"))
    )
