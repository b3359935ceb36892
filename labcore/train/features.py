"""Cached frozen features: a frozen backbone runs once per image, and the heads train on its outputs.

A pretrained run with a frozen backbone (the report's feature extractor) runs that backbone
in inference mode (see `labcore.model.architectures.build_models`), and the pipeline has no augmentation,
so every epoch would compute the very same backbone outputs again. Here they are computed
once per image, kept in memory (or, where they would not fit, in a file in the run's work
folder), and the heads model, which shares the whole model's head layers, trains on them.

It is the same training as on images: the examples come in the same order (the same seeded
shuffle of the same number of elements, applied to indices instead of images) and the heads
see the same inputs, so the losses agree to float rounding (`tests/test_features.py`).

Where they would not fit in memory, the features go to a .npy file read at random rows (its
space reserved on the disk before it is mapped: `reserved_memmap`), not to a tf.data cache
file: a tf.data cache read back in order would need a shuffle buffer holding every feature in
memory to give the same order. They are kept as float32 (the backbone's output under mixed
precision is cast), so nothing about the training changes.
"""
from __future__ import annotations

import errno
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from labcore.data.pipeline import Splits, without_autotune
from labcore.settings import RunSpec, Settings

# At most this share of the memory the system reports as available holds the features in
# memory; beyond it they go to a file (read back at random, so the shuffle stays the same).
MEMORY_SHARE = 0.4
FEATURES_DIR = "features"  # inside the run's work folder, removed when the run completes


def uses_feature_cache(spec: RunSpec, settings: Settings) -> bool:
    """Whether this run trains its heads on cached backbone features."""
    return spec.init == "pretrained" and settings.freeze_backbone and settings.feature_cache


@dataclass
class FeatureSet:
    """One split's backbone outputs and targets, row i for example i in the pipeline's order."""

    features: np.ndarray  # an in-memory array or a np.memmap
    targets: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.features)


def available_memory_bytes() -> int:
    """What the system reports as available (Linux' MemAvailable), else the physical memory."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def feature_bytes(backbone: keras.Model, images: int) -> int:
    """Bytes the float32 outputs of `backbone` take for `images` images."""
    return images * int(np.prod(backbone.output.shape[1:])) * 4


def extract_features(backbone: keras.Model, splits: dict[str, tuple[tf.data.Dataset, int]],
                     folder: Path | None) -> dict[str, FeatureSet]:
    """Run `backbone` (inference mode) once over each split's batched, unshuffled
    (images, targets) dataset of known size. With `folder`, features are written to .npy
    files there (memory-mapped) instead of held in memory."""
    shape = tuple(backbone.output.shape[1:])
    spec = tf.TensorSpec((None, *backbone.input.shape[1:]), tf.float32)
    forward = tf.function(lambda x: tf.cast(backbone(x, training=False), tf.float32), input_signature=[spec],
                          autograph=False)
    out = {}
    for name, (dataset, count) in splits.items():
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            features = reserved_memmap(folder / f"{name}.npy", (count, *shape))
        else:
            features = np.empty((count, *shape), np.float32)
        targets: dict[str, list[np.ndarray]] = {}
        done = 0
        for images, batch_targets in dataset:
            n = int(images.shape[0])
            features[done:done + n] = forward(images).numpy()
            for key, value in batch_targets.items():
                value = value.numpy()
                # Masks are 0/1: a byte each, not four (cast back when batched).
                targets.setdefault(key, []).append(value.astype(np.uint8) if key == "mask" else value)
            done += n
        if done != count:
            raise RuntimeError(f"{name}: expected {count} examples, the dataset gave {done}")
        if folder is not None:
            features.flush()
        out[name] = FeatureSet(features, {k: np.concatenate(v) for k, v in targets.items()})
    return out


def reserved_memmap(path: Path, shape: tuple[int, ...]) -> np.memmap:
    """A float32 .npy file of `shape`, memory-mapped for writing, its space taken on the disk
    first: a memory map writes where a file claims space it does not have would end the process
    with SIGBUS, without a word. Raises OSError (the path, the space needed, why) where the disk
    cannot give it."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": tuple(shape)}
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, header)
        size = file.tell() + int(np.prod(shape)) * 4
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(file.fileno(), 0, size)
            elif shutil.disk_usage(path.parent).free < size:  # no fallocate (macOS): look first
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            else:
                file.truncate(size)
        except OSError as err:
            raise OSError(err.errno, f"cannot reserve {size / 1e6:,.1f} MB on the disk for the cached "
                                     f"features ({err.strerror})", str(path)) from None
    return np.lib.format.open_memmap(path, mode="r+")


def feature_dataset(data: FeatureSet, batch_size: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """(features, targets) batches. With `shuffle_seed`, reshuffled every epoch exactly as
    `labcore.data.pipeline.make_splits` shuffles images: a full-size buffer with that seed."""
    keys = sorted(data.targets)
    indices = tf.data.Dataset.range(len(data))
    if shuffle_seed is not None:
        indices = indices.shuffle(len(data), seed=shuffle_seed, reshuffle_each_iteration=True)

    def gather(rows: np.ndarray):
        return (data.features[rows], *(data.targets[k][rows] for k in keys))

    @tf.autograph.experimental.do_not_convert  # plain TensorFlow calls: nothing to convert
    def lookup(rows: tf.Tensor):
        dtypes = [tf.float32, *(tf.as_dtype(data.targets[k].dtype) for k in keys)]
        found = tf.numpy_function(gather, [rows], dtypes, stateful=False)
        features = tf.ensure_shape(found[0], (None, *data.features.shape[1:]))
        targets = {}
        for key, value in zip(keys, found[1:]):
            value = tf.ensure_shape(value, (None, *data.targets[key].shape[1:]))
            targets[key] = tf.cast(value, tf.int32) if key == "mask" else value
        return features, targets

    return without_autotune(indices.batch(batch_size).map(lookup).prefetch(tf.data.AUTOTUNE))


@dataclass
class CachedSplits:
    train: tf.data.Dataset
    val: tf.data.Dataset
    images: int
    seconds: float
    storage: str  # "memory" or a file path


def cached_splits(backbone: keras.Model, splits: Splits, settings: Settings, work: Path) -> CachedSplits:
    """Train and val datasets of backbone features, made from the image splits."""
    counts = splits.counts
    images = counts["train"] + counts["val"]
    in_memory = feature_bytes(backbone, images) <= MEMORY_SHARE * available_memory_bytes()
    folder = None if in_memory else work / FEATURES_DIR
    start = time.perf_counter()
    sets = extract_features(backbone, {"train": (splits.train_in_order, counts["train"]),
                                       "val": (splits.val, counts["val"])}, folder)
    return CachedSplits(
        train=feature_dataset(sets["train"], settings.batch_size, shuffle_seed=settings.seed),
        val=feature_dataset(sets["val"], settings.batch_size),
        images=images, seconds=time.perf_counter() - start,
        storage="memory" if folder is None else str(folder))
