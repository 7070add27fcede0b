"""The peer benchmark (issue 16): PyTorch twins of our nets, the child
processes of a pass, and the tables from the passes' numbers."""

import numpy as np
import pytest

import keras_grow as kg
from experiments.runs.bench import peers


def test_each_pass_runs_onednn_variants_in_their_own_process():
    config = peers.PRESETS["full"]
    children = peers.processes(config, threads=0)
    assert [(c.framework, c.environment) for c in children] == [
        ("keras", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
        ("keras", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
        ("torch", {}),
    ]
    assert children[0].variants == ("float32", "float32_spe16")
    assert all("_onednn" in v for v in children[1].variants)
    assert children[0].methods == ("firefly", "random_new")
    assert children[2].methods == ("gromo_tiny",)
    # Growth rounds run once, with the frameworks' default threads.
    assert all(not c.methods for c in peers.processes(config, threads=1))


def _passes(keras_ips, torch_ips):
    def one(values):
        return {
            "throughput": {k: {"images_per_s": v} for k, v in values.items()},
            "growth": {},
        }

    return {
        "keras": {0: [one(v) for v in keras_ips]},
        "torch": {0: [one(v) for v in torch_ips]},
    }


def test_rows_are_medians_and_ratios_pair_the_same_precision():
    config = peers.PeersConfig(
        nets=("MLP-8",),
        threads=(0,),
        keras_variants=("float32", "mixed_bfloat16_onednn"),
        torch_variants=("float32", "autocast_bfloat16"),
        growth_methods=(),
    )
    keras_ips = [
        {"MLP-8|float32": v, "MLP-8|mixed_bfloat16_onednn": b}
        for v, b in ((100, 10), (300, 30), (200, 20))
    ]
    torch_ips = [
        {"MLP-8|float32": v, "MLP-8|autocast_bfloat16": b}
        for v, b in ((400, 50), (100, 40), (250, 80))
    ]
    result = peers.summarise(_passes(keras_ips, torch_ips), config)
    (row,) = result["throughput"]
    assert row["keras_images_per_s"] == {"float32": 200, "mixed_bfloat16_onednn": 20}
    assert row["torch_images_per_s"] == {"float32": 250, "autocast_bfloat16": 50}
    assert row["ratio"] == {"float32": 0.8, "mixed_bfloat16_onednn": 0.4}
    text = peers.markdown(result)
    assert "| MLP-8 | all cores | 250 | 50 | 200 (0.80) | 20 (0.40) |" in text


@pytest.mark.parametrize(
    "notation, widths",
    [("Basic3ResNet-2-1-1", (4, 8, 8)), ("VGG11-4", None), ("MLP-8-6", None)],
)
def test_torch_twin_has_keras_parameters_and_output(notation, widths):
    torch = pytest.importorskip("torch", reason='PyTorch: the ".[peers]" extra')
    from experiments.runs.bench import torch_nets

    kwargs = {"input_mean": (0.3,), "input_std": (0.4,)}
    if widths:
        kwargs["widths"] = widths
    spec = kg.specs.parse(notation, (28, 28, 1), 10, **kwargs)
    body = kg.GrowableModel(spec).body
    twin = torch_nets.build(spec).eval()
    assert torch_nets.param_count(twin) == body.count_params()
    images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    with torch.no_grad():
        out = twin(torch.from_numpy(images.transpose(0, 3, 1, 2)))
    assert tuple(out.shape) == (3, 10)
    assert tuple(body(images).shape) == (3, 10)


@pytest.mark.nightly
def test_the_binary_writes_both_tables(tmp_path):
    pytest.importorskip("torch", reason='PyTorch: the ".[peers]" extra')
    pytest.importorskip("gromo", reason='GroMo: the ".[peers]" extra')
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = tmp_path / "peers"
    subprocess.run(
        [sys.executable, "-m", "experiments.bench_peers", "--quick", "--seconds=0.2"]
        + ["--nets=MLP-8", "--growth_methods=random_new,gromo_tiny", f"--out={out}"],
        check=True,
        cwd=root,
        capture_output=True,
    )
    result = json.loads((out / "peers.json").read_text())
    (row,) = result["throughput"]
    assert set(row["ratio"]) == {"float32", "float32_onednn", "float32_onednn_spe16"}
    assert all(v > 0 for v in row["keras_images_per_s"].values())
    growth = {r["method"]: r for r in result["growth"]}
    # MLP-8-8 grown by eta = floor(0.3 x 16) = 4 units.
    widths = growth["random_new"]["grown_to"].split("-")[1:]
    assert sum(int(w) for w in widths) == 20
    assert growth["gromo_tiny"]["params_after"] > growth["gromo_tiny"]["params_before"]
    assert "| growth round |" in (out / "peers.md").read_text()
