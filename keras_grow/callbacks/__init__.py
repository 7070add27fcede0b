"""Callbacks that decide when and how a `GrowableModel` grows."""

from keras_grow.adam_init import adam_init_norm
from keras_grow.callbacks import presets
from keras_grow.callbacks.autogrow import AutoGrow
from keras_grow.callbacks.backup_and_restore import BackupAndRestore
from keras_grow.callbacks.closed_form_growth import TINY
from keras_grow.callbacks.closed_form_growth import GradMax
from keras_grow.callbacks.firefly import Firefly
from keras_grow.callbacks.growth_guard import GrowthFailedError
from keras_grow.callbacks.growth_guard import GrowthGuard
from keras_grow.callbacks.growth_guard import NonFiniteDataError
from keras_grow.callbacks.progressive_growth import ProgressiveGrowth
from keras_grow.callbacks.progressive_plan import ProgressivePlan
from keras_grow.callbacks.scheduled_growth import ScheduledGrowth
from keras_grow.callbacks.width_growth import RandomNew
from keras_grow.callbacks.width_growth import RandomSplit
from keras_grow.callbacks.width_growth import WidthGrowth
