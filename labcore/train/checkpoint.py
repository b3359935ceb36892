"""What a killed run resumes from: a checkpoint written as one unit, and early stopping that
carries on from it.

A checkpoint is a folder `<backup>/epoch-NNNN/` (NNNN: the epochs it holds) with everything a
run needs to go on from there: the model's and the optimizer's variables (`variables.npz`), and
in `state.json` the epoch, the history so far and the early stopping's state, whose best
epoch's weights sit beside it (`best.weights.npz`). It is written as `epoch-NNNN.tmp/`, every
file flushed to the disk, then renamed; the one before it is removed only after that. So a
kill, a power cut or a full disk at any moment leaves the last complete checkpoint as it was
(a `.tmp` folder is never read). A checkpoint that cannot be read all the same (a damaged
disk, a file cut short by hand) costs one line, and the run starts again from epoch 1.

The variables are numpy arrays in a zip, not Keras' HDF5 weights file, for the reason
`labcore.model.weights_file` gives (a full disk: HDF5 ends with a segmentation fault, numpy
raises an OSError that train.py reports in one line). They are read whole,
checked (count, shapes) and only then assigned, so a bad file never leaves a half-loaded model.

It is written at an epoch's end at most once every `every` seconds (the weights of a large
model take a while to write), never after the fit's last epoch (it would be removed unread
when the fit ends), and after the epoch's bookkeeping (history, learning rate, early stopping:
`Checkpoint.writer()` comes after them in the callbacks), so all of it describes that one epoch.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Callable, Protocol

import keras
import numpy as np

from labcore.model.weights_file import assign_checked, read_arrays

VARIABLES = "variables.npz"  # the model's, then the optimizer's variables, in their order
STATE = "state.json"  # epoch, history, early stopping
BEST_WEIGHTS = "best.weights.npz"  # the early stopping's best epoch's weights
UNIT = re.compile(r"epoch-(\d{4,})")


class HasHistory(Protocol):
    """What keeps the run's history (labcore.train.training.HistoryLog)."""

    history: dict[str, list[float]]


def checkpoint_variables(model: keras.Model) -> list:
    """What a checkpoint holds of a model: its variables, then its optimizer's (built first, as
    fit would build it, over the variables it trains)."""
    optimizer = model.optimizer
    if optimizer is None:
        return list(model.weights)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    return [*model.weights, *optimizer.variables]


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's content (a folder: its entries) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpoint(keras.callbacks.Callback):
    """Restores the model, its optimizer and the epoch from the newest complete checkpoint in
    `folder` when the fit begins (it must come first in the callbacks), and keeps the rest
    (`restored`: history, early stopping) for the callbacks that carry on from it. Its
    `writer()`, placed after them, writes the next checkpoint. `clock` is what `every` is
    measured with."""

    clock = staticmethod(time.perf_counter)

    def __init__(self, folder: Path, every: float, progress: Callable[[str], None], run_id: str):
        super().__init__()
        self.folder, self.every, self.progress, self.run_id = Path(folder), every, progress, run_id
        self.restored: dict | None = None
        self.history_log = self.early = None  # what the checkpoint keeps besides weights (`keep`)
        self._best_saved: tuple[Path, int] | None = None  # the newest best-weights file and its epoch

    def keep(self, history_log: HasHistory, early: "ResumableEarlyStopping") -> None:
        """The callbacks whose state goes into each checkpoint: the history (`.history`) and
        the early stopping."""
        self.history_log, self.early = history_log, early

    def writer(self) -> keras.callbacks.Callback:
        """The callback that writes the checkpoint, to be placed after the history, the learning
        rate schedule and the early stopping."""
        return _Writer(self)

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        found = [p for p in self.folder.glob("epoch-*") if UNIT.fullmatch(p.name) and p.is_dir()]
        return max(found, key=lambda p: int(UNIT.fullmatch(p.name).group(1)), default=None)

    def on_train_begin(self, logs=None):
        self._last_save = self.clock()
        unit = self.latest()
        if unit is None:
            return
        try:
            self.restored = self._restore(unit)
        except Exception as err:  # noqa: BLE001 - whatever is wrong with it, the run starts afresh
            reason = str(err).splitlines()[0][:160] if str(err) else ""
            self.progress(f"[{self.run_id}] its checkpoint {unit} cannot be read ({type(err).__name__}: {reason}); "
                          "it starts again from epoch 1")
            shutil.rmtree(self.folder, ignore_errors=True)
            self.restored = None

    def _restore(self, unit: Path) -> dict:
        """Read the unit whole and check it against the model before touching the model."""
        state = json.loads((unit / STATE).read_text())
        epoch, history, early = int(state["epoch"]), state["history"], state["early_stopping"]
        if epoch < 1 or not all(isinstance(v, list) and len(v) == epoch for v in history.values()):
            raise ValueError(f"its history does not hold its {epoch} epochs")
        values = read_arrays(unit / VARIABLES)
        best_weights = read_arrays(unit / BEST_WEIGHTS) if (unit / BEST_WEIGHTS).exists() else None
        assign_checked(checkpoint_variables(self.model), values, VARIABLES)
        self.model._initial_epoch = epoch  # Keras' fit starts from this epoch (as BackupAndRestore sets it)
        if best_weights is not None:
            self._best_saved = (unit / BEST_WEIGHTS, int(early["best_epoch"]))
        return {"epoch": epoch, "history": history, "early_stopping": early, "best_weights": best_weights}

    def save_if_due(self, epoch: int) -> None:
        last = epoch + 1 >= self.params.get("epochs", 0) or self.model.stop_training
        now = self.clock()
        if last or now - self._last_save < self.every:
            return
        self.save(epoch)
        self._last_save = now

    def save(self, epoch: int) -> Path:
        """Write the state after `epoch` (0-based) as one unit; returns its folder. Where the
        disk cannot take it, an OSError names the unit, and the last complete one stays."""
        unit = self.folder / f"epoch-{epoch + 1:04d}"
        building = unit.with_name(unit.name + ".tmp")
        early = self.early.state()
        try:
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir(parents=True)
            np.savez(building / VARIABLES, *[v.numpy() for v in checkpoint_variables(self.model)])
            if self.early.best_weights is not None:
                if self._best_saved and self._best_saved[1] == early["best_epoch"]:
                    _link_or_copy(self._best_saved[0], building / BEST_WEIGHTS)  # unchanged: not written again
                else:
                    np.savez(building / BEST_WEIGHTS, *self.early.best_weights)
            (building / STATE).write_text(json.dumps(
                {"epoch": epoch + 1, "history": self.history_log.history, "early_stopping": early}))
            for path in building.iterdir():
                fsync_path(path)
            fsync_path(building)
        except OSError as err:
            shutil.rmtree(building, ignore_errors=True)  # what it had written, given back to the disk
            raise OSError(err.errno, f"cannot write the checkpoint ({err.strerror or err})", str(building)) from None
        building.rename(unit)
        fsync_path(self.folder)
        if self.early.best_weights is not None:
            self._best_saved = (unit / BEST_WEIGHTS, early["best_epoch"])
        for older in self.folder.iterdir():
            if older != unit:
                shutil.rmtree(older, ignore_errors=True)
        return unit

    def on_train_end(self, logs=None):
        shutil.rmtree(self.folder, ignore_errors=True)  # the fit is complete: nothing to resume


class _Writer(keras.callbacks.Callback):
    def __init__(self, checkpoint: Checkpoint):
        super().__init__()
        self.checkpoint = checkpoint

    def on_epoch_end(self, epoch, logs=None):
        self.checkpoint.save_if_due(epoch)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose state (best val_loss, its epoch, the patience count and the best
    weights) goes into each checkpoint, so a resumed run still ends on the best epoch seen
    before the kill, not only the best one after it.

    A NaN val_loss is never the best (Keras' own takes a NaN first epoch as best and then
    never improves on it). With `carry_over` set, a second fit (fine-tuning) keeps the best
    epoch of the first: the stored model is the best of both phases, and `best_epoch` says which."""

    def __init__(self, checkpoint: Checkpoint, **kwargs):
        super().__init__(restore_best_weights=True, **kwargs)
        self.checkpoint, self.carry_over = checkpoint, False
        self.best, self.best_epoch, self.best_weights = None, 0, None

    def _is_improvement(self, monitor_value, reference_value):
        return bool(np.isfinite(monitor_value)) and super()._is_improvement(monitor_value, reference_value)

    @property
    def best_epoch_number(self) -> int | None:
        """1-based epoch whose weights the model ends with; None if no val_loss was a number."""
        return self.best_epoch + 1 if self.best is not None else None

    def state(self) -> dict:
        """What a checkpoint keeps of it, besides the best weights."""
        best = None if self.best is None else float(self.best)
        return {"best": best, "best_epoch": int(self.best_epoch), "wait": int(self.wait)}

    def on_train_begin(self, logs=None):
        kept = (self.best, self.best_epoch, self.best_weights)
        super().on_train_begin(logs)
        if self.carry_over:
            self.best, self.best_epoch, self.best_weights = kept
            return
        restored = self.checkpoint.restored
        if restored:
            state = restored["early_stopping"]
            self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
            self.best_weights = restored["best_weights"]
