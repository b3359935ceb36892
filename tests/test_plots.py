"""labcore.show.plots: curve markers where the history says, smoothing that keeps the data honest,
overlays that touch only what they draw."""
import numpy as np
import pytest

from labcore.show.plots import (FONT_SIZE, PRED_COLOUR, TRUE_COLOUR, best_epoch, class_balance_figure, curve_figure,
                           history_keys, lr_drops, overlay, smooth)

HISTORY = {
    "loss": [2.0, 1.5, 1.0, 0.8, 0.6, 0.5],
    "val_loss": [2.1, 1.6, 1.2, 1.3, 1.4, 1.5],
    "label_accuracy": [0.1, 0.3, 0.5, 0.6, 0.7, 0.8],
    "val_label_accuracy": [0.1, 0.2, 0.4, 0.35, 0.3, 0.3],
    "lr": [1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 2.5e-4],
    "epoch_seconds": [3.0] * 6,
}


def test_best_epoch_is_one_based_argmin_of_val_loss():
    assert best_epoch(HISTORY["val_loss"]) == 3
    assert best_epoch([float("nan"), 0.5, 0.7]) == 2
    assert best_epoch([]) is None


def test_lr_drops_are_the_epochs_that_ran_at_a_lower_rate():
    assert lr_drops(HISTORY["lr"]) == [5, 6]
    assert lr_drops([1e-3, 1e-3, 1e-3]) == []
    assert lr_drops([1e-3, 5e-4, 5e-4, 1e-3]) == [2]  # a rise is not a drop


def test_smoothing_keeps_length_constants_and_raw_at_zero():
    noisy = np.array([1.0, 3.0, 1.0, 3.0, 1.0, 3.0])
    assert np.array_equal(smooth(noisy, 0.0), noisy)
    assert len(smooth(noisy, 0.8)) == len(noisy)
    assert np.allclose(smooth([0.7] * 5, 0.9), 0.7)  # debiased: no pull towards zero
    assert smooth(noisy, 0.8)[0] == pytest.approx(1.0)
    assert np.std(smooth(noisy, 0.8)[2:]) < np.std(noisy[2:])


def test_smoothing_carries_nan_without_poisoning_later_values():
    out = smooth([1.0, float("nan"), 1.0], 0.5)
    assert np.isnan(out[1]) and out[2] == pytest.approx(1.0)


def test_history_keys_lists_training_series_once_loss_first():
    keys = history_keys([HISTORY, {"loss": [1.0], "mask_loss": [1.0], "val_mask_loss": [1.0]}])
    assert keys == ["loss", "label_accuracy", "mask_loss"]


def _traces(fig, name_part):
    return [t for t in fig.data if name_part in t.name]


def test_curve_figure_marks_best_epoch_and_lr_drops_on_the_val_curve():
    fig = curve_figure("label_accuracy", [("run A", HISTORY)])
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [list(t.y) for t in lines] == [HISTORY["label_accuracy"], HISTORY["val_label_accuracy"]]
    assert lines[1].line.dash == "dash"
    (star,) = _traces(fig, "best epoch")
    assert list(star.x) == [3] and list(star.y) == [0.4]
    (drops,) = _traces(fig, "LR lowered")
    assert list(drops.x) == [5, 6] and list(drops.y) == [0.3, 0.3]
    assert sum(bool(t.showlegend) for t in fig.data) == 1  # one legend entry per run
    assert fig.layout.font.size >= 16


def test_curve_figure_markers_follow_the_smoothed_curve_and_runs_keep_given_colours():
    fig = curve_figure("loss", [("A", HISTORY), ("B", {"loss": [1, 2], "val_loss": [3, 2]})],
                       smoothing=0.6, colours=["#111111", "#222222"], legend=False)
    val_a = [t for t in fig.data if t.mode == "lines" and t.legendgroup == "A"][1]
    (star_a,) = _traces(fig, "A: best")
    assert star_a.y[0] == pytest.approx(val_a.y[2])
    assert {t.line.color for t in fig.data if t.mode == "lines" and t.legendgroup == "B"} == {"#222222"}
    assert fig.layout.showlegend is False


def test_class_balance_bars_are_the_counts():
    fig = class_balance_figure({"trainval": {"Pug": 5, "Bengal": 2}, "test": {"Pug": 1, "Bengal": 4}})
    assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [
        ("trainval", ["Pug", "Bengal"], [5, 2]), ("test", ["Pug", "Bengal"], [1, 4])]
    assert fig.layout.font.size == FONT_SIZE >= 16


@pytest.fixture
def grey():
    return np.full((40, 60, 3), 128, np.uint8)


def test_predicted_mask_tints_only_masked_pixels(grey):
    mask = np.zeros((10, 10), np.uint8)  # a smaller mask is scaled to the picture
    mask[:5, :5] = 1
    out = np.asarray(overlay(grey, pred_mask=mask, opacity=0.5)).astype(int)
    inside, outside = out[:20, :30], out[20:, 30:]
    assert (outside == 128).all()
    assert (inside[..., 0] > 128).all() and (inside[..., 1] < 128).all()
    assert (np.asarray(overlay(grey, pred_mask=mask, opacity=0.0)) == grey).all()


def test_true_mask_is_an_outline(grey):
    mask = np.zeros((40, 60, 1), np.uint8)
    mask[10:30, 10:50] = 1
    out = np.asarray(overlay(grey, true_mask=mask))
    assert tuple(out[10, 30]) == TRUE_COLOUR or tuple(out[11, 30]) == TRUE_COLOUR  # edge drawn
    assert tuple(out[18, 20]) == (128, 128, 128)  # the inside of the pet untouched
    assert tuple(out[5, 40]) == (128, 128, 128)  # far from every line


def _extent(picture: np.ndarray, colour: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) pixel of everything drawn in `colour`."""
    rows, cols = np.nonzero((picture == colour).all(axis=-1))
    return rows.min(), cols.min(), rows.max(), cols.max()


def test_boxes_are_drawn_where_their_corners_say_y_then_x(grey):
    """Boxes are (ymin, xmin, ymax, xmax) of a 60 x 40 picture; neither box is square nor on
    the diagonal, so reading x for y moves them."""
    out = np.asarray(overlay(grey, true_box=(0.25, 0.5, 0.75, 1.0), pred_box=(0.0, 0.1, 0.5, 0.3)))
    np.testing.assert_allclose(_extent(out, TRUE_COLOUR), (0.25 * 39, 0.5 * 59, 0.75 * 39, 59), atol=1)
    np.testing.assert_allclose(_extent(out, PRED_COLOUR), (0, 0.1 * 59, 0.5 * 39, 0.3 * 59), atol=1)
    assert tuple(out[20, 40]) == (128, 128, 128)  # inside the true box: only its edges are drawn


def test_an_inverted_predicted_box_is_drawn_between_its_corners(grey):
    out = np.asarray(overlay(grey, pred_box=(1.0, 0.9, 0.5, 0.2)))
    np.testing.assert_allclose(_extent(out, PRED_COLOUR), (0.5 * 39, 0.2 * 59, 39, 0.9 * 59), atol=1)
    assert tuple(out[5, 5]) == (128, 128, 128)


def test_overlay_width_resizes_keeping_aspect(grey):
    assert overlay(grey, width=300).size == (300, 200)
