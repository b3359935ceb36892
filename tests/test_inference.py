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


def test_two_photos_submitted_together_run_as_one_batch_and_each_caller_gets_its_own(tiny_settings):
    """The shared queue: two sessions' photos in one forward pass, each answer back to the
    session that sent its photo, the same as that photo alone through `predict`."""
    from labcore.model.architectures import build_backbone, build_model

    model = build_model("multitask", tiny_settings, build_backbone("tiny", tiny_settings.image_size))
    predictor = Predictor(model, "multitask-scratch", "tiny", tiny_settings.image_size)
    rng = np.random.default_rng(1)
    photos = [Image.fromarray(draw_pet(label, rng, size=120)[0]) for label in (2, 30)]
    alone = [predictor.predict(photo) for photo in photos]
    assert not np.allclose(alone[0].box, alone[1].box)  # so an answer handed to the wrong caller shows

    predictor.queue.max_batch, predictor.queue.wait_s = 2, 30.0  # full at two: it runs at once
    futures = [predictor.submit(photo) for photo in photos]
    answers = [future.result(60) for future in futures]
    assert [a.batch for a in answers] == [2, 2] and dict(predictor.queue.sizes) == {2: 1}
    for answer, expected in zip(answers, alone):
        assert [k for k, _ in answer.top5] == [k for k, _ in expected.top5]
        np.testing.assert_allclose([p for _, p in answer.top5], [p for _, p in expected.top5], rtol=1e-4)
        np.testing.assert_allclose(answer.box, expected.box, atol=1e-5)
        assert (answer.mask != expected.mask).mean() < 0.01 and answer.seconds > 0


def test_one_models_forward_never_runs_from_two_threads_at_once(tiny_settings):
    """The Compare page and the queue's batch thread may both call a model: they take turns."""
    import threading
    import time

    from labcore.model.architectures import build_backbone, build_model

    model = build_model("segmentation", tiny_settings, build_backbone("tiny", tiny_settings.image_size))
    predictor = Predictor(model, "segmentation-scratch", "tiny", tiny_settings.image_size)
    inside, most = [0], [0]
    compiled = predictor.forward

    def watched(x):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.05)  # long enough for the other threads to try to come in
        out = compiled(x)
        inside[0] -= 1
        return out

    predictor.forward = watched
    images = np.zeros((1, tiny_settings.image_size, tiny_settings.image_size, 3), np.uint8)
    threads = [threading.Thread(target=predictor.predict_arrays, args=(images,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert most[0] == 1 and inside[0] == 0
