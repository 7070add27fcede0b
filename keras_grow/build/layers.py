"""Layer helpers shared by the family builders."""

import keras

# PyTorch parity (the papers' code): BN momentum 0.1 there is 0.9 here.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
CONV_INITIALIZER = "he_normal"


def regularizer(spec):
    """The L2 penalty of `spec.weight_decay` (PyTorch coupled decay)."""
    if spec.weight_decay == 0:
        return None
    return keras.regularizers.L2(spec.weight_decay / 2)


def image_input(spec):
    """The model input and the (optionally normalised) tensor after it."""
    inputs = keras.Input(spec.input_shape, name="images")
    x = inputs
    if spec.input_mean is not None:
        x = keras.layers.Normalization(
            mean=list(spec.input_mean),
            variance=[s * s for s in spec.input_std],
            name="input_normalization",
        )(x)
    return inputs, x


def conv(x, width, kernel_size, stride, name, spec):
    return keras.layers.Conv2D(
        width,
        kernel_size,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer=CONV_INITIALIZER,
        kernel_regularizer=regularizer(spec),
        name=name,
    )(x)


def depthwise_conv(x, stride, name, spec):
    return keras.layers.DepthwiseConv2D(
        3,
        strides=stride,
        padding="same",
        use_bias=False,
        depthwise_initializer=CONV_INITIALIZER,
        depthwise_regularizer=regularizer(spec),
        name=name,
    )(x)


def batch_norm(x, name, spec):
    return keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        beta_regularizer=regularizer(spec),
        gamma_regularizer=regularizer(spec),
        name=name,
    )(x)


def relu(x, name):
    return keras.layers.ReLU(name=name)(x)


def norm_of(conv_name):
    """The name of the BatchNormalization after the conv `conv_name` in
    `conv_bn_relu` (`stage1_block2_conv1` -> `stage1_block2_bn1`)."""
    prefix, _, suffix = conv_name.rpartition("_conv")
    return f"{prefix}_bn{suffix}"


def conv_bn_relu(x, width, kernel_size, stride, prefix, spec, suffix=""):
    """conv -> BN -> ReLU named `{prefix}_conv{suffix}` and so on."""
    name = f"{prefix}_conv{suffix}"
    x = conv(x, width, kernel_size, stride, name, spec)
    x = batch_norm(x, norm_of(name), spec)
    return relu(x, f"{prefix}_relu{suffix}")


def dense(x, units, name, spec, dtype=None):
    return keras.layers.Dense(
        units,
        kernel_regularizer=regularizer(spec),
        bias_regularizer=regularizer(spec),
        name=name,
        dtype=dtype,
    )(x)


def classifier(x, spec):
    """The logits layer. Always float32: under a mixed precision policy
    the logits and the loss stay in full precision (Keras' advice)."""
    return dense(x, spec.num_classes, "classifier", spec, dtype="float32")


def pooled_classifier(x, spec):
    """Global average pooling then the logits layer `classifier`."""
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return classifier(x, spec)


def functional(inputs, outputs):
    return keras.Model(inputs, outputs, name="body")
