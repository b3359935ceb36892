import numpy as np
import pytest
from PIL import Image

from labcore.data.images import resize_for_model
from labcore.show.inference import Predictor
from labcore.store.runs import list_runs, load_model
from labcore.data.sources import draw_pet


def test_predictor_matches_the_model_and_summarises(demo_runs):
    run = next(r for r in list_runs(demo_runs) if r.run_id == "multitask-scratch")
    predictor = Predictor.from_run(run)
    image, _, _ = draw_pet(3, np.random.default_rng(0), size=150)
    photo = Image.fromarray(image)

    pred = predictor.predict(photo)
    assert pred.run_id == "multitask-scratch" and pred.seconds > 0
    assert len(pred.top5) == 5 and all(0 <= k < 37 for k, _ in pred.top5)
    probs = [p for _, p in pred.top5]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert pred.box.shape == (4,) and ((0 <= pred.box) & (pred.box <= 1)).all()
    assert pred.mask.shape == (run.image_size, run.image_size) and set(np.unique(pred.mask)) <= {0, 1}

    # The compiled path gives what the Keras model gives on the same pixels: the same best
    # class, each of the five classes with its own probability, the same box and mask.
    expected = load_model(run).predict(resize_for_model(photo, run.image_size)[None], verbose=0)
    label_probs = expected["label"][0]
    assert pred.top5[0][0] == int(np.argmax(label_probs))
    for k, p in pred.top5:
        assert p == pytest.approx(float(label_probs[k]), rel=1e-4), k
    np.testing.assert_allclose(pred.box, expected["bbox"][0], atol=1e-5)
    mask_probs = expected["mask"][0]
    others = np.delete(mask_probs, 1, axis=-1).max(axis=-1)
    decided = np.abs(mask_probs[..., 1] - others) > 1e-5  # pixels not on a knife-edge between channels
    assert decided.mean() > 0.9
    np.testing.assert_array_equal(pred.mask[decided], (mask_probs[..., 1] > others)[decided].astype(np.uint8))


def test_predict_arrays_takes_any_batch_size(demo_runs):
    run = next(r for r in list_runs(demo_runs) if r.run_id == "segmentation-scratch")
    predictor = Predictor.from_run(run)
    for n in (1, 3):
        out = predictor.predict_arrays(np.zeros((n, run.image_size, run.image_size, 3), np.uint8))
        assert out["mask"].shape == (n, run.image_size, run.image_size, 37)
