"""labcore.batching: threads asking one model at once share a forward pass, and each gets the
answer a lone call would have given."""
import threading

import numpy as np
from PIL import Image

from labcore.batching import BatchingPredictor
from labcore.inference import Predictor
from labcore.models import build_backbone, build_model


def test_simultaneous_calls_run_as_one_batch_with_each_callers_own_answer(tiny_settings):
    model = build_model("multitask", tiny_settings, build_backbone("tiny", tiny_settings.image_size, weights=None))
    predictor = Predictor(model, "multitask-scratch", "tiny", tiny_settings.image_size)
    batching = BatchingPredictor(predictor, wait_s=0.5)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)) for _ in range(4)]
    answers = [None] * 4

    def ask(i: int) -> None:
        answers[i] = batching.predict(images[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert batching.batch_sizes == [4]
    for image, answer in zip(images, answers):
        alone = predictor.predict(image)
        assert [k for k, _ in answer.top5] == [k for k, _ in alone.top5]
        np.testing.assert_allclose([p for _, p in answer.top5], [p for _, p in alone.top5], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(answer.box, alone.box, atol=1e-5)
        assert (answer.mask != alone.mask).mean() < 0.01
