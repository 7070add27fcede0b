"""Every Python example of README.md and docs/*.md runs as written.

Each example runs in its own process, on fewer images and epochs than it
names (`_PRELUDE` caps `kg.data.load`'s `take` and `fit`'s `epochs`, so
the suite stays short), and the notations its comments show for what it
prints (`print(model.spec.notation)  # e.g. VGG11-13-4-...`) must be of
the family and widths it really prints. An example that cannot run here
says why in an HTML comment on the line before it:
`<!-- not run by tests/test_doc_examples.py: ... -->`.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
NOT_RUN = "<!-- not run by tests/test_doc_examples.py:"
# Examples run by `make test-nightly` only: what they show the fast run
# tests elsewhere.
NIGHTLY = {
    # tests/callbacks/test_distributed.py: AutoGrow under MirroredStrategy.
    "docs/distributed.md#1",
}
# A net's notation: family (widths)? then its depths or widths.
NOTATION = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:\([\d,]+\))?(?:-\d+)+\b")

_PRELUDE = """
import keras_grow as kg

_load, _fit = kg.data.load, kg.GrowableModel.fit

def _small_load(*args, take=None, **kwargs):
    return _load(*args, take=min(take or 256, 256), **kwargs)

def _short_fit(self, *args, epochs=1, **kwargs):
    kwargs.setdefault("verbose", 0)
    return _fit(self, *args, epochs=min(epochs, 3), **kwargs)

kg.data.load, kg.GrowableModel.fit = _small_load, _short_fit
"""


def _examples():
    for document in DOCUMENTS:
        text = document.read_text()
        for number, match in enumerate(BLOCK.finditer(text), start=1):
            before = text[: match.start()].rstrip().splitlines()
            skipped = bool(before) and before[-1].startswith(NOT_RUN)
            name = f"{document.relative_to(ROOT)}#{number}"
            marks = [pytest.mark.nightly] if name in NIGHTLY else []
            yield pytest.param(match.group(1), skipped, id=name, marks=marks)


def _family(notation):
    """The part of a notation before its depths or widths."""
    return notation.split("-", 1)[0]


def test_examples_are_found():
    found = list(_examples())
    assert len(found) >= 6
    assert sum(p.values[1] for p in found) == 1  # the two-machine one


@pytest.mark.slow
@pytest.mark.parametrize("code,skipped", list(_examples()))
def test_example_runs_as_written(code, skipped, tmp_path):
    compile(code, "<example>", "exec")  # every example is valid Python
    if skipped:
        return
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    result = subprocess.run(
        [sys.executable, "-c", _PRELUDE + code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = {_family(n) for n in NOTATION.findall(result.stdout)}
    for line in code.splitlines():
        if "print(" in line and "#" in line:
            for shown in NOTATION.findall(line.split("#", 1)[1]):
                assert _family(shown) in printed, (shown, result.stdout[-2000:])
