"""Pictures of two runs' predictions on the same fixed test images, with Grad-CAM, for the export."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from labcore.data.pipeline import raw_examples
from labcore.data.sources import source_key
from labcore.show.examples import predict_images, settings_from_config
from labcore.show.gradcam import gradcam_for, heat_overlay
from labcore.data.images import resize_for_model
from labcore.show.inference import Predictor
from labcore.show.plots import overlay
from labcore.store.runs import ModelLoadError, Run
from labcore.settings import breed_name
from labcore.store.showcase import ShowcaseUnavailable, experiment_images


class GalleryUnavailable(RuntimeError):
    """The data or a model is not at hand; the message says which."""


@dataclass
class Picture:
    picture: Image.Image
    caption: str


def preset_examples(pair: Sequence[Run], count: int, width: int, cache: dict,
                    load: Callable[[Run], Predictor] = Predictor.from_run) -> tuple[list[list[Picture]], str]:
    """For each run of the pair, the first `count` test images the first run was scored on (its
    experiment's data where this machine has it, else the showcase stored with it): the
    prediction overlay and, for a breed head, its Grad-CAM; and where the images come from.
    `cache` keeps models and data between calls (one export makes many); `load` gives a run's
    predictor (the app passes its own loaded ones, Grad-CAM traced with them included)."""
    settings = settings_from_config(pair[0].config)
    key = ("data", str(pair[0].path.parent), source_key(settings))
    if key not in cache:
        try:
            images = experiment_images(pair[0].path.parent, settings)
        except ShowcaseUnavailable as err:
            raise GalleryUnavailable(f"the test images are not at hand: {err} ({err.command})") from err
        cache[key] = (raw_examples(images.source, "test", images.pool[:count]), images.caption)
    examples, caption = cache[key]
    shown = []
    for run in pair:
        if run.run_id not in cache:
            try:
                cache[run.run_id] = load(run)
            except (ModelLoadError, OSError) as err:
                raise GalleryUnavailable(str(err)) from err
        shown.append(run_pictures(cache[run.run_id], examples, width))
    return shown, caption


def run_pictures(predictor: Predictor, examples: Sequence[dict], width: int) -> list[Picture]:
    images = [ex["image"] for ex in examples]
    predictions = predict_images(predictor, images)
    cam = gradcam_for(predictor)
    heat = cam(resize_batch(images, cam.image_size)) if cam else None
    out = []
    for n, (example, pred) in enumerate(zip(examples, predictions)):
        truth = breed_name(int(example["label"]))
        picture = overlay(example["image"], pred_mask=pred.mask, pred_box=pred.box, width=width,
                          true_mask=example["mask"] if pred.mask is not None else None)
        said = f"predicted {breed_name(pred.top5[0][0])} ({pred.top5[0][1]:.0%})" if pred.top5 else "masks only"
        out.append(Picture(picture, f"{truth}: {said}"))
        if heat is not None:
            out.append(Picture(heat_overlay(example["image"], heat.maps[n], cam.image_size, width=width),
                               f"Grad-CAM of {breed_name(int(heat.top[n]))}"))
    return out


def resize_batch(images: Sequence[np.ndarray], size: int) -> np.ndarray:
    return np.stack([resize_for_model(Image.fromarray(im), size) for im in images])
