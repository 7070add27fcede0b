"""Experiment runs as importable, tested code; experiments/ binaries call it."""

from keras_grow.runs import autogrow
from keras_grow.runs import baseline
from keras_grow.runs import plots
from keras_grow.runs import training
from keras_grow.runs import workdir
from keras_grow.runs.progress import EpochLine
