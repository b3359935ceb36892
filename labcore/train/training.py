"""Fit one run with the report's recipe (`labcore.model.recipe`), resumably.

A run is written under `<runs>/.partial/<run id>/` and renamed to `<runs>/<run id>/` only
when everything is in it, so a run directory is either complete or absent. A killed run
resumes from its last checkpoint (`labcore.train.checkpoint`: written at the end of an epoch,
once a minute at most, as one unit: weights, optimizer, epoch, history, and the best epoch's
weights and patience count of ResumableEarlyStopping). HistoryLog carries on with the
checkpoint's history. (ReduceLROnPlateau's patience count starts afresh; the learning rate
itself is restored with the optimizer.) The stored `model.keras` leaves the optimizer out.

A run with a frozen backbone fits its heads model on the backbone's outputs, computed once
(`labcore.train.features`), instead of the whole model on images: the same training, with the same
callbacks and history keys; the whole model is what is evaluated and stored.
"""
from __future__ import annotations

import platform
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from labcore.model import metrics as lab_metrics
from labcore.train import runtime
from labcore.train.checkpoint import Checkpoint, ResumableEarlyStopping
from labcore.store.confusion import write_confusion
from labcore.data.pipeline import make_splits
from labcore.train.features import FEATURES_DIR, cached_splits, uses_feature_cache
from labcore.model.architectures import (backbone_layer, backbone_name, build_backbone, build_models, set_bn_momentum,
                            set_frozen)
from labcore.model.pretext import pretext_backbone
from labcore.model.recipe import (CHECKPOINT_SECONDS, compile_model, early_stopping_settings, fine_tune_learning_rate,
                            reduce_lr)
from labcore.store.runs import write_json
from labcore.settings import RunSpec, Settings
from labcore.data.sources import Source
from labcore.timing import duration

Progress = Callable[[str], None]
BATCH_NOTE_SECONDS = 30.0


@dataclass(frozen=True)
class Tick:
    """Where a run stands, sent at each epoch's end and, within a long epoch, every half
    minute. Whoever watches the run (the plan, above this module) turns it into a progress
    line with the clocks it knows; a Tick travels between processes (lanes) as it is."""

    run_id: str
    text: str  # what happened, without clocks: "epoch 3/6  loss 0.4100  val_loss 0.5200  (4.1s)"
    elapsed: float  # seconds since the run started
    epochs: int  # the run's epochs, fine-tuning included
    epochs_done: int
    fit_epochs: int  # the epoch the current fit ends at (fine-tuning epochs come after it)
    epoch_pace: float | None  # seconds per epoch of this fit, after its first (which traces); None mid-epoch


Watch = Callable[[Tick], None]


def run_clock(tick: Tick) -> str:
    """The run's own clock: elapsed and, at an epoch's end, the epochs left at this fit's pace
    (an upper bound: early stopping may end sooner)."""
    text = f"run {duration(tick.elapsed)}"
    if tick.epoch_pace is not None:
        text += f", ~{duration((tick.epochs - tick.epochs_done) * tick.epoch_pace)} left"
    return text


def print_ticks(progress: Progress) -> Watch:
    """A watcher with no plan: each tick as a line with the run's own clock."""
    return lambda tick: progress(f"[{tick.run_id}] {tick.text}  {run_clock(tick)}")


class HistoryLog(keras.callbacks.Callback):
    """Per-epoch history (every loss and metric, lr, epoch_seconds) written to a json file after
    each epoch (the app draws it while the run trains); a resumed run carries on from its
    checkpoint's history. It tells `watch` where the run is."""

    def __init__(self, path: Path, outputs: tuple[str, ...], progress: Progress, run_id: str, epochs: int,
                 watch: Watch, checkpoint: Checkpoint, started: float | None = None):
        super().__init__()
        self.path, self.outputs, self.progress = path, outputs, progress
        self.run_id, self.total, self.watch, self.checkpoint = run_id, epochs, watch, checkpoint
        self.started = time.perf_counter() if started is None else started
        self.history: dict[str, list[float]] = {}
        self._fit_epochs: list[float] = []  # this fit's epoch times: the run's pace comes from them

    def on_train_begin(self, logs=None):
        self._fit_epochs = []
        if self.history:  # a second fit in this process (fine-tuning) carries on
            return
        restored = self.checkpoint.restored  # read by the checkpoint, first in the callbacks
        if restored:
            # The checkpoint's own history: its epochs, not the later ones a kill left in self.path.
            self.history = {k: list(v) for k, v in restored["history"].items()}
            self.progress(f"[{self.run_id}] resuming after epoch {restored['epoch']}")
        else:  # a fresh start: epochs of an earlier attempt are not this run's
            self.path.unlink(missing_ok=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last_note = time.perf_counter()
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        # A real-data epoch on a CPU can take many minutes: say where it is every half minute.
        now = time.perf_counter()
        if now - self._last_note >= BATCH_NOTE_SECONDS:
            self._last_note = now
            steps = self.params.get("steps") or "?"
            text = (f"epoch {self._epoch + 1}/{self.total}: batch {batch + 1}/{steps}, "
                    f"loss {float((logs or {}).get('loss', float('nan'))):.4f}")
            self.watch(self.tick(text, now, self._epoch, None))

    def on_epoch_end(self, epoch, logs=None):
        row = self.normalise(logs or {})
        row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["epoch_seconds"] = time.perf_counter() - self._start
        for key, value in row.items():
            self.history.setdefault(key, []).append(float(value))
        write_json(self.path, self.history)
        self._fit_epochs.append(row["epoch_seconds"])
        shown = "  ".join(f"{k} {row[k]:.4f}" for k in ("loss", "val_loss") if k in row)
        pace = self._fit_epochs[1:] or self._fit_epochs
        self.watch(self.tick(f"epoch {epoch + 1}/{self.total}  {shown}  ({row['epoch_seconds']:.1f}s)",
                             time.perf_counter(), epoch + 1, sum(pace) / len(pace)))

    def tick(self, text: str, now: float, epochs_done: int, pace: float | None) -> Tick:
        return Tick(self.run_id, text, now - self.started, self.total, epochs_done,
                    self.params.get("epochs", self.total), pace)

    def normalise(self, logs: dict) -> dict[str, float]:
        """Keras names a one-output model's metrics without the output's name; add it, so
        every history says `mask_accuracy`, whatever the number of heads."""
        out = {}
        for key, value in logs.items():
            prefix, base = ("val_", key[4:]) if key.startswith("val_") else ("", key)
            if base != "loss" and len(self.outputs) == 1 and not base.startswith(self.outputs[0] + "_"):
                base = f"{self.outputs[0]}_{base}"
            out[prefix + base] = float(value)
            if base == "loss" and len(self.outputs) == 1:
                out[f"{prefix}{self.outputs[0]}_loss"] = float(value)
        return out


def replica_strategy() -> tf.distribute.Strategy | None:
    """MirroredStrategy over the process's devices where it has several, else None: the GPUs,
    or on a machine without one, the logical CPUs a process may split its CPU into
    (`tf.config.set_logical_device_configuration`), which is how the tests run this branch."""
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices]) if len(devices) > 1 else None


def weights_origin(spec: RunSpec, settings: Settings) -> str:
    """imagenet | synthetic-pretext | none: where the backbone's starting weights come from."""
    return "none" if spec.init == "scratch" else settings.weights


def make_model(spec: RunSpec, settings: Settings, runs_dir: Path,
               progress: Progress) -> tuple[keras.Model, keras.Model]:
    """(the whole model, its heads alone, sharing the head layers)."""
    name = backbone_name(spec.task, settings)
    origin = weights_origin(spec, settings)
    if origin == "synthetic-pretext":
        backbone = pretext_backbone(name, settings, runs_dir / ".pretext", progress)
    else:
        backbone = build_backbone(name, settings.image_size, None if origin == "none" else "imagenet",
                                  settings.weights_dir)
    # The report uses the pretrained backbone as a feature extractor: frozen, BN in inference mode.
    set_frozen(backbone, spec.init == "pretrained" and settings.freeze_backbone)
    model, heads = build_models(spec.task, settings, backbone)
    set_bn_momentum(model, settings.bn_momentum)
    return model, heads


def train_run(spec: RunSpec, settings: Settings, source: Source, runs_dir: Path,
              progress: Progress = print, extra_callbacks: list | None = None,
              watch: Watch | None = None, checkpoint_seconds: float = CHECKPOINT_SECONDS) -> Path:
    """Fit, evaluate and store one run; returns its directory. Plain news goes to `progress`;
    where the run stands (each epoch, and every half minute of a long one) goes to `watch`
    as a Tick (default: a line with the run's own clock, through `progress`). A checkpoint
    to resume from is written at the end of an epoch at most every `checkpoint_seconds`."""
    runs_dir = Path(runs_dir)
    final = runs_dir / spec.run_id
    work = runs_dir / ".partial" / spec.run_id
    work.mkdir(parents=True, exist_ok=True)
    name = backbone_name(spec.task, settings)
    started = time.perf_counter()

    if settings.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = replica_strategy()
    if strategy:
        progress(f"[{spec.run_id}] MirroredStrategy: one replica on each of {strategy.num_replicas_in_sync} devices")
    keras.utils.set_random_seed(settings.seed)
    splits = make_splits(source, settings, spec.task, name)
    progress(f"[{spec.run_id}] {name}, {weights_origin(spec, settings)} weights, "
             f"{settings.image_size}px; train {splits.counts['train']}, val {splits.counts['val']}, "
             f"test {splits.counts['test']} images")
    scope = strategy.scope if strategy else nullcontext
    with scope():
        model, heads = make_model(spec, settings, runs_dir, progress)
        compile_model(model, spec.outputs, settings.learning_rate, settings.jit_compile)

    # The model fit on: the whole model on images, or (frozen backbone) its heads on features.
    fitted, train_data, val_data, backup = model, splits.train, splits.val, "backup"
    cache = None
    if uses_feature_cache(spec, settings):
        progress(f"[{spec.run_id}] frozen backbone: computing its features once "
                 f"({splits.counts['train'] + splits.counts['val']} train and val images)")
        cache = cached_splits(backbone_layer(model), splits, settings, work)
        progress(f"[{spec.run_id}] features ready in {cache.seconds:.1f}s ({cache.storage}); "
                 f"the heads train on them")
        with scope():
            compile_model(heads, spec.outputs, settings.learning_rate, settings.jit_compile)
        # Its own backup: a run resumed with the cache switched the other way starts afresh.
        fitted, train_data, val_data, backup = heads, cache.train, cache.val, "backup-heads"

    checkpoint = Checkpoint(work / backup, checkpoint_seconds, progress, spec.run_id)
    history_log = HistoryLog(work / "history.json", spec.outputs, progress, spec.run_id,
                             settings.epochs + settings.fine_tune_epochs, watch or print_ticks(progress),
                             checkpoint, started=started)
    early = ResumableEarlyStopping(checkpoint, **early_stopping_settings(settings))
    checkpoint.keep(history_log, early)
    callbacks = [
        checkpoint,  # first: it restores the weights and the epoch the others resume from
        history_log,
        reduce_lr(settings),
        early,
        checkpoint.writer(),  # after the epoch's history, learning rate and early stopping: one unit
        keras.callbacks.TensorBoard(str(work / "logs")),
        *(extra_callbacks or []),
    ]
    fitted.fit(train_data, validation_data=val_data, epochs=settings.epochs, callbacks=callbacks, verbose=0)
    cache_info = None
    if cache:
        cache_info = {"images": cache.images, "seconds": round(cache.seconds, 1),
                      "storage": "memory" if cache.storage == "memory" else "file"}
    cache = train_data = val_data = None  # the features are not needed any more

    if settings.fine_tune_epochs and spec.init == "pretrained" and settings.freeze_backbone:
        progress(f"[{spec.run_id}] fine-tuning the whole network for {settings.fine_tune_epochs} epochs")
        set_frozen(backbone_layer(model), False)
        model._initial_epoch = None  # left by BackupAndRestore; it would override initial_epoch
        compile_model(model, spec.outputs, fine_tune_learning_rate(settings), settings.jit_compile)
        early.carry_over = True  # the stored model is the best epoch of both phases
        if fitted is not model and early.best_weights is not None:
            # Phase one fit the heads on cached features and ended on their best epoch; the whole
            # model shares those layers, so it now holds that epoch: keep it in its own shape.
            early.best_weights = model.get_weights()
        model.fit(splits.train, validation_data=splits.val, epochs=settings.epochs + settings.fine_tune_epochs,
                  initial_epoch=len(history_log.history.get("loss", [])), verbose=0,
                  callbacks=[history_log, early, *(extra_callbacks or [])])

    progress(f"[{spec.run_id}] evaluating on val and test")
    confusions: dict = {}
    results = lab_metrics.evaluate(model, {"val": splits.val, "test": splits.test}, confusions)
    history = history_log.history
    val_loss = history.get("val_loss", [])
    config = {
        "run_id": spec.run_id,
        "task": spec.task,
        "init": spec.init,
        "backbone": name,
        "weights": weights_origin(spec, settings),
        "outputs": list(spec.outputs),
        "settings": settings.to_dict(),
        "dataset": {"source": source.name, "description": source.description, **splits.counts},
        "seed": settings.seed,
        "feature_cache": cache_info,
        "parameters": int(model.count_params()),
        "trainable_parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "epochs_run": len(val_loss),
        "best_epoch": early.best_epoch_number,  # the epoch the stored weights come from
        "train_seconds": round(time.perf_counter() - started, 1),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "runtime": runtime.describe(),  # threads and graph optimisation: they move late digits
    }
    write_json(work / "history.json", history)
    write_json(work / "metrics.json", results)
    if confusions:  # runs with a breed head: per-breed results without the dataset
        write_confusion(work, confusions)
    write_json(work / "config.json", config)
    save_model(model, work / "model.keras")
    for folder in ("backup", "backup-heads", FEATURES_DIR):
        shutil.rmtree(work / folder, ignore_errors=True)
    if final.exists():
        shutil.rmtree(final)
    work.rename(final)
    if settings.mixed_precision:
        keras.mixed_precision.set_global_policy("float32")
    return final


def save_model(model: keras.Model, path: Path) -> None:
    """The final model without its optimizer's state, which only a training goes on from (a
    checkpoint keeps it): about a third of the file for Adam, whose two moments per weight
    double the weights. The app and the export load it uncompiled. Saved as a model of the same
    layers (their weights), so the trained model itself is left as it is."""
    keras.Model(model.input, model.output, name=model.name).save(path)


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for package in ("tensorflow", "keras", "tensorflow-datasets", "numpy"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    return versions
