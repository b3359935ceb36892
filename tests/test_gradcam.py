"""Grad-CAM: one trace per model, the overlay the pages show, and a heat map that looks at the pet.

The look-at-the-pet test trains a detection model on drawn pets, where the coat alone decides
the breed, and needs a last feature map fine enough to say where: a map pooled from the true
mask scores 0.30 of its mass inside the mask at 2x2 (the demo's real backbones at 64 px; the pet
alone covers 0.26), 0.76 at 6x6 and 0.88 at 12x12. So its backbone halves the picture three
times, not five: 12x12 at the drawn pets' own 96 px.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from labcore.show.gradcam import (NO_HEAT, GradCam, cam_caption, cell_centres, gradcam_for, gradcam_overlay, has_breed_head,
                             heat_overlay, mass_in_mask)
from labcore.data.images import resize_for_model
from labcore.show.inference import Predictor
from labcore.model.architectures import build_backbone, build_model, set_bn_momentum, set_frozen
from labcore.data.sources import NUM_CLASSES, draw_pet, synthetic_arrays

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
    strongly red, averaged over 32x32 blocks placed where the real backbones' cells sit (half a
    cell down and right of a plain grid, see `cell_centres`); breed 0 (Abyssinian, drawn with a
    red coat) scores that channel's mean, every other breed 0."""
    image = keras.Input((size, size, 3))
    red = keras.layers.Conv2D(2, 1, activation="relu", name="red")(image)
    shifted = keras.layers.ZeroPadding2D(((0, 16), (0, 16)))(keras.layers.Cropping2D(((16, 0), (16, 0)))(red))
    pooled = keras.layers.AveragePooling2D(32)(shifted)
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
    masses = [mass_in_mask(heat.maps[i], pets[i][2], SIZE) for i in range(20)]
    area = float(np.mean([p[2].mean() for p in pets]))
    print(f"\nGrad-CAM mass inside the pet mask, known red-coat model: {np.mean(masses):.3f} "
          f"(the pet covers {area:.3f} of the picture)")
    assert np.mean(masses) > 0.6 and min(masses) > area


def frozen_with_a_common_part(size: int, settings) -> keras.Model:
    """A frozen "pretrained" backbone under the app's own heads (`build_model`: pooling, then
    Dense, BatchNormalization and ReLU, then the label layer), as a pretrained run has them,
    with a known answer. The backbone's channel 0 is the red coat, breed 0's evidence (as in
    `red_detector`); channel 1 is on everywhere for every picture (5.0), the common part a
    frozen pretrained backbone's channels carry. Training leaves the heads' BatchNormalization
    with the average output as its moving mean: 0 for the coat (most of a picture has none),
    4.9 for the common part. Breed 0's logit is then coat - (common part - 4.9) + 1: it wins
    on every picture, and on a red-coated pet by what the coat adds."""
    image = keras.Input((size, size, 3))
    coat = keras.layers.Conv2D(1, 1, activation="relu", name="coat")(image)
    coat = keras.layers.ZeroPadding2D(((0, 16), (0, 16)))(keras.layers.Cropping2D(((16, 0), (16, 0)))(coat))
    common = keras.layers.Conv2D(1, 1, activation="relu", name="common")(image)
    channels = [keras.layers.AveragePooling2D(32)(x) for x in (coat, common)]
    backbone = keras.Model(image, keras.layers.Concatenate()(channels), name="pretrained")
    backbone.get_layer("coat").set_weights([np.array([[[[1], [-0.5], [-0.5]]]], np.float32) / 255,
                                            np.array([-40 / 255], np.float32)])
    backbone.get_layer("common").set_weights([np.zeros((1, 1, 3, 1), np.float32), np.array([5.0], np.float32)])
    set_frozen(backbone, True)
    model = build_model("detection", settings.with_overrides(image_size=size, dense_units=(), branch_units=2), backbone)
    for layer in model.layers:  # both heads' Dense + BatchNormalization pass the two channels on
        if isinstance(layer, keras.layers.Dense) and layer.name not in ("label", "bbox"):
            layer.set_weights([np.eye(2, dtype=np.float32), np.zeros(2, np.float32)])
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([np.ones(2), np.zeros(2), np.array([0.0, 4.9]), np.ones(2)])
    kernel, bias = np.zeros((2, NUM_CLASSES), np.float32), np.zeros(NUM_CLASSES, np.float32)
    kernel[:, 0], bias[0] = [1.0, -1.0], 1.0
    model.get_layer("label").set_weights([kernel, bias])
    return model


def test_a_frozen_backbones_common_part_is_not_taken_for_evidence(tiny_settings):
    """Why the frozen pretrained runs' maps were blank: plain Grad-CAM weighs the raw features,
    common part included, which here outweighs the coat in every cell (each cell's weighted
    sum is coat - 5 < 0), so the ReLU left nothing. Measured from the heads' moving mean, the
    coat is what counts, and the map lies on the pet."""
    rng = np.random.default_rng(0)
    pets = [draw_pet(0, rng) for _ in range(20)]
    model = frozen_with_a_common_part(SIZE, tiny_settings)
    heat = GradCam(model, "tiny", SIZE)(resized(np.stack([p[0] for p in pets])))
    assert (heat.top == 0).all()
    assert not heat.empty.any(), f"{heat.empty.sum()} of 20 maps blank"
    masses = [mass_in_mask(heat.maps[i], pets[i][2], SIZE) for i in range(20)]
    area = float(np.mean([p[2].mean() for p in pets]))
    assert np.mean(masses) > 0.6 and min(masses) > area, (np.mean(masses), min(masses), area)


def test_a_map_with_no_heat_says_so(tiny_settings):
    """Breed 0 wins on a grey picture too (by the logit's bias), with nothing in it that adds to
    its score: the map is empty, and its caption says so instead of passing the bare photo off
    as a map."""
    model = frozen_with_a_common_part(SIZE, tiny_settings)
    grey = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
    got = gradcam_overlay(Predictor(model, "detection-pretrained", "tiny", SIZE), grey)
    assert got.empty
    assert cam_caption("detection-pretrained", got.seconds, got.empty).endswith(f" · {NO_HEAT}")
    pet = Image.fromarray(draw_pet(0, np.random.default_rng(1))[0])
    shown = gradcam_overlay(Predictor(model, "detection-pretrained", "tiny", SIZE), pet)
    assert not shown.empty and NO_HEAT not in cam_caption("detection-pretrained", shown.seconds, shown.empty)


def pet_finder(size: int, settings) -> keras.Model:
    """A detection model (the app's heads) on a small conv backbone that halves the picture
    three times with "same" padding like the real ones: a 12x12 last feature map at 96 px."""
    image = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(image)
    for filters in (16, 32, 32):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    settings = settings.with_overrides(image_size=size, dense_units=(64,), branch_units=32)
    model = build_model("detection", settings, keras.Model(image, x, name="tiny"))
    set_bn_momentum(model, 0.9)
    return model


def test_a_trained_model_looks_at_the_pet(tiny_settings):
    """Trained on 1024 drawn pets, the breed head's Grad-CAM (the app's, scaled to the mask by
    the app's `mass_in_mask`) puts more than half its mass on the pet over 20 test pets; a map
    with no positive evidence anywhere counts as 0. The same model untrained is printed beside it,
    and the pet's area: what a uniform map would score."""
    size = 96
    keras.utils.set_random_seed(0)
    trained, untrained = pet_finder(size, tiny_settings), pet_finder(size, tiny_settings)
    train, test = synthetic_arrays(1024, 0), synthetic_arrays(20, 1)
    trained.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss={"label": "sparse_categorical_crossentropy", "bbox": "mae"})
    trained.fit(resized(train["image"], size), {"label": train["label"], "bbox": train["bbox"]},
                epochs=20, batch_size=32, verbose=0)
    images = resized(test["image"], size)
    accuracy = float(np.mean(np.argmax(trained(images)["label"], -1) == test["label"]))
    mass = {}
    for name, model in (("trained", trained), ("random weights", untrained)):
        heat = GradCam(model, "tiny", size)(images)
        assert heat.maps.shape == (20, 12, 12)
        mass[name] = float(np.mean(np.nan_to_num([mass_in_mask(heat.maps[i], test["mask"][i], size)
                                                  for i in range(20)])))
    area = float(test["mask"].mean())
    print(f"\nGrad-CAM mass inside the pet mask over 20 test pets: trained {mass['trained']:.3f} "
          f"(test accuracy {accuracy:.2f}, chance {1 / NUM_CLASSES:.3f}), random weights "
          f"{mass['random weights']:.3f}; the pet covers {area:.3f} of the picture")
    assert accuracy >= 0.8
    assert mass["trained"] > 0.5 and mass["trained"] > mass["random weights"]


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
    picture, seconds, _ = gradcam_overlay(predictor, photo)
    assert picture.size == photo.size and seconds > 0
    assert gradcam_for(predictor) is gradcam_for(predictor)  # made once per predictor
    assert gradcam_overlay(predictor, photo, width=60)[0].size == (60, 45)
    # The tint lies where the evidence is: a model that looks at the red coat, on a drawn
    # Abyssinian, changes the pet's pixels and leaves the background nearly as it was.
    image, _, mask = draw_pet(0, np.random.default_rng(3))
    known = Predictor(red_detector(SIZE), "detection-scratch", "tiny", SIZE)
    picture = gradcam_overlay(known, Image.fromarray(image))[0]
    change = np.abs(np.asarray(picture, np.int32) - image.astype(np.int32)).sum(axis=-1)
    on_pet, off_pet = change[mask[..., 0] == 1].mean(), change[mask[..., 0] == 0].mean()
    print(f"\nGrad-CAM overlay, mean change per pixel: {on_pet:.1f} on the pet, {off_pet:.1f} off it")
    assert on_pet > 30 and on_pet > 2 * off_pet
    masks_only = Predictor(tiny_model(tiny_settings, "segmentation", 64), "segmentation-scratch", "tiny", 64)
    assert not has_breed_head(masks_only.model) and gradcam_overlay(masks_only, photo) is None
    with pytest.raises(ValueError, match="no breed head"):
        GradCam(masks_only.model, "tiny", 64)


def test_cells_sit_where_same_padded_halvings_put_them():
    """The centre of the pixels that reach a cell of five "same"-padded stride-2 convs (the
    backbones' halvings) is where `cell_centres` says, half a cell past a plain grid's."""
    image = keras.Input((192, 192, 1))
    x = image
    for _ in range(5):
        x = keras.layers.Conv2D(1, 3, strides=2, padding="same", use_bias=False, kernel_initializer="ones")(x)
    halvings = keras.Model(image, x)
    pixels = tf.Variable(tf.ones((1, 192, 192, 1)))
    with tf.GradientTape() as tape:
        cell = halvings(pixels)[0, 2, 3, 0]
    reach = np.argwhere(tape.gradient(cell, pixels).numpy()[0, :, :, 0] > 0)
    centre = (reach.min(0) + reach.max(0) + 1) / 2  # in pixels from the edge
    assert tuple(centre) == (cell_centres(192, 6)[2], cell_centres(192, 6)[3]) == (95.5, 127.5)
    assert cell_centres(192, 6)[2] - (2 + 0.5) * 32 == 15.5


def test_hot_areas_are_tinted_and_mass_is_counted_where_the_mask_is():
    heat = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    grey = np.full((40, 40, 3), 128, np.uint8)
    out = np.asarray(heat_overlay(grey, heat, 40))
    assert np.abs(out[2, 2].astype(int) - 128).sum() > np.abs(out[37, 37].astype(int) - 128).sum()
    mask = np.zeros((40, 40, 1), np.uint8)
    mask[:20, :20] = 1
    assert mass_in_mask(heat, mask, 40) > 0.5 and mass_in_mask(heat, 1 - mask, 40) < 0.5
    assert np.isnan(mass_in_mask(np.zeros((2, 2), np.float32), mask, 40))
