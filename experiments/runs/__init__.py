"""Experiment runs as importable, tested code; experiments/ binaries call it."""

from experiments.runs import autogrow
from experiments.runs import baseline
from experiments.runs import plots
from experiments.runs import training
from experiments.runs import workdir
from experiments.runs.progress import EpochLine
