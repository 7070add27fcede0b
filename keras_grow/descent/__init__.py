"""How new units are found: Firefly's over-grown neighbourhood, scores and
selection, and GradMax's and TINY's closed forms (`new_units`)."""

from keras_grow.descent.depth import DepthNeighbourhood
from keras_grow.descent.depth import check_depth_growable
from keras_grow.descent.neighbourhood import Candidate
from keras_grow.descent.neighbourhood import WidthNeighbourhood
from keras_grow.descent.neighbourhood import gate_ends
from keras_grow.descent.neighbourhood import growable_groups
from keras_grow.descent.neighbourhood import kernel_groups
from keras_grow.descent.neighbourhood import realise
from keras_grow.descent.rounds import WidthRounds
