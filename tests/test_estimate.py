import pytest

from labcore.estimate import PlanEstimate, RunEstimate, duration, estimate_plan
from labcore.pretext import pretext_path

COUNTS = {"train": 77, "val": 19, "test": 37}


@pytest.mark.parametrize("seconds, text", [(0.4, "0s"), (42, "42s"), (245, "4 min 05s"), (9 * 3600 + 720, "9 h 12 min")])
def test_durations_read_as_people_say_them(seconds, text):
    assert duration(seconds) == text


def test_plan_of_tiny_runs_counts_every_part(tiny_settings, tmp_path):
    run_ids = ["detection-pretrained", "detection-scratch", "segmentation-pretrained"]
    plan = estimate_plan(run_ids, tiny_settings.with_overrides(epochs=5), COUNTS, tmp_path)
    assert [r.run_id for r in plan.runs] == run_ids  # in the plan's order, whatever order they were timed in
    cached, scratch, segmentation = plan.runs
    for run in plan.runs:
        assert run.epochs == 5 and run.epoch_seconds > 0 and run.evaluate_seconds > 0 and run.setup_seconds > 0
        assert run.seconds == pytest.approx(run.setup_seconds + run.features_seconds + 5 * run.epoch_seconds
                                            + run.evaluate_seconds)
    assert cached.features_seconds > 0 and segmentation.features_seconds > 0  # the backbone's one pass
    assert scratch.features_seconds == 0
    assert plan.seconds == pytest.approx(sum(r.seconds for r in plan.runs))
    assert plan.seconds_after("detection-pretrained") == pytest.approx(scratch.seconds + segmentation.seconds)
    assert plan.seconds_after("segmentation-pretrained") == 0
    message = plan.message()
    assert message.startswith("estimate: about ") and "this CPU" in message and "3 run(s)" in message
    for run_id in run_ids:
        assert run_id in message


def test_pretext_pretraining_is_counted_only_until_it_is_made(tiny_settings, tmp_path):
    settings = tiny_settings.with_overrides(pretext_examples=3200, pretext_epochs=10)  # 1000 steps: dominant
    fresh = estimate_plan(["segmentation-pretrained"], settings, COUNTS, tmp_path).runs[0]
    path = pretext_path("tiny", settings, tmp_path / ".pretext")
    path.parent.mkdir()
    path.write_bytes(b"made")
    ready = estimate_plan(["segmentation-pretrained"], settings, COUNTS, tmp_path).runs[0]
    assert fresh.setup_seconds > 5 * ready.setup_seconds


def test_a_long_plan_on_a_cpu_names_the_shorter_ways():
    run = RunEstimate("detection-scratch", 10, 0, 700, 0, 20, 50, 0)
    assert "--profile quick" in PlanEstimate([run], "this CPU (2 cores)", 1).message()
    assert "--profile quick" not in PlanEstimate([run], "GPU (1)", 1).message()
    short = RunEstimate("detection-scratch", 10, 0, 7, 0, 2, 5, 0)
    assert "--profile quick" not in PlanEstimate([short], "this CPU (2 cores)", 1).message()
