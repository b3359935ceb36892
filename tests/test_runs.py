import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import save_forty_breed_model
from labcore.store.runs import ModelLoadError, list_runs, load_model, load_run, partial_runs, write_json
from labcore.settings import RUN_IDS


def test_demo_store_round_trips(demo_runs):
    runs = list_runs(demo_runs)
    assert [r.run_id for r in runs] == list(RUN_IDS)
    for run in runs:
        assert run.problems == []
        assert run.history == json.loads((run.path / "history.json").read_text())
        assert set(run.metrics) == {"val", "test"}
        assert run.epochs_run == len(run.history["val_loss"]) >= 1
        assert run.weights == ("none" if run.init == "scratch" else "synthetic-pretext")


def test_model_round_trips_in_safe_mode(demo_runs):
    run = next(r for r in list_runs(demo_runs) if r.run_id == "segmentation-scratch")
    model = load_model(run)
    x = np.random.default_rng(0).uniform(0, 255, (1, run.image_size, run.image_size, 3)).astype("float32")
    out = model(x)
    assert out["mask"].shape == (1, run.image_size, run.image_size, 37)


def test_a_corrupt_or_missing_file_is_reported_for_that_run_only(demo_runs_copy):
    (demo_runs_copy / "detection-scratch" / "metrics.json").write_text("{not json")
    (demo_runs_copy / "segmentation-scratch" / "history.json").unlink()
    (demo_runs_copy / "multitask-scratch" / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    runs = {r.run_id: r for r in list_runs(demo_runs_copy)}
    assert len(runs) == 6
    assert runs["detection-scratch"].problems == ["metrics.json is unreadable (JSONDecodeError)"]
    assert runs["detection-scratch"].metrics == {} and runs["detection-scratch"].history
    assert runs["segmentation-scratch"].problems == ["history.json is missing"]
    assert runs["detection-pretrained"].problems == []
    with pytest.raises(ModelLoadError, match="multitask-scratch: model.keras cannot be loaded"):
        load_model(runs["multitask-scratch"])


def test_partial_and_unknown_folders_are_not_runs(tmp_path):
    (tmp_path / ".partial" / "detection-scratch").mkdir(parents=True)
    (tmp_path / "holiday-photos").mkdir()
    assert list_runs(tmp_path) == []
    assert partial_runs(tmp_path) == ["detection-scratch"]
    assert list_runs(tmp_path / "nowhere") == []


def test_write_json_is_atomic_and_plain(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"a": np.float32(0.5), "b": np.arange(2)})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1]}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_relative_runs_root_is_taken_from_the_project_folder_not_the_working_one(tmp_path, monkeypatch):
    from conftest import ROOT
    from labcore.store.runs import RUNS_DIR_ENV, default_runs_dir, resolve_runs_dir

    monkeypatch.chdir(tmp_path)
    assert resolve_runs_dir("runs") == ROOT / "runs"
    assert resolve_runs_dir("../stores/lab") == ROOT.parent / "stores" / "lab"
    assert resolve_runs_dir(tmp_path / "x") == tmp_path / "x"
    assert resolve_runs_dir("~/lab runs") == Path.home() / "lab runs"
    monkeypatch.setenv(RUNS_DIR_ENV, "stores/a")
    assert default_runs_dir() == ROOT / "stores" / "a"
    monkeypatch.delenv(RUNS_DIR_ENV)
    assert default_runs_dir() == ROOT / "runs"
def damaged_config(run_path, **changes) -> None:
    """The run's config.json with `changes` (settings_<key> for a key of its settings)."""
    config = json.loads((run_path / "config.json").read_text())
    for key, value in changes.items():
        if key.startswith("settings_"):
            config["settings"][key.removeprefix("settings_")] = value
        else:
            config[key] = value
    write_json(run_path / "config.json", config)


@pytest.mark.parametrize("changes, reason", [
    ({"settings_image_size": 40000}, "settings: image_size 40000: must be a multiple of 32 from 32 to 1024"),
    ({"settings": [1, 2]}, "settings is a list"),
    ({"settings_extra": {"backbone": "ResNet50"}}, "settings: extra {'backbone': 'ResNet50'}: backbone must be"),
    ({"task": "segmentation"}, "task is 'segmentation', not 'detection' as detection-scratch has"),
    ({"init": "pretrained"}, "init is 'pretrained', not 'scratch' as detection-scratch has"),
    ({"outputs": ["label", "bbox", "mask"]}, "outputs is ['label', 'bbox', 'mask'], not ['label', 'bbox'] as"),
    ({"backbone": "EfficientNetB3"}, "backbone is 'EfficientNetB3', not 'tiny' as detection-scratch has"),
    ({"weights": "<a href='x'>y</a>"},
     "weights is \"<a href='x'>y</a>\", not one of imagenet, synthetic-pretext, none"),
    ({"dataset": ["train"]}, "dataset is a list"),
    ({"dataset": {"train": "many"}}, "dataset does not hold its source, description and image counts"),
    ({"best_epoch": -1}, "best_epoch is -1, not a count or a time"),
    ({"train_seconds": float("inf")}, "train_seconds is inf, not a count or a time"),
    ({"parameters": True}, "parameters is a bool"),
    ({"finished": "yesterday"}, "finished is not a date and time"),
])
def test_a_config_that_cannot_be_the_runs_is_refused_with_its_reason_and_not_used(demo_runs_copy, changes, reason):
    run_path = demo_runs_copy / "detection-scratch"
    damaged_config(run_path, **changes)
    run = load_run(run_path)
    assert run.refused.startswith(reason)
    assert run.config == {} and run.image_size == 224  # nothing of it is used
    with pytest.raises(ModelLoadError, match=f"detection-scratch: config.json cannot be used \\({re.escape(reason)}"):
        load_model(run)
    assert all(r.refused is None for r in list_runs(demo_runs_copy) if r.run_id != "detection-scratch")


def test_a_null_in_a_config_reads_as_absent(demo_runs_copy):
    run_path = demo_runs_copy / "detection-scratch"
    damaged_config(run_path, dataset=None, best_epoch=None, finished=None)
    run = load_run(run_path)
    assert run.refused is None and not {"dataset", "best_epoch", "finished"} & run.config.keys()


def test_history_keeps_metric_names_and_metrics_keep_numbers(demo_runs_copy):
    run_path = demo_runs_copy / "detection-scratch"
    history = json.loads((run_path / "history.json").read_text())
    write_json(run_path / "history.json", {**history, "<a href='x'>y</a>": [1.0], "flag": [True]})
    metrics = json.loads((run_path / "metrics.json").read_text())
    write_json(run_path / "metrics.json", {"val": {**metrics["val"], "label_accuracy": "high"}, "test": [0.5]})
    run = load_run(run_path)
    assert run.problems == ["history.json: a series named \"<a href='x'>y</a>\" is not a metric name",
                            "history.json: flag is not a list of numbers",
                            "metrics.json: a 'val' value is not a number",
                            "metrics.json: 'test' is not a table of metrics"]
    assert run.history == history and "label_accuracy" not in run.metrics["val"] and "test" not in run.metrics
    assert run.metrics["val"]["bbox_mae"] == metrics["val"]["bbox_mae"]


def test_a_model_that_is_not_what_its_config_describes_is_not_loaded(demo_runs_copy):
    """A copied model.keras can be anything: a larger input than the config's size (memory at
    warm-up), more breeds than 37 (an index past the breeds' names)."""
    run_path = demo_runs_copy / "detection-scratch"
    damaged_config(run_path, settings_image_size=64)
    with pytest.raises(ModelLoadError, match=re.escape(
            "detection-scratch: model.keras takes (32, 32, 3) and gives label (37), bbox (4), not the 64 px "
            "images and label, bbox heads its config.json describes")):
        load_model(load_run(run_path))
    damaged_config(run_path, settings_image_size=32)
    save_forty_breed_model(run_path / "model.keras")
    with pytest.raises(ModelLoadError, match=re.escape("gives label (40), bbox (4), not the 32 px images")):
        load_model(load_run(run_path))
