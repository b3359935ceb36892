import numpy as np
import pytest

from labcore.metrics import Accumulator, MaskedBoxMAE, box_iou, mask_from_probs, mask_iou, masked_box_mae


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
