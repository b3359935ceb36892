from labcore.estimate import PlanEstimate, RunEstimate
from labcore.lanes import auto_jobs, lanes_message, split_lanes


def plan_of(seconds: dict[str, float]) -> PlanEstimate:
    runs = [RunEstimate(run_id, s, 0.0, 0.0, 0.0, 0.0, 1, 0) for run_id, s in seconds.items()]
    return PlanEstimate(runs, "this CPU (2 cores)", 1.0)


def test_lanes_balance_the_estimated_time_and_keep_the_plans_order():
    plan = plan_of({"detection-pretrained": 130, "detection-scratch": 100, "segmentation-pretrained": 40,
                    "segmentation-scratch": 40, "multitask-pretrained": 60, "multitask-scratch": 65})
    lanes = split_lanes(plan, 2)
    # Longest first, each to the lighter lane: 130 | 100, +65 -> 165, +60 -> 190, +40 -> 205, +40 -> 230.
    assert lanes == [["detection-pretrained", "segmentation-scratch", "multitask-pretrained"],
                     ["detection-scratch", "segmentation-pretrained", "multitask-scratch"]]
    assert sorted(r for lane in lanes for r in lane) == sorted(r.run_id for r in plan.runs)
    assert lanes_message(lanes) == ("2 runs at a time, in 2 processes: detection-pretrained then segmentation-scratch "
                                    "then multitask-pretrained; detection-scratch then segmentation-pretrained then "
                                    "multitask-scratch")


def test_never_more_lanes_than_runs():
    assert split_lanes(plan_of({"detection-scratch": 10}), 4) == [["detection-scratch"]]


def test_the_demo_runs_two_lanes_on_a_cpu_with_the_cores_and_one_elsewhere():
    assert auto_jobs("demo", cpus=2, gpus=0) == 2
    assert auto_jobs("demo", cpus=16, gpus=0) == 2
    assert auto_jobs("demo", cpus=1, gpus=0) == 1
    assert auto_jobs("demo", cpus=8, gpus=1) == 1  # each process would claim the whole GPU
    assert auto_jobs("report", cpus=16, gpus=0) == 1
