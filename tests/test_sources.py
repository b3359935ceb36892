import logging

import numpy as np
import pytest
import tensorflow as tf

from labcore.settings import Settings
from labcore.data.sources import (DataUnavailable, folder_source, load_source, synthetic_arrays,
                             synthetic_source, trimap_to_mask)


def check_example(ex: dict) -> None:
    assert ex["image"].dtype == tf.uint8 and ex["image"].shape[-1] == 3 and len(ex["image"].shape) == 3
    assert ex["mask"].dtype == tf.uint8 and ex["mask"].shape[:2] == ex["image"].shape[:2]
    assert set(np.unique(ex["mask"].numpy())) <= {0, 1}
    assert ex["label"].dtype == tf.int32 and 0 <= int(ex["label"]) < 37
    assert ex["bbox"].dtype == tf.float32 and ex["bbox"].shape == (4,)
    box = ex["bbox"].numpy()
    assert ((0 <= box) & (box <= 1)).all()
    if float(ex["has_box"]) == 1.0:
        assert box[0] < box[2] and box[1] < box[3]  # (ymin, xmin, ymax, xmax)
    else:
        assert (box == 0).all()


def test_synthetic_is_deterministic_and_consistent():
    a, b = synthetic_arrays(8, seed=3), synthetic_arrays(8, seed=3)
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], synthetic_arrays(8, seed=4)["image"])
    # The head box lies on the pet: its centre pixel is in the mask.
    for box, mask in zip(a["bbox"], a["mask"]):
        cy, cx = int((box[0] + box[2]) / 2 * mask.shape[0]), int((box[1] + box[3]) / 2 * mask.shape[1])
        assert mask[cy, cx, 0] == 1
    # The pet covers part of the picture, not none and not all.
    assert 0.05 < a["mask"].mean() < 0.6


def test_synthetic_source_shapes_and_test_split_has_no_boxes():
    source = synthetic_source(74, seed=0)
    for split in ("trainval", "test"):
        examples = list(source.dataset(split).take(3))
        for ex in examples:
            check_example(ex)
        assert len(source.labels[split]) == int(source.dataset(split).cardinality())
    assert all(float(ex["has_box"]) == 0 for ex in source.dataset("test"))
    assert all(float(ex["has_box"]) == 1 for ex in source.dataset("trainval").take(5))


def test_trimap_border_counts_as_pet():
    trimap = tf.constant([[[1], [2], [3]]], tf.uint8)
    assert trimap_to_mask(trimap).numpy().ravel().tolist() == [1, 0, 1]


def test_folder_source_reads_the_real_slice(shared_pets, caplog):
    source = folder_source(shared_pets)
    assert len(source.labels["trainval"]) == 300 and len(source.labels["test"]) == 99
    assert set(source.labels["trainval"]) == {0, 1, 5}  # Abyssinian, american_bulldog, Bengal
    n_with_box = 0
    for ex in source.dataset("trainval"):
        check_example(ex)
        n_with_box += int(ex["has_box"])
    assert 250 < n_with_box < 300  # a few xmls are missing, as in the original
    assert all(float(ex["has_box"]) == 0 for ex in source.dataset("test").take(10))


def test_folder_source_decodes_by_content(pets_folder):
    """Two .jpg files in the folder are a GIF and an RGBA PNG inside: both give RGB uint8 of
    the right size, and one listed image has no xml, so no box."""
    source = folder_source(pets_folder.root)
    examples = list(source.dataset("trainval"))
    assert len(examples) == pets_folder.trainval
    for ex in examples:
        check_example(ex)
    for name in pets_folder.odd:
        index = pets_folder.names.index(name)
        assert examples[index]["image"].shape == (60, 80, 3)
        assert examples[index]["image"].numpy().std() > 10  # a real picture, not a blank
    assert sum(float(ex["has_box"]) for ex in examples) == pets_folder.trainval - 1


def test_folder_source_boxes_are_the_xml_boxes_normalised_y_then_x(pets_folder):
    """Each head box is the one the xml holds: VOC's 1-based pixel corners (xmin, ymin, xmax,
    ymax) made (ymin - 1, xmin - 1, ymax, xmax) / (height, width, height, width). The
    pictures are 80 x 60, so reading x for y, or the width for the height, shows."""
    width, height = pets_folder.size
    examples = dict(zip(pets_folder.names, folder_source(pets_folder.root).dataset("trainval")))
    for name, ex in examples.items():
        if name not in pets_folder.boxes:
            assert float(ex["has_box"]) == 0 and (ex["bbox"].numpy() == 0).all(), name
            continue
        xmin, ymin, xmax, ymax = pets_folder.boxes[name]
        want = [(ymin - 1) / height, (xmin - 1) / width, ymax / height, xmax / width]
        np.testing.assert_allclose(ex["bbox"].numpy(), want, atol=1e-6, err_msg=name)
    assert len(examples) - len(pets_folder.boxes) == 1  # Bengal_3 has no xml


def test_folder_source_skips_unreadable_files_with_one_warning(pets_folder, caplog):
    images = pets_folder.root / "images"
    (images / f"{pets_folder.names[0]}.jpg").write_bytes(b"not an image")
    (images / f"{pets_folder.names[1]}.jpg").unlink()
    with caplog.at_level(logging.WARNING):
        source = folder_source(pets_folder.root)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 2" in warnings[0].getMessage()
    assert len(source.labels["trainval"]) == pets_folder.trainval - 2
    assert sum(1 for _ in source.dataset("trainval")) == pets_folder.trainval - 2


def test_folder_source_explains_a_wrong_folder(tmp_path):
    with pytest.raises(DataUnavailable, match="annotations"):
        folder_source(tmp_path)
    with pytest.raises(DataUnavailable, match="--data-dir"):
        load_source(Settings(dataset="folder"))


def test_tfds_offline_fails_fast_with_the_ways_out(tmp_path, monkeypatch):
    import time

    import labcore.data.sources as sources

    monkeypatch.setattr(sources, "_reachable", lambda host, port=443, timeout=2.0: False)
    start = time.perf_counter()
    with pytest.raises(DataUnavailable) as err:
        load_source(Settings(dataset="oxford_iiit_pet", data_dir=str(tmp_path)))
    assert time.perf_counter() - start < 30
    assert "--dataset folder" in str(err.value) and "--dataset synthetic" in str(err.value)


def test_tfds_source_gives_what_the_folder_source_gives_for_the_same_files(tfds_pets, monkeypatch):
    """The real builder, prepared offline from the original layout (see `tfds_pets`): same
    labels, images, masks and head boxes as the folder source, file by file; no box in test."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.datasets.oxford_iiit_pet.oxford_iiit_pet_dataset_builder import (
        _CORRUPT_SAMPLES as REENCODED)

    import labcore.data.sources as sources

    def no_network(*args, **kwargs):
        raise AssertionError("a prepared dataset must open without looking for the network")

    monkeypatch.setattr(sources, "_reachable", no_network)
    source = load_source(Settings(dataset="oxford_iiit_pet", data_dir=str(tfds_pets.data_dir)))
    folder = folder_source(tfds_pets.folder.root)
    builder = tfds.builder("oxford_iiit_pet", data_dir=str(tfds_pets.data_dir))
    for split, tfds_split in (("trainval", "train"), ("test", "test")):
        # The builder shuffles examples when it writes them: match them to the folder by file name.
        names = [n.decode().removesuffix(".jpg") for n in builder.as_dataset(split=tfds_split, shuffle_files=False)
                 .map(lambda ex: ex["file_name"]).as_numpy_iterator()]
        listed = [line.split()[0] for line in
                  (tfds_pets.folder.root / "annotations" / f"{split}.txt").read_text().splitlines()]
        assert sorted(names) == sorted(listed)
        by_name = dict(zip(listed, folder.dataset(split)))
        examples = list(source.dataset(split))
        assert len(examples) == len(names)
        np.testing.assert_array_equal(source.labels[split], [int(by_name[n]["label"]) for n in names])
        for name, ex in zip(names, examples):
            check_example(ex)
            want = by_name[name]
            assert int(ex["label"]) == int(want["label"]), name
            if name in REENCODED:  # the builder re-encodes these as JPEG: lossy, so only close
                assert np.abs(ex["image"].numpy().astype(int) - want["image"].numpy()).mean() < 3, name
            else:
                np.testing.assert_array_equal(ex["image"], want["image"], err_msg=name)
            np.testing.assert_array_equal(ex["mask"], want["mask"], err_msg=name)
            assert float(ex["has_box"]) == float(want["has_box"]), name
            np.testing.assert_allclose(ex["bbox"], want["bbox"], atol=1e-6, err_msg=name)
        with_box = sum(float(ex["has_box"]) for ex in examples)
        assert with_box == (len(tfds_pets.folder.boxes) if split == "trainval" else 0)
