"""The report's training recipe: optimizer, losses and metrics, and the callbacks' settings.

Everything that fits a model uses it: `labcore.train.training` (the runs), `labcore.model.pretext` (the
offline stand-in for ImageNet), `labcore.train.estimate` and the bench (which time the very steps
a run takes). It sits below all of them and imports none of them.
"""
from __future__ import annotations

import keras
import numpy as np

from labcore.model import metrics as lab_metrics
from labcore.settings import Settings

MONITOR = "val_loss"  # what ReduceLROnPlateau and EarlyStopping watch
FINE_TUNE_LR_DIVISOR = 100  # fine-tuning the whole network starts at the learning rate / 100
# A killed run resumes from a checkpoint written at an epoch's end at most this often, so it
# loses at most about this much training. One every epoch cost the demo's EfficientNetB3
# scratch run 10 of its 71 seconds (epochs of 6 s, a 190 MB checkpoint each).
CHECKPOINT_SECONDS = 60.0


def optimizer(learning_rate: float) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate)


def compile_model(model: keras.Model, outputs: tuple[str, ...], learning_rate: float, jit_compile: bool) -> None:
    """The report's optimizer, losses and metrics for a model with these heads."""
    losses, metric_objs = lab_metrics.compile_spec(outputs)
    model.compile(optimizer=optimizer(learning_rate), loss=losses, metrics=metric_objs, jit_compile=jit_compile)
    build_optimizer(model)
    build_loss_trackers(model)


def compile_pretext(model: keras.Model, learning_rate: float) -> None:
    """The pretext classifier (one softmax head over the coats): the report's optimizer."""
    model.compile(optimizer(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    build_optimizer(model)


def build_optimizer(model: keras.Model) -> None:
    """Make the optimizer's variables now. Without a distribution strategy, Keras makes them
    inside the first traced train step, and TensorFlow then traces that step twice (once to
    make the variables, once without): model.fit's first batch, most of a short run's time,
    costs twice as much (MobileNetV3Small at 64 px: 19.0 CPU seconds, 9.6 built first; the
    losses the same to the bit). Under a strategy, Keras builds it itself, in its scope."""
    if getattr(model, "_distribute_strategy", None) is None:
        model.optimizer.build(model.trainable_variables)


def build_loss_trackers(model: keras.Model) -> None:
    """Make the compiled loss's per-head trackers (`label_loss`, `bbox_loss`...) now, for the
    same reason as `build_optimizer`: Keras makes them inside the first traced train step of a
    model with more than one head, which is then traced twice (EfficientNetB3's detection
    model at 64 px: fit's first batch 29.4 s, 22.3 s built first; the losses the same to the
    bit). They are made by computing the loss once on one example of zeros (a sparse head's
    target has no class axis; the box target carries its has-box column), then reset."""
    if getattr(model, "_distribute_strategy", None) is not None or len(model.outputs) < 2:
        return
    y_pred, y_true = {}, {}
    for name, output in zip(model.output_names, model.outputs):
        y_pred[name] = np.zeros((1, *output.shape[1:]), "float32")
        if name == "bbox":
            y_true[name] = np.ones((1, output.shape[-1] + 1), "float32")
        else:  # label, mask: sparse class ids
            y_true[name] = np.zeros((1, *output.shape[1:-1]), "int32")
    model.compute_loss(y=y_true, y_pred=y_pred, training=False)
    model.reset_metrics()


def fine_tune_learning_rate(settings: Settings) -> float:
    return settings.learning_rate / FINE_TUNE_LR_DIVISOR


def reduce_lr(settings: Settings) -> keras.callbacks.ReduceLROnPlateau:
    return keras.callbacks.ReduceLROnPlateau(monitor=MONITOR, factor=settings.lr_factor,
                                             patience=settings.lr_patience, min_lr=settings.min_lr)


def early_stopping_settings(settings: Settings) -> dict:
    """Keyword arguments of the runs' EarlyStopping (which `labcore.train.training` makes resumable)."""
    return {"monitor": MONITOR, "patience": settings.early_stopping_patience}
