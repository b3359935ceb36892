from pathlib import Path

import numpy as np
import pytest

from labcore.data.pipeline import make_splits, split_indices, stratified_subset
from labcore.settings import Settings
from labcore.data.sources import synthetic_source


def test_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat(np.arange(5), [10, 20, 30, 40, 50])
    train, val = split_indices(labels, 0.2, seed=1)
    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == len(labels)
    for c, n in zip(range(5), [10, 20, 30, 40, 50]):
        assert (labels[val] == c).sum() == round(n * 0.2)
    again = split_indices(labels, 0.2, seed=1)
    np.testing.assert_array_equal(val, again[1])
    assert not np.array_equal(val, split_indices(labels, 0.2, seed=2)[1])


@pytest.mark.parametrize("sizes, fraction, expected", [
    ([3, 5, 7], 0.2, [1, 1, 1]),  # shares 0.6, 1.0, 1.4 of 3: the spare one goes to the 0.6
    ([9, 2, 6], 0.3, [3, 0, 2]),  # shares 2.7, 0.6, 1.8 of 5: two spare, to the .8 and the .7
])
def test_fractional_shares_go_to_the_largest_remainders(sizes, fraction, expected):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    train, val = split_indices(labels, fraction, seed=0)
    assert np.bincount(labels[val], minlength=len(sizes)).tolist() == expected
    assert len(val) == round(len(labels) * fraction) and len(train) + len(val) == len(labels)
    subset = stratified_subset(labels, 10, np.random.default_rng(0))  # shares of 10, same rule
    exact = np.array(sizes) * 10 / sum(sizes)
    counts = np.bincount(labels[subset], minlength=len(sizes))
    assert counts.sum() == 10 and (np.abs(counts - exact) < 1).all()


def test_limit_keeps_every_class_in_proportion():
    labels = np.repeat(np.arange(37), 100)  # sorted by class, like the dataset's files
    subset = stratified_subset(labels, 370, np.random.default_rng(0))
    assert len(subset) == 370
    assert (np.bincount(labels[subset], minlength=37) == 10).all()
    train, val = split_indices(labels, 0.2, seed=0, limit=370)
    assert len(train) + len(val) == 370 and len(set(labels[val])) == 37


@pytest.mark.parametrize("task, heads", [("detection", {"label", "bbox"}), ("segmentation", {"mask"}),
                                         ("multitask", {"label", "bbox", "mask"})])
def test_pipeline_shapes_dtypes_and_ranges(task, heads):
    settings = Settings(dataset="synthetic", image_size=64, batch_size=16, limit=80)
    splits = make_splits(synthetic_source(80, seed=0), settings, task, "MobileNetV3Small")
    assert splits.counts == {"train": 64, "val": 16, "test": 37}
    x, y = next(iter(splits.train))
    assert x.shape == (16, 64, 64, 3) and x.dtype.name == "float32"
    assert 0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 255
    assert set(y) == heads
    if "label" in y:
        assert y["label"].dtype.name == "int32" and y["label"].shape == (16,)
    if "bbox" in y:
        assert y["bbox"].shape == (16, 5) and (y["bbox"].numpy()[:, 4] == 1).all()
    if "mask" in y:
        assert y["mask"].shape == (16, 64, 64, 1)
        assert set(np.unique(y["mask"].numpy())) <= {0, 1}
    n_test = sum(int(b[0].shape[0]) for b in splits.test)
    assert n_test == 37
    if "bbox" in heads:  # the test split has no boxes: every flag is 0
        assert all((b[1]["bbox"].numpy()[:, 4] == 0).all() for b in splits.test)


def test_train_and_val_do_not_overlap():
    settings = Settings(dataset="synthetic", image_size=32, batch_size=8, limit=60)
    splits = make_splits(synthetic_source(60, seed=0), settings, "detection", "tiny")
    seen = lambda ds: {x.numpy().tobytes() for batch, _ in ds for x in batch}
    train, val = seen(splits.train), seen(splits.val)
    assert len(train) == splits.counts["train"] and len(val) == splits.counts["val"]
    assert not train & val


def test_every_split_runs_without_tf_data_autotuning():
    """Its model thread held up the start of each epoch for seconds in two lanes (labcore.data.pipeline)."""
    splits = make_splits(synthetic_source(32, seed=0), Settings(image_size=32, limit=32), "detection", "tiny")
    for ds in (splits.train, splits.val, splits.test, splits.train_in_order):
        assert ds.options().autotune.enabled is False
        assert len(list(ds)) > 0


def recording_reads(monkeypatch, module, name: str, seen: list) -> None:
    """Wrap `module.name` (a function tf.data maps over examples) so that every example it is
    run on is recorded: what a source really reads, not what it hands back."""
    import tensorflow as tf

    real = getattr(module, name)

    def record(value):
        seen.append(value.numpy())
        return value

    def wrapped(first):
        if isinstance(first, dict):  # an example: record its label
            label = tf.py_function(record, [first["label"]], first["label"].dtype)
            label.set_shape(first["label"].shape)
            return real({**first, "label": label})
        path = tf.py_function(record, [first], tf.string)  # a file: record its path
        path.set_shape([])
        return real(path)

    monkeypatch.setattr(module, name, wrapped)


def test_raw_examples_from_a_folder_open_only_the_files_asked_for(pets_folder, monkeypatch):
    from labcore.data import sources
    from labcore.data.pipeline import raw_examples

    seen: list = []
    recording_reads(monkeypatch, sources, "decode_image_file", seen)
    source = sources.folder_source(pets_folder.root)
    examples = raw_examples(source, "trainval", [9, 2, 9, 999])  # a repeat and one out of range
    assert sorted(Path(p.decode()).stem for p in seen) == sorted([pets_folder.names[2], pets_folder.names[9]])
    assert [int(e["label"]) for e in examples] == [int(source.labels["trainval"][i]) for i in (9, 2, 9)]
    every = list(source.dataset("trainval"))
    np.testing.assert_array_equal(examples[1]["image"], every[2]["image"].numpy())
    np.testing.assert_array_equal(examples[0]["mask"], every[9]["mask"].numpy())


def test_raw_examples_from_tensorflow_datasets_read_only_the_slices_asked_for(tfds_pets, monkeypatch):
    from labcore.data import sources
    from labcore.data.pipeline import raw_examples

    source = sources.tfds_source(str(tfds_pets.data_dir))
    every = [{k: v.numpy() for k, v in ex.items()} for ex in source.dataset("test")]
    seen: list = []
    recording_reads(monkeypatch, sources, "_from_tfds", seen)
    examples = raw_examples(source, "test", [5, 1])
    assert len(seen) == 2  # two records decoded, not the split up to the sixth
    for got, index in zip(examples, (5, 1)):
        for key in ("image", "label", "bbox", "mask"):
            np.testing.assert_array_equal(got[key], every[index][key])


def test_raw_examples_of_drawn_pets_and_of_a_showcase_are_those_asked_for(tmp_path):
    from labcore.data.pipeline import raw_examples
    from labcore.settings import Settings
    from labcore.store.showcase import load_showcase, write_showcase

    source = synthetic_source(64, seed=3)
    every = list(source.dataset("test"))
    picked = raw_examples(source, "test", [7, 0], image_size=32)
    assert picked[0]["image"].shape == (32, 32, 3)
    assert [int(e["label"]) for e in picked] == [int(every[7]["label"]), int(every[0]["label"])]
    write_showcase(tmp_path, source, Settings(dataset="synthetic", limit=64, seed=3), count=6)
    stored = load_showcase(tmp_path).source()
    assert [int(e["label"]) for e in raw_examples(stored, "test", [4, 1])] == [
        int(stored.labels["test"][4]), int(stored.labels["test"][1])]
