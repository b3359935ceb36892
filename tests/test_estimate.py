import pytest

from labcore.estimate import PlanEstimate, RunEstimate, TaskTimes, duration, estimate_plan, estimate_run, pretext_ready
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
    message = plan.message()
    assert message.startswith("estimate: about ") and "this CPU" in message and "3 run(s)" in message
    for run_id in run_ids:
        assert run_id in message


def test_pretext_pretraining_is_counted_only_until_it_is_made(tiny_settings, tmp_path):
    settings = tiny_settings.with_overrides(pretext_examples=320, pretext_epochs=3)  # 10 batches x 3 epochs
    times = TaskTimes(build=1, forward=0.1, forward_first=2, heads_train=0.05, heads_test=0.02, heads_first=3,
                      whole_train=0.5, whole_first=10)
    fresh = estimate_run("detection-pretrained", settings, COUNTS, times, pretext_needed=True)
    ready = estimate_run("detection-pretrained", settings, COUNTS, times, pretext_needed=False)
    assert fresh.setup_seconds - ready.setup_seconds == pytest.approx(10 + 30 * 0.5)  # its trace + 30 steps

    assert not pretext_ready("tiny", settings, tmp_path)
    path = pretext_path("tiny", settings, tmp_path / ".pretext")
    path.parent.mkdir()
    path.write_bytes(b"made")
    assert pretext_ready("tiny", settings, tmp_path) and not pretext_ready("tiny", settings, None)


def test_runs_are_priced_by_their_parts(tiny_settings):
    """Cached runs pay the forward pass once; without the cache, every epoch; scratch runs
    train the whole model."""
    settings = tiny_settings.with_overrides(epochs=10, batch_size=10)  # 8 train, 2 val, 4 test batches
    times = TaskTimes(build=1, forward=0.1, forward_first=2, heads_train=0.05, heads_test=0.02, heads_first=3,
                      whole_train=0.5, whole_first=10)
    cached = estimate_run("detection-pretrained", settings, COUNTS, times, pretext_needed=False)
    plain = estimate_run("detection-pretrained", settings.with_overrides(feature_cache=False), COUNTS, times, False)
    scratch = estimate_run("detection-scratch", settings, COUNTS, times, pretext_needed=False)
    assert cached.features_seconds == pytest.approx(10 * 0.1)
    assert cached.epoch_seconds == pytest.approx(8 * 0.05 + 2 * 0.02)
    assert plain.features_seconds == 0 and plain.epoch_seconds == pytest.approx(8 * 0.15 + 2 * 0.12)
    assert scratch.epoch_seconds == pytest.approx(8 * 0.5 + 2 * 0.12)
    assert cached.evaluate_seconds == plain.evaluate_seconds == pytest.approx(6 * 0.12)


def test_a_long_plan_on_a_cpu_names_the_shorter_ways():
    run = RunEstimate("detection-scratch", 10, 0, 700, 0, 20, 50, 0)
    assert "--profile quick" in PlanEstimate([run], "this CPU (2 cores)", 1).message()
    assert "--profile quick" not in PlanEstimate([run], "GPU (1)", 1).message()
    short = RunEstimate("detection-scratch", 10, 0, 7, 0, 2, 5, 0)
    assert "--profile quick" not in PlanEstimate([short], "this CPU (2 cores)", 1).message()


def test_a_long_plan_is_timed_again_with_real_train_steps(tiny_settings, tmp_path):
    short = estimate_plan(["detection-scratch"], tiny_settings, COUNTS, tmp_path)
    assert short.method == "forward passes" and "from forward passes" in short.message()
    long = estimate_plan(["detection-scratch"], tiny_settings.with_overrides(epochs=10**6), COUNTS, tmp_path)
    assert long.method == "a few train steps" and long.seconds > 1800
