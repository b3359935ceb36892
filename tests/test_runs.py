import json
from pathlib import Path

import numpy as np
import pytest

from labcore.store.runs import ModelLoadError, list_runs, load_model, partial_runs, write_json
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
