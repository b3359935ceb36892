"""A training stops whole: however train.py ends, no process it started goes on training, and
its runs root stays locked while any of them lives.

- **Signals.** Ctrl-C raises KeyboardInterrupt; `stop_on_signals` makes SIGTERM (`kill PID`,
  a test's cleanup, a service manager) and SIGHUP (the terminal closed) raise `Stopped`, a
  KeyboardInterrupt, so they take the same way out: the lanes are stopped and reaped, then the
  process exits and the kernel lets go of the lock.
- **A parent gone without a word** (SIGKILL, the out-of-memory killer): each lane asks the
  kernel to kill it when its parent dies (`PR_SET_PDEATHSIG`, Linux) and also watches the
  parent itself (the end of multiprocessing's pipe to it), which covers a parent that died
  before the lane asked, and systems without prctl.
- **The lock.** Each lane holds a copy of the parent's lock descriptor (`InheritedFd`): an
  flock belongs to the open file, so the root stays locked until the last process holding it
  is gone, whichever goes first.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from multiprocessing import reduction

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, so it stops as on Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's code for a program ended by this signal (SIGTERM: 143)."""
        return 128 + self.signum


def _raise_stopped(signum: int, frame) -> None:
    # Once is enough: the way out (stopping the lanes) is not to be cut short by a second signal.
    for each in STOP_SIGNALS:
        signal.signal(each, signal.SIG_IGN)
    raise Stopped(signum)


def stop_on_signals() -> None:
    """From now on SIGTERM and SIGHUP raise Stopped in the main thread (call it from there)."""
    for each in STOP_SIGNALS:
        signal.signal(each, _raise_stopped)


def die_with_parent() -> None:
    """Called first thing in a lane's process: end it as soon as its parent is gone."""
    parent = multiprocessing.parent_process()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None:
        threading.Thread(target=_exit_when_gone, args=(parent.sentinel,), name="parent-watch", daemon=True).start()


def _exit_when_gone(sentinel: int) -> None:
    """Wait until the parent's end of the pipe closes (it died, however), then end this process
    at once: no cleanup that could block, nothing more written."""
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


class InheritedFd:
    """An open file descriptor handed to a spawned process, which gets its own copy of it (the
    same open file, so the same flock). Pass it in a Process's arguments; `fd` on the other side
    is the copy, kept open for the process's life."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self):
        # While a spawn starts, DupFd has the descriptor passed to the child under its number.
        return _keep_fd, (reduction.DupFd(self.fd),)


def _keep_fd(duplicated) -> InheritedFd:
    return InheritedFd(duplicated.detach())
