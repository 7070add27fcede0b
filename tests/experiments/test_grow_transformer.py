"""The transformer example, run as a user runs it (a subprocess), shortened."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from experiments.runs import transformers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_synthetic_text_labels_the_first_of_three_marker_tokens():
    tokens, labels = transformers.synthetic_text(200, seed=0)
    assert tokens.shape == (200, transformers.POSITIONS)
    for row, label in zip(tokens, labels):
        places = [list(row).index(marker) for marker in (1, 2, 3)]
        assert sorted(np.flatnonzero(row < 4)) == sorted(places)
        assert label == int(np.argmin(places))
    assert set(labels) == {0, 1, 2}


def _run(workdir, *flags):
    return subprocess.run(
        [sys.executable, "-m", "experiments.grow_transformer", f"--workdir={workdir}"]
        + list(flags),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )


@pytest.mark.slow
def test_a_text_transformer_grows_progressively_and_serves_token_ids(tmp_path):
    result = _run(tmp_path / "text", "--task=text", "--epochs=2")
    assert "grown net: Graph(text)-32-4-64-4-64" in result.stdout
    log = json.loads((tmp_path / "text" / "growth_log.json").read_text())
    assert [e["to"] for e in log if e["kind"] == "grow"] == ["Graph(text)-32-4-64-4-64"]
    served = tf.saved_model.load(str(tmp_path / "text" / "serving" / "1"))
    signature = served.signatures["serving_default"]
    tokens, _ = transformers.synthetic_text(4, seed=9)
    assert signature(token_ids=tf.constant(tokens))["logits"].shape == (4, 3)


@pytest.mark.slow
def test_a_vit_grows_feed_forward_units_by_tiny(tmp_path):
    result = _run(
        tmp_path / "vit", "--task=vit", "--growth=tiny", "--epochs=4", "--take=512"
    )
    log = json.loads((tmp_path / "vit" / "growth_log.json").read_text())
    (event,) = [e for e in log if e["kind"] == "grow"]
    assert set(event["skipped_groups"]) == {
        "patches",
        "layer0_attention_heads",
        "layer1_attention_heads",
    }
    assert set(event["widened"]) <= {"layer0_ff1", "layer1_ff1"}
    assert "grown net: Graph(vit)-16-2-" in result.stdout
    assert os.path.exists(tmp_path / "vit" / "model.keras")


# Nightly: tests/build/test_graph_transformers.py stacks a ViT inside fit.
@pytest.mark.nightly
def test_a_vit_stacks_copies_of_its_last_layer(tmp_path):
    _run(
        tmp_path / "stack",
        "--task=vit",
        "--growth=stack",
        "--layers=1",
        "--epochs=3",
        "--take=256",
    )
    log = json.loads((tmp_path / "stack" / "growth_log.json").read_text())
    assert [e["block_copies"] for e in log if e["kind"] == "grow"] == [
        {"layer0_add2_x1": "layer0_add2"},
        {"layer0_add2_x2": "layer0_add2_x1"},
    ]
