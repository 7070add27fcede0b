"""Draws docs/package_map.png from the code: the parts of keras_grow on
their floors, arrows where one part imports another, and the path of one
growth through them.

    python scripts/draw_package_map.py

The arrows are read from the source's imports each time, so the picture
cannot drift from the code; tests/test_package_map.py holds
docs/package_map.md's table against the same reading.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_grow"
OUTPUT = ROOT / "docs" / "package_map.png"

# Floors, bottom first: a part imports only parts on lower floors.
FLOORS = (
    ("specs", "keras_compat", "backend", "schedules", "layers", "gated_layers"),
    ("build", "data", "multi_worker", "finite_inputs"),
    (
        "transfer",
        "optimizer_carry",
        "losses",
        "fit_checks",
        "onednn",
        "precision",
        "step_functions",
        "growth_events",
        "weights_files",
        "depth_reserve",
    ),
    ("in_place", "input_checks", "adam_init", "export"),
    ("growth", "checkpoints", "descent"),
    ("growable_model",),
    ("callbacks",),
)

PARTS = {part for floor in FLOORS for part in floor}

# One growth, in order: who does what.
GROWTH_PATH = (
    ("callbacks", "decides: a successor spec, or a WidthPlan"),
    ("growable_model", "grow(): checks the successor and initializer"),
    ("growth", "builds the grown parts; the model unchanged"),
    ("build", "new spec -> functional graph"),
    ("transfer", "weights by name, block inits, width morphisms"),
    ("optimizer_carry", "slots by variable path, padded"),
    ("depth_reserve", "depth into blocks built ahead: switched on in place"),
    ("in_place", "width only: grown values into the traced variables"),
    ("growable_model", "swap body (keras_compat), log the event"),
    ("step_functions", "otherwise: drop the traces; time the retrace"),
)


def part_of(path):
    """The part a module file belongs to: its sub-package or module name."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def modules():
    """Every module file of keras_grow, as dotted names."""
    return sorted(
        ".".join(
            ("keras_grow",) + p.relative_to(PACKAGE).with_suffix("").parts
        ).removesuffix(".__init__")
        for p in PACKAGE.rglob("*.py")
    )


def part_imports():
    """`{part: sorted parts it imports}` from the source, `__init__` aside."""
    edges = {}
    for path in PACKAGE.rglob("*.py"):
        if path.parent == PACKAGE and path.name == "__init__.py":
            continue
        mine = part_of(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                other = (
                    parts[1] if parts[0] == "keras_grow" and len(parts) > 1 else None
                )
                if other in PARTS and other != mine:
                    edges.setdefault(mine, set()).add(other)
    return {part: sorted(others) for part, others in sorted(edges.items())}


def draw(path=OUTPUT):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.patches import FancyBboxPatch

    fig, (left, right) = plt.subplots(
        1, 2, figsize=(17, 8), gridspec_kw={"width_ratios": [3, 2]}
    )
    centre = {}
    for floor, parts in enumerate(FLOORS):
        for i, part in enumerate(parts):
            x = (i + 1) / (len(parts) + 1)
            width = min(0.22, 0.8 / (len(parts) + 1))
            y = 0.07 + floor * (0.95 / len(FLOORS))
            centre[part] = (x, y)
            left.add_patch(
                FancyBboxPatch(
                    (x - width / 2, y - 0.035),
                    width,
                    0.07,
                    boxstyle="round,pad=0.01",
                    fc="#dbe7f3",
                    ec="#4a6785",
                )
            )
            left.text(
                x,
                y,
                part,
                ha="center",
                va="center",
                fontsize=11 if len(parts) < 6 else 9 if len(parts) <= 7 else 7,
            )
    for part, others in part_imports().items():
        for other in others:
            (x0, y0), (x1, y1) = centre[part], centre[other]
            left.add_patch(
                FancyArrowPatch(
                    (x0, y0 - 0.04),
                    (x1, y1 + 0.04),
                    arrowstyle="-|>",
                    mutation_scale=12,
                    color="#555555",
                    lw=0.8,
                    connectionstyle="arc3,rad=0.08",
                )
            )
    left.set_title("keras_grow: parts by floor; arrow = imports", fontsize=12)
    left.set_xlim(0, 1)
    left.set_ylim(0, 1.0)
    left.axis("off")
    steps = len(GROWTH_PATH)
    for i, (part, what) in enumerate(GROWTH_PATH):
        y = 0.92 - i * (0.88 / steps)
        right.add_patch(
            FancyBboxPatch(
                (0.05, y - 0.05),
                0.9,
                0.075,
                boxstyle="round,pad=0.01",
                fc="#f3e6d4",
                ec="#8a6a3b",
            )
        )
        right.text(0.08, y, f"{i + 1}. {part}", va="center", fontsize=11, weight="bold")
        right.text(0.08, y - 0.03, what, va="center", fontsize=9)
        if i + 1 < steps:
            below = y - 0.88 / steps + 0.025  # top of the next box
            right.annotate(
                "",
                xy=(0.5, below + 0.005),
                xytext=(0.5, y - 0.055),
                arrowprops=dict(arrowstyle="-|>", color="#8a6a3b"),
            )
    right.set_title("One growth, step by step", fontsize=12)
    right.set_xlim(0, 1)
    right.set_ylim(0, 1)
    right.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(draw())
