"""Grad-CAM: where a breed head looked when it chose its top breed.

The heat map is the backbone's last feature map weighted by the gradient of the top breed's
score (the label layer's pre-softmax logit, as in the keras-io Grad-CAM example) averaged over
space, summed over channels, negatives dropped and scaled to 0..1. Like `Predictor`, it runs
as one traced function for any batch size, so a heat map costs one forward pass plus the
backward pass through the heads only (the gradient stops at the backbone's output).

Measured from where the heads start. The app's heads pool the feature map, then a Dense layer
and a BatchNormalization that subtracts the Dense layer's average output over the training
images (its moving mean). Plain Grad-CAM weighs the raw features, so it also counts their
common part, which that BatchNormalization takes off before anything else sees it: a frozen
pretrained backbone's features carry a large common part (every channel on for every
picture), and with it every cell's weighted sum can come out negative, the ReLU leaves nothing
and the map is blank (on a frozen MobileNetV3Large trained on 128 px photos: 6 of 30 test
photos; after this, none, with as much of the heat on the pet). So where a Dense layer and
a BatchNormalization read the pooled features, each cell counts what it adds to that Dense
layer's output beyond the moving mean, weighted by the top breed's gradient there: the cells'
sum is then exactly the first-order part of the score that this picture adds beyond an
average one. Heads without that pair get plain Grad-CAM. A map that is still all zero says so
(`HeatMaps.empty`, `cam_caption`).
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from labcore.data.pipeline import preprocess_images
from labcore.data.images import resize_for_model
from labcore.model.architectures import backbone_layer

# Colour map for the heat map, 0 -> 1: dark blue, cyan, yellow, red (anchor colours, interpolated).
_ANCHORS = np.array([[0, 0, 90], [0, 120, 255], [0, 230, 200], [255, 230, 0], [230, 20, 0]], np.float32)


def has_breed_head(model: keras.Model) -> bool:
    return any(layer.name == "label" for layer in model.layers)


@dataclass
class HeatMaps:
    maps: np.ndarray  # float32 [N, h, w] in 0..1, at the backbone's feature-map resolution
    top: np.ndarray  # int [N]: the breed each map explains (the model's top breed)
    seconds: float  # wall time of the traced call, for the whole batch
    empty: np.ndarray  # bool [N]: no cell holds evidence for the top breed, the map is all zero


class CamOverlay(NamedTuple):
    picture: Image.Image  # the heat map over the photo
    seconds: float  # the traced call's wall time
    empty: bool  # the map is all zero: the picture is the bare photo, and must not pass for a map


NO_HEAT = "no heat: no part of the picture adds to this breed's score"


def cam_caption(run_id: str, seconds: float, empty: bool) -> str:
    """The caption under a Grad-CAM picture; an empty map says so instead of passing for one."""
    return f"Grad-CAM of {run_id}'s top breed · {seconds * 1000:.0f} ms" + (f" · {NO_HEAT}" if empty else "")


def normalised_dense(model: keras.Model) -> list[tuple[keras.layers.Dense, keras.layers.BatchNormalization]]:
    """Each Dense layer that reads the pooled backbone features and feeds a BatchNormalization
    (the app's `dense_block`), with that BatchNormalization."""
    pool = next((layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)), None)
    pairs = []
    for node in pool._outbound_nodes if pool else []:
        dense = node.operation
        if not isinstance(dense, keras.layers.Dense):
            continue
        norms = [n.operation for n in dense._outbound_nodes if isinstance(n.operation, keras.layers.BatchNormalization)]
        if norms and dense not in [d for d, _ in pairs]:
            pairs.append((dense, norms[0]))
    return pairs


class GradCam:
    """Grad-CAM of a model made by `build_model` that has a `label` head."""

    def __init__(self, model: keras.Model, backbone: str, image_size: int):
        if not has_breed_head(model):
            raise ValueError(f"{model.name} has no breed head: Grad-CAM explains a breed choice")
        self.image_size = image_size
        label = model.get_layer("label")
        # The backbone's output in the outer model's graph (its one call there), and the input
        # of the label layer: the top breed's logit is that input times the layer's kernel.
        features = backbone_layer(model)._inbound_nodes[0].output_tensors[0]
        pairs = normalised_dense(model)
        probe = keras.Model(model.inputs, [features, label.input, *(dense.output for dense, _ in pairs)])
        spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32)

        def heat(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            x = preprocess_images(images, backbone)
            with tf.GradientTape() as tape:
                tape.watch(x)  # records the graph even where every weight is frozen
                maps, hidden, *dense_out = probe(x, training=False)
                maps = tf.cast(maps, tf.float32)  # float16 under mixed precision
                logits = tf.matmul(tf.cast(hidden, tf.float32), label.kernel) + label.bias
                top = tf.argmax(logits, axis=-1, output_type=tf.int32)
                score = tf.gather(logits, top, axis=1, batch_dims=1)
            if pairs:
                cam = tf.zeros(tf.shape(maps)[:3])
                for (dense, norm), grad in zip(pairs, tape.gradient(score, dense_out)):
                    if grad is None:  # a Dense layer the breed head does not read (the box head's)
                        continue
                    beyond_mean = tf.tensordot(maps, dense.kernel, 1) + dense.bias - norm.moving_mean
                    cam += tf.reduce_sum(tf.cast(grad, tf.float32)[:, None, None, :] * beyond_mean, axis=-1)
            else:
                weights = tf.reduce_mean(tape.gradient(score, maps), axis=(1, 2), keepdims=True)
                cam = tf.reduce_sum(weights * maps, axis=-1)
            cam = tf.nn.relu(cam)
            peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
            return tf.math.divide_no_nan(cam, peak), top

        self._heat = tf.function(heat, input_signature=[spec])
        self._heat(tf.zeros([1, image_size, image_size, 3]))  # trace and warm up now

    def __call__(self, images: np.ndarray) -> HeatMaps:
        """Heat maps for a batch of resized images (float or uint8 0..255, [N, S, S, 3])."""
        start = time.perf_counter()
        maps, top = self._heat(tf.convert_to_tensor(images, tf.float32))
        maps, top = maps.numpy(), top.numpy()
        return HeatMaps(maps, top, time.perf_counter() - start, ~(maps > 0).any(axis=(1, 2)))


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def gradcam_for(predictor) -> GradCam | None:
    """The GradCam of a `Predictor`'s model, made once per predictor; None without a breed head."""
    if predictor not in _CACHE:
        model = predictor.model
        _CACHE[predictor] = GradCam(model, predictor.backbone, predictor.image_size) if has_breed_head(model) else None
    return _CACHE[predictor]


def cell_centres(image_size: int, cells: int) -> np.ndarray:
    """Where each cell of a `cells`-wide last feature map is centred, in input pixels (0 at the
    picture's edge) of an `image_size`-wide input.

    The backbones halve the picture with stride-2 layers padded like TF's "same" (Keras
    applications' `correct_pad` does the same): on an even-sized input they pad one pixel more
    after than before, so each output pixel sits half an input pixel further down/right. Over
    five halvings cell j is centred at (j + 1)·32 − ½ px, not at (j + ½)·32 as a plain resize
    of the map assumes: that resize draws every heat map half a cell up and to the left.
    """
    sizes = [image_size]
    while sizes[-1] > cells:
        sizes.append(-(-sizes[-1] // 2))
    centre = np.arange(cells, dtype=np.float64)  # index of the pixel each cell is centred on
    for size in reversed(sizes[:-1]):
        centre = 2 * centre + (size % 2 == 0)
    return centre + 0.5


def _interpolation(cells: int, image_size: int, out: int) -> np.ndarray:
    """[out, cells] weights: linear interpolation between cell centres at each output pixel's
    centre, held flat beyond the first and last centre."""
    where = (np.arange(out) + 0.5) * image_size / out
    position = np.interp(where, cell_centres(image_size, cells), np.arange(cells))
    return np.clip(1 - np.abs(position[:, None] - np.arange(cells)[None, :]), 0, 1)


def upsample(heat: np.ndarray, size: tuple[int, int], image_size: int) -> np.ndarray:
    """A heat map [h, w] in 0..1 of an `image_size` input, resized to (width, height) of the
    same picture with each cell's value at its receptive field's centre (`cell_centres`)."""
    rows = _interpolation(heat.shape[0], image_size, size[1])
    cols = _interpolation(heat.shape[1], image_size, size[0])
    return (rows @ heat.astype(np.float64) @ cols.T).astype(np.float32).clip(0, 1)


def colourise(heat: np.ndarray) -> np.ndarray:
    """A 0..1 map [H, W] -> uint8 RGB [H, W, 3] through the colour map's anchors."""
    position = np.clip(heat, 0, 1) * (len(_ANCHORS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (position - low)[..., None]
    return (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).astype(np.uint8)


def heat_overlay(image: Image.Image | np.ndarray, heat: np.ndarray, image_size: int, opacity: float = 0.5,
                 width: int | None = None) -> Image.Image:
    """The picture with the heat map (of the picture squeezed to `image_size`) blended over it;
    the map is scaled to the picture."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, np.uint8))
    picture = picture.convert("RGB")
    if width and picture.width != width:
        picture = picture.resize((width, max(1, round(picture.height * width / picture.width))),
                                 Image.Resampling.BILINEAR)
    big = upsample(heat, picture.size, image_size)
    colour = Image.fromarray(colourise(big))
    # Cold areas stay mostly photo: the blend weight grows with the heat.
    alpha = Image.fromarray((opacity * (0.25 + 0.75 * big) * 255).astype(np.uint8))
    return Image.composite(colour, picture, alpha)


def gradcam_overlay(predictor, image: Image.Image, opacity: float = 0.5,
                    width: int | None = None) -> CamOverlay | None:
    """One upright RGB picture's Grad-CAM over it, the seconds the heat map took (the traced
    call only) and whether it is empty; None when the predictor's model has no breed head."""
    return gradcam_on(predictor, image, image, opacity, width)


def gradcam_on(predictor, seen: Image.Image, shown: Image.Image, opacity: float = 0.5,
               width: int | None = None) -> CamOverlay | None:
    """Grad-CAM of the picture the model sees (any size; squeezed to its input like a
    prediction), drawn over `shown`, the same picture at another size (e.g. for display)."""
    cam = gradcam_for(predictor)
    if cam is None:
        return None
    heat = cam(resize_for_model(seen, cam.image_size)[None])
    return CamOverlay(heat_overlay(shown, heat.maps[0], cam.image_size, opacity, width), heat.seconds,
                      bool(heat.empty[0]))


def mass_in_mask(heat: np.ndarray, mask: np.ndarray, image_size: int) -> float:
    """Share of the heat map (of an `image_size` input, scaled to the mask's size) that lies
    inside the mask."""
    mask = np.asarray(mask).reshape(np.asarray(mask).shape[:2]) > 0
    big = upsample(heat, (mask.shape[1], mask.shape[0]), image_size)
    total = float(big.sum())
    return float(big[mask].sum() / total) if total > 0 else float("nan")
