import json

import keras
import numpy as np
import pytest

import labcore.train.features as features
from labcore.train.features import extract_features, feature_dataset
from labcore.model.architectures import build_backbone
from labcore.settings import RUNS
from labcore.data.sources import synthetic_source
from labcore.train.training import train_run


class SeenInputs(keras.callbacks.Callback):
    """Records the input shape of the model being fit, and whether feature files exist then."""

    def __init__(self, work):
        super().__init__()
        self.work, self.shape, self.files = work, None, []

    def on_train_begin(self, logs=None):
        self.shape = tuple(self.model.inputs[0].shape)

    def on_epoch_end(self, epoch, logs=None):
        self.files = sorted(p.name for p in (self.work / features.FEATURES_DIR).glob("*.npy"))


def fit(run_id, settings, root):
    seen = SeenInputs(root / ".partial" / run_id)
    path = train_run(RUNS[run_id], settings, synthetic_source(128, seed=0), root, lambda m: None,
                     extra_callbacks=[seen])
    history = json.loads((path / "history.json").read_text())
    config = json.loads((path / "config.json").read_text())
    return seen, history, config, path


def test_cached_features_train_the_heads_exactly_as_images_do(tiny_settings, tmp_path, monkeypatch):
    settings = tiny_settings.with_overrides(epochs=3, limit=128, early_stopping_patience=50,
                                            pretext_examples=64, pretext_epochs=1)
    seen_plain, plain, config_plain, plain_path = fit("multitask-pretrained",
                                                      settings.with_overrides(feature_cache=False), tmp_path / "plain")
    assert seen_plain.shape == (None, 32, 32, 3) and config_plain["feature_cache"] is None
    plain_metrics = json.loads((plain_path / "metrics.json").read_text())

    for storage in ("memory", "file"):
        monkeypatch.setattr(features, "MEMORY_SHARE", 0.4 if storage == "memory" else 0.0)
        seen, cached, config, path = fit("multitask-pretrained", settings, tmp_path / storage)
        # The heads were fit on backbone features (tiny backbone at 32 px: 1x1x32), not on images;
        # the history keys are the same and the stored model is the whole model.
        assert seen.shape == (None, 1, 1, 32)
        assert config["feature_cache"]["storage"] == storage and config["feature_cache"]["images"] == 128
        assert sorted(cached) == sorted(plain)
        assert keras.saving.load_model(path / "model.keras", compile=False).input_shape == (None, 32, 32, 3)
        # Same seed, same shuffles, same training: the losses agree to float rounding, and they moved.
        np.testing.assert_allclose(cached["val_loss"], plain["val_loss"], rtol=1e-4)
        np.testing.assert_allclose(cached["loss"], plain["loss"], rtol=1e-4)
        assert cached["loss"][-1] < cached["loss"][0] - 0.1
        metrics = json.loads((path / "metrics.json").read_text())  # the whole model on images, as before
        for split in ("val", "test"):
            for key, value in plain_metrics[split].items():
                assert metrics[split][key] == pytest.approx(value, rel=1e-3, abs=1e-4), (storage, split, key)
        assert seen.files == ([] if storage == "memory" else ["train.npy", "val.npy"])  # on disk while training
        assert not (tmp_path / storage / ".partial" / "multitask-pretrained").exists()  # removed with the run


def test_scratch_runs_and_frozen_runs_without_the_setting_use_no_cache(tiny_settings):
    assert features.uses_feature_cache(RUNS["detection-pretrained"], tiny_settings)
    assert not features.uses_feature_cache(RUNS["detection-scratch"], tiny_settings)
    assert not features.uses_feature_cache(RUNS["detection-pretrained"], tiny_settings.with_overrides(feature_cache=False))
    assert not features.uses_feature_cache(RUNS["detection-pretrained"],
                                           tiny_settings.with_overrides(freeze_backbone=False))


def test_feature_batches_follow_the_images_shuffle(tmp_path):
    """The index shuffle gives each epoch the very order a seeded shuffle of the examples gives."""
    import tensorflow as tf

    backbone = build_backbone("tiny", 32)
    images = np.random.default_rng(0).uniform(0, 255, (40, 32, 32, 3)).astype(np.float32)
    labels = np.arange(40, dtype=np.int32)
    batched = tf.data.Dataset.from_tensor_slices((images, {"label": labels})).batch(16)
    found = extract_features(backbone, {"train": (batched, 40)}, tmp_path)["train"]
    np.testing.assert_allclose(found.features, backbone(images, training=False).numpy(), rtol=1e-5, atol=1e-6)

    keras.utils.set_random_seed(7)
    by_index = feature_dataset(found, 16, shuffle_seed=3)
    by_example = tf.data.Dataset.from_tensor_slices(labels).shuffle(40, seed=3, reshuffle_each_iteration=True).batch(16)
    for _ in range(2):  # two epochs: the reshuffles agree too
        got = np.concatenate([t["label"].numpy() for _, t in by_index])
        want = np.concatenate([b.numpy() for b in by_example])
        np.testing.assert_array_equal(got, want)
        assert sorted(got) == list(range(40))
    assert by_index.options().autotune.enabled is False  # as the image splits (labcore.data.pipeline)


# reserved_memmap in a process whose files may not grow past 1 MB (a full disk, without root),
# SIGXFSZ ignored so that such a write fails with EFBIG instead of ending the process.
RESERVE_ON_A_FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from labcore.train.features import reserved_memmap

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))
try:
    reserved_memmap(Path(sys.argv[1]), (1000, 25, 40))
except OSError as err:
    print(f"{err.strerror} | {err.filename}")
"""


def test_the_feature_file_takes_its_space_before_it_is_mapped_or_says_what_it_needs(tmp_path):
    """Mapped over a sparse file, features written to a full disk end the process with SIGBUS:
    the file's blocks are taken first (the disk says no then, in a sentence naming the file and
    the space), and the map lies over them."""
    import subprocess
    import sys

    from conftest import ROOT

    path = tmp_path / "train.npy"
    mapped = features.reserved_memmap(path, (1000, 25, 40))  # 4 MB of float32, with no limit
    assert mapped.shape == (1000, 25, 40) and mapped.dtype == np.float32
    assert path.stat().st_blocks * 512 >= 4_000_000  # allocated, not a sparse file
    mapped[-1] = 7.0
    mapped.flush()
    assert np.load(path, mmap_mode="r")[-1, 0, 0] == 7.0  # an .npy file as np.save writes it

    done = subprocess.run([sys.executable, "-c", RESERVE_ON_A_FULL_DISK, str(tmp_path / "full.npy")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stdout.strip() == (f"cannot reserve 4.0 MB on the disk for the cached features (File too large) "
                                   f"| {tmp_path / 'full.npy'}")
