import json
import math
import re
import signal
from pathlib import Path

import pytest

from conftest import TINY_DEMO_ARGS, alive, run_train
from labcore.settings import RUN_IDS, RUNS


def test_demo_profile_trains_all_six_and_prints_a_summary(demo_runs):
    for run_id in RUN_IDS:
        folder = demo_runs / run_id
        breed_head = "label" in RUNS[run_id].outputs  # per-breed counts only where there is a breed head
        assert sorted(p.name for p in folder.iterdir() if p.is_file()) == sorted(
            ["config.json", "history.json", "metrics.json", "model.keras"] + (["confusion.json"] if breed_head else []))
        config = json.loads((folder / "config.json").read_text())
        assert config["settings"]["profile"] == "demo" and config["dataset"]["source"] == "synthetic"
    # The closing summary: one row per run, its figures those the run stored.
    out = (demo_runs.parent.parent / "train.out").read_text()
    summary = out[out.index("experiment 'demo' ("):]
    assert ("not comparable with the report's numbers: trained on drawn pets, not photos; 32 px images, not 224; "
            "pretrained runs start from synthetic-pretext weights, not ImageNet; at most 2 epochs, not up to 50; "
            "tiny stand-in backbones (for tests)") in summary.splitlines()
    rows = summary_rows(summary)
    assert list(rows) == list(RUN_IDS)
    for run_id, (weights, epochs, best, val_loss, shown, minutes) in rows.items():
        folder = demo_runs / run_id
        config = json.loads((folder / "config.json").read_text())
        history = json.loads((folder / "history.json").read_text())
        stored = json.loads((folder / "metrics.json").read_text())["val"]
        lowest = min(range(len(history["val_loss"])), key=history["val_loss"].__getitem__)
        assert (weights, epochs, best) == (config["weights"], str(len(history["val_loss"])), str(lowest + 1)), run_id
        assert float(val_loss) == pytest.approx(history["val_loss"][lowest], abs=5e-5), run_id
        metrics = {name: float(value) for name, value in (part.split() for part in shown.split(", "))}
        key = {"label_accuracy", "bbox_mae", "bbox_iou", "mask_pixel_accuracy", "mask_miou"} & set(stored)
        assert set(metrics) == key and key, run_id
        assert all(metrics[name] == pytest.approx(stored[name], abs=5e-4) for name in key), (run_id, metrics, stored)
        assert float(minutes) == pytest.approx(config["train_seconds"] / 60, abs=0.051), run_id


def summary_rows(summary: str) -> dict[str, list[str]]:
    """The run table train.py prints last: run -> its other columns, as printed."""
    lines = summary.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("run ")) + 2  # past the header and rule
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        run_id, *cells = re.split(r"\s{2,}", line.strip())
        rows[run_id] = cells
    return rows


def test_finished_runs_are_skipped_and_the_table_printed(demo_store):
    result = run_train(TINY_DEMO_ARGS, demo_store, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("already finished") == 6
    table = result.stdout[result.stdout.index("run "):]
    for run_id in RUN_IDS:
        assert run_id in table
    assert "val loss" in table and "nothing to train" in result.stdout
    assert "not comparable with the report's numbers: trained on drawn pets" in result.stdout


def test_new_settings_go_to_their_own_experiment_and_never_reuse_a_run(demo_store, pets_folder, tmp_path):
    """The README's demo, then real data into the same runs root: a second experiment, trained
    in full; then the same experiment with another image size stops, naming the difference."""
    import shutil

    from labcore.store.experiments import list_experiments, load_experiment

    root = tmp_path / "runs"
    shutil.copytree(demo_store, root)
    photos = ["--profile", "quick", "--tiny-backbones", "--dataset", "folder", "--data-dir", str(pets_folder.root),
              "--only", "segmentation-scratch", "detection-scratch", "--epochs", "1", "--image-size", "32"]
    result = run_train(photos, root, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already finished" not in result.stdout and "== run 2/2: detection-scratch ==" in result.stdout
    summary = result.stdout[result.stdout.index("experiment 'quick'"):]
    assert "Oxford-IIIT Pet photos (folder)" in summary and "synthetic" not in summary
    assert [line.split()[0] for line in summary.splitlines() if line.endswith("none") or "  none  " in line] == [
        "detection-scratch", "segmentation-scratch"]
    assert sorted(e.name for e in list_experiments(root)) == ["demo", "quick"]

    again = run_train([*photos, "--image-size", "64"], root, timeout=300)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    last = again.stderr.strip().splitlines()[-1]
    assert "image_size: 32 stored, 64 asked" in last and "--name" in last and "--force" in last
    forced = run_train([*photos, "--image-size", "64", "--only", "segmentation-scratch", "--force"], root, timeout=600)
    assert forced.returncode == 0, forced.stderr[-2000:]
    quick = load_experiment(root / "quick")
    assert quick.settings["image_size"] == 64
    assert quick.odd_runs() == {"detection-scratch": ["image_size: 32 stored, 64 asked"]}


@pytest.mark.parametrize("args, message", [
    (["--image-size", "100"], "multiple of 32"),
    (["--image-size", "2048"], "--image-size must be a multiple of 32 from 32 to 1024"),
    (["--epochs", "5000"], "epochs 5000: must be a whole number from 1 to 1000"),  # the app would refuse it
    (["--dataset", "folder"], "--data-dir"),
    (["--epochs", "0"], "--epochs must be positive"),
    (["--only", "detection-quantum"], "invalid choice"),
    (["--only", "detection-pretrained", "multitask-pretrained", "--init", "scratch"],
     "train.py: no run left to train after --only and --init"),
])
def test_wrong_flags_exit_2_with_a_reason(tmp_path, args, message):
    result = run_train(["--profile", "demo", *args], tmp_path / "runs", timeout=120)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_missing_imagenet_weights_is_one_line_not_a_traceback(tmp_path, jobs):
    # With two lanes, the error is raised in a lane's process and said by the parent.
    result = run_train(["--profile", "demo", "--weights", "imagenet", "--weights-dir", str(tmp_path), "--only",
                        "segmentation-pretrained", "multitask-pretrained", "--limit", "40", "--image-size", "32",
                        "--jobs", jobs], tmp_path / "runs", timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert ("runs at a time" in result.stdout) == (jobs == "2")
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py:") and any(f"weights_mobilenet_v3_{size}_224_1.0_float_no_top_v2.h5" in last
                                                for size in ("small", "large"))
    assert not [p for p in (tmp_path / "runs" / "demo").iterdir() if p.name.endswith("-pretrained")]


def test_weights_dir_gives_the_backbone_keras_weight_files_and_init_keeps_the_pretrained_run(tmp_path):
    """--weights-dir with a weights file written as Keras writes the ones it downloads (its
    legacy HDF5 layout, under its file name), from a seeded MobileNetV3Small: the stored
    model's frozen backbone holds exactly those weights. --init pretrained leaves the scratch
    run out."""
    import h5py
    import keras
    import numpy as np
    from keras.src.legacy.saving import legacy_h5_format

    from labcore.model.architectures import IMAGENET_FILES, backbone_layer
    from labcore.store.runs import list_runs, load_model

    keras.utils.set_random_seed(3)
    backbone = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3))
    # Shifted away from any initial value (BatchNorm's ones and zeros too): the check cannot pass
    # on a backbone that was never loaded.
    rng = np.random.default_rng(3)
    backbone.set_weights([w + rng.uniform(0.01, 0.05, w.shape).astype(w.dtype) for w in backbone.get_weights()])
    weights_dir = tmp_path / "keras-models"
    weights_dir.mkdir()
    with h5py.File(weights_dir / IMAGENET_FILES["MobileNetV3Small"], "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, backbone)

    result = run_train(["--profile", "demo", "--weights", "imagenet", "--weights-dir", str(weights_dir), "--only",
                        "segmentation-pretrained", "segmentation-scratch", "--init", "pretrained", "--limit", "40",
                        "--image-size", "32", "--epochs", "1", "--jobs", "1"], tmp_path / "runs", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "== run 1/1: segmentation-pretrained ==" in result.stdout
    assert "[segmentation-pretrained] MobileNetV3Small, imagenet weights, 32px" in result.stdout
    rows = summary_rows(result.stdout[result.stdout.index("experiment 'demo' ("):])
    assert list(rows) == ["segmentation-pretrained"] and rows["segmentation-pretrained"][0] == "imagenet"
    run = tmp_path / "runs" / "demo" / "segmentation-pretrained"
    assert not (run.parent / "segmentation-scratch").exists()
    config = json.loads((run / "config.json").read_text())
    assert config["weights"] == "imagenet" and config["backbone"] == "MobileNetV3Small"
    stored = backbone_layer(load_model(list_runs(run.parent)[0])).get_weights()
    expected = backbone.get_weights()
    assert len(stored) == len(expected) > 100
    assert all(np.array_equal(a, b) for a, b in zip(stored, expected))


def test_seed_mask_classes_and_fine_tuning_from_the_command_line(demo_runs, tmp_path):
    """--seed, --mask-classes and --fine-tune-epochs reach the stored run: its settings, its
    data (drawn with the seed) and split, its mask head, and a second phase at 1/100 the rate."""
    import numpy as np

    from labcore.data.pipeline import split_indices

    result = run_train(["--profile", "demo", "--tiny-backbones", "--only", "multitask-pretrained", "--limit", "40",
                        "--image-size", "32", "--epochs", "1", "--fine-tune-epochs", "1", "--mask-classes", "2",
                        "--seed", "7", "--jobs", "1"], tmp_path / "runs", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[multitask-pretrained] fine-tuning the whole network for 1 epochs" in result.stdout
    run = tmp_path / "runs" / "demo" / "multitask-pretrained"
    config = json.loads((run / "config.json").read_text())
    assert (config["seed"], config["settings"]["seed"]) == (7, 7)
    assert (config["settings"]["mask_classes"], config["settings"]["fine_tune_epochs"]) == (2, 1)
    assert config["dataset"]["description"].startswith("synthetic drawn pets (seed 7, ")
    assert json.loads((demo_runs / "multitask-pretrained" / "config.json").read_text())["seed"] == 42
    labels = np.arange(40) % 37
    assert [list(part) for part in split_indices(labels, 0.2, 7, 40)] != [
        list(part) for part in split_indices(labels, 0.2, 42, 40)]  # the seed draws another split
    [mask] = [layer for layer in stored_model_config(run / "model.keras")["config"]["layers"]
              if layer["config"]["name"] == "mask"]
    assert mask["config"]["filters"] == 2
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == len(history["val_loss"]) == 2  # one epoch of heads, one of fine-tuning
    assert history["lr"][1] == pytest.approx(history["lr"][0] / 100)


def test_two_lanes_train_what_one_process_trains(tmp_path):
    args = [*TINY_DEMO_ARGS, "--only", "detection-pretrained", "segmentation-scratch", "--threads", "1"]
    one = run_train([*args, "--jobs", "1"], tmp_path / "one", timeout=600)
    two = run_train([*args, "--jobs", "2"], tmp_path / "two", timeout=600)
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-3000:]
    assert "2 runs at a time, in 2 processes" in two.stdout and "at a time" not in one.stdout
    for run_id in ("detection-pretrained", "segmentation-scratch"):
        runs = [json.loads((root / "demo" / run_id / "history.json").read_text()) for root in (tmp_path / "one", tmp_path / "two")]
        configs = [json.loads((root / "demo" / run_id / "config.json").read_text()) for root in (tmp_path / "one", tmp_path / "two")]
        assert configs[0]["settings"] == configs[1]["settings"] and configs[0]["dataset"] == configs[1]["dataset"]
        # The same seeds, data order, thread count and graph optimisation (off: the demo
        # profile): the same float sums, to the bit.
        assert configs[0]["runtime"] == configs[1]["runtime"] == {"threads": 1, "graph_optimization": False}
        assert runs[1]["val_loss"] == runs[0]["val_loss"]


def test_folder_dataset_trains_from_the_command_line(pets_folder, tmp_path):
    result = run_train(["--dataset", "folder", "--data-dir", str(pets_folder.root), "--only",
                        "segmentation-scratch", "--epochs", "1", "--image-size", "32"], tmp_path / "runs", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((tmp_path / "runs" / "report" / "segmentation-scratch" / "config.json").read_text())
    assert config["dataset"]["source"] == "folder" and config["dataset"]["test"] == pets_folder.test
    assert config["settings"]["data_dir"] == str(pets_folder.root.resolve())  # absolute, for the app


def test_mixed_precision_and_xla_flags_train_and_are_recorded(tmp_path):
    result = run_train(["--profile", "demo", "--tiny-backbones", "--only", "multitask-scratch", "--epochs", "1",
                        "--limit", "40", "--image-size", "32", "--mixed-precision", "--jit-compile"],
                       tmp_path / "runs", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "runs" / "demo" / "multitask-scratch"
    settings = json.loads((run / "config.json").read_text())["settings"]
    assert settings["mixed_precision"] is True and settings["jit_compile"] is True
    history = json.loads((run / "history.json").read_text())
    assert all(math.isfinite(v) for v in history["loss"])  # float32 outputs keep the loss stable
    # The flags took effect: the stored model computes in float16 but for its float32 outputs,
    # and was compiled with XLA.
    stored = stored_model_config(run / "model.keras")
    policies = layer_policies(stored["config"])
    assert {policies[name] for name in ("label", "bbox", "mask")} == {"float32"}
    computing = {name: policy for name, policy in policies.items() if name not in ("label", "bbox", "mask")
                 and not name.startswith("input")}
    assert computing and set(computing.values()) == {"mixed_float16"}, computing
    # XLA is the training's (settings above); the stored model carries no compile or optimizer
    # state, which only a training goes on from (its checkpoints keep them).
    assert not stored.get("compile_config"), stored.get("compile_config")


def stored_model_config(path) -> dict:
    """The architecture and compile settings a .keras file holds (its config.json), read without Keras."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def layer_policies(config: dict) -> dict[str, str]:
    """Every layer's dtype policy by name, nested models' layers included."""
    found = {}
    for layer in config.get("layers", []):
        dtype = layer["config"].get("dtype")
        if isinstance(dtype, dict):
            found[layer["config"]["name"]] = dtype["config"]["name"]
        found.update(layer_policies(layer["config"]))
    return found


def test_an_unwritable_runs_dir_is_one_line(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs folder should be")
    result = run_train(["--profile", "demo", "--tiny-backbones", "--only", "segmentation-scratch"], blocker, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("train.py:")


def test_tfds_dataset_trains_from_the_command_line(tfds_pets, tmp_path):
    """The default real source end to end: train.py reads oxford_iiit_pet from a prepared
    tensorflow-datasets folder (made offline by `tfds_pets`) and trains a tiny run from it."""
    result = run_train(["--dataset", "oxford_iiit_pet", "--data-dir", str(tfds_pets.data_dir), "--tiny-backbones",
                        "--only", "segmentation-scratch", "--epochs", "1", "--image-size", "32"],
                       tmp_path / "runs", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (config_path,) = (tmp_path / "runs").glob("**/segmentation-scratch/config.json")
    config = json.loads(config_path.read_text())
    assert config["dataset"]["source"] == "oxford_iiit_pet"
    assert config["dataset"]["train"] + config["dataset"]["val"] == tfds_pets.folder.trainval
    assert config["dataset"]["test"] == tfds_pets.folder.test
    metrics = json.loads((config_path.parent / "metrics.json").read_text())
    assert 0 <= metrics["test"]["mask_pixel_accuracy"] <= 1


def test_the_estimate_comes_first_and_the_feature_cache_can_be_switched_off(tmp_path):
    result = run_train(["--profile", "demo", "--tiny-backbones", "--only", "segmentation-pretrained", "--limit", "40",
                        "--image-size", "32", "--epochs", "1", "--no-feature-cache"], tmp_path / "runs", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "estimate: about " in out and out.index("estimate: about ") < out.index("== run 1/1")
    assert "features ready" not in out  # every epoch ran the backbone on images
    config = json.loads(next((tmp_path / "runs").rglob("config.json")).read_text())
    assert config["settings"]["feature_cache"] is False and config["feature_cache"] is None


def test_ctrl_c_stops_every_lane_in_one_line_and_the_same_command_resumes(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    args = [sys.executable, str(ROOT / "train.py"), *TINY_DEMO_ARGS, "--jobs", "2", "--runs-dir", str(tmp_path)]
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches the parent and both
    # lanes. A job started in the background of a shell inherits SIGINT ignored; a terminal's
    # foreground job has it at its default, so the test gives it that.
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "epoch 1/2" in line:  # the lanes are training
            os.killpg(proc.pid, signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1] == "train.py: interrupted; run it again to resume the unfinished run"
    assert any("runs at a time" in line for line in seen)
    again = run_train(TINY_DEMO_ARGS + ["--jobs", "2"], tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "demo").iterdir() if (p / "model.keras").exists()) == sorted(RUN_IDS)


def lane_processes(parent: int) -> list[int]:
    """The lanes of train.py process `parent`: its children started by multiprocessing's spawn
    (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and "spawn_main" in command and "resource_tracker" not in command:
            found.append(int(entry.name))
    return found


def test_a_lane_killed_without_a_word_stops_the_training_in_one_line(tmp_path):
    """Out of memory, a kill -9: the parent names the run whose process died (the one that
    lane said it was training, not the other lane's), stops the other lane and exits 1, with
    no traceback."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *TINY_DEMO_ARGS, "--jobs", "2",
                             "--runs-dir", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    started = {}  # lane process -> the run it said it started
    for line in proc.stdout:
        found = re.match(r"^== (\S+) \(lane \d, process (\d+)\) ==$", line.strip())
        if found:
            started[int(found.group(2))] = found.group(1)
        if len(started) == 2:  # both lanes are training
            break
    lanes = lane_processes(proc.pid)
    assert sorted(lanes) == sorted(started), (lanes, started)
    killed = next(iter(started))  # the lane that spoke first
    os.kill(killed, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1] == (f"train.py: the process training {started[killed]} ended with exit "
                                            "code -9 before it finished"), err[-2000:]
    assert not any(alive(pid) for pid in lanes)  # the other lane was stopped too


LANE_SAYS = re.compile(r"^== (\S+) \(lane \d, process (\d+)\) ==$", re.M)


@pytest.mark.parametrize("signum, resume", [(signal.SIGTERM, True), (signal.SIGHUP, False), (signal.SIGKILL, True)],
                         ids=["SIGTERM", "SIGHUP", "SIGKILL"])
def test_a_trainer_stopped_or_killed_mid_training_leaves_no_lane_and_the_next_one_resumes(tmp_path, signum, resume):
    """`kill PID` (SIGTERM), a closed terminal (SIGHUP) or `kill -9` on train.py while its two
    lanes train: both lanes are gone within seconds (they held the runs root's lock meanwhile),
    the root is free, and the same command trains what is left, each run's epochs once."""
    import os
    import subprocess
    import sys
    import time

    from conftest import ROOT
    from labcore.store import inflight

    root = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *TINY_DEMO_ARGS, "--jobs", "2",
                             "--runs-dir", str(root)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    lanes: dict[int, str] = {}
    try:
        for line in proc.stdout:
            said = LANE_SAYS.match(line.strip())
            if said:
                lanes[int(said.group(2))] = said.group(1)
            if len(lanes) == 2 and "epoch 1/2" in line:  # both lanes train, one has finished an epoch
                break
        assert len(lanes) == 2, lanes
        lock = str(root / inflight.LOCK_FILE)
        for pid in lanes:  # each lane holds the root's lock too
            assert lock in {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}, pid
        os.kill(proc.pid, signum)
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in lanes) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in lanes), "a lane outlived its trainer by 5 s"
        _, err = proc.communicate(timeout=60)
    finally:
        for pid in lanes:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + signum and "Traceback" not in err, err[-2000:]
        assert err.strip().splitlines()[-1] == (f"train.py: stopped by {signal.Signals(signum).name}; "
                                                "run it again to resume the unfinished run")
    assert inflight.holder(root) is None
    if not resume:
        return
    finished = {p.name for p in (root / "demo").iterdir() if (p / "model.keras").exists()}
    again = run_train([*TINY_DEMO_ARGS, "--jobs", "2"], root, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("already finished") == len(finished)
    assert sorted(run for run, _ in LANE_SAYS.findall(again.stdout)) == sorted(set(RUN_IDS) - finished)
    for run_id in RUN_IDS:  # every epoch once: two, as asked
        history = json.loads((root / "demo" / run_id / "history.json").read_text())
        assert {len(values) for values in history.values()} == {2}, run_id


def test_lanes_share_the_cores_out_when_threads_is_left_out(demo_runs):
    """The demo store was trained with the default --jobs and no --threads: each lane ran with
    its share of the cores, as each run's config.json records."""
    import os

    from labcore.train.lanes import auto_jobs
    from labcore.train.runtime import lane_threads

    cpus = os.cpu_count()
    jobs = auto_jobs("demo", cpus, gpus=0)
    expected = lane_threads(cpus, jobs) if jobs > 1 else None  # one process: TensorFlow's own count
    threads = {run_id: json.loads((demo_runs / run_id / "config.json").read_text())["runtime"]["threads"]
               for run_id in RUN_IDS}
    assert threads == dict.fromkeys(RUN_IDS, expected)
