"""labcore.train.stopping's parts, each alone, in processes the test starts: a spawned process
ends when its parent is killed without a word (by the kernel's parent-death signal, and by its
own watch on the parent), and keeps its parent's lock while it lives. train.py put together is
tested in test_train_cli (SIGTERM, SIGHUP, SIGKILL mid-training)."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, alive

# A parent that starts one spawned child (as train.py starts a lane) and waits. The child says
# "ready" and sleeps; how it is set up depends on the mode:
# - prctl / watch: die_with_parent() with only that one of its two ways on;
# - lock: the parent takes an flock, hands the child its descriptor (InheritedFd), then closes its own.
PARENT = """
import fcntl, multiprocessing, os, sys, time
from labcore.train import stopping


def child(mode, lock):
    if mode == "prctl":
        stopping.multiprocessing.parent_process = lambda: None  # no watch: the kernel's signal alone
    elif mode == "watch":
        stopping.sys.platform = "watch-only"  # no prctl: the watch alone
    if mode != "lock":
        stopping.die_with_parent()
    print("ready", flush=True)
    time.sleep(120)


if __name__ == "__main__":
    mode, lock_path = sys.argv[1:]
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    process = multiprocessing.get_context("spawn").Process(target=child, args=(mode, stopping.InheritedFd(fd)))
    process.start()
    print(process.pid, flush=True)
    os.close(fd)  # from here on, only the child holds the lock (where it inherited it)
    time.sleep(120)
"""


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def lock_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@pytest.fixture
def family(tmp_path):
    """start(mode) -> (parent process, child pid, lock path), the child ready; both killed at the end."""
    started = []

    def start(mode: str):
        script = tmp_path / "parent.py"
        script.write_text(PARENT)
        lock = tmp_path / ".training.lock"
        parent = subprocess.Popen([sys.executable, str(script), mode, str(lock)], cwd=ROOT, stdout=subprocess.PIPE,
                                  text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        child = int(parent.stdout.readline())
        started.extend([parent.pid, child])
        assert parent.stdout.readline().strip() == "ready"
        return parent, child, lock

    yield start
    for pid in started:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("mode", ["prctl", "watch"])
def test_a_lane_ends_within_a_second_of_its_parent_killed_without_a_word(family, mode):
    parent, child, _ = family(mode)
    time.sleep(0.5)
    assert alive(child)  # nothing ends it while its parent lives
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert gone_within(child, 1.0)


def test_a_lane_holds_its_parents_lock_while_it_lives(family):
    parent, child, lock = family("lock")
    time.sleep(0.5)  # the parent has closed its descriptor by now
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert alive(child) and not lock_is_free(lock)  # the parent is gone, the root is not free
    os.kill(child, signal.SIGKILL)
    assert gone_within(child, 5.0)
    assert lock_is_free(lock)


def test_sigterm_and_sighup_raise_stopped_with_the_shells_exit_code():
    code = ("import os, signal, sys; from labcore.train.stopping import Stopped, stop_on_signals; stop_on_signals()\n"
            "try:\n    os.kill(os.getpid(), signal.%s); signal.pause()\n"
            "except Stopped as err:\n    print(err.name, err.exit_code, isinstance(err, KeyboardInterrupt))")
    for name, exit_code in (("SIGTERM", 143), ("SIGHUP", 129)):
        done = subprocess.run([sys.executable, "-c", code % name], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        assert done.stdout.split() == [name, str(exit_code), "True"], done.stderr[-2000:]
