"""The report's three architectures, pretrained or from scratch.

- detection:    EfficientNetB3 -> GAP -> shared dense stack -> label head + box head
- segmentation: MobileNetV3Small -> 4 x (upsample 2x, conv 3x3) -> upsample 2x -> conv 1x1 softmax
- multitask:    MobileNetV3Large with all three heads on one backbone

Output names are always `label`, `bbox`, `mask` (the targets of `labcore.data.pipeline` use the same).
"""
from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from labcore.model.weights_file import load_weights
from labcore.settings import NUM_CLASSES, TASK_BACKBONES, TASK_OUTPUTS, Settings

# The files Keras downloads for `weights="imagenet"` (include_top=False); `--weights-dir`
# takes exactly these, so they can be copied from a machine that has them
# (~/.keras/models/ after one online run).
IMAGENET_FILES = {
    "EfficientNetB3": "efficientnetb3_notop.h5",
    "MobileNetV3Small": "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    "MobileNetV3Large": "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
}


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be had; the message says which file and where it goes."""


def tiny_backbone(input_shape: tuple[int, int, int]) -> keras.Model:
    """A five-stage conv net with the real backbones' 32x stride: for tests and benchmarks only."""
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1 / 255.0)(inputs)
    for filters in (8, 16, 16, 32, 32):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    return keras.Model(inputs, x, name="tiny")


BACKBONES = {
    "EfficientNetB3": keras.applications.EfficientNetB3,
    "MobileNetV3Small": keras.applications.MobileNetV3Small,
    "MobileNetV3Large": keras.applications.MobileNetV3Large,
    "tiny": tiny_backbone,
}


def build_backbone(name: str, image_size: int, weights: str | None = None,
                   weights_dir: str | None = None) -> keras.Model:
    """The backbone without its classifier. `weights`: None (random), "imagenet" (from
    `weights_dir` when given, else Keras' download) or the path of an .npz file of its weights
    (`labcore.model.weights_file`, as the pretext backbones are kept)."""
    shape = (image_size, image_size, 3)
    if weights not in (None, "imagenet"):
        backbone = build_backbone(name, image_size)
        load_weights(backbone, Path(weights))
        return backbone
    if name == "tiny":
        return tiny_backbone(shape)
    if weights == "imagenet" and weights_dir:
        path = Path(weights_dir).expanduser() / IMAGENET_FILES[name]
        if not path.exists():
            raise WeightsUnavailable(
                f"{name}: ImageNet weights file {IMAGENET_FILES[name]} is not in {path.parent}. "
                f"Copy it there from ~/.keras/models/ of a machine with network, or train "
                f"without it: --weights synthetic-pretext, or --init scratch.")
        weights = str(path)
    try:
        return BACKBONES[name](include_top=False, weights=weights, input_shape=shape)
    except Exception as err:  # Keras raises plain Exception on a failed download
        if weights != "imagenet":
            raise
        reason = " ".join(str(err).split())
        reason = reason if len(reason) <= 200 else reason[:199] + "…"
        raise WeightsUnavailable(
            f"{name}: could not download ImageNet weights ({reason}). "
            f"Put {IMAGENET_FILES[name]} in a folder and pass --weights-dir FOLDER, or train "
            f"without it: --weights synthetic-pretext, or --init scratch.") from err


def dense_block(x, units: int, relu: bool = True):
    x = layers.Dense(units)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x) if relu else x


def build_model(task: str, settings: Settings, backbone: keras.Model) -> keras.Model:
    """The task's heads on `backbone`; outputs a dict keyed by `TASK_OUTPUTS[task]`."""
    return build_models(task, settings, backbone)[0]


def build_models(task: str, settings: Settings, backbone: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(the whole model, its heads alone). The heads model takes the backbone's output as its
    input and shares the whole model's head layers, weights included: training it on cached
    backbone features trains the whole model's heads (see `labcore.train.features`)."""
    inputs = keras.Input((settings.image_size, settings.image_size, 3), name="image")
    features = backbone(inputs)
    outputs = {}
    heads = TASK_OUTPUTS[task]
    if "label" in heads or "bbox" in heads:
        x = layers.GlobalAveragePooling2D()(features)
        for units in settings.dense_units:
            x = dense_block(x, units)
        if "label" in heads:
            y = dense_block(x, settings.branch_units)
            outputs["label"] = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="label")(y)
        if "bbox" in heads:
            y = dense_block(x, settings.branch_units)
            outputs["bbox"] = layers.Dense(4, activation="sigmoid", dtype="float32", name="bbox")(y)
    if "mask" in heads:
        # The backbone downsamples 32x: four 2x steps with convs, then one plain 2x step
        # back to the input size, then per-pixel class probabilities.
        x = features
        for filters in settings.decoder_filters:
            x = layers.UpSampling2D(2)(x)
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.UpSampling2D(2)(x)
        outputs["mask"] = layers.Conv2D(settings.mask_classes, 1, activation="softmax",
                                        dtype="float32", name="mask")(x)
    # A functional model may start at an inner tensor: Keras gives it a fresh input there.
    return keras.Model(inputs, outputs, name=task), keras.Model(features, outputs, name=f"{task}_heads")


def set_frozen(backbone: keras.Model, frozen: bool) -> None:
    """Freeze a backbone into a feature extractor, or unfreeze it (fine-tuning).

    Frozen, its weights do not train, BatchNorm uses its moving statistics and Dropout is off
    (EfficientNet's stochastic depth): its outputs are the same every epoch, so they can be
    computed once (`labcore.train.features`). Keras still runs a frozen layer's Dropout in a train
    step (the train step's `training=True` wins over one given when the model was built),
    hence the rates set to 0 here, and given back on unfreezing.
    """
    backbone.trainable = not frozen
    for layer in backbone._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, layers.Dropout):
            if frozen:
                layer.trained_rate = getattr(layer, "trained_rate", layer.rate)
                layer.rate = 0.0
            else:
                layer.rate = getattr(layer, "trained_rate", layer.rate)


def set_bn_momentum(model: keras.Model, momentum: float) -> None:
    """Set the momentum of every BatchNormalization layer, nested backbones included."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = momentum


def backbone_layer(model: keras.Model) -> keras.Model:
    """The backbone inside a model made by `build_model` (its second layer)."""
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def backbone_name(task: str, settings: Settings) -> str:
    """The task's backbone, or the settings' override (`extra["backbone"]`, tests only)."""
    return settings.extra.get("backbone", TASK_BACKBONES[task])
