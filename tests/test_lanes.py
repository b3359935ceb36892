import json
import re

from labcore.train.estimate import PlanEstimate, RunEstimate
from labcore.train.lanes import auto_jobs, lanes_message, queue_order, split_lanes


def plan_of(seconds: dict[str, float]) -> PlanEstimate:
    runs = [RunEstimate(run_id, s, 0.0, 0.0, 0.0, 0.0, 1, 0) for run_id, s in seconds.items()]
    return PlanEstimate(runs, "this CPU (2 cores)", 1.0)


DEMO_LIKE = {"detection-pretrained": 130, "detection-scratch": 100, "segmentation-pretrained": 40,
             "segmentation-scratch": 40, "multitask-pretrained": 60, "multitask-scratch": 65}


def test_the_lanes_take_the_longest_runs_first_and_balance_the_estimated_time():
    plan = plan_of(DEMO_LIKE)
    # Longest first (ties: the plan's order), each to the lane the estimate frees first:
    # 130 | 100, +65 -> 165, +60 -> 190, +40 -> 205, +40 -> 230.
    assert queue_order(plan) == ["detection-pretrained", "detection-scratch", "multitask-scratch",
                                 "multitask-pretrained", "segmentation-pretrained", "segmentation-scratch"]
    assert split_lanes(plan, 2) == [["detection-pretrained", "multitask-pretrained", "segmentation-scratch"],
                                    ["detection-scratch", "multitask-scratch", "segmentation-pretrained"]]
    assert lanes_message(plan, 2) == (
        "2 runs at a time, in 2 processes, each taking the next run when it is free, longest first: "
        "detection-pretrained, detection-scratch, multitask-scratch, multitask-pretrained, "
        "segmentation-pretrained, segmentation-scratch")


def test_runs_already_started_stay_in_their_lane_and_the_rest_follow_the_estimate():
    # The second lane went fast and took three runs while the first trained one: the two left
    # are expected in the first lane.
    started = [["detection-pretrained"], ["detection-scratch", "multitask-scratch", "multitask-pretrained"]]
    assert split_lanes(plan_of(DEMO_LIKE), 2, started) == [
        ["detection-pretrained", "segmentation-pretrained", "segmentation-scratch"],
        ["detection-scratch", "multitask-scratch", "multitask-pretrained"]]


def test_never_more_lanes_than_runs():
    assert split_lanes(plan_of({"detection-scratch": 10}), 4) == [["detection-scratch"]]


def test_the_plan_file_ends_with_the_lanes_the_runs_went_to(demo_store):
    """train.py's two lanes took the six runs from the queue: plan.json's lanes are the runs
    each lane said it started, in that order."""
    out = (demo_store.parent / "train.out").read_text()
    said = re.findall(r"^== (\S+) \(lane (\d), process \d+\) ==$", out, re.M)
    went: dict[int, list[str]] = {}
    for run_id, lane in said:
        went.setdefault(int(lane) - 1, []).append(run_id)
    plan = json.loads((demo_store / "demo" / ".partial" / "plan.json").read_text())
    assert sorted(r for r, _ in said) == sorted(plan["runs"]) and len(said) == 6
    assert plan["lanes"] == [went.get(k, []) for k in range(len(plan["lanes"]))]


def test_the_demo_runs_two_lanes_on_a_cpu_with_the_cores_and_one_elsewhere():
    assert auto_jobs("demo", cpus=2, gpus=0) == 2
    assert auto_jobs("demo", cpus=16, gpus=0) == 2
    assert auto_jobs("demo", cpus=1, gpus=0) == 1
    assert auto_jobs("demo", cpus=8, gpus=1) == 1  # each process would claim the whole GPU
    assert auto_jobs("report", cpus=16, gpus=0) == 1
