"""One tf.data pipeline for every source: split, resize, preprocess, batch, cache, prefetch."""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from labcore.settings import TASK_OUTPUTS, Settings
from labcore.data.sources import Source

# Each backbone's own preprocess_input. (For these three Keras builds it passes pixels through
# unchanged: the models rescale inside. Calling it keeps the pipeline right if that changes.)
PREPROCESS = {
    "EfficientNetB3": keras.applications.efficientnet.preprocess_input,
    "MobileNetV3Small": keras.applications.mobilenet_v3.preprocess_input,
    "MobileNetV3Large": keras.applications.mobilenet_v3.preprocess_input,
}


def without_autotune(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` with tf.data's autotuning off. Its model thread, which a new iterator starts every
    epoch, can hold up the old iterator's end for seconds: in the demo's two lanes, Keras'
    `fit` sat at 0 % CPU for 3 to 10 s at the start of an epoch, waiting in the iterator's
    destructor for that thread to stop (gdb: `Model::OptimizeLoop` in a timed wait)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def preprocess_images(images: tf.Tensor, backbone: str) -> tf.Tensor:
    """uint8 or float pixels (0..255), already resized -> what the backbone expects."""
    fn = PREPROCESS.get(backbone, lambda x: x)
    return fn(tf.cast(images, tf.float32))


@dataclass
class Splits:
    train: tf.data.Dataset
    val: tf.data.Dataset
    test: tf.data.Dataset
    counts: dict[str, int]
    # The training examples once, in a fixed order, uncached: what cached features are made from.
    train_in_order: tf.data.Dataset


def split_indices(labels: np.ndarray, val_fraction: float, seed: int, limit: int | None = None):
    """Seeded, stratified split of trainval into (train, val) index arrays: each class gives
    its share of the validation set, which holds round(val_fraction * n) examples in all.

    With `limit`, a stratified subset of `limit` examples is drawn first, so a small run still
    sees every breed instead of the first few (the files are sorted by breed).
    """
    rng = np.random.default_rng(seed)
    keep = stratified_subset(labels, limit, rng) if limit else np.arange(len(labels))
    members = {c: rng.permutation(keep[labels[keep] == c]) for c in np.unique(labels[keep])}
    n_val = _quotas({c: len(m) for c, m in members.items()}, int(round(len(keep) * val_fraction)))
    val = np.concatenate([m[:n_val[c]] for c, m in members.items()])
    train = np.concatenate([m[n_val[c]:] for c, m in members.items()])
    return np.sort(train.astype(np.int64)), np.sort(val.astype(np.int64))


def stratified_subset(labels: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """`limit` indices (or all, if fewer), with the classes in their original proportions."""
    if limit >= len(labels):
        return np.arange(len(labels))
    order = rng.permutation(len(labels))
    by_class = {c: order[labels[order] == c] for c in np.unique(labels)}
    quota = _quotas({c: len(m) for c, m in by_class.items()}, limit)
    return np.sort(np.concatenate([m[:quota[c]] for c, m in by_class.items()]).astype(np.int64))


def test_indices(test_labels: np.ndarray, settings: Settings) -> np.ndarray:
    """The test examples a run is scored on: all, or a stratified `settings.limit` of them."""
    if settings.limit:
        return stratified_subset(test_labels, settings.limit, np.random.default_rng(settings.seed))
    return np.arange(len(test_labels))


def _quotas(sizes: dict, total: int) -> dict:
    """Split `total` over classes in proportion to their sizes (largest remainder method)."""
    n = sum(sizes.values())
    exact = {c: size * total / n for c, size in sizes.items()}
    quota = {c: int(np.floor(v)) for c, v in exact.items()}
    for c in sorted(exact, key=lambda c: quota[c] - exact[c])[:total - sum(quota.values())]:
        quota[c] += 1
    return quota


def _select(ds: tf.data.Dataset, indices: np.ndarray, size: int) -> tf.data.Dataset:
    chosen = np.zeros(size, bool)
    chosen[indices] = True
    chosen_t = tf.constant(chosen)

    def is_chosen(i, ex):
        return tf.gather(chosen_t, i)

    def drop_index(i, ex):
        return ex

    # Filtering hides the size from Keras; restore it so progress and epochs are exact.
    selected = ds.enumerate().filter(is_chosen).map(drop_index)
    return selected.apply(tf.data.experimental.assert_cardinality(len(indices)))


def resize_example(ex: dict, image_size: int) -> dict:
    """Resize image (bilinear, kept uint8 so the cache stays small) and mask (nearest)."""
    size = (image_size, image_size)
    image = tf.image.resize(ex["image"], size, method="bilinear", antialias=True)
    mask = tf.image.resize(ex["mask"], size, method="nearest")
    return {**ex, "image": tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8),
            "mask": tf.cast(mask, tf.uint8)}


def to_model_io(ex: dict, task: str, backbone: str):
    """(inputs, targets) for a task, from a batch of examples. The box target carries the
    has-box flag as a fifth column, so the box loss and metrics can skip examples without a box.
    (Working on whole batches casts and preprocesses once per batch, not once per image.)"""
    targets = {}
    outputs = TASK_OUTPUTS[task]
    if "label" in outputs:
        targets["label"] = ex["label"]
    if "bbox" in outputs:
        targets["bbox"] = tf.concat([ex["bbox"], ex["has_box"][:, None]], axis=-1)
    if "mask" in outputs:
        targets["mask"] = tf.cast(ex["mask"], tf.int32)
    return preprocess_images(ex["image"], backbone), targets


def split_counts(source: Source, settings: Settings) -> dict[str, int]:
    """How many examples `make_splits` puts in train, val and test."""
    train, val = split_indices(source.labels["trainval"], settings.val_fraction, settings.seed, settings.limit)
    return {"train": len(train), "val": len(val), "test": len(test_indices(source.labels["test"], settings))}


def make_splits(source: Source, settings: Settings, task: str, backbone: str) -> Splits:
    """Train / val / test datasets, batched, for one task and backbone."""
    train_idx, val_idx = split_indices(source.labels["trainval"], settings.val_fraction,
                                       settings.seed, settings.limit)
    n_test = len(source.labels["test"])
    test_idx = test_indices(source.labels["test"], settings)
    n_trainval = len(source.labels["trainval"])

    def build(raw: tf.data.Dataset, indices: np.ndarray, size: int, shuffle: bool,
              cache: bool = True) -> tf.data.Dataset:
        ds = raw if len(indices) == size else _select(raw, indices, size)
        ds = ds.map(lambda ex: resize_example(ex, settings.image_size), num_parallel_calls=tf.data.AUTOTUNE)
        if cache:
            ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(len(indices), seed=settings.seed, reshuffle_each_iteration=True)
        ds = ds.batch(settings.batch_size)
        ds = ds.map(lambda ex: to_model_io(ex, task, backbone), num_parallel_calls=tf.data.AUTOTUNE)
        return without_autotune(ds.prefetch(tf.data.AUTOTUNE))

    trainval = source.dataset("trainval")
    return Splits(
        train=build(trainval, train_idx, n_trainval, shuffle=True),
        val=build(trainval, val_idx, n_trainval, shuffle=False),
        test=build(source.dataset("test"), test_idx, n_test, shuffle=False),
        counts={"train": len(train_idx), "val": len(val_idx), "test": len(test_idx)},
        train_in_order=build(trainval, train_idx, n_trainval, shuffle=False, cache=False),
    )


def raw_examples(source: Source, split: str, indices: list[int], image_size: int | None = None) -> list[dict]:
    """A few unbatched examples as numpy dicts (for the app's browsers), optionally resized, in
    the order asked (positions out of range left out). Only those are read where the source can
    pick them (every source here, and the showcase); else the split is read from its start."""
    size = len(source.labels[split])
    wanted = sorted({int(i) for i in indices if 0 <= int(i) < size})
    if split in source.pick:
        found = zip(wanted, source.pick[split](wanted) if wanted else [])
    else:
        keep = set(wanted)
        found = ((int(i), ex) for i, ex in source.dataset(split).take(len(wanted) and wanted[-1] + 1).enumerate()
                 if int(i) in keep)
    out = {}
    for i, ex in found:
        if image_size:
            ex = resize_example(ex, image_size)
        out[i] = {k: v.numpy() for k, v in ex.items()}
    return [out[int(i)] for i in indices if int(i) in out]
