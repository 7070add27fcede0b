"""The six measurements of `experiments/bench_growth.py`.

Every function returns a JSON-ready dict. Step times come from
`probes.StepTimes`; an *epoch* is the steady-state time of one pass over
the full Fashion-MNIST training split plus its validation split at the
same batch size (steady step time x steps), so a fraction of an epoch is
the same whatever subset the measurement itself ran on.
"""

import dataclasses
import math
import time

import keras
import numpy as np
import tensorflow as tf

import keras_grow as kg
from experiments.runs import training
from experiments.runs.bench import probes
from keras_grow import build
from keras_grow.growth_events import growths as logged_growths

TRAIN_EXAMPLES = 54_000  # Fashion-MNIST train minus the 10% validation split
VALIDATION_EXAMPLES = 6_000


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What the benchmark runs (written to the JSON file).

    Nets: `resnet` with `resnet_widths` and `vgg` (growth events, wrapper
    overhead), `autogrow_start` (AutoGrow end to end), `firefly_vgg`
    (Firefly rounds). Sizes: `steps` per timed block, `repeats` of each
    timing, `growths` timed growth events per net, `validation_steps` per
    validation pass, `autogrow_take`/`autogrow_epochs`/`autogrow_period`,
    `firefly_rounds` and the Firefly settings, `pipeline_batches`.
    """

    dataset: str = "fashion_mnist"
    batch_size: int = 128
    resnet: str = "Basic3ResNet-5-5-5"
    resnet_widths: tuple = (16, 32, 64)
    vgg: str = "VGG11-16"
    steps: int = 10
    repeats: int = 10
    growths: int = 3
    validation_steps: int = 10
    jit_modes: tuple = (False, True)
    firefly_jit_modes: tuple = (False,)
    jit_resnet: bool = False
    autogrow_start: str = "Basic3ResNet-1-1-1"
    autogrow_take: int | None = None
    autogrow_epochs: int = 6
    autogrow_period: int = 2
    firefly_vgg: str = "VGG11-8"
    firefly_rounds: int = 3
    delta_steps: int = 30  # Firefly's defaults
    score_batches: int = 4
    score_samples: int = 4
    pipeline_batches: int = 200
    seed: int = 0


PRESETS = {
    "full": BenchConfig(),
    "quick": BenchConfig(
        resnet="Basic3ResNet-3-3-3",
        steps=8,
        repeats=3,
        growths=2,
        validation_steps=4,
        jit_modes=(False,),
        autogrow_take=6_000,
        autogrow_epochs=3,
        autogrow_period=1,
        firefly_rounds=1,
        pipeline_batches=40,
    ),
}


def epoch_seconds(train_step, test_step, batch_size):
    """A full Fashion-MNIST epoch (train + validation) at steady state."""
    return train_step * math.ceil(TRAIN_EXAMPLES / batch_size) + test_step * math.ceil(
        VALIDATION_EXAMPLES / batch_size
    )


def spec_of(notation, config, widths=None):
    kwargs = {} if widths is None else {"widths": tuple(widths)}
    return training.spec_for(kg.data.info(config.dataset), notation, **kwargs)


def compile_sgd(model, jit_compile=False, steps_per_execution=1):
    """The benchmarks' compile: SGD (0.05, momentum 0.9), cross-entropy on
    logits, accuracy."""
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def real_batches(dataset, split, batch_size, count):
    """`(images, labels)`: the first `count` batches of `split`, unshuffled
    and unaugmented, as numpy arrays."""
    data = kg.data.load(
        dataset,
        split,
        batch_size,
        augment=False,
        shuffle=False,
        cache=False,
        drop_remainder=True,
    )
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in data.take(count)))
    return np.concatenate(images), np.concatenate(labels)


def in_memory_batches(config, split="train", count=16):
    """`count` real batches held in memory and repeated (no augmentation):
    step timings without the input pipeline."""
    arrays = real_batches(config.dataset, split, config.batch_size, count)
    return (
        tf.data.Dataset.from_tensor_slices(arrays)
        .batch(config.batch_size, drop_remainder=True)
        .cache()
        .repeat()
        .prefetch(2)
    )


def successor(spec):
    """The next net of a growth event, staying around the start when
    repeated: a block in the shallowest stage (ResNet) or a layer in the
    shallowest stage after the first (VGG)."""
    if isinstance(spec, kg.specs.StagedNetSpec):
        return spec.with_block_added(spec.depths.index(min(spec.depths)))
    depths = list(spec.stage_depths[1:])
    return spec.with_block_added(1 + depths.index(min(depths)))


def interleaved_step_times(fits, config):
    """Train step times of several `{name: (model, data)}`, interleaved.

    `config.repeats` rounds of `config.steps` steps each, the order
    reversed every other round, so a drift of a shared machine hits every
    model alike. Returns `{name: [seconds, ...]}`.
    """
    times = {name: [] for name in fits}
    for repeat in range(config.repeats):
        order = list(fits) if repeat % 2 == 0 else list(fits)[::-1]
        for name in order:
            model, data = fits[name]
            probe = probes.StepTimes()
            model.fit(
                data,
                steps_per_epoch=config.steps,
                epochs=1,
                verbose=0,
                callbacks=[probe],
            )
            times[name] += probe.seconds(probe.train)
    return times


# --- 1. wrapper overhead -----------------------------------------------------


def wrapper_overhead(spec, config, jit_compile):
    """Step time of a GrowableModel against the same plain functional model."""
    data = in_memory_batches(config)
    models = {
        "plain": compile_sgd(build.build_body(spec), jit_compile),
        "growable": compile_sgd(kg.GrowableModel(spec), jit_compile),
    }
    for model in models.values():  # trace and warm up
        model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    ops = {
        name: probes.train_step_ops(model, spec.input_shape, config.batch_size)
        for name, model in models.items()
    }
    times = interleaved_step_times({n: (m, data) for n, m in models.items()}, config)
    plain, growable = probes.median(times["plain"]), probes.median(times["growable"])
    return {
        "net": spec.notation,
        "jit_compile": jit_compile,
        "steps": len(times["plain"]),
        "plain_step_s": plain,
        "growable_step_s": growable,
        "ratio": growable / plain,
        "plain_ops": ops["plain"],
        "growable_ops": ops["growable"],
    }


# --- 2. growth events --------------------------------------------------------


class _GrowAtEpochEnd(keras.callbacks.Callback):
    def __init__(self, growths, initializer):
        super().__init__()
        self.growths, self.initializer = growths, initializer
        self.events = []

    def on_epoch_end(self, epoch, logs=None):
        if len(self.events) < self.growths:
            spec = successor(self.model.spec)
            self.events.append(self.model.grow(spec, initializer=self.initializer))


def growth_events(spec, config, initializer):
    """`growths` growths at epoch ends of a `fit`, each timed in full.

    A growth costs `model.grow` (build, transfer, optimizer carry) plus the
    retrace of the train and test steps: the excess of the first step of
    the grown net over its steady steps. Epochs are `steps` batches and
    `validation_steps` validation batches, as in a real run only shorter.
    """
    model = compile_sgd(kg.GrowableModel(spec))
    probe = probes.StepTimes()
    grower = _GrowAtEpochEnd(config.growths, initializer)
    model.fit(
        in_memory_batches(config),
        steps_per_epoch=config.steps,
        epochs=config.growths + 1,
        validation_data=in_memory_batches(config, "validation"),
        validation_steps=config.validation_steps,
        verbose=0,
        callbacks=[probe, grower],  # the probe's step ends before growth
    )
    rows = []
    for generation, event in enumerate(grower.events[: config.growths], start=1):
        first, steady = probe.first_and_steady(probe.train, generation)
        first_test, steady_test = probe.first_and_steady(probe.test, generation)
        retrace = max(0.0, first - steady)
        retrace_test = max(0.0, first_test - steady_test)
        cost = event["seconds"] + retrace + retrace_test
        epoch = epoch_seconds(steady, steady_test, config.batch_size)
        rows.append(
            {
                "to": event["to"],
                "params": event["params_after"],
                "grow_s": event["seconds"],
                **{f"{k}_s": v for k, v in event["timing"].items()},
                "train_retrace_s": retrace,
                "test_retrace_s": retrace_test,
                "cost_s": cost,
                "step_s": steady,
                "epoch_s": epoch,
                "epoch_fraction": cost / epoch,
            }
        )
    return {
        "net": spec.notation,
        "events": rows,
        "median_cost_s": probes.median(r["cost_s"] for r in rows),
        "median_epoch_s": probes.median(r["epoch_s"] for r in rows),
        "median_epoch_fraction": probes.median(r["epoch_fraction"] for r in rows),
    }


# --- 3. AutoGrow end to end ----------------------------------------------------


def autogrow_end_to_end(config):
    """Wall time of a p-AutoGrow `fit` against its pure training time.

    Pure: the train and validation steps' own time, less the excess of the
    first step of every architecture (the first trace and each growth's
    retrace). The rest is split into what growth costs (`grow` calls and
    retraces) and what any Keras `fit` pays around the steps (epoch and
    iterator set-up, callbacks, the first trace).
    """
    spec = spec_of(config.autogrow_start, config, config.resnet_widths)
    train = kg.data.load(
        config.dataset, "train", config.batch_size, take=config.autogrow_take
    )
    validation = kg.data.load(config.dataset, "validation", config.batch_size)
    model = compile_sgd(kg.GrowableModel(spec))
    probe = probes.StepTimes()
    autogrow = kg.callbacks.AutoGrow(
        growth_period=config.autogrow_period,
        patience=config.autogrow_epochs + 1,  # no stage stops: every boundary grows
        fine_tune_epochs=0,
        seed=config.seed,
        verbose=0,
    )
    start = time.perf_counter()
    model.fit(
        train,
        validation_data=validation,
        epochs=config.autogrow_epochs,
        verbose=0,
        callbacks=[probe, autogrow],  # epoch times end before growth
    )
    wall = time.perf_counter() - start
    growths = logged_growths(model.growth_log)
    steps = sum(s for _, _, s in probe.train + probe.test)
    first_trace = probe.excess_of_first_steps(0)
    generations = 1 + len(growths)
    retraces = sum(probe.excess_of_first_steps(g) for g in range(1, generations))
    pure = steps - first_trace - retraces
    grow_calls = sum(e["seconds"] for e in growths)
    return {
        "from": spec.notation,
        "to": model.spec.notation,
        "epochs": config.autogrow_epochs,
        "growth_period": config.autogrow_period,
        "train_examples": config.autogrow_take or TRAIN_EXAMPLES,
        "growths": len(growths),
        "wall_s": wall,
        "pure_s": pure,
        "first_trace_s": first_trace,
        "retrace_s": retraces,
        "grow_s": grow_calls,
        "around_steps_s": wall - steps - grow_calls,
        "ratio": wall / pure,
        "growth_ratio": (pure + retraces + grow_calls) / pure,
    }


# --- 4 and 6. a Firefly round, and memory --------------------------------------


class _MemoryPhases(keras.callbacks.Callback):
    """Peak memory of training and of the growth in an epoch-end callback.

    Put one instance before the growth callback (`phase="train"`) and one
    after it (`phase="growth"`), sharing a running `probes.PeakMemory`.
    """

    def __init__(self, memory, phase, peaks):
        super().__init__()
        self.memory, self.phase, self.peaks = memory, phase, peaks

    def on_epoch_end(self, epoch, logs=None):
        self.peaks.setdefault(self.phase, []).append(self.memory.reset())


def firefly_growth(config, jit_compile=False):
    """Firefly rounds in epoch-equivalents, and their peak memory."""
    spec = spec_of(config.firefly_vgg, config)
    model = compile_sgd(kg.GrowableModel(spec))
    train = kg.data.load(config.dataset, "train", config.batch_size, repeat=True)
    probe = probes.StepTimes()
    firefly = kg.callbacks.Firefly(
        train,
        grow_every=1,
        max_rounds=config.firefly_rounds,
        delta_steps=config.delta_steps,
        score_batches=config.score_batches,
        score_samples=config.score_samples,
        jit_compile=jit_compile,
        seed=config.seed,
        verbose=0,
    )
    peaks = {}
    with probes.PeakMemory() as memory:
        model.fit(
            in_memory_batches(config),  # epochs comparable with section 2
            steps_per_epoch=config.steps,
            epochs=config.firefly_rounds + 1,
            validation_data=kg.data.load(
                config.dataset, "validation", config.batch_size
            ),
            validation_steps=config.validation_steps,
            verbose=0,
            callbacks=[
                probe,
                _MemoryPhases(memory, "train", peaks),
                firefly,
                _MemoryPhases(memory, "growth", peaks),
            ],
        )
        start = memory.start
    rounds = [e for e in model.growth_log if e.get("method") == "firefly"]
    rows = [
        _firefly_round(probe, generation, event, config.batch_size)
        for generation, event in enumerate(rounds)
    ]
    return {
        "net": spec.notation,
        "jit_compile": jit_compile,
        "settings": {
            "delta_steps": config.delta_steps,
            "score_batches": config.score_batches,
            "score_samples": config.score_samples,
            "batch_size": config.batch_size,
        },
        "rounds": rows,
        "median_epoch_equivalents": probes.median(r["epoch_equivalents"] for r in rows),
        "memory": _round_memory(start, peaks, len(rows)),
    }


def _firefly_round(probe, generation, event, batch_size):
    """One Firefly round's costs: the epoch of the net it started from, the
    retrace of the net it grew into."""
    _, step = probe.first_and_steady(probe.train, generation)
    _, test_step = probe.first_and_steady(probe.test, generation)
    retrace = probe.excess_of_first_steps(generation + 1)
    cost = event["seconds_round"] + event["seconds"] + retrace
    epoch = epoch_seconds(step, test_step, batch_size)
    return {
        "round": event["round"],
        "from_params": event["params_before"],
        "to_params": event["params_after"],
        "candidates": event["candidates"],
        "neighbourhood_s": event["seconds_build"],
        "optimise_s": event["seconds_optimise"],
        "score_s": event["seconds_score"],
        "round_s": event["seconds_round"],
        "grow_s": event["seconds"],
        "retrace_s": retrace,
        "cost_s": cost,
        "epoch_s": epoch,
        "epoch_equivalents": cost / epoch,
    }


def _round_memory(start, peaks, rounds):
    """The rounds' peak memory, each against the training epoch right
    before it: the worst ratio."""
    pairs = list(zip(peaks["train"], peaks["growth"]))[:rounds]
    train_peak, growth_peak = max(pairs, key=lambda p: p[1] / p[0])
    return {
        "process_start_mb": start / 2**20,
        "train_peak_mb": train_peak / 2**20,
        "growth_peak_mb": growth_peak / 2**20,
        "ratio": growth_peak / train_peak,
        "growth_adds_mb": (growth_peak - train_peak) / 2**20,
    }


# --- 5. input pipeline -----------------------------------------------------------


def input_pipeline(config, model_step_seconds):
    """Images/s the training pipeline delivers against what models consume.

    Args:
        model_step_seconds: dict `{net: steady train step seconds}` (fed
            from memory, from the wrapper measurement).
    """
    data = kg.data.load(config.dataset, "train", config.batch_size, repeat=True)
    iterator = iter(data)
    for _ in range(10):  # fill the cache's first part, start the prefetch
        next(iterator)
    start = time.perf_counter()
    for _ in range(config.pipeline_batches):
        next(iterator)
    delivered = (
        config.pipeline_batches * config.batch_size / (time.perf_counter() - start)
    )
    return {
        "pipeline_images_per_s": delivered,
        "augment": True,
        "models": {
            net: {
                "images_per_s": config.batch_size / step,
                "ratio": delivered * step / config.batch_size,
            }
            for net, step in model_step_seconds.items()
        },
    }


def fed_by_pipeline(spec, config):
    """Train step time fed by the real pipeline against fed from memory."""
    model = compile_sgd(kg.GrowableModel(spec))
    sources = {
        "memory": in_memory_batches(config),
        "pipeline": kg.data.load(
            config.dataset, "train", config.batch_size, repeat=True
        ),
    }
    for data in sources.values():
        model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    times = interleaved_step_times(
        {name: (model, data) for name, data in sources.items()}, config
    )
    memory, pipeline = probes.median(times["memory"]), probes.median(times["pipeline"])
    return {
        "net": spec.notation,
        "memory_step_s": memory,
        "pipeline_step_s": pipeline,
        "ratio": pipeline / memory,
    }
