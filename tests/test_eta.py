import pytest

from labcore.train.estimate import PlanEstimate, RunEstimate
from labcore.train.eta import PlanClock
from labcore.train.training import Tick

class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def plan_of(seconds: dict[str, float], evaluate: float = 0.0) -> PlanEstimate:
    """Runs of two epochs each (setup = the rest), `evaluate` seconds of evaluation included."""
    runs = [RunEstimate(r, s - 2 * 10 - evaluate, 0, 10, 0, evaluate, 2, 0) for r, s in seconds.items()]
    return PlanEstimate(runs, "this CPU (2 cores)", 1, cores=2)


def epoch_tick(run_id: str, done: int, elapsed: float, pace: float, epochs: int = 2) -> Tick:
    return Tick(run_id, f"epoch {done}/{epochs}", elapsed, epochs, done, epochs, pace)


def test_every_lane_prints_the_same_plan_eta():
    """Two lanes, one clock (the parent's): lines in a row carry one plan ETA, the longest lane's."""
    plan = plan_of({"detection-scratch": 100, "segmentation-scratch": 50, "multitask-scratch": 60})
    lines, now = [], FakeClock()
    clock = PlanClock(plan, [["detection-scratch"], ["segmentation-scratch", "multitask-scratch"]], lines.append, now)
    clock.start("detection-scratch")
    clock.start("segmentation-scratch")
    now.t += 40
    clock.tick(epoch_tick("detection-scratch", 1, 40, 30))  # 1 epoch left at 30 s
    clock.tick(epoch_tick("segmentation-scratch", 1, 40, 20))  # 20 s, then multitask's 60 s
    assert lines[0].startswith("[detection-scratch] epoch 1/2  run 40s, ~30s left; plan 40s, ")
    assert lines[1].startswith("[segmentation-scratch] epoch 1/2  run 40s, ~20s left; plan 40s, ")
    # the longest lane: first segmentation's estimate less its 40 s (10 s) + multitask's 60 s, then its tick's 20 s + 60 s
    assert lines[0].endswith("~1 min 10s left") and lines[1].endswith("~1 min 20s left")
    clock.tick(epoch_tick("detection-scratch", 1, 40, 30))
    assert lines[2].endswith("~1 min 20s left")  # the same plan ETA, from whichever lane the line comes
    now.t += 20  # segmentation ends; the lane's next run has not ticked: its estimate, less its time so far
    clock.finish("segmentation-scratch", 60)
    clock.start("multitask-scratch")
    now.t += 10
    clock.tick(epoch_tick("detection-scratch", 2, 70, 30))
    # pace: segmentation took 60 s for 50 estimated -> 1.2; multitask: 60 x 1.2 - 10 s = 62 s
    assert clock.pace() == pytest.approx(1.2)
    assert lines[-1].endswith("plan 1 min 10s, ~1 min 02s left")


def test_the_runs_eta_adds_its_evaluation_at_the_pace_of_the_finished_runs():
    plan = plan_of({"detection-scratch": 100, "segmentation-scratch": 100}, evaluate=10)
    lines, now = [], FakeClock()
    clock = PlanClock(plan, [["detection-scratch", "segmentation-scratch"]], lines.append, now)
    clock.start("detection-scratch")
    now.t += 200
    clock.finish("detection-scratch", 200)  # twice the estimate
    clock.start("segmentation-scratch")
    now.t += 30
    clock.tick(epoch_tick("segmentation-scratch", 1, 30, 25))
    assert clock.run_left(epoch_tick("segmentation-scratch", 1, 30, 25)) == pytest.approx(25 + 2 * 10)
    assert lines[-1] == "[segmentation-scratch] epoch 1/2  run 30s, ~45s left; plan 3 min 50s, ~45s left"


def test_a_tick_mid_epoch_shows_the_elapsed_times_only():
    plan = plan_of({"detection-scratch": 100})
    lines, now = [], FakeClock()
    clock = PlanClock(plan, [["detection-scratch"]], lines.append, now)
    clock.start("detection-scratch")
    now.t += 31
    clock.tick(Tick("detection-scratch", "epoch 1/2: batch 3/9, loss 0.5000", 31, 2, 0, 2, None))
    assert lines == ["[detection-scratch] epoch 1/2: batch 3/9, loss 0.5000  run 31s; plan 31s"]
