"""One clock for a plan of runs: the progress lines with the run's and the plan's ETA.

Training knows nothing of plans: it sends `labcore.train.training.Tick`s. The process that made
the plan (train.py's, whether the runs train in it or in lanes) feeds every run's start, ticks
and end to one PlanClock, so every line carries the same plan ETA, whichever lane it came from.
The plan's ETA is the longest lane's: its running run's time left, then its later runs at the
estimate, scaled by the pace of the runs finished so far (how much slower or faster than
estimated this machine turned out to be).
"""
from __future__ import annotations

import time
from typing import Callable

from labcore.train.estimate import PlanEstimate
from labcore.timing import duration
from labcore.train.training import Tick, run_clock


class PlanClock:
    def __init__(self, plan: PlanEstimate, lanes: list[list[str]], progress: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.perf_counter):
        self.plan, self.lanes, self.progress, self.now = plan, lanes, progress, clock
        self.started = clock()
        self.run_started: dict[str, float] = {}
        self.actual: dict[str, float] = {}  # run id -> seconds it took
        self.last: dict[str, tuple[float, float]] = {}  # run id -> (when, its seconds left then)

    def start(self, run_id: str, lanes: list[list[str]] | None = None) -> None:
        """A run has started; `lanes`: where the plan's runs are now (runs taken from a queue
        go to whichever lane is free, not always where the plan first put them)."""
        self.run_started[run_id] = self.now()
        if lanes is not None:
            self.lanes = lanes

    def finish(self, run_id: str, seconds: float) -> None:
        self.actual[run_id] = seconds
        self.last.pop(run_id, None)

    def estimated(self, run_id: str) -> float:
        """The run's estimated seconds on the clock, in these lanes."""
        return self.plan.run_seconds(run_id, self.lanes)

    def pace(self) -> float:
        """Seconds taken per second estimated, over the finished runs (1 before any)."""
        finished = [r for r in self.actual if self.plan.run(r)]
        estimated = sum(self.estimated(r) for r in finished)
        return sum(self.actual[r] for r in finished) / estimated if estimated > 0 else 1.0

    def run_left(self, tick: Tick) -> float | None:
        """Seconds the ticking run has left: the rest of this fit at its pace, then fine-tuning
        and evaluation at the estimate. None mid-epoch (no pace to go by)."""
        if tick.epoch_pace is None:
            return None
        left = (tick.fit_epochs - tick.epochs_done) * tick.epoch_pace
        later = tick.epochs - tick.fit_epochs
        estimate = self.plan.run(tick.run_id)
        if estimate:
            return left + (later * estimate.fine_tune_epoch_seconds + estimate.evaluate_seconds) * self.pace()
        return left + later * tick.epoch_pace

    def plan_left(self) -> float:
        """The longest lane's seconds left."""
        now, pace, lanes_left = self.now(), self.pace(), []
        for lane in self.lanes:
            left = 0.0
            for run_id in lane:
                if run_id in self.actual:
                    continue
                seconds = self.estimated(run_id) * pace
                if run_id in self.last:
                    when, then_left = self.last[run_id]
                    left += max(0.0, then_left - (now - when))
                elif run_id in self.run_started:
                    left += max(0.0, seconds - (now - self.run_started[run_id]))
                else:
                    left += seconds
            lanes_left.append(left)
        return max(lanes_left, default=0.0)

    def tick(self, tick: Tick) -> None:
        """A line for the tick: the run's clock, then the plan's."""
        left = self.run_left(tick)
        if left is not None:
            self.last[tick.run_id] = (self.now(), left)
            text = f"run {duration(tick.elapsed)}, ~{duration(left)} left"
        else:
            text = run_clock(tick)
        text += f"; plan {duration(self.now() - self.started)}"
        if left is not None:
            text += f", ~{duration(self.plan_left())} left"
        self.progress(f"[{tick.run_id}] {tick.text}  {text}")
