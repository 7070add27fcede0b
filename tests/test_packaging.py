"""The installed wheel is `keras_grow` alone, and every module in it runs."""

import ast
import pathlib
import subprocess
import sys
import textwrap
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Run inside the unpacked wheel (the current directory comes first on
# sys.path, ahead of the editable install's finder): import every module,
# then grow and run a net, with no experiments/ anywhere to be found.
_SMOKE = textwrap.dedent(
    """
    import importlib, pathlib, pkgutil
    import numpy as np
    import keras_grow as kg

    here = pathlib.Path.cwd().resolve()
    assert pathlib.Path(kg.__file__).resolve().is_relative_to(here), kg.__file__
    names = [m.name for m in pkgutil.walk_packages(kg.__path__, "keras_grow.")]
    for name in names:
        importlib.import_module(name)
    try:
        import experiments  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise AssertionError("experiments is importable from the wheel")
    spec = kg.specs.parse("Basic3ResNet-1-1-1", (8, 8, 1), 3, widths=(4, 4, 4))
    model = kg.GrowableModel(spec)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    before = model.predict(x, verbose=0)
    model.grow(spec.with_depths((2, 1, 1)), initializer="zero")
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-5)
    print(len(names), "modules", model.spec.notation)
    """
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("keras_grow-*.whl")
    return path


@pytest.mark.slow
def test_the_wheel_holds_keras_grow_only(wheel):
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"keras_grow"}
    with zipfile.ZipFile(wheel) as archive:
        assert "keras_grow/data/fashion_mnist_sample.npz" in archive.namelist()


@pytest.mark.slow
def test_every_module_of_the_wheel_imports_and_a_net_grows(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", _SMOKE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Basic3ResNet(4,4,4)-2-1-1" in result.stdout


def test_the_library_never_names_experiments():
    """Neither imports nor command strings: the wheel has no experiments/."""
    offenders = []
    for path in sorted((ROOT / "keras_grow").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value]
            if any(n.split(".")[0] == "experiments" for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
