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
