"""A warning where mixed bfloat16 trains slower than float32 (issue 16)."""

import os
import warnings

import numpy as np
import pytest

import keras_grow as kg
from keras_grow import precision
from tests.conftest import compile_sgd


def _fit(model):
    x = np.zeros((32, 8), "float32")
    model.fit(x, np.zeros(32, "int32"), batch_size=16, epochs=1, verbose=0)


@pytest.mark.parametrize("support", ["none", "avx512_bf16"])
def test_bfloat16_on_a_cpu_without_amx_warns_once(support, mixed_bfloat16, monkeypatch):
    monkeypatch.setattr(precision, "cpu_bfloat16", lambda: support)
    monkeypatch.setattr(precision, "_warned", False)
    model = compile_sgd(kg.GrowableModel(kg.specs.parse("MLP-4", (8,), 3)))
    with pytest.warns(UserWarning, match="slower than in float32") as caught:
        _fit(model)
    message = str(caught[-1].message)
    assert "set_global_policy('float32')" in message and "0.13-0.46x" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _fit(model)  # once per process


def test_no_warning_with_amx_or_in_float32(mixed_bfloat16, monkeypatch):
    monkeypatch.setattr(precision, "_warned", False)
    bf16 = kg.GrowableModel(kg.specs.parse("MLP-4", (8,), 3)).body
    monkeypatch.setattr(precision, "cpu_bfloat16", lambda: "amx")
    assert precision.computes_in_bfloat16(bf16)
    assert not precision.warn_if_slow_bfloat16(bf16)
    monkeypatch.setattr(precision, "cpu_bfloat16", lambda: None)  # unknown
    assert not precision.warn_if_slow_bfloat16(bf16)


def test_float32_models_never_warn(monkeypatch):
    monkeypatch.setattr(precision, "_warned", False)
    monkeypatch.setattr(precision, "cpu_bfloat16", lambda: "none")
    body = kg.GrowableModel(kg.specs.parse("MLP-4", (8,), 3)).body
    assert not precision.computes_in_bfloat16(body)
    assert not precision.warn_if_slow_bfloat16(body)


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="no /proc/cpuinfo")
def test_this_machine_is_read():
    assert precision.cpu_bfloat16() in ("amx", "avx512_bf16", "none")
