"""Losses and metrics, in Keras (for training) and numpy (for metrics.json and the app).

The box target is (ymin, xmin, ymax, xmax, has_box): examples without a head box (the whole
test split) weigh nothing in the box loss and are left out of every box metric.

Every split figure is pooled over the whole split (sums of counts over all batches, then one
division), never a mean of per-batch figures. The definitions are listed in README.md, "Metrics".
"""
from __future__ import annotations

from typing import Iterable

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from labcore.settings import NUM_CLASSES


@keras.saving.register_keras_serializable(package="labcore")
def masked_box_mae(y_true, y_pred):
    """Per-example MAE, zero without a box, scaled so the batch mean is the mean over the
    examples that have one."""
    has_box = ops.cast(y_true[:, 4], y_pred.dtype)
    per_example = ops.mean(ops.abs(ops.cast(y_true[:, :4], y_pred.dtype) - y_pred), axis=-1)
    batch = ops.cast(ops.shape(has_box)[0], y_pred.dtype)
    return per_example * has_box * batch / ops.maximum(ops.sum(has_box), 1.0)


@keras.saving.register_keras_serializable(package="labcore")
class MaskedBoxMAE(keras.metrics.Metric):
    """Box MAE over the examples that have a box."""

    def __init__(self, name: str = "mae", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        has_box = ops.cast(y_true[:, 4], "float32")
        err = ops.mean(ops.abs(ops.cast(y_true[:, :4], "float32") - ops.cast(y_pred, "float32")), axis=-1)
        self.total.assign_add(ops.sum(err * has_box))
        self.count.assign_add(ops.sum(has_box))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


def compile_spec(outputs: Iterable[str]) -> tuple[dict, dict]:
    """The report's losses and metrics for the given heads: (loss, metrics)."""
    losses, metrics = {}, {}
    for name in outputs:
        if name == "label":
            losses[name] = "sparse_categorical_crossentropy"
            metrics[name] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                             keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy")]
        elif name == "bbox":
            losses[name] = masked_box_mae
            metrics[name] = [MaskedBoxMAE(name="mae")]
        elif name == "mask":
            losses[name] = "sparse_categorical_crossentropy"
            metrics[name] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return losses, metrics


# --------------------------------------------------------------------------- numpy metrics

def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes (..., 4) in (ymin, xmin, ymax, xmax) order."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ih = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iw = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ih * iw
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def mask_from_probs(probs: np.ndarray) -> np.ndarray:
    """Per-pixel class probabilities (..., C) -> binary pet mask. Training labels are 0/1, so
    with the 37-channel head the pet channel is 1 and the others only ever lose."""
    return (np.argmax(probs, axis=-1) == 1).astype(np.uint8)


def mask_iou(true: np.ndarray, pred: np.ndarray) -> float:
    """IoU of the pet class for one binary mask pair (1.0 when both are empty)."""
    true, pred = np.asarray(true).astype(bool), np.asarray(pred).astype(bool)
    union = np.logical_or(true, pred).sum()
    return float(np.logical_and(true, pred).sum() / union) if union else 1.0


class Accumulator:
    """Running sums over batches, so a whole split is scored without holding it in memory."""

    def __init__(self) -> None:
        self.n_label = self.correct = self.top5 = 0
        self.n_box = 0
        self.abs_err = self.iou = 0.0
        self.confusion = np.zeros((2, 2), np.int64)  # [true, pred] over pixels, pred = binary mask
        self.pixels_right = 0  # pixels whose most probable channel is the true class
        self.label_confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)  # [true, pred] breeds

    def add(self, targets: dict, preds: dict) -> None:
        if "label" in preds:
            labels = np.asarray(targets["label"]).reshape(-1)
            probs = np.asarray(preds["label"])
            top5 = np.argsort(-probs, axis=-1)[:, :5]
            self.n_label += len(labels)
            self.correct += int((top5[:, 0] == labels).sum())
            self.top5 += int((top5 == labels[:, None]).any(axis=1).sum())
            np.add.at(self.label_confusion, (labels.astype(np.int64), top5[:, 0]), 1)
        if "bbox" in preds:
            target = np.asarray(targets["bbox"])
            has = target[:, 4] > 0.5
            true, pred = target[has, :4], np.asarray(preds["bbox"])[has]
            self.n_box += int(has.sum())
            self.abs_err += float(np.abs(true - pred).mean(axis=-1).sum()) if has.any() else 0.0
            self.iou += float(box_iou(true, pred).sum()) if has.any() else 0.0
        if "mask" in preds:
            probs = np.asarray(preds["mask"])
            true = np.asarray(targets["mask"]).reshape(-1).astype(np.int64)
            pred = mask_from_probs(probs).reshape(-1).astype(np.int64)
            self.confusion += np.bincount(true * 2 + pred, minlength=4).reshape(2, 2)
            self.pixels_right += int((np.argmax(probs, axis=-1).reshape(-1) == true).sum())

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.n_label:
            out["label_accuracy"] = self.correct / self.n_label
            out["label_top5_accuracy"] = self.top5 / self.n_label
        if self.n_box:
            out["bbox_mae"] = self.abs_err / self.n_box
            out["bbox_iou"] = self.iou / self.n_box
        c = self.confusion
        if c.sum():
            # Keras' sparse categorical accuracy, as the history's mask_accuracy: with the 37-channel
            # head a pixel whose top channel is 2..36 is wrong, though the binary mask calls it background.
            out["mask_pixel_accuracy"] = self.pixels_right / c.sum()
            # Mean over the classes (background, pet) present in the truth or the prediction.
            unions = [c[k, :].sum() + c[:, k].sum() - c[k, k] for k in (0, 1)]
            out["mask_miou"] = float(np.mean([c[k, k] / u for k, u in enumerate(unions) if u]))
            out["mask_dice"] = float(2 * c[1, 1] / max(c[1, :].sum() + c[:, 1].sum(), 1))
        return out


def evaluate(model: keras.Model, datasets: dict[str, tf.data.Dataset],
             confusions: dict[str, np.ndarray] | None = None) -> dict[str, dict[str, float]]:
    """The metrics.json figures of a model on batched (inputs, targets) datasets, by split name.
    One traced forward pass serves every split and batch size. With `confusions`, each split's
    breed confusion counts ([true, predicted], 37x37) are put in it, for models with a label head."""
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    results = {}
    for name, dataset in datasets.items():
        acc = Accumulator()
        for inputs, targets in dataset:
            preds = {k: v.numpy() for k, v in forward(inputs).items()}
            acc.add({k: v.numpy() for k, v in targets.items()}, preds)
        results[name] = acc.result()
        if confusions is not None and acc.n_label:
            confusions[name] = acc.label_confusion
    return results
