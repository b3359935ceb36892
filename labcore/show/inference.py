"""Prediction through a compiled, warmed-up forward pass (never `model.predict` per image).

`model.predict` builds a data pipeline and a step function on every call: 10-20x the cost of
the network itself on one image. A `Predictor` traces the forward pass once, for any batch
size, and runs it as a plain graph call, one call at a time. The app's sessions hand their
pictures to its queue (`submit`), which runs those that arrive together as one batch
(`labcore.show.batcher`).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from labcore.data.pipeline import preprocess_images
from labcore.data.images import resize_for_model
from labcore.model.metrics import mask_from_probs
from labcore.show.batcher import Batcher, limits_for
from labcore.store.runs import Run, load_model


@dataclass
class Prediction:
    run_id: str
    top5: list[tuple[int, float]] | None  # (class index, probability), best first
    box: np.ndarray | None  # (ymin, xmin, ymax, xmax), normalised
    mask: np.ndarray | None  # uint8 [size, size], 1 = pet
    seconds: float  # the forward pass that made it (of its whole batch) and the post-processing
    batch: int = 1  # how many pictures that forward pass took


class Predictor:
    def __init__(self, model, run_id: str, backbone: str, image_size: int):
        self.model, self.run_id, self.backbone, self.image_size = model, run_id, backbone, image_size
        spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32)
        self.forward = tf.function(lambda x: model(preprocess_images(x, backbone), training=False),
                                   input_signature=[spec])
        self.forward(tf.zeros([1, image_size, image_size, 3]))  # trace and warm up now, not on the first upload
        self._one_at_a_time = threading.Lock()
        self.queue: Batcher[np.ndarray, Prediction] = Batcher(self._answer_batch, *limits_for(image_size),
                                                               name=run_id)

    @classmethod
    def from_run(cls, run: Run) -> "Predictor":
        return cls(load_model(run), run.run_id, run.config.get("backbone", ""), run.image_size)

    def predict_arrays(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs for a batch of resized images (float or uint8 0..255, [N, S, S, 3]). Calls
        from several threads take turns: on a few cores, two forward passes at once only share them."""
        with self._one_at_a_time:
            out = self.forward(tf.convert_to_tensor(images, tf.float32))
            return {k: v.numpy() for k, v in out.items()}

    def predict(self, image: Image.Image) -> Prediction:
        """One upright RGB picture, end to end: resize, forward, post-process."""
        start = time.perf_counter()
        raw = self.predict_arrays(resize_for_model(image, self.image_size)[None])
        pred = summarise(self.run_id, raw, 0)
        pred.seconds = time.perf_counter() - start
        return pred

    def submit(self, image: Image.Image) -> "Future[Prediction]":
        """One upright RGB picture through the model's shared queue: its future gets the
        answer, computed in a batch with the pictures other sessions submit meanwhile."""
        return self.queue.submit(resize_for_model(image, self.image_size))

    def _answer_batch(self, pictures: Sequence[np.ndarray]) -> list[Prediction]:
        start = time.perf_counter()
        raw = self.predict_arrays(np.stack(pictures))
        answers = [summarise(self.run_id, raw, i) for i in range(len(pictures))]
        seconds = time.perf_counter() - start
        return [replace(answer, seconds=seconds, batch=len(pictures)) for answer in answers]


def summarise(run_id: str, raw: dict[str, np.ndarray], i: int) -> Prediction:
    """Example `i` of a batch of raw outputs, as a Prediction."""
    top5 = None
    if "label" in raw:
        probs = raw["label"][i]
        best = np.argsort(-probs)[:5]
        top5 = [(int(k), float(probs[k])) for k in best]
    box = raw["bbox"][i].astype(np.float32) if "bbox" in raw else None
    mask = mask_from_probs(raw["mask"][i]) if "mask" in raw else None
    return Prediction(run_id, top5, box, mask, 0.0)
