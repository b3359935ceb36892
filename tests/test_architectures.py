import h5py
import keras
import numpy as np
import pytest

from labcore.model.architectures import (IMAGENET_FILES, WeightsUnavailable, backbone_layer, build_backbone,
                            build_model, build_models, set_frozen)
from labcore.settings import TASK_BACKBONES, TASK_OUTPUTS, Settings

SIZE = 64


def write_legacy_weights(model: keras.Model, path) -> None:
    """Write weights in Keras' legacy h5 layout, the layout of the files Keras downloads."""
    with h5py.File(path, "w") as f:
        names = [layer.name for layer in model.layers if layer.weights]
        f.attrs["layer_names"] = [n.encode() for n in names]
        for layer in model.layers:
            if not layer.weights:
                continue
            group = f.create_group(layer.name)
            weight_names = [f"{layer.name}/{w.path.split('/')[-1]}:{i}" for i, w in enumerate(layer.weights)]
            group.attrs["weight_names"] = [n.encode() for n in weight_names]
            for name, w in zip(weight_names, layer.weights):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(w))


@pytest.mark.parametrize("task", ["detection", "segmentation", "multitask"])
def test_scratch_models_have_the_task_outputs(task):
    settings = Settings(image_size=SIZE)
    backbone = build_backbone(TASK_BACKBONES[task], SIZE)
    model = build_model(task, settings, backbone)
    out = model(np.zeros((2, SIZE, SIZE, 3), np.float32))
    assert set(out) == set(TASK_OUTPUTS[task])
    if "label" in out:
        assert out["label"].shape == (2, 37)
        np.testing.assert_allclose(keras.ops.sum(out["label"], axis=-1), 1.0, rtol=1e-5)
    if "bbox" in out:
        assert out["bbox"].shape == (2, 4)
        assert float(keras.ops.min(out["bbox"])) >= 0 and float(keras.ops.max(out["bbox"])) <= 1
    if "mask" in out:
        assert out["mask"].shape == (2, SIZE, SIZE, 37)


def test_two_class_mask_head_is_an_option():
    settings = Settings(image_size=SIZE, mask_classes=2)
    model = build_model("segmentation", settings, build_backbone("MobileNetV3Small", SIZE))
    assert model.output["mask"].shape[-1] == 2


def test_pretrained_weights_load_from_a_weights_dir(tmp_path):
    """--weights-dir takes the very file Keras would download; here the test writes one."""
    source = build_backbone("MobileNetV3Small", SIZE)
    write_legacy_weights(source, tmp_path / IMAGENET_FILES["MobileNetV3Small"])

    loaded = build_backbone("MobileNetV3Small", SIZE, weights="imagenet", weights_dir=str(tmp_path))
    fresh = build_backbone("MobileNetV3Small", SIZE)
    kernels = [i for i, w in enumerate(source.get_weights()) if w.ndim == 4]
    assert kernels
    for i in kernels:
        np.testing.assert_allclose(loaded.get_weights()[i], source.get_weights()[i])
    assert not np.allclose(fresh.get_weights()[kernels[0]], source.get_weights()[kernels[0]])


def test_missing_weights_file_names_the_file_and_the_ways_out(tmp_path):
    with pytest.raises(WeightsUnavailable) as err:
        build_backbone("EfficientNetB3", SIZE, weights="imagenet", weights_dir=str(tmp_path))
    message = str(err.value)
    assert "efficientnetb3_notop.h5" in message and str(tmp_path) in message
    assert "--init scratch" in message


def test_backbone_layer_finds_the_backbone():
    backbone = build_backbone("tiny", 32)
    model = build_model("detection", Settings(image_size=32), backbone)
    assert backbone_layer(model) is backbone


def noisy_backbone(size: int) -> keras.Model:
    """A backbone with what makes training mode differ: BatchNorm and (stochastic-depth-like) Dropout."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=32, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(0.5)(x)
    return keras.Model(inputs, x, name="noisy")


def test_a_frozen_backbone_runs_in_inference_mode_even_in_a_train_step():
    # The segmentation head has neither BatchNorm nor Dropout: what differs between training and
    # inference mode is the backbone's doing.
    settings = Settings(image_size=32, decoder_filters=(8, 8, 8, 8))
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    backbone = noisy_backbone(32)
    set_frozen(backbone, True)
    model = build_model("segmentation", settings, backbone)
    np.testing.assert_allclose(model(x, training=True)["mask"], model(x, training=False)["mask"], rtol=1e-6)

    set_frozen(backbone, False)  # unfrozen (fine-tuning): Dropout and BatchNorm train again
    assert backbone.trainable
    assert not np.allclose(model(x, training=True)["mask"], model(x, training=False)["mask"])


def test_the_heads_model_shares_the_whole_models_head_weights():
    backbone = build_backbone("tiny", 32)
    model, heads = build_models("multitask", Settings(image_size=32, dense_units=(8,), branch_units=4,
                                                      decoder_filters=(8, 8, 8, 8)), backbone)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    assert heads.input_shape == backbone.output_shape
    assert {w.path for w in heads.weights} == {w.path for w in model.weights} - {w.path for w in backbone.weights}
    for layer in heads.layers:  # train the heads (here: change their weights) and the whole model follows
        layer.set_weights([w * 1.5 for w in layer.get_weights()])
    whole, alone = model(x), heads(backbone(x))
    for key in ("label", "bbox", "mask"):
        np.testing.assert_allclose(whole[key], alone[key], rtol=1e-5, atol=1e-6)
