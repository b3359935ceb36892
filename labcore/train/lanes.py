"""Train runs side by side in worker processes ("lanes"), where one run leaves cores idle.

At the demo's 64 px a run keeps about one core busy: much of its time is TensorFlow tracing
its steps (Python, one thread) and ops too small to spread over cores. The runs are
independent (each seeds itself, builds its own model and, if pretrained, its own backbone's
pretext weights), so on a 2-core machine two of them side by side finish in about half the
wall time. Each lane is a fresh process (`spawn`: TensorFlow does not survive a fork) that
takes the next run from one shared queue, longest first (by the estimate), whenever it is
free, so a lane whose runs went faster than estimated takes more of them; it sends its news
(lines, runs' starts, ticks and ends) to the parent, whose one PlanClock (`labcore.train.eta`)
prints them with the plan's ETA and keeps the plan's lanes (`split_lanes`: the runs each lane
has started, then where the rest will go by the estimate) up to date in plan.json. Each lane
runs TensorFlow with its share of the cores (`labcore.train.runtime.lane_threads`): a run trained in
a lane has the same results, to the bit, as one trained alone with that many threads
(`train.py --jobs 1 --threads N`). The lanes stop with their parent, however it ends
(`labcore.train.stopping`).
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import time
from pathlib import Path
from typing import Callable

from labcore.train.estimate import PlanEstimate
from labcore.train.eta import PlanClock
from labcore.store.inflight import lock_fd, update_lanes
from labcore.train.stopping import InheritedFd, die_with_parent
from labcore.settings import RUNS, Settings

# How many lanes a profile uses when --jobs is left out (on a machine with the cores, no GPU).
PROFILE_JOBS = {"demo": 2}
STOP_GRACE_SECONDS = 10.0  # a stopped lane has this long to end on SIGTERM before SIGKILL


class LaneFailed(RuntimeError):
    """A lane's process died without saying why (killed, out of memory)."""


def auto_jobs(profile: str, cpus: int | None, gpus: int) -> int:
    """Lanes for --jobs left out: the profile's, at most one per core; one with a GPU, where
    each process would claim the whole GPU's memory."""
    if gpus:
        return 1
    return max(1, min(PROFILE_JOBS.get(profile, 1), cpus or 1))


def queue_order(plan: PlanEstimate) -> list[str]:
    """The order the lanes take the runs in: the longest estimated first (ties: the plan's
    order), so the runs left for the end are the short ones."""
    return [r.run_id for r in sorted(plan.runs, key=lambda r: r.seconds, reverse=True)]


def split_lanes(plan: PlanEstimate, jobs: int, started: list[list[str]] | None = None) -> list[list[str]]:
    """Where the runs go in `jobs` lanes: each lane's `started` runs (in the order it started
    them), then the others in queue order, each to the lane the estimate frees first. No empty
    lane where there are runs for it."""
    lanes = [list(lane) for lane in started] if started else [[] for _ in range(min(jobs, len(plan.runs)))]
    loads = [sum(plan.run(r).seconds for r in lane if plan.run(r)) for lane in lanes]
    placed = {r for lane in lanes for r in lane}
    for run_id in queue_order(plan):
        if run_id not in placed:
            k = loads.index(min(loads))
            lanes[k].append(run_id)
            loads[k] += plan.run(run_id).seconds
    return lanes


def plan_lanes(plan: PlanEstimate, jobs: int) -> list[list[str]]:
    """The plan's runs in `jobs` lanes (split_lanes), or, with one job or one run, in one (in
    the plan's order)."""
    return split_lanes(plan, jobs) if jobs > 1 and len(plan.runs) > 1 else [[r.run_id for r in plan.runs]]


def lanes_message(plan: PlanEstimate, jobs: int) -> str:
    return (f"{jobs} runs at a time, in {jobs} processes, each taking the next run when it is free, "
            f"longest first: {', '.join(queue_order(plan))}")


def train_in_lanes(plan: PlanEstimate, jobs: int, settings: Settings, experiment: Path, clock: PlanClock,
                   progress: Callable[[str], None] = print, threads: int = 1) -> None:
    """Train the plan's runs in `jobs` processes taking them from one queue (queue_order), with
    `threads` TensorFlow threads each (`labcore.train.runtime`); returns when all are done. As runs
    start, the clock's lanes and plan.json follow where they went. The first lane to fail
    stops the others (their unfinished runs resume on the next start) and its error is raised
    here as it was raised there. However this ends (done, an error, Ctrl-C, SIGTERM), every lane
    is gone before it returns or raises; each holds the runs root's lock while it lives."""
    context = multiprocessing.get_context("spawn")
    messages, tasks = context.Queue(), context.Queue()
    for run_id in queue_order(plan):
        tasks.put(run_id)
    started: list[list[str]] = [[] for _ in range(jobs)]
    workers = []
    lock = lock_fd(experiment.parent)  # each lane holds the runs root's lock too (labcore.train.stopping)
    try:
        # A Ctrl-C while a lane's Python starts would print that lane's traceback: the lanes start
        # with it ignored (inherited through exec) and take it back once inside `_lane`.
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for number in range(1, jobs + 1):
                tasks.put(None)  # one "no more runs" for each lane
                worker = context.Process(target=_lane, name=f"lane-{number}", daemon=True,
                                         args=(tasks, settings, str(experiment), messages, threads,
                                               None if lock is None else InheritedFd(lock)))
                worker.start()
                workers.append(worker)
        finally:
            signal.signal(signal.SIGINT, handler)
        _follow(workers, messages, plan, jobs, started, experiment, clock, progress)
    finally:
        stop_lanes(workers)


def _follow(workers: list, messages, plan: PlanEstimate, jobs: int, started: list[list[str]], experiment: Path,
            clock: PlanClock, progress: Callable[[str], None]) -> None:
    """Pass the lanes' news on until every lane is done; raise a lane's error, or LaneFailed
    for a lane that died without a word."""
    running = set(range(len(workers)))
    while running:
        try:
            number, kind, payload = messages.get(timeout=1.0)
        except queue.Empty:
            for k in list(running):  # a lane that died without a word (killed, out of memory)
                if not workers[k].is_alive() and messages.empty():
                    what = f"training {started[k][-1]}" if started[k] else f"of lane {k + 1}"
                    raise LaneFailed(f"the process {what} ended with exit code {workers[k].exitcode} "
                                     "before it finished")
            continue
        if kind == "line":
            progress(payload)
        elif kind == "start":
            started[number].append(payload)
            clock.start(payload, split_lanes(plan, jobs, started))
            update_lanes(experiment, clock.lanes)
        elif kind == "tick":
            clock.tick(payload)
        elif kind == "finish":
            clock.finish(*payload)
        elif kind == "done":
            running.discard(number)
        else:  # "error": the exception the lane raised
            raise payload


def stop_lanes(workers: list, grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop the lanes still running (SIGTERM, then SIGKILL after `grace` seconds) and reap them
    all: the caller returns, and its process lets go of the lock, only once they are gone."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(timeout=grace)
        if worker.is_alive():
            worker.kill()
            worker.join()


def _lane(tasks, settings: Settings, experiment: str, messages, threads: int, lock: InheritedFd | None) -> None:
    """A lane's process: train the runs it takes from `tasks` one after another, until a None,
    reporting through `messages`. `lock`: its copy of the runs root's lock, open until it ends
    (nothing closes it), so the root stays locked while the lane lives, even past its parent."""
    die_with_parent()
    number = int(multiprocessing.current_process().name.rsplit("-", 1)[1]) - 1

    def say(line: str) -> None:
        messages.put((number, "line", line))

    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import warnings

        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")  # as train.py does
        from labcore.train.runtime import configure

        configure(settings.profile, threads)
        from labcore.data.sources import load_source
        from labcore.train.training import train_run

        source = load_source(settings)
        for run_id in iter(tasks.get, None):
            say(f"== {run_id} (lane {number + 1}, process {os.getpid()}) ==")
            messages.put((number, "start", run_id))
            start = time.perf_counter()
            path = train_run(RUNS[run_id], settings, source, Path(experiment), say,
                             watch=lambda tick: messages.put((number, "tick", tick)))
            seconds = time.perf_counter() - start
            messages.put((number, "finish", (run_id, seconds)))
            say(f"[{run_id}] done in {seconds / 60:.1f} min -> {path}")
        messages.put((number, "done", None))
    except KeyboardInterrupt:
        messages.put((number, "error", KeyboardInterrupt()))
    except Exception as err:  # noqa: BLE001 - handed to the parent, which raises it
        try:
            pickle.dumps(err)
        except Exception:  # noqa: BLE001 - it cannot travel as it is: its type and words can
            err = RuntimeError(f"{type(err).__name__}: {err}")
        messages.put((number, "error", err))
