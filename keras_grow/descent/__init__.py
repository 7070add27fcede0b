"""Firefly's machinery: the over-grown neighbourhood, scores, selection."""

from keras_grow.descent.depth import DepthNeighbourhood
from keras_grow.descent.depth import check_depth_growable
from keras_grow.descent.neighbourhood import Candidate
from keras_grow.descent.neighbourhood import WidthNeighbourhood
from keras_grow.descent.neighbourhood import gate_ends
from keras_grow.descent.neighbourhood import growable_groups
from keras_grow.descent.neighbourhood import realise
