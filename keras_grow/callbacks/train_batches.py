"""Counted batches of a growth callback's `train_data`, resumable."""

from keras_grow.callbacks import arguments
from keras_grow.descent import scoring


class TrainBatches:
    """Mixin for width-growth callbacks that read training batches.

    Batches are drawn from `self.train_data` in order and counted; the
    count is part of the callback's state, so a resumed run (see
    `BackupAndRestore`) goes on where the interrupted one was. Call
    `_init_batches(train_data, given)` in `__init__`: the dataset, and the
    argument as the user gave it (arrays or a dataset).
    """

    def _init_batches(self, train_data, given):
        self.train_data = train_data
        self._given_train_data = given
        self._data = None
        self._batches_drawn = 0

    def _batches(self):
        for batch in scoring.batches(self.train_data, skip=self._batches_drawn):
            self._batches_drawn += 1
            yield batch

    @property
    def data(self):
        """The iterator of (images, labels, sample weights) the next round
        draws from (`keras_grow.descent.scoring.batches`)."""
        if self._data is None:
            self._data = self._batches()
        return self._data

    @property
    def growth_data(self):
        """dict. The data growth measures the loss on, as given, by argument
        name (`keras_grow.fit_checks.check_growth_data`)."""
        return {"train_data": self._given_train_data}

    def _calibration_batches(self):
        return self.data  # counted, so a resumed run measures on the same

    def get_state(self):
        """dict. The base state and the batches of `train_data` used."""
        return {**super().get_state(), "batches_drawn": self._batches_drawn}

    def set_state(self, state):
        super().set_state(state)
        self._batches_drawn = int(state.get("batches_drawn", 0))
        self._data = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        scoring.loss_function(self.model)  # fails clearly if not compiled
        arguments.check_batches_fit(self.train_data, self.model.spec, "train_data")
        self._data = None  # drawn from where the last round stopped
