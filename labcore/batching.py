"""Simultaneous predictions on one model run as one batch, as TF Serving batches requests.

Streamlit runs each session's script in a thread of its own. When several sessions ask the same
model for a prediction within `wait_s` of each other, the first of them waits that long, then
runs every image that arrived meanwhile through one forward pass, and each caller gets its own
answer. On a CPU a batch of 8 costs less than 8 calls of one.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from labcore.images import resize_for_model
from labcore.inference import Prediction, Predictor, summarise


@dataclass
class _Request:
    pixels: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    result: Prediction | None = None
    error: BaseException | None = None


class BatchingPredictor:
    """A Predictor's `predict`, shared by threads, batched across them."""

    def __init__(self, predictor: Predictor, wait_s: float = 0.005):
        self.predictor, self.wait_s = predictor, wait_s
        self.run_id, self.image_size = predictor.run_id, predictor.image_size
        self._lock = threading.Lock()
        self._waiting: list[_Request] = []
        self.batch_sizes: list[int] = []  # one entry per forward pass, for the curious and the tests

    def predict(self, image: Image.Image) -> Prediction:
        start = time.perf_counter()
        request = _Request(resize_for_model(image, self.image_size))
        with self._lock:
            self._waiting.append(request)
            leads = len(self._waiting) == 1
        if leads:
            time.sleep(self.wait_s)
            with self._lock:
                batch, self._waiting = self._waiting, []
            self._run(batch)
        request.done.wait()
        if request.error is not None:
            raise request.error
        pred = request.result
        pred.seconds = time.perf_counter() - start
        return pred

    def _run(self, batch: list[_Request]) -> None:
        self.batch_sizes.append(len(batch))
        try:
            raw = self.predictor.predict_arrays(np.stack([r.pixels for r in batch]))
            for i, request in enumerate(batch):
                request.result = summarise(self.run_id, raw, i)
        except BaseException as err:  # every waiter must wake, and learn why
            for request in batch:
                request.error = err
        finally:
            for request in batch:
                request.done.set()
