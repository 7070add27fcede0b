"""Mixed bfloat16 on a CPU: a warning where it is slower than float32.

Keras' `mixed_bfloat16` policy speeds training up on hardware with native
bfloat16 matrix units (GPUs, TPUs, CPUs with AMX). On other CPUs
TensorFlow converts to and from bfloat16 around every op and training gets
slower, silently (docs/benchmarks.md has the measurements the warning
quotes). So `GrowableModel.fit` warns once per process when the model
computes in bfloat16, no GPU is visible and the CPU has no AMX.
"""

import warnings

import tensorflow as tf

MEASURED = (
    "measured 0.13-0.46x float32's training speed on an AVX2 CPU without "
    "bfloat16 instructions and 0.68-0.85x on AVX-512 BF16 without AMX "
    "(keras_grow docs/benchmarks.md)"
)

_warned = False


def cpu_bfloat16():
    """str or `None`. The CPU's bfloat16 support from /proc/cpuinfo:
    `"amx"`, `"avx512_bf16"`, `"none"`; `None` where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next(
                (
                    line.split(":", 1)[1].split()
                    for line in handle
                    if line.startswith("flags")
                ),
                None,
            )
    except OSError:
        return None
    if flags is None:
        return None
    if "amx_bf16" in flags:
        return "amx"
    return "avx512_bf16" if "avx512_bf16" in flags else "none"


def computes_in_bfloat16(body):
    """Whether a layer of `body` computes in bfloat16."""
    return any(
        getattr(layer.dtype_policy, "compute_dtype", None) == "bfloat16"
        for layer in body.layers
    )


def warn_if_slow_bfloat16(body):
    """Warns (once per process) when `body` computes in bfloat16 on a CPU
    without AMX and no GPU is visible.

    Returns:
        bool. Whether it warned now.
    """
    global _warned
    if _warned or not computes_in_bfloat16(body):
        return False
    support = cpu_bfloat16()
    if support in ("amx", None) or tf.config.list_physical_devices("GPU"):
        return False
    _warned = True
    what = "no bfloat16 instructions" if support == "none" else "AVX-512 BF16, no AMX"
    warnings.warn(
        f"The model computes in bfloat16 (mixed_bfloat16) on a CPU with {what} "
        f"and no GPU: training is slower than in float32 there ({MEASURED}). "
        "Use keras.mixed_precision.set_global_policy('float32') before "
        "building the model, unless you train on a GPU or a CPU with AMX.",
        UserWarning,
        stacklevel=3,
    )
    return True
