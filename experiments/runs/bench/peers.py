"""keras_grow beside the alternative a user would pick: the same nets in
PyTorch, and a PyTorch growth library (GroMo) for a width-growth round.

Every measurement runs in a child process of its own framework and thread
setting (TensorFlow fixes its thread pools when it starts), in alternating
passes (Keras, PyTorch, Keras, ...), so a drift of the shared machine hits
both alike; a row reports the median of its passes. Both sides train the
same architecture (`torch_nets` builds PyTorch's twin of the spec) on the
same real Fashion-MNIST batches held in memory, with SGD (momentum 0.9)
and cross-entropy on logits, batch `batch_size`.

- *Throughput*: images per second of steady training steps, after a
  warm-up that pays the trace (Keras) or the allocator's first passes
  (PyTorch); steps enough for `seconds` of timing. Keras' are the second
  epoch of a two-epoch `fit` (a `fit` call's set-up and first epoch are
  paid once in a long run: a second `fit` call on the same data even
  retraces the step once, in plain Keras too). Keras runs inside
  `GrowableModel.fit` as a user would, in float32, float32 with
  `steps_per_execution` and mixed_bfloat16; PyTorch in float32 and with
  bfloat16 autocast.
- *Growth round*: one round on `growth_net` (seconds from the start of the
  round to the grown net ready to train): keras_grow's Firefly and
  RandomNew (plus Keras' retrace of the grown net's steps, which PyTorch
  does not pay) and GroMo's TINY round (statistics on `score_batches`
  batches, optimal new neurons, the best layer's extension applied).
"""

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from experiments.runs import workdir as workdir_lib


@dataclasses.dataclass(frozen=True)
class PeersConfig:
    """What the peer benchmark runs (written to the JSON file).

    `nets` are timed for training throughput (ResNets with
    `resnet_widths`), for each of `threads` (0: the framework's default,
    all cores; n: n threads for each framework), in `passes` alternating
    passes of at least `seconds` of timed steps. `keras_variants` and
    `torch_variants` name the ways each framework is run.
    `growth_net` is grown by one round of each method of `growth_methods`
    with `score_batches` scoring batches and Firefly's `delta_steps`.
    """

    nets: tuple = ("Basic3ResNet-3-3-3", "VGG11-16", "MLP-32-32")
    resnet_widths: tuple = (16, 32, 64)
    batch_size: int = 128
    threads: tuple = (0, 1)
    passes: int = 3
    seconds: float = 3.0
    keras_variants: tuple = (
        "float32",
        "float32_spe16",
        "float32_onednn",
        "float32_onednn_spe16",
        "mixed_bfloat16_onednn",
    )
    torch_variants: tuple = ("float32", "autocast_bfloat16")
    growth_net: str = "MLP-8-8"
    growth_methods: tuple = ("firefly", "random_new", "gromo_tiny")
    growth_ratio: float = 0.3
    score_batches: int = 4
    delta_steps: int = 30
    batches: int = 16
    seed: int = 0


PRESETS = {
    "full": PeersConfig(),
    "quick": PeersConfig(
        threads=(0,),
        passes=1,
        seconds=1.0,
        keras_variants=("float32", "float32_onednn", "float32_onednn_spe16"),
        torch_variants=("float32",),
        growth_methods=("firefly", "gromo_tiny"),
    ),
}

KERAS_METHODS = ("firefly", "random_new")


def spec_of(notation, config):
    import keras_grow as kg
    from experiments.runs import training

    widths = config.resnet_widths if notation.startswith("Basic3ResNet") else None
    kwargs = {} if widths is None else {"widths": tuple(widths)}
    return training.spec_for(kg.data.info("fashion_mnist"), notation, **kwargs)


def save_batches(config, path):
    """Writes `config.batches` real training batches (NHWC float32 images,
    int labels) to `path`, the data every child trains on."""
    from experiments.runs.bench import measures

    images, labels = measures.real_batches(
        "fashion_mnist", "train", config.batch_size, config.batches
    )
    np.savez(path, images=images, labels=labels)


# --- children ------------------------------------------------------------------


def _timed_steps(run_steps, seconds, warmup=3, calibrate=3):
    """Warm up, estimate a step, then time enough steps for `seconds`.

    `run_steps(n)` trains at least n steps and returns `(steps, seconds)`
    (Keras rounds n up to whole executions). Returns the timed block's
    `(steps, seconds)`."""
    run_steps(warmup)
    steps, elapsed = run_steps(calibrate)
    per_step = elapsed / steps
    return run_steps(int(min(max(seconds / max(per_step, 1e-6), 5), 5000)))


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Wall seconds of each epoch, from its begin to its end hook."""

        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def keras_throughput(spec, variant, images, labels, config):
    """Images/s of `GrowableModel.fit` on `spec` as `variant`."""
    import keras
    import tensorflow as tf

    import keras_grow as kg
    from experiments.runs.bench import measures

    per_execution = 16 if "_spe16" in variant else 1
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if variant.startswith("mixed_bfloat16") else "float32"
    )
    try:
        model = kg.GrowableModel(spec)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    measures.compile_sgd(model, steps_per_execution=per_execution)
    data = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .batch(config.batch_size, drop_remainder=True)
        .cache()
        .repeat()
        .prefetch(2)
    )

    def run_steps(n):
        # Two epochs of n steps in one `fit`, the second one timed: a new
        # `fit` call (and the first epoch of a `fit`) pays set-up that a
        # long run pays once. The epoch's own overhead (callbacks, logs)
        # is in.
        n = per_execution * max(1, -(-n // per_execution))
        timer = _epoch_timer()
        model.fit(data, steps_per_epoch=n, epochs=2, verbose=0, callbacks=[timer])
        return n, timer.seconds[-1]

    steps, seconds = _timed_steps(run_steps, config.seconds, warmup=2 * per_execution)
    return {"images_per_s": steps * config.batch_size / seconds, "steps": steps}


def torch_throughput(spec, variant, images, labels, config):
    """Images/s of a plain PyTorch training loop on the twin of `spec`."""
    import torch

    from experiments.runs.bench import torch_nets

    torch.manual_seed(config.seed)
    model = torch_nets.build(spec).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x_all = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    y_all = torch.from_numpy(labels.astype(np.int64))
    batches = list(zip(x_all.split(config.batch_size), y_all.split(config.batch_size)))
    autocast = variant == "autocast_bfloat16"

    def run_steps(n):
        start = time.perf_counter()
        for i in range(n):
            x, y = batches[i % len(batches)]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        return n, time.perf_counter() - start

    steps, seconds = _timed_steps(run_steps, config.seconds)
    return {"images_per_s": steps * config.batch_size / seconds, "steps": steps}


def keras_growth_round(method, images, labels, config):
    """One keras_grow width-growth round on `config.growth_net`."""
    import tensorflow as tf

    import keras_grow as kg
    from experiments.runs.bench import measures

    spec = spec_of(config.growth_net, config)
    model = kg.GrowableModel(spec)
    measures.compile_sgd(model)
    data = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .batch(config.batch_size, drop_remainder=True)
        .repeat()
    )
    common = dict(
        grow_every=1,
        max_rounds=1,
        growth_ratio=config.growth_ratio,
        seed=config.seed,
        verbose=0,
    )
    if method == "firefly":
        callback = kg.callbacks.Firefly(
            data,
            delta_steps=config.delta_steps,
            score_batches=config.score_batches,
            **common,
        )
    else:
        callback = kg.callbacks.RandomNew(**common)
    model.fit(
        data, steps_per_epoch=config.batches, epochs=2, verbose=0, callbacks=[callback]
    )
    event = [e for e in model.growth_log if e.get("round") is not None][0]
    round_s = event.get("seconds_round", 0.0) + event["seconds"]
    timing = event.get("timing", {})
    retrace = timing.get("retrace_train", 0.0) + timing.get("retrace_test", 0.0)
    return {
        "round_s": round_s,
        "retrace_s": retrace,
        "params_before": event["params_before"],
        "params_after": event["params_after"],
        "grown_to": event["to"],
    }


def gromo_growth_round(images, labels, config):
    """One GroMo TINY round on the PyTorch twin of `config.growth_net`
    (GroMo's `GrowingMLP`, ReLU): statistics on `score_batches` batches,
    optimal updates with as many new neurons as Firefly's eta, the best
    layer's extension applied."""
    import torch
    from gromo.containers.growing_mlp import GrowingMLP
    from gromo.utils import training_utils

    spec = spec_of(config.growth_net, config)
    if len(set(spec.widths)) != 1:
        raise ValueError("GroMo's GrowingMLP needs equal hidden widths.")
    torch.manual_seed(config.seed)
    model = GrowingMLP(
        in_features=tuple(spec.input_shape),
        out_features=spec.num_classes,
        hidden_size=spec.widths[0],
        number_hidden_layers=len(spec.widths),
        activation=torch.nn.ReLU(),
    )
    x_all = torch.from_numpy(np.ascontiguousarray(images))
    y_all = torch.from_numpy(labels.astype(np.int64))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x_all, y_all), batch_size=config.batch_size
    )
    eta = max(1, int(config.growth_ratio * sum(spec.widths)))
    before = model.number_of_parameters()
    start = time.perf_counter()
    training_utils.compute_statistics(
        model,
        loader,
        loss_function=torch.nn.CrossEntropyLoss(reduction="sum"),
        batch_limit=config.score_batches,
    )
    model.compute_optimal_updates(maximum_added_neurons=eta)
    model.reset_computation()
    layer = model.select_best_update()
    model.set_scaling_factor(1.0)
    model.apply_change()
    seconds = time.perf_counter() - start
    return {
        "round_s": seconds,
        "retrace_s": 0.0,
        "params_before": before,
        "params_after": model.number_of_parameters(),
        "grown_to": f"layer {layer} +{eta}",
    }


@dataclasses.dataclass(frozen=True)
class Child:
    """One child process: a framework, its variants and growth methods,
    and the environment it starts with."""

    framework: str
    variants: tuple
    methods: tuple
    environment: dict

    def key(self, threads):
        onednn = self.environment.get("TF_ENABLE_ONEDNN_OPTS")
        return f"{self.framework}{'_onednn' * (onednn == '1')}_{threads}"


def processes(config, threads):
    """The child processes of one pass, as `Child`s.

    TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it loads, so the
    Keras variants with and without oneDNN run in separate processes; the
    growth rounds run with the frameworks' default threads, Keras' in the
    process without oneDNN (the experiments' default)."""
    growth = threads == 0
    keras_methods = (
        tuple(m for m in config.growth_methods if m in KERAS_METHODS) * growth
    )
    torch_methods = (
        tuple(m for m in config.growth_methods if m.startswith("gromo")) * growth
    )
    plain = tuple(v for v in config.keras_variants if "_onednn" not in v)
    onednn = tuple(v for v in config.keras_variants if "_onednn" in v)
    children = [
        Child("keras", plain, keras_methods, {"TF_ENABLE_ONEDNN_OPTS": "0"}),
        Child("keras", onednn, (), {"TF_ENABLE_ONEDNN_OPTS": "1"}),
        Child("torch", config.torch_variants, torch_methods, {}),
    ]
    return [c for c in children if c.variants or c.methods]


def child(framework, variants, methods, threads, batches_path, config):
    """Runs one child process's measurements; returns a dict."""
    loaded = np.load(batches_path)
    images, labels = loaded["images"], loaded["labels"]
    if framework == "keras":
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        measure = keras_throughput
    else:
        import torch

        if threads:
            torch.set_num_threads(threads)
            torch.set_num_interop_threads(threads)
        measure = torch_throughput
    out = {"throughput": {}, "growth": {}}
    for notation in config.nets:
        spec = spec_of(notation, config)
        for variant in variants:
            out["throughput"][f"{notation}|{variant}"] = measure(
                spec, variant, images, labels, config
            )
    for method in methods:
        if method in KERAS_METHODS:
            out["growth"][method] = keras_growth_round(method, images, labels, config)
        else:
            out["growth"][method] = gromo_growth_round(images, labels, config)
    return out


# --- parent ------------------------------------------------------------------


def run(config, workdir, log=print):
    """All passes, alternating frameworks; returns the raw results."""
    os.makedirs(workdir, exist_ok=True)
    batches_path = os.path.join(workdir, "batches.npz")
    save_batches(config, batches_path)
    config_path = os.path.join(workdir, "config.json")
    workdir_lib.write_json(config_path, dataclasses.asdict(config))
    passes = {"keras": {}, "torch": {}}
    for threads in config.threads:
        for index in range(config.passes):
            children = processes(config, threads)
            for spec in children if index % 2 == 0 else children[::-1]:
                log(f"pass {index + 1}/{config.passes}: {spec.key(threads)}")
                path = os.path.join(workdir, f"{spec.key(threads)}_{index}.json")
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "experiments.bench_peers",
                        f"--child={spec.framework}",
                        f"--child_variants={','.join(spec.variants)}",
                        f"--child_methods={','.join(spec.methods)}",
                        f"--child_threads={threads}",
                        f"--child_batches={batches_path}",
                        f"--child_config={config_path}",
                        f"--child_result={path}",
                    ],
                    env={**os.environ, **spec.environment},
                    check=True,
                )
                with open(path) as f:
                    result = json.load(f)
                merged = (
                    passes[spec.framework]
                    .setdefault(threads, {})
                    .setdefault(index, {"throughput": {}, "growth": {}})
                )
                for part in merged:
                    merged[part].update(result[part])
    passes = {f: {t: list(p.values()) for t, p in d.items()} for f, d in passes.items()}
    return summarise(passes, config)


def _median_images(results, key):
    return statistics.median(r["throughput"][key]["images_per_s"] for r in results)


def _precision(variant):
    return "bfloat16" if "bfloat16" in variant else "float32"


def summarise(passes, config):
    """Medians of the passes: one throughput row per net and thread
    setting (every variant's images/s, and each Keras variant's ratio to
    PyTorch at the same precision), and one row per growth method."""
    rows = []
    for threads in config.threads:
        keras_passes, torch_passes = passes["keras"][threads], passes["torch"][threads]
        for notation in config.nets:
            torch_ips = {
                v: _median_images(torch_passes, f"{notation}|{v}")
                for v in config.torch_variants
            }
            keras_ips = {
                v: _median_images(keras_passes, f"{notation}|{v}")
                for v in config.keras_variants
            }
            reference = {_precision(v): ips for v, ips in torch_ips.items()}
            rows.append(
                {
                    "net": notation,
                    "threads": threads,
                    "torch_images_per_s": torch_ips,
                    "keras_images_per_s": keras_ips,
                    "ratio": {
                        v: ips / reference[_precision(v)]
                        for v, ips in keras_ips.items()
                        if _precision(v) in reference
                    },
                }
            )
    growth = {}
    for framework in ("keras", "torch"):
        for p in passes[framework].get(0, []):
            for method, result in p["growth"].items():
                growth.setdefault(method, []).append(result)
    growth_rows = [
        {
            "method": method,
            "round_s": statistics.median(r["round_s"] for r in results),
            "retrace_s": statistics.median(r["retrace_s"] for r in results),
            "params_before": results[0]["params_before"],
            "params_after": results[0]["params_after"],
            "grown_to": results[0]["grown_to"],
            "passes": len(results),
        }
        for method, results in growth.items()
    ]
    return {
        "config": dataclasses.asdict(config),
        "throughput": rows,
        "growth": growth_rows,
    }


def _threads_name(threads):
    return (
        "all cores" if threads == 0 else f"{threads} thread{'s' * (threads > 1)} each"
    )


def markdown(result):
    """The two tables of the peer benchmark."""
    config = result["config"]
    torch_variants, keras_variants = config["torch_variants"], config["keras_variants"]
    header = (
        ["net", "threads"]
        + [f"PyTorch {v} (images/s)" for v in torch_variants]
        + [f"keras_grow {v}: images/s (/ PyTorch)" for v in keras_variants]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in result["throughput"]:
        cells = [r["net"], _threads_name(r["threads"])]
        cells += [f"{r['torch_images_per_s'][v]:,.0f}" for v in torch_variants]
        for v in keras_variants:
            ratio = r["ratio"].get(v)
            cells.append(
                f"{r['keras_images_per_s'][v]:,.0f}"
                + ("" if ratio is None else f" ({ratio:.2f})")
            )
        lines.append("| " + " | ".join(cells) + " |")
    if not result["growth"]:
        return "\n".join(lines)
    lines += [
        "",
        "| growth round | params before -> after | grown to | round (s) "
        "| Keras retrace (s) | round + retrace (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["growth"]:
        lines.append(
            f"| {r['method']} | {r['params_before']:,} -> {r['params_after']:,} "
            f"| {r['grown_to']} | {r['round_s']:.2f} | {r['retrace_s']:.2f} "
            f"| {r['round_s'] + r['retrace_s']:.2f} |"
        )
    return "\n".join(lines)
