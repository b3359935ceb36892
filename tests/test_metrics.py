import keras
import numpy as np
import pytest

from labcore.model.metrics import Accumulator, MaskedBoxMAE, box_iou, mask_from_probs, mask_iou, masked_box_mae


def test_box_iou_known_values():
    a = np.array([0.0, 0.0, 0.5, 0.5])
    assert box_iou(a, a) == pytest.approx(1.0)
    assert box_iou(a, [0.5, 0.5, 1.0, 1.0]) == pytest.approx(0.0)
    assert box_iou(a, [0.0, 0.25, 0.5, 0.75]) == pytest.approx(1 / 3)


def test_box_loss_and_metric_ignore_examples_without_a_box():
    y_true = np.array([[0.1, 0.1, 0.5, 0.5, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
    y_pred = np.array([[0.2, 0.2, 0.6, 0.6], [0.9, 0.9, 0.9, 0.9]], np.float32)
    # Only the first example counts: its error is 0.1; the batch mean of the loss equals it.
    assert float(np.mean(masked_box_mae(y_true, y_pred))) == pytest.approx(0.1, abs=1e-6)
    metric = MaskedBoxMAE()
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(0.1, abs=1e-6)
    # A batch without any box adds nothing (and does not divide by zero).
    metric.update_state(y_true[1:], y_pred[1:])
    assert float(metric.result()) == pytest.approx(0.1, abs=1e-6)
    assert float(np.sum(masked_box_mae(y_true[1:], y_pred[1:]))) == 0.0


def test_accumulator_scores_boxes_only_where_they_exist():
    acc = Accumulator()
    acc.add({"bbox": np.array([[0, 0, 0.5, 0.5, 1], [0, 0, 0, 0, 0]], np.float32)},
            {"bbox": np.array([[0, 0, 0.5, 0.5], [0.3, 0.3, 0.9, 0.9]], np.float32)})
    result = acc.result()
    assert result["bbox_mae"] == pytest.approx(0.0) and result["bbox_iou"] == pytest.approx(1.0)
    empty = Accumulator()
    empty.add({"bbox": np.zeros((3, 5), np.float32)}, {"bbox": np.full((3, 4), 0.5, np.float32)})
    assert "bbox_mae" not in empty.result()  # no box at all: no box figure, not a fake one


def test_accumulator_label_and_mask_figures():
    acc = Accumulator()
    probs = np.full((4, 37), 0.001, np.float32)
    probs[np.arange(4), [0, 1, 2, 3]] = 0.9
    probs[3, 5] = 0.5  # example 3: truth 5 is second-best
    acc.add({"label": np.array([0, 1, 9, 5])}, {"label": probs})
    true = np.zeros((1, 4, 4, 1), np.int32)
    true[0, :2] = 1  # 8 pet pixels of 16
    pred = np.zeros((1, 4, 4, 37), np.float32)
    pred[..., 0] = 1.0
    pred[0, :1, :, 1] = 2.0  # predicts 4 pet pixels, all right
    acc.add({"mask": true}, {"mask": pred})
    r = acc.result()
    assert r["label_accuracy"] == pytest.approx(0.5)
    assert r["label_top5_accuracy"] == pytest.approx(0.75)
    assert r["mask_pixel_accuracy"] == pytest.approx(12 / 16)
    assert r["mask_miou"] == pytest.approx((8 / 12 + 4 / 8) / 2)
    assert r["mask_dice"] == pytest.approx(2 * 4 / (8 + 4))


def test_mask_helpers():
    probs = np.zeros((2, 2, 37))
    probs[..., 0] = 0.6
    probs[0, 0, 1] = 0.9
    assert mask_from_probs(probs).tolist() == [[1, 0], [0, 0]]
    assert mask_iou(np.array([1, 1, 0]), np.array([1, 0, 0])) == pytest.approx(0.5)
    assert mask_iou(np.zeros(3), np.zeros(3)) == 1.0


def _mask_probs(pred: np.ndarray) -> np.ndarray:
    """A 0/1 mask [N, H, W] as 37-channel probabilities whose top channel is the mask's value."""
    probs = np.full((*pred.shape, 37), 0.01, np.float32)
    probs[..., 0] = np.where(pred == 0, 0.9, 0.01)
    probs[..., 1] = np.where(pred == 1, 0.9, 0.01)
    return probs


def test_accumulator_pools_every_figure_over_the_batches_not_per_batch():
    """Figures for a split count every example and pixel once: a big batch weighs more than a
    small one (the last batch of a split is usually smaller)."""
    acc = Accumulator()
    # Batch A, one example: label right, a box off by 0.1 everywhere, a perfect all-pet mask.
    a_label = np.zeros((1, 37), np.float32)
    a_label[0, 3] = 1.0
    acc.add({"label": np.array([3]), "bbox": np.array([[0.2, 0.2, 0.6, 0.6, 1]], np.float32),
             "mask": np.ones((1, 1, 4, 1), np.int32)},
            {"label": a_label, "bbox": np.array([[0.3, 0.3, 0.7, 0.7]], np.float32),
             "mask": _mask_probs(np.ones((1, 1, 4), np.int32))})
    # Batch B, three examples: labels wrong, two exact boxes and one without a box, masks half right.
    b_label = np.zeros((3, 37), np.float32)
    b_label[:, 0] = 1.0
    true_b = np.array([[[1, 1, 0, 0]], [[0, 0, 0, 0]], [[0, 0, 0, 0]]])
    pred_b = np.array([[[1, 0, 0, 0]], [[0, 0, 0, 1]], [[0, 0, 0, 0]]])
    acc.add({"label": np.array([5, 6, 7]),
             "bbox": np.array([[0.1, 0.1, 0.5, 0.5, 1], [0.2, 0.2, 0.4, 0.4, 1], [0, 0, 0, 0, 0]], np.float32),
             "mask": true_b[..., None]},
            {"label": b_label, "bbox": np.array([[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.4, 0.4], [0.9] * 4], np.float32),
             "mask": _mask_probs(pred_b)})
    r = acc.result()
    # Pooled: 1 of 4 labels right (per-batch mean: 0.5); 3 boxes, error 0.1 + 0 + 0 (mean of batches: 0.05).
    assert r["label_accuracy"] == pytest.approx(1 / 4)
    assert r["bbox_mae"] == pytest.approx(0.1 / 3)
    iou_a = (0.3 * 0.3) / (0.4 * 0.4 * 2 - 0.3 * 0.3)
    assert r["bbox_iou"] == pytest.approx((iou_a + 2) / 3)
    # 16 pixels: pet 6 true / 6 predicted / 5 both; background 10 / 10 / 9.
    assert r["mask_pixel_accuracy"] == pytest.approx(14 / 16)  # per-batch mean: (1 + 10/12) / 2
    assert r["mask_miou"] == pytest.approx((5 / 7 + 9 / 11) / 2)
    assert r["mask_dice"] == pytest.approx(2 * 5 / 12)


def test_mean_iou_leaves_out_a_class_absent_from_truth_and_prediction():
    acc = Accumulator()
    all_pet = np.ones((2, 3, 3), np.int32)
    acc.add({"mask": all_pet[..., None]}, {"mask": _mask_probs(all_pet)})
    assert acc.result()["mask_miou"] == pytest.approx(1.0)  # background appears nowhere: not an IoU of 0
    acc.add({"mask": np.zeros((1, 3, 3, 1), np.int32)}, {"mask": _mask_probs(np.ones((1, 3, 3), np.int32))})
    # Now background is in the truth (9 pixels), never predicted: its IoU 0 counts.
    assert acc.result()["mask_miou"] == pytest.approx((18 / 27 + 0) / 2)


def test_mask_pixel_accuracy_is_the_histories_mask_accuracy():
    """metrics.json's mask_pixel_accuracy and the history's mask_accuracy (Keras' sparse
    categorical accuracy) are one definition: the top channel must be the true class, so a
    background pixel whose top channel is one of 2..36 is wrong, as in training."""
    rng = np.random.default_rng(0)
    true = rng.integers(0, 2, (3, 5, 5, 1))
    probs = rng.random((3, 5, 5, 37)).astype(np.float32)
    probs[:2, :2, :, 1] += 2.0  # some pixels say pet for sure; the rest mostly top out on channels 2..36
    acc = Accumulator()
    acc.add({"mask": true[:1]}, {"mask": probs[:1]})
    acc.add({"mask": true[1:]}, {"mask": probs[1:]})
    keras_accuracy = keras.metrics.SparseCategoricalAccuracy()
    keras_accuracy.update_state(true[:1], probs[:1])
    keras_accuracy.update_state(true[1:], probs[1:])
    assert acc.result()["mask_pixel_accuracy"] == pytest.approx(float(keras_accuracy.result()), abs=1e-6)


def test_accumulator_counts_breed_confusions_over_batches():
    acc = Accumulator()
    probs = np.zeros((3, 37), np.float32)
    probs[[0, 1, 2], [4, 4, 7]] = 1.0
    acc.add({"label": np.array([4, 5, 7])}, {"label": probs})
    acc.add({"label": np.array([5])}, {"label": probs[:1]})
    expected = np.zeros((37, 37), np.int64)
    expected[4, 4] = expected[7, 7] = 1
    expected[5, 4] = 2  # breed 5 taken for breed 4 twice, once in each batch
    assert acc.label_confusion.tolist() == expected.tolist()
