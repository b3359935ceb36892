"""A training in flight (labcore.store.inflight): the lock that lets one training write a runs root,
the plan and progress the app reads from the experiment folder, the rule that only a browser on
this machine may start one; and what the app's pages make of them (AppTest). Who that browser is,
and the button: test_access, test_presenter."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, run_train
from test_app import shown as unescaped
from labcore.store import inflight
from labcore.train.estimate import PlanEstimate, RunEstimate
from labcore.store.experiments import record_settings
from labcore.store.runs import RUNS_DIR_ENV, write_json
from labcore.settings import PROFILES

HOLD = ("import sys, time; from labcore.store.inflight import claim; claim(sys.argv[1]); "
        "print('held', flush=True); time.sleep(120)")


@pytest.mark.parametrize("address, local", [
    ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("192.168.1.20", False), ("10.0.0.5", False), ("::ffff:192.168.1.20", False), ("fe80::1%eth0", False),
    ("2001:db8::1", False), ("localhost", False), ("", False), (None, False)])
def test_only_a_loopback_address_may_start_training(address, local):
    assert inflight.is_loopback(address) is local


@pytest.fixture
def holding(tmp_path):
    """Another process holding the training lock of tmp_path/runs, killed at the end."""
    root = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield root, proc
    proc.kill()
    proc.wait()


def test_one_training_at_a_time_per_root_and_a_dead_holder_blocks_nothing(holding):
    root, proc = holding
    assert inflight.holder(root)["pid"] == proc.pid
    result = run_train(["--profile", "demo", "--tiny-backbones"], root, timeout=120)
    assert result.returncode == 1
    assert f"being trained by process {proc.pid}" in result.stderr and "Traceback" not in result.stderr
    assert inflight.start_demo(root) is False  # the app's button starts nothing either
    assert not (root / inflight.LOG_FILE).exists()
    proc.send_signal(signal.SIGKILL)  # a trainer that dies without a word
    proc.wait()
    assert inflight.holder(root) is None
    again = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert again.stdout.readline().strip() == "held"
    finally:
        again.kill()
        again.wait()


def fake_plan(lanes: list[list[str]], epochs: int = 6) -> PlanEstimate:
    """A plan of 60-second runs (each keeps one core busy, so no slower side by side)."""
    runs = [RunEstimate(r, 60.0, 0, 0, 0, 0, epochs, 0) for lane in lanes for r in lane]
    return PlanEstimate(runs, "this CPU (2 cores)", 1.0, cores=2)


def history(epochs: int) -> dict:
    return {"loss": [1.0 - 0.1 * e for e in range(epochs)], "val_loss": [1.1 - 0.1 * e for e in range(epochs)],
            "label_accuracy": [0.1 * (e + 1) for e in range(epochs)]}


def in_training(root: Path, pid: int | None = None) -> Path:
    """An experiment mid-training: detection-scratch finished, segmentation-scratch after two
    epochs, multitask-scratch preparing and detection-pretrained queued, in two lanes."""
    experiment = root / "demo"
    record_settings(experiment, "demo", PROFILES["demo"])
    inflight.write_plan(experiment, fake_plan([["detection-scratch", "segmentation-scratch"],
                                               ["multitask-scratch", "detection-pretrained"]]), [
        ["detection-scratch", "segmentation-scratch"], ["multitask-scratch", "detection-pretrained"]])
    if pid is not None:
        plan = json.loads((experiment / ".partial" / "plan.json").read_text())
        write_json(experiment / ".partial" / "plan.json", {**plan, "pid": pid})
    done = experiment / "detection-scratch"
    done.mkdir(parents=True)
    write_json(done / "config.json", {"run_id": "detection-scratch", "train_seconds": 30.0,
                                      "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    write_json(done / "history.json", history(6))
    (experiment / ".partial" / "segmentation-scratch").mkdir()
    write_json(experiment / ".partial" / "segmentation-scratch" / "history.json", history(2))
    (experiment / ".partial" / "multitask-scratch").mkdir()
    return experiment


def test_the_plan_and_the_folder_say_which_runs_wait_and_where_the_others_are(tmp_path):
    training = inflight.read_training(in_training(tmp_path / "runs"))
    assert training.state == "training"  # written by this process, which is alive
    states = {r.run_id: (r.state, r.epochs_done, r.epochs) for r in training.runs}
    assert states == {"detection-scratch": ("finished", 6, 6), "segmentation-scratch": ("training", 2, 6),
                      "multitask-scratch": ("training", 0, 6), "detection-pretrained": ("queued", 0, 6)}
    # The finished run took half its estimate: the runs to come are priced at that pace.
    assert 0 < training.eta_seconds <= 30 + 60


def test_queued_runs_are_listed_in_the_order_their_lanes_will_start_them(tmp_path):
    """Lanes take runs from a queue as they free up: a lane with a short run left starts its
    next run first, whichever lane the plan lists first."""
    experiment = tmp_path / "runs" / "demo"
    lanes = [["detection-pretrained", "segmentation-pretrained"],
             ["detection-scratch", "multitask-scratch", "segmentation-scratch"]]
    runs = [RunEstimate("detection-pretrained", 200.0, 0, 0, 0, 0, 6, 0),
            RunEstimate("segmentation-pretrained", 60.0, 0, 0, 0, 0, 6, 0),
            RunEstimate("detection-scratch", 20.0, 0, 0, 0, 0, 6, 0),
            RunEstimate("multitask-scratch", 30.0, 0, 0, 0, 0, 6, 0),
            RunEstimate("segmentation-scratch", 30.0, 0, 0, 0, 0, 6, 0)]
    inflight.write_plan(experiment, PlanEstimate(runs, "this CPU (2 cores)", 1.0, cores=2), lanes)
    training = inflight.read_training(experiment)
    # Expected to start: multitask-scratch after 20 s, segmentation-scratch after 50 s,
    # segmentation-pretrained after 200 s.
    assert [r.run_id for r in training.of_state("queued")] == [
        "multitask-scratch", "segmentation-scratch", "segmentation-pretrained"]
    assert [r.run_id for r in training.of_state("training")] == ["detection-pretrained", "detection-scratch"]


def test_a_plan_whose_trainer_is_gone_reads_as_stopped_and_every_page_says_so(tmp_path, monkeypatch):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    experiment = in_training(tmp_path / "runs", pid=int(gone.stdout))
    assert inflight.read_training(experiment).state == "stopped"
    assert [t.name for t in inflight.trainings(tmp_path / "runs")] == ["demo"]
    at = open_app(tmp_path / "runs", monkeypatch)
    warning = " ".join(w.value for w in at.warning)
    assert f"stopped before it finished (process {gone.stdout.strip()} is gone): 3 of 4 runs unfinished" in warning
    assert "python train.py --profile demo" in warning  # the command that resumes it
    assert not at.get("progress")


def open_app(root: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv(RUNS_DIR_ENV, str(root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_every_page_shows_the_training_and_histories_draw_unfinished_runs(tmp_path, monkeypatch):
    in_training(tmp_path / "runs")
    at = open_app(tmp_path / "runs", monkeypatch)
    bar = at.get("progress")[0]
    assert "Training experiment **demo**: 1 of 4 runs finished" in bar.proto.text
    status = unescaped(" ".join(c.value for c in at.caption))  # run ids are escaped for markdown
    assert "**segmentation-scratch** epoch 2 of 6 done" in status and "**multitask-scratch** preparing" in status
    assert "queued: detection-pretrained" in status
    at.switch_page("app_pages/2_histories.py").run()
    assert not at.exception
    names = {trace.get("name") for chart in at.get("plotly_chart")
             for trace in json.loads(chart.proto.spec)["data"]}
    assert "segmentation-scratch (in progress: 2 of 6 epochs)" in names
    assert "detection-scratch" in names  # the finished one, beside it


def test_a_running_run_s_time_left_follows_its_epochs_once_it_has_two(tmp_path):
    experiment = tmp_path / "runs" / "demo"
    inflight.write_plan(experiment, fake_plan([["detection-scratch"]], epochs=6), [["detection-scratch"]])
    (experiment / ".partial" / "detection-scratch").mkdir()
    write_json(experiment / ".partial" / "detection-scratch" / "history.json",
               {**history(2), "epoch_seconds": [100.0, 5.0]})  # the first epoch traces: not its pace
    assert inflight.read_training(experiment).eta_seconds == pytest.approx(4 * 5.0)


def test_the_command_holding_the_root_is_shown_shell_quoted(tmp_path):
    command = ["train.py", "--profile", "demo", "--runs-dir", "/srv/lab runs/o'brien"]
    message = inflight.underway_message(tmp_path, {"command": command, "pid": 7})
    shown = message[message.index(" (") + 2:message.index("); ")]
    assert shlex.split(shown) == command
