"""Callbacks that decide when and how a `GrowableModel` grows."""

from keras_grow.callbacks.scheduled_growth import ScheduledGrowth
