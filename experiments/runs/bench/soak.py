"""Soak: many growth events (and rollbacks) in one process.

One model grows a unit at a time, with a short `fit` after each event (so
Keras traces its train and test steps for every architecture), and every
`rollback_every`-th growth is undone. After the first `early` events and
after all of them, the process's resident memory and the live objects
that growth could leak (Keras models and layers, TensorFlow's traced
functions and graphs, variables) are counted after a garbage collection.
A run that releases old bodies, optimizers and traces ends where it was
after `early` events, give or take the bigger net.
"""

import dataclasses
import gc
import time

import keras
import numpy as np

import keras_grow as kg
from experiments.runs.bench import probes

# Live-object counts, by the type names that growth could leave behind.
COUNTED = {
    "bodies (keras Functional)": ("Functional",),
    "keras layers": ("Dense", "BatchNormalization", "Conv2D", "ReLU", "Activation"),
    "traced functions (ConcreteFunction)": ("ConcreteFunction",),
    "graphs (FuncGraph)": ("FuncGraph",),
    "variables (keras Variable)": ("Variable",),
}


@dataclasses.dataclass(frozen=True)
class SoakConfig:
    """`events` growth events on `initial` (an MLP grows one unit of its
    layer per event), `rollback_every`-th one rolled back, `steps` training
    steps of batch `batch_size` after each, counted after `early` events
    and at the end; `target` is the largest ratio end / early allowed."""

    initial: str = "MLP-8"
    input_size: int = 64
    events: int = 100
    early: int = 10
    rollback_every: int = 5
    steps: int = 4
    batch_size: int = 32
    target: float = 1.1
    seed: int = 0


def census():
    """`{what: count}` of live objects (after a full collection), and the
    resident memory in MB."""
    gc.collect()
    counts = dict.fromkeys(COUNTED, 0)
    names = {name: what for what, names in COUNTED.items() for name in names}
    for obj in gc.get_objects():
        what = names.get(type(obj).__name__)
        if what is not None:
            counts[what] += 1
    counts["resident memory (MB)"] = probes.rss_bytes() / 2**20
    return counts


def _compiled(model):
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _data(config):
    rng = np.random.default_rng(config.seed)
    n = config.steps * config.batch_size
    x = rng.normal(size=(n, config.input_size)).astype("float32")
    return x, rng.integers(0, 10, n)


def _fit(model, config, x, y):
    model.fit(
        x,
        y,
        batch_size=config.batch_size,
        epochs=1,
        validation_data=(x[: config.batch_size], y[: config.batch_size]),
        verbose=0,
    )


def run_plain(config):
    """The same sequence of widths the way a plain Keras user would change
    an architecture: a new `keras.Sequential`, compiled and fitted, per
    event (no weights carried). The reference for what TensorFlow and
    Keras themselves keep per trace. Returns `{"early", "end"}` censuses."""
    keras.utils.set_random_seed(config.seed)
    x, y = _data(config)
    spec = kg.specs.parse(config.initial, (config.input_size,), 10)
    early = None
    for event in range(1, config.events + 1):
        layers = [keras.Input((config.input_size,))]
        layers += [keras.layers.Dense(w, activation="relu") for w in spec.widths]
        model = _compiled(keras.Sequential(layers + [keras.layers.Dense(10)]))
        _fit(model, config, x, y)
        del model
        if event == config.early:
            early = census()
    return {"early": early, "end": census()}


def run(config, log=print):
    """Runs the soak; returns `{"early": census, "end": census, "events",
    "grows", "rollbacks", "seconds", "final"}`."""
    keras.utils.set_random_seed(config.seed)
    model = _compiled(
        kg.GrowableModel(kg.specs.parse(config.initial, (config.input_size,), 10))
    )
    x, y = _data(config)

    def fit():
        _fit(model, config, x, y)

    fit()
    grows = rollbacks = 0
    early = None
    start = time.perf_counter()
    for event in range(1, config.events + 1):
        if config.rollback_every and event % config.rollback_every == 0:
            model.rollback(f"soak event {event}")
            rollbacks += 1
        else:
            widths = list(model.spec.widths)
            widths[grows % len(widths)] += 1
            model.grow(model.spec.with_widths(tuple(widths)))
            grows += 1
        fit()
        if event == config.early:
            early = census()
        if event % 10 == 0:
            log(
                f"event {event}/{config.events}: {model.spec.notation}, "
                f"{probes.rss_bytes() / 2**20:.0f} MB, "
                f"{time.perf_counter() - start:.0f}s"
            )
    return {
        "early": early,
        "end": census(),
        "events": config.events,
        "grows": grows,
        "rollbacks": rollbacks,
        "seconds": round(time.perf_counter() - start, 1),
        "final": model.spec.notation,
        "params": model.count_params(),
    }


def _ratio(census_pair, what):
    early, end = census_pair["early"][what], census_pair["end"][what]
    return end / early if early else (float("inf") if end else 1.0)


def _per_event(census_pair, what, config):
    early, end = census_pair["early"][what], census_pair["end"][what]
    return (end - early) / (config.events - config.early)


def table(result, config, plain=None):
    """Markdown: each count after `early` events and at the end, the ratio
    and the verdict against `config.target`, and what each event after the
    `early` ones added; with `plain` (`run_plain`'s censuses, taken in the
    same process after this run), what an event adds in plain Keras."""
    lines = [
        f"| live after a full collection | after {config.early} events | "
        f"after {config.events} | ratio | added per event | plain Keras: added "
        "per event | target | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for what, early in result["early"].items():
        end = result["end"][what]
        ratio = _ratio(result, what)
        verdict = "met" if ratio <= config.target else "**missed**"
        digits = 0 if isinstance(early, int) else 1
        reference = "-" if plain is None else f"{_per_event(plain, what, config):.2f}"
        lines.append(
            f"| {what} | {early:.{digits}f} | {end:.{digits}f} | {ratio:.3f} | "
            f"{_per_event(result, what, config):.2f} | {reference} | "
            f"{config.target} | {verdict} |"
        )
    return "\n".join(lines)
