"""docs/package_map.md matches the code: every module listed, every part's
imports as written, no import running up a floor."""

import importlib.util
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "package_map.md").read_text()


def _drawer():
    path = ROOT / "scripts" / "draw_package_map.py"
    spec = importlib.util.spec_from_file_location("draw_package_map", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(header):
    """The rows of the page's table whose header starts with `header`."""
    lines = PAGE.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_every_module_is_on_the_page_and_nothing_else():
    listed = {re.sub(r"`", "", row[0]) for row in _rows("| module |")}
    assert listed == set(_drawer().modules())


def test_every_part_imports_what_the_page_says_and_only_downwards():
    drawer = _drawer()
    rows = _rows("| floor |")
    written = {
        row[1]: sorted(p.strip() for p in row[2].split(",") if p.strip())
        for row in rows
    }
    actual = drawer.part_imports()
    assert written == {part: actual.get(part, []) for part in written}
    floor_of = {part: int(row[0]) for row in rows for part in [row[1]]}
    drawn = {p: f + 1 for f, parts in enumerate(drawer.FLOORS) for p in parts}
    assert floor_of == drawn  # the page and the picture agree
    for part, others in actual.items():
        for other in others:
            assert floor_of[other] < floor_of[part], f"{part} -> {other}"
    top_level = {p.name.removesuffix(".py") for p in (ROOT / "keras_grow").iterdir()}
    assert set(floor_of) == top_level - {"__init__", "__pycache__"}
