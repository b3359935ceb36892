"""The estimate's behaviour: what makes a run cost more or less, the plan's time on the clock
with and without lanes, and what train.py prints. (How close it comes to the truth is measured
by the bench, section 8, and recorded in docs/benchmarks.md: a test cannot judge speed.)"""
import pytest

from labcore.train.estimate import PlanEstimate, RunEstimate, TaskTimes, estimate_plan, estimate_run, pretext_ready
from labcore.model.pretext import pretext_path
from labcore.timing import duration, parse_duration

COUNTS = {"train": 77, "val": 19, "test": 37}
TIMES = TaskTimes(build=1, forward=0.1, forward_first=2, heads_train=0.05, heads_test=0.02, heads_first=3,
                  whole_train=0.5, whole_first=10)


@pytest.mark.parametrize("seconds, text", [(0.4, "0s"), (42, "42s"), (245, "4 min 05s"), (9 * 3600 + 720, "9 h 12 min")])
def test_durations_read_as_people_say_them_and_back(seconds, text):
    assert duration(seconds) == text
    assert parse_duration(text) == pytest.approx(round(seconds) if seconds < 3600 else 9 * 3600 + 720)


def test_a_run_costs_more_with_more_epochs_more_images_and_a_trainable_backbone(tiny_settings):
    settings = tiny_settings.with_overrides(epochs=5)
    base = estimate_run("detection-scratch", settings, COUNTS, TIMES, pretext_needed=False)
    longer = estimate_run("detection-scratch", settings.with_overrides(epochs=10), COUNTS, TIMES, False)
    bigger = estimate_run("detection-scratch", settings, {k: 2 * v for k, v in COUNTS.items()}, TIMES, False)
    assert base.seconds < longer.seconds and base.seconds < bigger.seconds
    assert longer.setup_seconds == base.setup_seconds  # the tracing is paid once, however long the run
    cached = estimate_run("detection-pretrained", settings, COUNTS, TIMES, pretext_needed=False)
    uncached = estimate_run("detection-pretrained", settings.with_overrides(feature_cache=False), COUNTS, TIMES, False)
    # Cached features: the backbone runs once, not every epoch; a frozen backbone trains no faster than a
    # trainable one costs.
    assert cached.epoch_seconds < uncached.epoch_seconds < base.epoch_seconds
    assert cached.features_seconds > 0 == uncached.features_seconds == base.features_seconds
    tuned = estimate_run("detection-pretrained", settings.with_overrides(fine_tune_epochs=3), COUNTS, TIMES, False)
    assert tuned.fine_tune_epochs == 3 and tuned.seconds > cached.seconds


def test_a_runs_parts_are_priced_batch_by_batch(tiny_settings):
    """The arithmetic, by hand. COUNTS at batch 32: train 3 batches, val 1, test 2. A validation
    step of the whole model is a forward pass and a heads test step: 0.1 + 0.02 = 0.12 s."""
    settings = tiny_settings.with_overrides(epochs=5, fine_tune_epochs=0)
    times = TaskTimes(build=1, forward=0.1, forward_first=2, heads_train=0.05, heads_test=0.02, heads_first=3,
                      whole_train=0.5, whole_first=10, save=0.6, checkpoint_frozen=0.9, checkpoint_whole=1.8)
    cached = estimate_run("detection-pretrained", settings, COUNTS, times, pretext_needed=False)
    # The backbone once over train and val (4 batches); an epoch is heads steps only (no checkpoint
    # share is priced for them).
    assert cached.features_seconds == pytest.approx(4 * 0.1)
    assert cached.epoch_seconds == pytest.approx(3 * 0.05 + 1 * 0.02)
    # val and test (3 batches) through the whole model, then the model written once.
    assert cached.evaluate_seconds == pytest.approx(3 * 0.12 + 0.6)
    # Build, the evaluation's first forward, the features' first forward, the heads' first steps.
    assert cached.setup_seconds == pytest.approx(1 + 2 + 2 + 3)
    assert cached.seconds == pytest.approx(8 + 0.4 + 5 * 0.17 + 0.96)

    scratch = estimate_run("detection-scratch", settings, COUNTS, times, pretext_needed=False)
    # Whole train steps and validation, plus a share of a checkpoint (of the whole model's
    # training): one a minute at most.
    assert scratch.epoch_seconds == pytest.approx(1.62 + 1.8 * 1.62 / 60)
    assert scratch.setup_seconds == pytest.approx(1 + 2 + 10 + 2 * 2)  # first train step, first validation

    uncached = estimate_run("detection-pretrained", settings.with_overrides(feature_cache=False), COUNTS, times,
                            pretext_needed=False)
    # 3 x (0.1 + 0.05) + 0.12, and a share of a checkpoint of a run that trains its heads alone.
    assert uncached.epoch_seconds == pytest.approx(0.57 + 0.9 * 0.57 / 60)
    assert uncached.features_seconds == 0

    tuned = estimate_run("detection-pretrained", settings.with_overrides(fine_tune_epochs=2), COUNTS, times,
                         pretext_needed=True)
    assert tuned.fine_tune_epoch_seconds == pytest.approx(1.62 + 1.8 * 1.62 / 60)  # the whole model trains
    # The pretext pretraining: 4 epochs of 768 / 32 = 24 steps of the whole model.
    assert tuned.pretext_seconds == pytest.approx(4 * 24 * 0.5)
    assert tuned.setup_seconds == pytest.approx(8 + (10 + 2 * 2) + 10)  # + fine-tuning's and pretext's traces


def test_pretext_pretraining_is_counted_only_until_it_is_made(tiny_settings, tmp_path):
    settings = tiny_settings.with_overrides(pretext_examples=320, pretext_epochs=3)
    fresh = estimate_run("detection-pretrained", settings, COUNTS, TIMES, pretext_needed=True)
    ready = estimate_run("detection-pretrained", settings, COUNTS, TIMES, pretext_needed=False)
    more = estimate_run("detection-pretrained", settings.with_overrides(pretext_epochs=6), COUNTS, TIMES, True)
    assert ready.seconds < fresh.seconds < more.seconds

    assert not pretext_ready("tiny", settings, tmp_path)
    path = pretext_path("tiny", settings, tmp_path / ".pretext")
    path.parent.mkdir()
    path.write_bytes(b"made")
    assert pretext_ready("tiny", settings, tmp_path) and not pretext_ready("tiny", settings, None)


def run_of(run_id: str, seconds: float) -> RunEstimate:
    return RunEstimate(run_id, seconds, 0, 0, 0, 0, 1, 0)


def test_side_by_side_a_run_gets_its_share_of_the_cores():
    """Tracing (one thread) is no slower with a core per lane; steps that keep two cores busy
    alone take twice as long with one."""
    run = RunEstimate("detection-scratch", setup_seconds=40, features_seconds=0, epoch_seconds=10,
                      fine_tune_epoch_seconds=0, evaluate_seconds=5, epochs=6, fine_tune_epochs=0, cores_busy=2.0)
    assert run.seconds == 40 + 65
    assert run.in_lanes(1, cores=2) == run.seconds
    assert run.in_lanes(2, cores=2) == pytest.approx(40 + 2 * 65)
    assert run.in_lanes(4, cores=2) == pytest.approx(2 * 40 + 4 * 65)  # two lanes per core
    one_core = RunEstimate("detection-scratch", 40, 0, 10, 0, 5, 6, 0, cores_busy=1.0)
    assert one_core.in_lanes(2, cores=2) == one_core.seconds


def test_the_plan_on_the_clock_one_lane_or_side_by_side():
    plan = PlanEstimate([run_of("detection-scratch", 100), run_of("segmentation-scratch", 60),
                         run_of("multitask-scratch", 50)], "this CPU (2 cores)", 1, cores=2)
    assert plan.wall_seconds() == plan.wall_seconds([[r.run_id for r in plan.runs]]) == 210
    two = [["detection-scratch"], ["segmentation-scratch", "multitask-scratch"]]
    # Side by side (each run keeps one core busy, a core each): the longest lane, 60 + 50.
    assert plan.wall_seconds(two) == pytest.approx(110)
    message = plan.message(two)
    assert message.startswith("estimate: about ") and "2 at a time" in message and "this CPU" in message
    assert parse_duration(message.split("about ")[1].split(" on the clock")[0]) == pytest.approx(
        plan.wall_seconds(two), abs=1)
    for run in plan.runs:
        assert run.run_id in message


def test_a_plan_of_tiny_runs_is_measured_in_the_plans_order(tiny_settings, tmp_path):
    run_ids = ["detection-pretrained", "detection-scratch", "segmentation-pretrained"]
    plan = estimate_plan(run_ids, tiny_settings.with_overrides(epochs=5), COUNTS, tmp_path)
    assert [r.run_id for r in plan.runs] == run_ids  # in the plan's order, whatever order they were timed in
    for run in plan.runs:
        assert run.epochs == 5 and run.epoch_seconds > 0 and run.evaluate_seconds > 0 and run.setup_seconds > 0
    assert "3 run(s)" in plan.message() and plan.measured_seconds > 0


def test_a_long_plan_on_a_cpu_names_the_shorter_ways():
    long = RunEstimate("detection-scratch", 10, 0, 700, 0, 20, 50, 0)
    assert "--profile quick" in PlanEstimate([long], "this CPU (2 cores)", 1).message()
    assert "--profile quick" not in PlanEstimate([long], "GPU (1)", 1).message()
    short = RunEstimate("detection-scratch", 10, 0, 7, 0, 2, 5, 0)
    assert "--profile quick" not in PlanEstimate([short], "this CPU (2 cores)", 1).message()


def test_a_long_plan_is_timed_again_with_real_train_steps(tiny_settings, tmp_path):
    short = estimate_plan(["detection-scratch"], tiny_settings, COUNTS, tmp_path)
    assert short.method == "forward passes" and "from forward passes" in short.message()
    long = estimate_plan(["detection-scratch"], tiny_settings.with_overrides(epochs=10**6), COUNTS, tmp_path)
    assert long.method == "a few train steps" and long.seconds > 1800



def test_a_checkpoint_is_priced_by_writing_what_a_checkpoint_of_that_run_holds(tiny_settings, tmp_path):
    """The model's weights, then Adam's step and learning rate and its two moments of each weight
    the run trains: the heads' alone with a frozen backbone, every one without."""
    from labcore.model.architectures import build_backbone, build_models
    from labcore.model.weights_file import read_arrays
    from labcore.settings import TASK_OUTPUTS
    from labcore.train.estimate import checkpoint_seconds

    backbone = build_backbone("tiny", tiny_settings.image_size)
    model, heads = build_models("detection", tiny_settings, backbone)
    weights = sum(w.numpy().size for w in model.weights)
    for frozen, trained in ((True, heads.trainable_weights), (False, model.trainable_weights)):
        assert checkpoint_seconds(model, backbone, TASK_OUTPUTS["detection"], tiny_settings, tmp_path, frozen) > 0
        arrays = read_arrays(tmp_path / "checkpoint.npz")
        assert len(arrays) == len(model.weights) + 2 + 2 * len(trained)
        assert sum(a.size for a in arrays) == weights + 2 + 2 * sum(w.numpy().size for w in trained)
        assert backbone.trainable  # as it was
    assert len(heads.trainable_weights) < len(model.trainable_weights)
