import json

import keras
import numpy as np
import pytest

from labcore.store.runs import list_runs
from labcore.settings import RUNS
from labcore.data.sources import synthetic_source
from labcore.train.training import train_run


def test_tiny_multitask_run_learns(tiny_settings, tmp_path):
    settings = tiny_settings.with_overrides(image_size=64, limit=320, epochs=10)
    messages = []
    path = train_run(RUNS["multitask-scratch"], settings, synthetic_source(320, seed=0), tmp_path, messages.append)
    history = json.loads((path / "history.json").read_text())
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert history["val_label_loss"][-1] < history["val_label_loss"][0]
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["val"]["label_accuracy"] > 4 / 37  # chance is 1/37
    # All-background would score about 0.7 pixel accuracy and a Dice of 0.
    assert metrics["val"]["mask_pixel_accuracy"] > 0.8 and metrics["val"]["mask_dice"] > 0.5
    assert "bbox_mae" in metrics["val"] and "bbox_mae" not in metrics["test"]  # test has no boxes
    for key in ("label_top5_accuracy", "bbox_iou", "mask_miou", "mask_dice"):
        assert key in metrics["val"]
    assert len(history["lr"]) == len(history["loss"]) == len(history["epoch_seconds"]) == 10
    assert any("epoch 10/10" in m for m in messages)


def test_run_directory_is_complete_and_partial_work_is_gone(tiny_settings, tmp_path):
    settings = tiny_settings.with_overrides(epochs=1, limit=64)
    path = train_run(RUNS["segmentation-scratch"], settings, synthetic_source(64, seed=0), tmp_path, lambda m: None)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "history.json", "logs", "metrics.json", "model.keras"]
    assert not (tmp_path / ".partial" / "segmentation-scratch").exists()
    config = json.loads((path / "config.json").read_text())
    for key in ("task", "init", "backbone", "weights", "settings", "dataset", "seed", "versions", "best_epoch"):
        assert key in config
    assert config["weights"] == "none" and config["versions"]["keras"] == keras.__version__
    history = json.loads((path / "history.json").read_text())
    assert {"mask_loss", "mask_accuracy", "val_mask_accuracy"} <= set(history)  # named by head


def weight_groups(model_file) -> set[str]:
    """The top-level groups of the weights file inside a .keras archive (layers, optimizer, ...)."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(model_file) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as f:
        return set(f.keys())


def test_the_stored_model_leaves_the_optimizer_out_and_loads_as_trained(tiny_settings, tmp_path):
    """model.keras holds the layers' weights only (Adam's two moments per weight would triple
    it); it loads, uncompiled as the app loads it, to the very weights training ended with."""
    settings = tiny_settings.with_overrides(epochs=2, limit=64)

    class LastWeights(keras.callbacks.Callback):
        def on_train_end(self, logs=None):  # after early stopping put the best epoch's weights back
            self.weights = [w.copy() for w in self.model.get_weights()]

    last = LastWeights()
    path = train_run(RUNS["detection-scratch"], settings, synthetic_source(64, seed=0), tmp_path, lambda m: None,
                     extra_callbacks=[last])
    assert weight_groups(path / "model.keras") == {"layers", "vars"}  # no "optimizer"
    from labcore.show.inference import Predictor
    from labcore.store.runs import load_model

    run = list_runs(tmp_path)[0]
    stored = load_model(run)
    assert len(stored.get_weights()) == len(last.weights) > 10
    for got, want in zip(stored.get_weights(), last.weights):
        np.testing.assert_array_equal(got, want)
    from PIL import Image

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8))
    prediction = Predictor.from_run(run).predict(photo)  # as the live page runs it
    assert len(prediction.top5) == 5 and prediction.box.shape == (4,)


def test_killed_run_leaves_no_run_directory_and_resumes(start_and_kill, tmp_path):
    spec, settings, source = start_and_kill("detection-scratch", tmp_path)
    assert not (tmp_path / spec.run_id).exists()  # complete or absent
    assert list_runs(tmp_path) == []
    first = json.loads((tmp_path / ".partial" / spec.run_id / "history.json").read_text())
    assert len(first["loss"]) == 2

    messages = []
    path = train_run(spec, settings, source, tmp_path, messages.append)
    history = json.loads((path / "history.json").read_text())
    assert any("resuming after epoch 2" in m for m in messages)
    assert sum("epoch " in m and "/4" in m for m in messages) == 2  # only epochs 3 and 4 ran
    assert len(history["loss"]) == 4
    assert history["loss"][:2] == first["loss"]


def test_a_run_resumes_from_a_checkpoint_older_than_its_last_finished_epoch(start_and_kill, tmp_path, monkeypatch):
    """Checkpoints come once a minute at most: here epochs take 40 s on a fake clock, so
    epoch 2 is saved (80 s after the start) and epoch 3 is not (40 s after that). Killed after
    epoch 3, the run goes on from epoch 2: the history of epoch 3 from before the kill is not
    kept beside the one trained again, and no epoch is counted twice."""
    import labcore.train.checkpoint as checkpoint

    now = [0.0]
    monkeypatch.setattr(checkpoint.Checkpoint, "clock", staticmethod(lambda: now[0]))

    class FortySeconds(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            now[0] += 40.0

    spec, settings, source = start_and_kill("detection-scratch", tmp_path, 60.0, kill_after=3,
                                            extra=[FortySeconds()])
    before = json.loads((tmp_path / ".partial" / spec.run_id / "history.json").read_text())
    assert len(before["loss"]) == 3  # the live history had three epochs when it was killed
    assert [p.name for p in (tmp_path / ".partial" / spec.run_id / "backup").iterdir()] == ["epoch-0002"]

    messages = []
    path = train_run(spec, settings, source, tmp_path, messages.append)
    history = json.loads((path / "history.json").read_text())
    assert any(m == "[detection-scratch] resuming after epoch 2" for m in messages), messages
    assert [m.split()[2] for m in messages if m.startswith("[detection-scratch] epoch ")] == ["3/4", "4/4"]
    assert {len(values) for values in history.values()} == {4}
    assert history["loss"][:2] == before["loss"][:2]


def test_checkpoints_wait_for_their_interval_and_skip_the_last_epoch(start_and_kill, tmp_path):
    """Within the interval, a killed run leaves nothing to resume from and starts afresh; with
    none, every epoch but the fit's last is saved (its checkpoint would be deleted unread)."""
    spec, settings, source = start_and_kill("segmentation-scratch", tmp_path / "a", 3600.0)
    work = tmp_path / "a" / ".partial" / spec.run_id
    assert not (work / "backup").exists()
    messages = []
    train_run(spec, settings, source, tmp_path / "a", messages.append)
    assert not any("resuming" in m for m in messages)
    assert sum("epoch " in m and "/4" in m for m in messages) == 4

    saved = []

    class SpyCheckpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            [unit] = (tmp_path / "b" / ".partial" / spec.run_id / "backup").iterdir()  # the older one is gone
            saved.append(json.loads((unit / "state.json").read_text())["epoch"])
            assert unit.name == f"epoch-{saved[-1]:04d}"

    train_run(spec, settings, source, tmp_path / "b", lambda m: None, extra_callbacks=[SpyCheckpoint()],
              checkpoint_seconds=0.0)
    assert saved == [1, 2, 3, 3]  # after epochs 1, 2 and 3; the 4th (the last) wrote none


def test_long_epochs_report_their_batches(tiny_settings, tmp_path, monkeypatch):
    import labcore.train.training as training

    monkeypatch.setattr(training, "BATCH_NOTE_SECONDS", 0.0)  # every batch is "long"
    settings = tiny_settings.with_overrides(epochs=1, limit=96, batch_size=16)
    messages = []
    train_run(RUNS["detection-scratch"], settings, synthetic_source(96, seed=0), tmp_path, messages.append)
    notes = [m for m in messages if ": batch " in m]
    steps = -(-77 // 16)  # 80 % of 96 for training, in batches of 16
    assert notes and notes[-1].startswith(f"[detection-scratch] epoch 1/1: batch {steps}/{steps}")


def test_pretrained_run_with_fine_tuning_unfreezes_the_backbone(tiny_settings, tmp_path):
    settings = tiny_settings.with_overrides(epochs=2, fine_tune_epochs=1, limit=64, pretext_examples=64,
                                            pretext_epochs=1)
    messages = []
    path = train_run(RUNS["detection-pretrained"], settings, synthetic_source(64, seed=0), tmp_path, messages.append)
    assert (tmp_path / ".pretext").is_dir()  # the synthetic pretext backbone, kept for reuse
    assert any("fine-tuning" in m for m in messages)
    history = json.loads((path / "history.json").read_text())
    assert len(history["loss"]) == 3
    assert history["lr"][2] == pytest.approx(history["lr"][0] / 100)
    config = json.loads((path / "config.json").read_text())
    assert config["weights"] == "synthetic-pretext"
    frozen = train_run(RUNS["detection-pretrained"], settings.with_overrides(fine_tune_epochs=0),
                       synthetic_source(64, seed=0), tmp_path / "frozen", lambda m: None)
    frozen_config = json.loads((frozen / "config.json").read_text())
    assert config["trainable_parameters"] > frozen_config["trainable_parameters"]


class WreckWeights(keras.callbacks.Callback):
    """Makes every epoch after a resume far worse than any before it."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.set_weights([w * 1000.0 for w in self.model.get_weights()])


def test_a_resumed_run_still_ends_on_the_best_epoch_before_the_kill(start_and_kill, tmp_path):
    spec, settings, source = start_and_kill("segmentation-scratch", tmp_path)
    with np.load(tmp_path / ".partial" / spec.run_id / "backup" / "epoch-0002" / "best.weights.npz") as stored:
        best_before_kill = [stored[f"arr_{i}"] for i in range(len(stored.files))]

    path = train_run(spec, settings, source, tmp_path, lambda m: None, extra_callbacks=[WreckWeights()])
    history = json.loads((path / "history.json").read_text())
    assert int(np.nanargmin(history["val_loss"])) < 2  # the best epoch is one from before the kill
    final = keras.saving.load_model(path / "model.keras", compile=False)
    assert len(final.get_weights()) == len(best_before_kill)
    for got, want in zip(final.get_weights(), best_before_kill):
        np.testing.assert_array_equal(got, want)


class WreckFrom(keras.callbacks.Callback):
    """From epoch `first` (0-based) on, starts every epoch from badly damaged weights, and
    keeps each epoch's final weights by variable path."""

    def __init__(self, first: int):
        super().__init__()
        self.first, self.weights = first, []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= self.first:
            self.model.set_weights([w * 1000.0 for w in self.model.get_weights()])

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append({v.path: v.numpy() for v in self.model.weights})


@pytest.mark.parametrize("feature_cache", [False, True])
def test_fine_tuning_keeps_the_best_epoch_of_both_phases_and_reports_it(tiny_settings, tmp_path, feature_cache):
    """When every fine-tuning epoch is worse than the best frozen one, the stored model is that
    frozen epoch's, config.json's best_epoch names it, and metrics.json agrees with the history
    at that epoch. With the feature cache, the frozen phase fits the heads alone (the recorded
    epochs then hold the heads' variables, shared with the whole model)."""
    settings = tiny_settings.with_overrides(epochs=2, fine_tune_epochs=2, limit=64, pretext_examples=64,
                                            pretext_epochs=1, early_stopping_patience=50, feature_cache=feature_cache)
    wreck = WreckFrom(settings.epochs)
    path = train_run(RUNS["detection-pretrained"], settings, synthetic_source(64, seed=0), tmp_path, lambda m: None,
                     extra_callbacks=[wreck])
    history = json.loads((path / "history.json").read_text())
    config = json.loads((path / "config.json").read_text())
    assert len(history["val_loss"]) == 4 and len(wreck.weights) == 4
    best = config["best_epoch"]
    assert best == int(np.nanargmin(history["val_loss"])) + 1 <= settings.epochs
    stored = keras.saving.load_model(path / "model.keras", compile=False)
    recorded = wreck.weights[best - 1]
    compared = [v for v in stored.weights if v.path in recorded]
    assert len(compared) == (len(stored.weights) if not feature_cache else len(recorded))
    for variable in compared:
        np.testing.assert_array_equal(variable.numpy(), recorded[variable.path], err_msg=variable.path)
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["val"]["label_accuracy"] == pytest.approx(history["val_label_accuracy"][best - 1], abs=1e-6)


def test_a_killed_run_on_cached_features_resumes(start_and_kill, tmp_path):
    spec, settings, source = start_and_kill("detection-pretrained", tmp_path, pretext_examples=64, pretext_epochs=1)
    first = json.loads((tmp_path / ".partial" / spec.run_id / "history.json").read_text())
    assert (tmp_path / ".partial" / spec.run_id / "backup-heads").is_dir()  # the heads model's backup

    messages = []
    path = train_run(spec, settings, source, tmp_path, messages.append)
    history = json.loads((path / "history.json").read_text())
    assert any("features ready" in m for m in messages) and any("resuming after epoch 2" in m for m in messages)
    assert sum("epoch " in m and "/4 " in m for m in messages) == 2  # only epochs 3 and 4 ran
    assert history["loss"][:2] == first["loss"] and len(history["val_loss"]) == 4
    assert not (tmp_path / ".partial" / spec.run_id).exists()


def test_a_run_tells_its_watcher_where_it_stands_after_every_epoch(tiny_settings, tmp_path):
    settings = tiny_settings.with_overrides(epochs=3, limit=64, early_stopping_patience=50)
    ticks, lines = [], []
    train_run(RUNS["segmentation-scratch"], settings, synthetic_source(64, seed=0), tmp_path, lines.append,
              watch=ticks.append)
    assert [t.epochs_done for t in ticks] == [1, 2, 3]
    assert all(t.run_id == "segmentation-scratch" and t.epochs == t.fit_epochs == 3 for t in ticks)
    assert [t.text.split()[:2] for t in ticks] == [["epoch", "1/3"], ["epoch", "2/3"], ["epoch", "3/3"]]
    assert 0 < ticks[0].elapsed < ticks[1].elapsed < ticks[2].elapsed
    assert all(t.epoch_pace > 0 for t in ticks)
    assert not any("epoch " in line for line in lines)  # the ticks went to the watcher, not to the lines


def test_without_a_watcher_each_tick_is_a_line_with_the_runs_clock():
    from labcore.train.training import Tick, print_ticks

    lines = []
    watch = print_ticks(lines.append)
    watch(Tick("detection-scratch", "epoch 2/6  loss 0.5000", 75.0, 6, 2, 6, 30.0))  # 4 epochs left at 30 s
    watch(Tick("detection-scratch", "epoch 3/6: batch 4/9, loss 0.4000", 100.0, 6, 2, 6, None))  # mid-epoch
    assert lines == ["[detection-scratch] epoch 2/6  loss 0.5000  run 1 min 15s, ~2 min 00s left",
                     "[detection-scratch] epoch 3/6: batch 4/9, loss 0.4000  run 1 min 40s"]


# train.py in a process whose one CPU is split into two logical devices, as a machine with two
# GPUs presents two: training takes its multi-device branch (MirroredStrategy).
SPLIT_CPU = """
import runpy, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def test_two_devices_train_under_mirrored_strategy_to_one_devices_loss(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT, run_train

    # 80 images: 16 for validation. (Keras 3.14 builds evaluate() from the first validation batch
    # averaged over the replicas, which fails where that batch splits unevenly: 13 images, as
    # the demo's 64 give, stop it with "AddN must have the same size and shape".)
    args = ["--profile", "demo", "--tiny-backbones", "--limit", "80", "--epochs", "2", "--image-size", "32",
            "--only", "multitask-scratch", "--jobs", "1"]
    two = subprocess.run([sys.executable, "-c", SPLIT_CPU, *args, "--runs-dir", str(tmp_path / "two")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    one = run_train(args, tmp_path / "one", timeout=600)
    assert two.returncode == 0 and one.returncode == 0, (two.stderr + one.stderr)[-3000:]
    assert "[multitask-scratch] MirroredStrategy: one replica on each of 2 devices" in two.stdout
    assert "MirroredStrategy" not in one.stdout
    # Each replica takes half of every batch and its BatchNorm sees only that half: the losses
    # are close to one device's, not equal.
    histories = [json.loads((tmp_path / name / "demo" / "multitask-scratch" / "history.json").read_text())
                 for name in ("two", "one")]
    print(f"\nloss on two devices {histories[0]['loss']}, on one {histories[1]['loss']}; "
          f"val_loss {histories[0]['val_loss']} vs {histories[1]['val_loss']}")
    assert len(histories[0]["loss"]) == len(histories[1]["loss"]) == 2
    for key in ("loss", "val_loss"):
        assert histories[0][key] == pytest.approx(histories[1][key], rel=0.02), key
