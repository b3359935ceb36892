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


def rewrite_plan(experiment: Path, **changes) -> None:
    path = experiment / ".partial" / "plan.json"
    write_json(path, {**json.loads(path.read_text()), **changes})


def finish(experiment: Path, run_id: str, at: float, seconds: float) -> None:
    """Write run_id's config.json as a run finished at unix time `at` after `seconds` of training."""
    folder = experiment / run_id
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", {"run_id": run_id, "train_seconds": seconds,
                                        "finished": datetime.fromtimestamp(at, timezone.utc).isoformat(
                                            timespec="seconds")})


def test_a_locked_plan_trains_while_the_lock_is_held_whatever_its_pid_says(holding):
    """train.py always holds the lock: its plan says so (locked), and then the lock, not the pid
    (which the system may give to another process), tells whether it still trains."""
    root, proc = holding
    experiment = in_training(root, pid=proc.pid)
    rewrite_plan(experiment, locked=True)
    assert inflight.read_training(experiment).state == "training"
    proc.kill()
    proc.wait()
    assert inflight.read_training(experiment).state == "stopped"
    rewrite_plan(experiment, pid=os.getpid())  # a live process with the trainer's old pid, no lock held
    assert inflight.read_training(experiment).state == "stopped"


def test_the_time_left_is_the_longest_lanes_running_and_queued_runs_at_the_pace_so_far(tmp_path):
    """Four 60 s runs in two lanes; detection-scratch finished 10 s after the start in 30 s:
    the pace is half the estimate. 20 s after the start, lane 1's segmentation-scratch (started
    at 10 s) has 30 - 10 = 20 s left; lane 2's multitask-scratch 30 - 20 = 10 s, then
    detection-pretrained's 30 s: 40 s, the longer lane's."""
    experiment = in_training(tmp_path / "runs")
    start = float(int(time.time()) - 100)  # whole seconds: config.json's finish time has no fraction
    rewrite_plan(experiment, started=start)
    finish(experiment, "detection-scratch", start + 10, 30.0)
    training = inflight.read_training(experiment, now=start + 20)
    assert training.eta_seconds == pytest.approx(40.0)


@pytest.mark.parametrize("seconds, text", [(None, "time left unknown"), (0, "finishing"), (-5, "finishing"),
                                           (42, "under a minute left"), (90, "about 2 min left"),
                                           (240, "about 4 min left"), (3600, "about 60 min left")])
def test_the_time_left_reads_in_whole_minutes(seconds, text):
    assert inflight.eta_text(seconds) == text


def test_runs_finished_before_the_plan_began_are_being_retrained_not_finished(tmp_path):
    """--force retrains runs that were finished before: until they finish again, they train."""
    experiment = in_training(tmp_path / "runs")
    plan = json.loads((experiment / ".partial" / "plan.json").read_text())
    finish(experiment, "detection-scratch", plan["started"] - 3600, 30.0)  # an hour before this plan
    states = {r.run_id: r.state for r in inflight.read_training(experiment).runs}
    assert states["detection-scratch"] == "training" and states["segmentation-scratch"] == "queued"


def test_a_finished_plan_shows_no_training_on_any_page(tmp_path, monkeypatch):
    experiment = tmp_path / "runs" / "demo"
    record_settings(experiment, "demo", PROFILES["demo"])
    inflight.write_plan(experiment, fake_plan([["detection-scratch"]]), [["detection-scratch"]])
    plan = json.loads((experiment / ".partial" / "plan.json").read_text())
    finish(experiment, "detection-scratch", plan["started"] + 5, 30.0)
    assert inflight.read_training(experiment).state == "done"
    assert inflight.trainings(tmp_path / "runs") == []
    at = open_app(tmp_path / "runs", monkeypatch)
    assert not at.get("progress") and not any("stopped before it finished" in w.value for w in at.warning)


def test_a_plan_from_another_host_is_neither_training_here_nor_stopped(tmp_path, monkeypatch):
    """A store copied while it trained elsewhere: its pid means nothing here, and the resume
    command would not run here either; the pages say where it trains."""
    experiment = in_training(tmp_path / "runs")
    rewrite_plan(experiment, host="laptop7", locked=False)
    training = inflight.read_training(experiment)
    assert (training.state, training.eta_seconds) == ("elsewhere", None)
    at = open_app(tmp_path / "runs", monkeypatch)
    said = " ".join(c.value for c in at.caption)
    assert f"Experiment **demo** is being trained on laptop7 (process {os.getpid()})" in said
    assert not at.get("progress") and not any("stopped before it finished" in w.value for w in at.warning)


class NoLocks:
    """fcntl on a share without flock (NFS without its lock daemon): every flock fails with ENOLCK."""

    LOCK_SH, LOCK_EX, LOCK_NB = 1, 2, 4

    @staticmethod
    def flock(fd, operation):
        import errno

        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))


def test_a_filesystem_without_locks_keeps_the_pages_working_and_says_the_lock_cannot_be_checked(tmp_path,
                                                                                                 monkeypatch):
    root = tmp_path / "runs"
    experiment = in_training(root, pid=os.getpid())
    rewrite_plan(experiment, locked=True)
    (root / inflight.LOCK_FILE).write_text("{}")
    monkeypatch.setattr(inflight, "fcntl", NoLocks)
    assert inflight.holder(root) is None and inflight.lock_unsupported(root) == "No locks available"
    assert inflight.read_training(experiment).state == "training"  # its process is alive: this one
    at = open_app(root, monkeypatch)
    said = " ".join(c.value for c in at.caption)
    from ui.display import escape

    assert f"The training lock in **{escape(root)}** cannot be checked (No locks available)" in said
    assert "Training experiment **demo**" in at.get("progress")[0].proto.text
    with pytest.raises(inflight.LocksUnsupported, match="cannot be locked .No locks available.: one training"):
        inflight.claim(tmp_path / "elsewhere")


def test_a_relative_runs_root_is_the_projects_wherever_the_app_or_train_py_is_started(holding, tmp_path,
                                                                                        monkeypatch):
    """`streamlit run ~/petlab/app.py` from ~, a terminal in another folder: a relative runs
    root (the default `runs`, --runs-dir, $PETLAB_RUNS_DIR) means the same folder in the project."""
    root, proc = holding
    in_training(root)
    relative = os.path.relpath(root, ROOT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--profile", "demo", "--tiny-backbones",
                             "--only", "segmentation-scratch", "--epochs", "1", "--limit", "40", "--image-size", "32",
                             "--runs-dir", relative], cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and f"{root} is being trained by process {proc.pid}" in result.stderr
    monkeypatch.chdir(elsewhere)
    at = open_app(Path(relative), monkeypatch)
    assert "Training experiment **demo**" in at.get("progress")[0].proto.text
    from ui.experiments import runs_root

    monkeypatch.setattr(sys, "argv", ["app.py", "--runs-dir", relative])  # streamlit run app.py -- --runs-dir
    assert runs_root() == root
    assert not list(elsewhere.iterdir())  # nothing was made where they were started
