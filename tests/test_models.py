import h5py
import keras
import numpy as np
import pytest

from labcore.models import (IMAGENET_FILES, WeightsUnavailable, backbone_layer, build_backbone,
                            build_model)
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
