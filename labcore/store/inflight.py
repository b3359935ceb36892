"""A training in flight: who trains a runs root, what its plan is, how far it got.

- The lock: `train.py` holds `<runs root>/.training.lock` (flock) from its first moment to its
  exit, so one training at a time writes a root, whoever started it (the app, a terminal). Its
  lanes hold it too (`lock_fd`, `labcore.train.stopping`): the kernel lets go of it when the
  last of them ends, however they end, so a dead trainer never blocks and a root is never free
  while a process of its training lives. The file also says who holds it (pid, host, command,
  start time). On a filesystem without locks (a share without flock) train.py refuses to start
  and the pages say the lock cannot be checked (`lock_unsupported`).
- The plan: `train_all` writes `<experiment>/.partial/plan.json` once it has its estimate
  (the runs, their lanes, each run's estimate and epochs, the start time and pid), and updates
  its lanes as runs start (`update_lanes`: each lane's started runs, then the rest).
- The rest is read from the experiment folder, where training writes anyway: a run is finished
  when its folder holds a config.json finished after the plan began; in each lane the first
  unfinished run is the one training, its epochs so far are in
  `.partial/<run id>/history.json`; the others wait, listed in the order they are expected to
  start.

The app starts the demo here (`start_demo`) only for a browser on this machine (`is_loopback`).
"""
from __future__ import annotations

import atexit
import errno
import fcntl
import ipaddress
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol, Sequence

from labcore.settings import RUNS
from labcore.store.runs import read_json, write_json

LOCK_FILE = ".training.lock"  # in the runs root
PLAN_FILE = "plan.json"  # in <experiment>/.partial/
LOG_FILE = "train.log"  # in the runs root: the output of trainings the app starts
# Test-only: extra train.py arguments for the demo the app starts (e.g. tiny backbones, 32 px).
DEMO_ARGS_ENV = "PETLAB_DEMO_ARGS"
TRAIN_PY = Path(__file__).resolve().parents[2] / "train.py"
CLAIM_TRIES = 10  # the app's look at the lock takes it for an instant: a claim tries again
# flock's errors on a filesystem without locks (an NFS share without its lock daemon, some FUSE mounts).
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)

_held: dict[str, int] = {}  # runs root -> the lock's file descriptor, for this process's life
_launch = threading.Lock()


class TrainingUnderway(RuntimeError):
    """Another process is training this runs root; the message says which and what to do."""


class LocksUnsupported(RuntimeError):
    """The runs root is on a filesystem without file locks; the message says what to do."""


# --------------------------------------------------------------------------- the lock

def claim(root: Path | str, command: Sequence[str] | None = None) -> None:
    """Take `root`'s training lock for the rest of this process's life (again: nothing to do).
    Raises TrainingUnderway when another process holds it."""
    root = Path(root)
    if str(root.resolve()) in _held:
        return
    if not root.is_dir():  # made for the lock: taken away again at exit if nothing else came of it
        root.mkdir(parents=True)
        atexit.register(_tidy, root)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    for attempt in range(CLAIM_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if attempt == CLAIM_TRIES - 1:
                os.close(fd)
                raise TrainingUnderway(underway_message(root, holder(root) or {})) from None
            time.sleep(0.1)
        except OSError as err:
            os.close(fd)
            if err.errno in NO_LOCKS:
                raise LocksUnsupported(f"{root} cannot be locked ({err.strerror}): one training at a time "
                                       "needs file locks, which this filesystem does not give; train into a "
                                       "--runs-dir on a local disk") from None
            raise
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
            "command": list(command if command is not None else sys.argv)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _held[str(root.resolve())] = fd


def _tidy(root: Path) -> None:
    """A runs root this process made only to hold its lock (train.py refused its arguments, say)
    is removed, so a refused command leaves nothing behind."""
    try:
        if [p.name for p in root.iterdir()] == [LOCK_FILE]:
            (root / LOCK_FILE).unlink()
            root.rmdir()
    except OSError:
        pass


def lock_fd(root: Path | str) -> int | None:
    """The file descriptor of `root`'s lock where this process holds it (for its lanes to share)."""
    return _held.get(str(Path(root).resolve()))


def holder(root: Path | str) -> dict | None:
    """Who holds `root`'s training lock (what the holder wrote in it), or None when nobody does,
    or nobody can: on a filesystem without locks (`lock_unsupported`)."""
    return _look(Path(root))[0]


def lock_unsupported(root: Path | str) -> str | None:
    """Why `root`'s lock cannot be checked ("No locks available", a network share without
    flock), or None where it can: there no training can take the lock, and the pages say so."""
    return _look(Path(root))[1]


def _look(root: Path) -> tuple[dict | None, str | None]:
    """(the holder's info or None, why the lock cannot be checked or None)."""
    path = root / LOCK_FILE
    if not path.is_file():
        return None, None
    if str(root.resolve()) in _held:
        return _lock_info(path), None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None, None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None, None  # nobody trains: the lock was free (and is again once closed)
    except BlockingIOError:
        return _lock_info(path), None
    except OSError as err:
        if err.errno in NO_LOCKS:
            return None, err.strerror or "file locks are not supported"
        raise
    finally:
        os.close(fd)


def _lock_info(path: Path) -> dict:
    info = read_json(path)
    return info if isinstance(info, dict) else {}


def underway_message(root: Path, info: dict) -> str:
    command = shlex.join(map(str, info.get("command") or [])) or "another train.py"
    since = clock(info["started"]) if isinstance(info.get("started"), (int, float)) else "a while ago"
    return (f"{root} is being trained by process {info.get('pid', '?')} since {since} ({command}); "
            "one training at a time per runs root. Wait for it to finish (the app shows its progress), "
            "or train into another --runs-dir.")


def clock(stamp: float) -> str:
    """A unix time as this machine's wall clock, 14:02:11."""
    return datetime.fromtimestamp(stamp).strftime("%H:%M:%S")


def eta_text(seconds: float | None) -> str:
    """The time left, as coarse as an estimate deserves: 'about 4 min left'."""
    if seconds is None:
        return "time left unknown"
    if seconds < 60:
        return "under a minute left" if seconds > 0 else "finishing"
    return f"about {round(seconds / 60)} min left"


# --------------------------------------------------------------------------- the plan

class Plan(Protocol):
    """What the plan file records of the trainer's estimate (labcore.train.estimate.PlanEstimate):
    its runs (run_id, epochs, fine_tune_epochs) and each run's seconds on the clock."""

    runs: Sequence

    def run_seconds(self, run_id: str, lanes: list[list[str]] | None = None) -> float: ...


def write_plan(experiment: Path | str, plan: Plan, lanes: Sequence[Sequence[str]]) -> None:
    """Record the plan `train_all` is about to train (see the module's docstring)."""
    experiment = Path(experiment)
    runs = {r.run_id: {"seconds": round(plan.run_seconds(r.run_id, [list(lane) for lane in lanes]), 1),
                       "epochs": r.epochs + r.fine_tune_epochs} for r in plan.runs}
    (experiment / ".partial").mkdir(parents=True, exist_ok=True)
    write_json(experiment / ".partial" / PLAN_FILE, {
        "pid": os.getpid(), "host": socket.gethostname(),
        "locked": str(experiment.parent.resolve()) in _held,  # else only the pid tells it is alive
        "started": time.time(), "lanes": [list(lane) for lane in lanes], "runs": runs})


def update_lanes(experiment: Path | str, lanes: Sequence[Sequence[str]]) -> None:
    """Record where the plan's runs are now (lanes take runs from a queue as they free up)."""
    path = Path(experiment) / ".partial" / PLAN_FILE
    plan = read_json(path)
    if isinstance(plan, dict):
        write_json(path, {**plan, "lanes": [list(lane) for lane in lanes]})


@dataclass
class RunProgress:
    run_id: str
    state: str  # finished | training | queued
    epochs_done: int
    epochs: int
    estimate_seconds: float


@dataclass
class Training:
    """One experiment's plan as its folder shows it now."""

    experiment: Path
    state: str  # training | stopped (the trainer is gone, runs unfinished) | done | elsewhere (another host)
    pid: int
    host: str
    started: float
    runs: list[RunProgress] = field(default_factory=list)
    eta_seconds: float | None = None

    @property
    def name(self) -> str:
        return self.experiment.name

    def of_state(self, state: str) -> list[RunProgress]:
        return [r for r in self.runs if r.state == state]

    def partial_epochs(self) -> dict[str, int]:
        """Run id -> finished epochs, for the runs not finished yet that have any."""
        return {r.run_id: r.epochs_done for r in self.runs if r.state != "finished" and r.epochs_done}


def read_training(experiment: Path | str, now: float | None = None) -> Training | None:
    """The experiment's last plan and how far it got, or None where it has none (or an unreadable one)."""
    experiment = Path(experiment)
    plan = read_json(experiment / ".partial" / PLAN_FILE)
    try:
        lanes = [[str(r) for r in lane] for lane in plan["lanes"]]
        estimates = {str(k): (float(v["seconds"]), int(v["epochs"])) for k, v in plan["runs"].items()}
        pid, host, started = int(plan["pid"]), str(plan["host"]), float(plan["started"])
    except (TypeError, KeyError, ValueError, AttributeError):
        return None
    if not _plausible(lanes, estimates, pid, started):
        return None
    now = time.time() if now is None else now
    finished = {run_id: _finished_at(experiment / run_id) for lane in lanes for run_id in lane}
    finished = {k: v for k, v in finished.items() if v is not None and v[0] >= started - 1}
    done = [k for k in finished]
    pace_est = sum(estimates[k][0] for k in done if k in estimates)
    pace = sum(finished[k][1] for k in done) / pace_est if pace_est > 0 else 1.0
    runs, lane_left, queued = [], [], []
    for lane in lanes:
        left, begun, running = 0.0, started, False
        for run_id in lane:
            seconds, epochs = estimates.get(run_id, (0.0, 0))
            if run_id in finished:
                begun = max(begun, finished[run_id][0])
                runs.append(RunProgress(run_id, "finished", epochs, epochs, seconds))
                continue
            history = read_json(experiment / ".partial" / run_id / "history.json")
            history = history if isinstance(history, dict) else {}
            losses, times = history.get("loss"), history.get("epoch_seconds")
            epochs_done = len(losses) if isinstance(losses, list) else 0
            if not running:
                running = True
                left += _run_left(seconds * pace - (now - begun), epochs - epochs_done, times)
                runs.append(RunProgress(run_id, "training", epochs_done, epochs, seconds))
            else:  # it starts when its lane is free: the queue's next runs, in that order
                queued.append((left, RunProgress(run_id, "queued", epochs_done, epochs, seconds)))
                left += seconds * pace
        lane_left.append(left)
    runs += [run for _, run in sorted(queued, key=lambda q: q[0])]
    if all(r.state == "finished" for r in runs):
        state = "done"
    elif host != socket.gethostname():
        state = "elsewhere"
    else:
        held, unchecked = _look(experiment.parent)  # a lock that cannot be checked: the pid tells
        alive = held is not None if plan.get("locked") and not unchecked else _pid_alive(pid)
        state = "training" if alive else "stopped"
    return Training(experiment, state, pid, host, started, runs,
                    max(lane_left) if state == "training" and lane_left else None)


def _plausible(lanes: list[list[str]], estimates: dict[str, tuple[float, int]], pid: int, started: float) -> bool:
    """A plan's values within reason (a copied folder can hold anything): its run ids become
    paths, its pid a signal's target, its times and epochs a clock and a progress bar."""
    return ({r for lane in lanes for r in lane} | set(estimates) <= set(RUNS) and 0 < pid < 2**31
            and 0 <= started < 1e11 and all(0 <= s < 1e9 and 0 <= e <= 10_000 for s, e in estimates.values()))


def _run_left(by_estimate: float, epochs_left: int, epoch_seconds) -> float:
    """A running run's seconds left: at the pace of its epochs after the first (which traces)
    once it has two, else its estimate less the time it has run."""
    paced = [t for t in epoch_seconds[1:] if isinstance(t, (int, float))] if isinstance(epoch_seconds, list) else []
    if paced:
        return max(epochs_left, 0) * sum(paced) / len(paced)
    return max(by_estimate, 0.0)


def _finished_at(run: Path) -> tuple[float, float] | None:
    """(when the run finished, seconds it took) from its config.json, or None."""
    config = read_json(run / "config.json")
    try:
        stamp = datetime.fromisoformat(config["finished"])
        return stamp.replace(tzinfo=stamp.tzinfo or timezone.utc).timestamp(), float(config.get("train_seconds", 0))
    except (TypeError, KeyError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def trainings(root: Path | str) -> list[Training]:
    """Every experiment under `root` with a plan that is not done, newest plan first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [read_training(p.parent.parent) for p in root.glob(f"*/.partial/{PLAN_FILE}")]
    return sorted((t for t in found if t and t.state != "done"), key=lambda t: t.started, reverse=True)


# --------------------------------------------------------------------------- starting one from the app

def is_loopback(address: str | None) -> bool:
    """Whether a browser's address is this machine's own (127.0.0.0/8, ::1, or ::ffff:127.x).
    Unknown (None) or unreadable addresses are not."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def demo_command(root: Path | str) -> list[str]:
    """The train.py command the app runs: the demo profile into `root` (plus, in tests, $PETLAB_DEMO_ARGS)."""
    return [sys.executable, str(TRAIN_PY), "--profile", "demo", "--runs-dir", str(root),
            *shlex.split(os.environ.get(DEMO_ARGS_ENV, ""))]


def start_demo(root: Path | str, wait: float = 20.0) -> bool:
    """Start train.py on the demo profile in the background: its own session (it outlives the
    page, the tab and the server), its output appended to `<root>/train.log`. False, starting
    nothing, where a training holds the root already. Returns once train.py holds the lock
    (or has ended, or `wait` seconds passed), so the next look at the root sees it."""
    root = Path(root)
    with _launch:  # two tabs of this server clicking at once: one starts it
        if holder(root) is not None:
            return False
        root.mkdir(parents=True, exist_ok=True)
        with open(root / LOG_FILE, "ab") as log:
            log.write(f"\n--- started from the app at {datetime.now():%Y-%m-%d %H:%M:%S}\n".encode())
            log.flush()
            process = subprocess.Popen(demo_command(root), cwd=TRAIN_PY.parent, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=process.wait, daemon=True).start()  # reaps it when it ends
        deadline = time.monotonic() + wait
        while holder(root) is None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return True


def log_tail(root: Path | str, lines: int = 12) -> str:
    """The last lines train.py wrote to the log of trainings the app started ('' if none)."""
    try:
        with open(Path(root) / LOG_FILE, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
            return "\n".join(log.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""
