"""Probes for the benchmarks: per-step wall times, peak memory, the machine."""

import os
import platform
import statistics
import threading
import time

import keras
import tensorflow as tf

PAGE = os.sysconf("SC_PAGE_SIZE")


def median(values):
    """float. The median of a non-empty sequence."""
    values = list(values)
    if not values:
        raise ValueError("No values to take the median of.")
    return float(statistics.median(values))


class StepTimes(keras.callbacks.Callback):
    """Records the wall time of every train and test batch.

    Each record is `(epoch, generation, seconds)`, where `generation`
    counts the bodies the model has had when the step started (it goes up
    by one at each growth), so the first step after a growth, the one that
    pays the retrace, is the first of its generation.

    TensorFlow runs a compiled step synchronously on CPU, so the time from
    `on_*_batch_begin` to `on_*_batch_end` is the step's.
    """

    def __init__(self):
        super().__init__()
        self.train, self.test = [], []
        self.epoch = 0
        self._bodies = []
        self._start = None

    def _generation(self):
        body = id(self.model.body) if hasattr(self.model, "body") else 0
        if not self._bodies or self._bodies[-1] != body:
            self._bodies.append(body)
        return len(self._bodies) - 1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _begin(self):
        self._start = (self._generation(), time.perf_counter())

    def _end(self, records):
        generation, start = self._start
        records.append((self.epoch, generation, time.perf_counter() - start))

    def on_train_batch_begin(self, batch, logs=None):
        self._begin()

    def on_train_batch_end(self, batch, logs=None):
        self._end(self.train)

    def on_test_batch_begin(self, batch, logs=None):
        self._begin()

    def on_test_batch_end(self, batch, logs=None):
        self._end(self.test)

    @staticmethod
    def seconds(records, epoch=None, generation=None):
        """list of float. Step times, filtered by epoch and generation."""
        return [
            s
            for e, g, s in records
            if (epoch is None or e == epoch) and (generation is None or g == generation)
        ]

    def excess_of_first_steps(self, generation):
        """Seconds the first train and test steps of a generation took
        beyond their steady steps (a retrace, or the first trace)."""
        excess = 0.0
        for records in (self.train, self.test):
            if len(self.seconds(records, generation=generation)) >= 3:
                first, steady = self.first_and_steady(records, generation)
                excess += max(0.0, first - steady)
        return excess

    @staticmethod
    def first_and_steady(records, generation):
        """(first step, median of the later steps) of one generation."""
        steps = StepTimes.seconds(records, generation=generation)
        if len(steps) < 3:
            raise ValueError(
                f"Generation {generation} has {len(steps)} steps; a first and a "
                "steady state need at least 3."
            )
        return steps[0], median(steps[1:])


def train_step_ops(model, input_shape, batch_size):
    """int. Ops in a compiled model's train step graph (nested functions
    included), traced afresh for `(batch_size, *input_shape)` batches."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    shape = (batch_size, *input_shape)
    step = tf.function(lambda x, y: model.train_step((x, y)), autograph=False)
    graph = step.get_concrete_function(
        tf.TensorSpec(shape, tf.float32), tf.TensorSpec([batch_size], tf.int64)
    ).graph.as_graph_def()
    return len(graph.node) + sum(len(f.node_def) for f in graph.library.function)


def rss_bytes():
    """int. This process's resident memory now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakMemory:
    """Samples resident memory in a thread; the peak of a `with` block.

    Example:

    >>> with PeakMemory() as memory:
    ...     data = bytearray(50_000_000)
    >>> memory.peak - memory.start >= 50_000_000
    True
    """

    def __init__(self, interval=0.002):
        self.interval = interval
        self.start = self.peak = None
        self._stop = threading.Event()
        self._thread = None

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self):
        self.start = self.peak = rss_bytes()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def reset(self):
        """Returns the peak so far and starts a new one from now."""
        peak, self.peak = self.peak, rss_bytes()
        return max(peak, self.peak)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        return False


def machine():
    """dict. What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }
