"""The example images the app shows: which data a run saw, which test images to pick, and how
two runs' predictions on them score and differ."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from labcore.data.images import resize_for_model
from labcore.show.inference import Prediction, Predictor, summarise
from labcore.model.metrics import box_iou, mask_iou
from labcore.settings import Settings, settings_from_dict

BATCH = 32


def settings_from_config(config: dict) -> Settings:
    """The Settings a run was trained with (config.json "settings")."""
    stored = config.get("settings")
    return settings_from_dict(stored if isinstance(stored, dict) else None)


def pick_random(indices: Sequence[int], count: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(indices, min(count, len(indices)), replace=False))


def one_per_breed(labels: np.ndarray, count: int) -> list[int]:
    """`count` example indices of as many different breeds as there are, spread over the split
    (the same ones every time): the first of each breed, breeds taken evenly along the list."""
    firsts = sorted({int(c): i for i, c in reversed(list(enumerate(labels)))}.values())
    if len(firsts) <= count:
        return firsts
    return [firsts[round(k * (len(firsts) - 1) / (count - 1))] if count > 1 else firsts[0] for k in range(count)]


def of_breed(indices: Sequence[int], labels: np.ndarray, breed: int) -> list[int]:
    return [int(i) for i in indices if labels[i] == breed]


def most_different(indices: Sequence[int], scores: Sequence[float | None], count: int) -> list[int]:
    """The `count` indices with the highest disagreement scores (None scores last)."""
    order = sorted(range(len(indices)), key=lambda k: -(scores[k] if scores[k] is not None else -1.0))
    return [int(indices[k]) for k in order[:count]]


def predict_images(predictor: Predictor, images: Sequence[np.ndarray]) -> list[Prediction]:
    """Predictions for full-size uint8 images, resized as the training pipeline resizes them."""
    out: list[Prediction] = []
    for start in range(0, len(images), BATCH):
        chunk = images[start:start + BATCH]
        batch = np.stack([resize_for_model(Image.fromarray(im), predictor.image_size) for im in chunk])
        raw = predictor.predict_arrays(batch)
        out += [summarise(predictor.run_id, raw, i) for i in range(len(chunk))]
    return out


def disagreement(a: Prediction, b: Prediction) -> float | None:
    """How differently two runs see one image, 0 (same) to 1, averaged over the outputs both
    have: label (1 - shared top-5 probability mass), box (1 - IoU), mask (1 - IoU).
    None when the runs share no output."""
    parts = []
    if a.top5 is not None and b.top5 is not None:
        pa, pb = dict(a.top5), dict(b.top5)
        parts.append(1.0 - sum(min(pa[k], pb[k]) for k in pa.keys() & pb.keys()))
    if a.box is not None and b.box is not None:
        parts.append(1.0 - float(box_iou(a.box, b.box)))
    if a.mask is not None and b.mask is not None:
        parts.append(1.0 - mask_iou(_resize_mask(a.mask, b.mask.shape[:2]), b.mask))
    return float(np.mean(parts)) if parts else None


def scores(pred: Prediction, example: dict) -> dict[str, float | bool | None]:
    """Per-image scores against the truth: right breed, mask IoU, box IoU (None without a true
    box, as in the test split)."""
    out: dict[str, float | bool | None] = {}
    if pred.top5 is not None:
        out["correct"] = pred.top5[0][0] == int(example["label"])
    if pred.mask is not None:
        true = np.asarray(example["mask"])[..., 0]
        out["mask_iou"] = mask_iou(true, _resize_mask(pred.mask, true.shape))
    if pred.box is not None:
        has_box = float(example.get("has_box", 0)) > 0.5
        out["box_iou"] = float(box_iou(example["bbox"], pred.box)) if has_box else None
    return out


def _resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape[:2] == tuple(shape):
        return mask
    resized = Image.fromarray(mask.astype(np.uint8)).resize((shape[1], shape[0]), Image.Resampling.NEAREST)
    return np.asarray(resized)
