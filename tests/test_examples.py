"""labcore.show.examples: how Compare picks "where the two runs disagree most", on inputs whose
answer is known."""
import numpy as np
import pytest

from labcore.show.examples import disagreement, most_different
from labcore.show.inference import Prediction


def prediction(top5=None, box=None, mask=None) -> Prediction:
    return Prediction("run", top5, None if box is None else np.array(box, np.float32),
                      None if mask is None else np.array(mask, np.uint8), 0.0)


def test_most_different_takes_the_highest_scores_first_and_none_last():
    indices = [10, 11, 12, 13, 14]
    scores = [0.2, None, 0.9, 0.0, 0.5]
    assert most_different(indices, scores, 3) == [12, 14, 10]
    assert most_different(indices, scores, 5) == [12, 14, 10, 13, 11]
    assert most_different(indices, [None] * 5, 2) == [10, 11]  # nothing to rank: the first ones


def test_disagreement_is_zero_for_the_same_answer_and_one_for_nothing_shared():
    top5 = [(0, 0.6), (1, 0.2), (2, 0.1), (3, 0.05), (4, 0.05)]
    box = [0.1, 0.1, 0.5, 0.5]
    mask = np.zeros((4, 4), np.uint8)
    mask[:2, :2] = 1
    same = prediction(top5, box, mask)
    assert disagreement(same, prediction(top5, box, mask)) == pytest.approx(0.0)

    other_breeds = [(5, 0.6), (6, 0.2), (7, 0.1), (8, 0.05), (9, 0.05)]
    elsewhere = [0.6, 0.6, 0.9, 0.9]
    assert disagreement(prediction(top5, box, 1 - mask), prediction(other_breeds, elsewhere, mask)) == pytest.approx(1.0)


def test_disagreement_averages_the_outputs_both_runs_have():
    # Labels: shared top-5 mass min(0.6, 0.3) + min(0.4, 0.7) = 0.7 -> 0.3.
    a = prediction([(0, 0.6), (1, 0.4)], box=[0.0, 0.0, 0.5, 0.5])
    b = prediction([(0, 0.3), (1, 0.7)], box=[0.0, 0.0, 0.5, 1.0])  # box IoU 0.5 -> 0.5
    assert disagreement(a, b) == pytest.approx((0.3 + 0.5) / 2)
    # Only the labels are shared with a run without a box head.
    assert disagreement(a, prediction([(0, 0.3), (1, 0.7)])) == pytest.approx(0.3)
    # Masks of other sizes are compared at the second one's size: a 2x2 mask's left column
    # against an 4x4 mask's left half, the same pixels.
    left_small = np.array([[1, 0], [1, 0]])
    left_large = np.repeat(np.repeat(left_small, 2, axis=0), 2, axis=1)
    assert disagreement(prediction(mask=left_small), prediction(mask=left_large)) == pytest.approx(0.0)
    # No output in common: no score (Compare then says so and picks at random).
    assert disagreement(prediction(mask=left_small), prediction([(0, 1.0)])) is None


def test_the_most_different_images_are_the_ones_the_runs_disagree_on():
    agree = prediction([(0, 1.0)])
    pairs = [(agree, prediction([(0, 1.0)])), (agree, prediction([(1, 1.0)])), (agree, prediction([(0, 0.5), (1, 0.5)]))]
    scores = [disagreement(a, b) for a, b in pairs]
    assert most_different([100, 101, 102], scores, 2) == [101, 102]
