"""Grad-CAM: one trace per model, the overlay the pages show, and a heat map that looks at the pet.

The look-at-the-pet test trains a tiny-backbone detection model on drawn pets, where the coat
alone decides the breed, at 192 px: the tiny backbone downsamples 32x, so at the suite's usual
32 px its last feature map is 1x1 and any heat map covers the whole picture; 192 px gives 6x6.
"""
import keras
import numpy as np
import pytest
from PIL import Image

from labcore.gradcam import GradCam, gradcam_for, gradcam_overlay, has_breed_head, heat_overlay, mass_in_mask
from labcore.images import resize_for_model
from labcore.inference import Predictor
from labcore.models import build_backbone, build_model, set_bn_momentum
from labcore.sources import draw_pet

SIZE = 192


def tiny_model(settings, task: str = "detection", size: int = SIZE) -> keras.Model:
    settings = settings.with_overrides(image_size=size, dense_units=(64,), branch_units=32)
    model = build_model(task, settings, build_backbone("tiny", size))
    set_bn_momentum(model, 0.9)
    return model


def resized(images: np.ndarray, size: int = SIZE) -> np.ndarray:
    return np.stack([resize_for_model(Image.fromarray(im), size) for im in images]).astype(np.float32)


def red_detector(size: int) -> keras.Model:
    """A model whose answer is known: its "backbone" lights up (channel 0) where a pixel is
    strongly red, pooled 32x like the real backbones; breed 0 (Abyssinian, drawn with a red
    coat) scores that channel's mean, every other breed 0."""
    image = keras.Input((size, size, 3))
    red = keras.layers.Conv2D(2, 1, activation="relu", name="red")(image)
    pooled = keras.layers.AveragePooling2D(32)(red)
    backbone = keras.Model(image, pooled, name="known")
    inputs = keras.Input((size, size, 3))
    features = backbone(inputs)
    label = keras.layers.Dense(37, activation="softmax", name="label")
    model = keras.Model(inputs, {"label": label(keras.layers.GlobalAveragePooling2D()(features))})
    # channel 0: R - G/2 - B/2 - 40 (the coat, not a grey or brownish background); channel 1: all light.
    backbone.get_layer("red").set_weights([np.array([[[[1, 1], [-0.5, 1], [-0.5, 1]]]], np.float32),
                                           np.array([-40, 0], np.float32)])
    kernel = np.zeros((2, 37), np.float32)
    kernel[0, 0] = 1.0
    label.set_weights([kernel, np.zeros(37, np.float32)])
    return model


def test_the_heat_map_lies_where_the_evidence_is():
    """Grad-CAM's wiring (nested backbone, gradient of the top logit, weights, ReLU) on a
    model whose evidence is known to be the red coat: the map must lie on the pet. (The
    channel of plain lightness, which the breed ignores, must not pull it onto the background.)"""
    rng = np.random.default_rng(0)
    pets = [draw_pet(0, rng) for _ in range(20)]
    images = resized(np.stack([p[0] for p in pets]))
    heat = GradCam(red_detector(SIZE), "tiny", SIZE)(images)
    assert (heat.top == 0).all() and heat.maps.shape == (20, SIZE // 32, SIZE // 32)
    masses = [mass_in_mask(heat.maps[i], pets[i][2]) for i in range(20)]
    area = float(np.mean([p[2].mean() for p in pets]))
    print(f"\nGrad-CAM mass inside the pet mask, known red-coat model: {np.mean(masses):.3f} "
          f"(the pet covers {area:.3f} of the picture)")
    assert np.mean(masses) > 0.6 and min(masses) > area


def test_one_trace_serves_every_batch_size(tiny_settings):
    cam = GradCam(tiny_model(tiny_settings, size=64), "tiny", 64)
    rng = np.random.default_rng(0)
    one = cam(rng.uniform(0, 255, (1, 64, 64, 3)))
    five = cam(rng.uniform(0, 255, (5, 64, 64, 3)))
    assert cam._heat.experimental_get_tracing_count() == 1
    assert one.maps.shape == (1, 2, 2) and five.maps.shape == (5, 2, 2) and five.top.shape == (5,)
    assert 0.0 <= five.maps.min() and five.maps.max() <= 1.0 and five.seconds > 0


def test_the_overlay_for_a_photo_and_none_for_a_mask_only_model(tiny_settings):
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8))
    predictor = Predictor(tiny_model(tiny_settings, "multitask", 64), "multitask-scratch", "tiny", 64)
    picture, seconds = gradcam_overlay(predictor, photo)
    assert picture.size == photo.size and seconds > 0
    assert gradcam_for(predictor) is gradcam_for(predictor)  # made once per predictor
    assert gradcam_overlay(predictor, photo, width=60)[0].size == (60, 45)
    masks_only = Predictor(tiny_model(tiny_settings, "segmentation", 64), "segmentation-scratch", "tiny", 64)
    assert not has_breed_head(masks_only.model) and gradcam_overlay(masks_only, photo) is None
    with pytest.raises(ValueError, match="no breed head"):
        GradCam(masks_only.model, "tiny", 64)


def test_hot_areas_are_tinted_and_mass_is_counted_where_the_mask_is():
    heat = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    grey = np.full((40, 40, 3), 128, np.uint8)
    out = np.asarray(heat_overlay(grey, heat))
    assert np.abs(out[2, 2].astype(int) - 128).sum() > np.abs(out[37, 37].astype(int) - 128).sum()
    mask = np.zeros((40, 40, 1), np.uint8)
    mask[:20, :20] = 1
    assert mass_in_mask(heat, mask) > 0.5 and mass_in_mask(heat, 1 - mask) < 0.5
    assert np.isnan(mass_in_mask(np.zeros((2, 2), np.float32), mask))
