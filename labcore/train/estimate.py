"""How long a plan of runs will take on this machine, measured before it starts.

For each task, a freshly built model at the real image size (random weights: speed does not
depend on them) times a few calls of its parts: the backbone's forward pass, a train and a
validation step of the heads on its outputs, and, where a run needs it (scratch runs, the
pretext pretraining, fine-tuning), a train step of the whole model, and the time to write its
weights and its checkpoints (with the optimizer's variables for the heads alone, and for the
whole model), as a run writes them. Tracing a train step takes long, so a first pass times
forward passes only (a train step and its first, tracing call priced at measured multiples of
them: TRAIN_OVER_FORWARD and the rest below); a plan that comes out longer than half an hour
is timed again with real train steps. A run is then priced part by part: batches x seconds
per batch (a frozen backbone's train step is its forward pass plus a heads step; cached runs
pay the forward pass once), plus the first calls, which trace, a share of a checkpoint each
epoch (one a minute at most) and the model written at the end.

Runs side by side in lanes (`labcore.train.lanes`) share the cores: a run's steps, which keep
`cores_busy` cores busy alone, get only a lane's share of them; tracing runs on one thread.
Epochs are the maximum: EarlyStopping may end a run sooner, so the figure is an upper bound
for a machine as busy as it was when measured.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from labcore.train.checkpoint import checkpoint_variables
from labcore.train.features import uses_feature_cache
from labcore.model.architectures import backbone_name, build_backbone, build_models
from labcore.model.pretext import pretext_path
from labcore.model.weights_file import save_weights, write_arrays
from labcore.model.recipe import CHECKPOINT_SECONDS, compile_model
from labcore.settings import RUNS, TASK_OUTPUTS, Settings
from labcore.timing import cores_busy, duration, timed

TIMED_STEPS = 2  # per measure, after the first call (which traces)
# The ratios below turn forward passes into what a run pays, measured in CPU seconds at the
# demo's 64 px with Keras' model.fit (docs/benchmarks.md, "The estimate"): a train step costs
# 3.6 (MobileNetV3Small), 4.8 (MobileNetV3Large) and 5.5 (EfficientNetB3) forward passes of the
# backbone and heads; fit's first train batch (tracing the step, gradients and optimizer, and
# optimising the graph), with the optimizer built first (`labcore.model.recipe.build_optimizer`),
# 9.2 (MobileNetV3Small), 15.2 (MobileNetV3Large) and 14.3 (EfficientNetB3) first forward calls;
# its first validation 2.5, 1.8 and 1.4.
TRAIN_OVER_FORWARD = 5.0
TRACE_TRAIN_OVER_FORWARD = 13.0
TRACE_TEST_OVER_FORWARD = 2.0
# model.fit's first batch costs this many times train_on_batch's first call (the plan timed with
# real train steps): fit traces its step inside a function over the dataset's iterator
# (MobileNetV3Small, 64 px, optimizer built first: 9.6 CPU seconds against 7.6).
FIT_FIRST_OVER_TRAIN_ON_BATCH = 1.3
TIME_TRAIN_STEPS_ABOVE = 1800.0  # seconds: plans estimated longer are re-timed with real train steps
LONG_PLAN_SECONDS = 3600.0


@dataclass
class RunEstimate:
    run_id: str
    setup_seconds: float  # building and the first (tracing) calls: one thread
    features_seconds: float  # the frozen backbone's one pass over train and val (cached runs)
    epoch_seconds: float  # train steps and validation of one epoch
    fine_tune_epoch_seconds: float
    evaluate_seconds: float  # val and test through the whole model, at the end
    epochs: int
    fine_tune_epochs: int
    pretext_seconds: float = 0.0  # the pretext pretraining's steps, where its weights are not made yet
    cores_busy: float = 1.0  # how many cores the run's steps keep busy when it runs alone

    @property
    def compute_seconds(self) -> float:
        """The steps' part (many threads), as opposed to building and tracing (one thread)."""
        return (self.pretext_seconds + self.features_seconds + self.epochs * self.epoch_seconds
                + self.fine_tune_epochs * self.fine_tune_epoch_seconds + self.evaluate_seconds)

    @property
    def seconds(self) -> float:
        """Alone on the machine."""
        return self.setup_seconds + self.compute_seconds

    def in_lanes(self, lanes: int, cores: int) -> float:
        """Seconds with `lanes` runs side by side on `cores` cores: each lane gets its share of
        the cores, so steps that keep more than that busy alone take longer; tracing (one
        thread) does not, while there is a core per lane."""
        share = cores / max(1, lanes)
        return self.setup_seconds * max(1.0, 1.0 / share) + self.compute_seconds * max(1.0, self.cores_busy / share)


@dataclass
class PlanEstimate:
    runs: list[RunEstimate]
    device: str
    measured_seconds: float  # what the estimate itself took
    method: str = "a few train steps"
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)

    def run(self, run_id: str) -> RunEstimate | None:
        return next((r for r in self.runs if r.run_id == run_id), None)

    def run_seconds(self, run_id: str, lanes: list[list[str]] | None = None) -> float:
        """A run's seconds on the clock, alone or in one of `lanes` side by side."""
        run = self.run(run_id)
        if run is None:
            return 0.0
        return run.in_lanes(len(lanes), self.cores) if lanes and len(lanes) > 1 else run.seconds

    def wall_seconds(self, lanes: list[list[str]] | None = None) -> float:
        """Seconds on the clock: the runs one after another, or in `lanes` side by side, where
        the longest lane sets the time."""
        if not lanes or len(lanes) == 1:
            return self.seconds
        return max(sum(self.run_seconds(r, lanes) for r in lane) for lane in lanes)

    def message(self, lanes: list[list[str]] | None = None) -> str:
        parts = ", ".join(f"{r.run_id} {duration(r.seconds)}" for r in self.runs)
        at_a_time = f", {len(lanes)} at a time" if lanes and len(lanes) > 1 else ""
        text = (f"estimate: about {duration(self.wall_seconds(lanes))} on the clock for {len(self.runs)} run(s) "
                f"at most on {self.device}{at_a_time} (each alone: {parts}; measured in {self.measured_seconds:.0f}s "
                f"from {self.method} of each model; early stopping may end runs sooner, a busier machine is slower)")
        if self.seconds > LONG_PLAN_SECONDS and not self.device.startswith("GPU"):
            text += (". A GPU takes a fraction of that; --profile quick (128 px, 1000 images, 5 epochs) "
                     "or --profile demo (synthetic, minutes) are the short ways")
        return text


def device_name() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({len(gpus)})" if gpus else f"this CPU ({os.cpu_count()} cores)"


def fake_batch(task: str, batch_size: int, image_size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A batch shaped like `labcore.data.pipeline.to_model_io`'s (box with its has-box column), for timing."""
    rng = np.random.default_rng(0)
    targets: dict[str, np.ndarray] = {}
    outputs = TASK_OUTPUTS[task]
    if "label" in outputs:
        targets["label"] = rng.integers(0, 37, batch_size).astype(np.int32)
    if "bbox" in outputs:
        targets["bbox"] = np.concatenate([rng.uniform(0, 1, (batch_size, 4)), np.ones((batch_size, 1))],
                                         1).astype(np.float32)
    if "mask" in outputs:
        targets["mask"] = rng.integers(0, 2, (batch_size, image_size, image_size, 1)).astype(np.int32)
    return rng.uniform(0, 255, (batch_size, image_size, image_size, 3)).astype(np.float32), targets


@dataclass
class TaskTimes:
    """Seconds per batch of one task's model parts, and of their first (tracing) calls."""

    build: float
    forward: float  # the backbone, inference mode
    forward_first: float
    heads_train: float  # a train step of the heads on backbone outputs
    heads_test: float  # a validation step of the heads
    heads_first: float
    whole_train: float | None = None  # a train step of the whole model, backbone trainable
    whole_first: float | None = None
    cores_busy: float = 1.0  # how many cores a step keeps busy (its forward pass, measured)
    save: float = 0.0  # writing the model's weights once (the final model)
    checkpoint_frozen: float = 0.0  # writing a checkpoint of a run that trains the heads alone
    checkpoint_whole: float = 0.0  # ... of a run that trains the whole model


def measure_task(task: str, settings: Settings, whole: bool, train_steps: bool) -> TaskTimes:
    """Time a freshly built model of `task` at the real image size. `whole`: also price a train
    step of the whole model (scratch runs, pretext pretraining, fine-tuning need it); a step
    with a frozen backbone is its forward pass plus a heads step, so it needs no price of its
    own. `train_steps`: time real train and validation steps; else only forward passes,
    pricing a train step at TRAIN_OVER_FORWARD forward passes (tracing a train step costs
    more than a short plan is worth)."""
    outputs = TASK_OUTPUTS[task]
    start = time.perf_counter()
    backbone = build_backbone(backbone_name(task, settings), settings.image_size, weights=None)
    model, heads = build_models(task, settings, backbone)
    build = time.perf_counter() - start
    x, y = fake_batch(task, settings.batch_size, settings.image_size)
    forward = tf.function(lambda images: backbone(images, training=False), autograph=False)
    forward_first, forward_s = timed(lambda: forward(x), TIMED_STEPS)
    busy = cores_busy(lambda: forward(x), TIMED_STEPS)
    with tempfile.TemporaryDirectory() as folder:
        save = time.perf_counter()
        save_weights(model, Path(folder) / "timed.weights.npz")
        save = time.perf_counter() - save
        checkpoints = {frozen: checkpoint_seconds(model, backbone, outputs, settings, Path(folder), frozen)
                       for frozen in ((True, False) if whole else (True,))}
    f = forward(x)
    if not train_steps:
        heads_forward = tf.function(lambda features: heads(features, training=False), autograph=False)
        first, heads_s = timed(lambda: heads_forward(f), TIMED_STEPS)
        times = TaskTimes(build, forward_s, forward_first, TRAIN_OVER_FORWARD * heads_s, heads_s,
                          (TRACE_TRAIN_OVER_FORWARD + TRACE_TEST_OVER_FORWARD) * first, cores_busy=busy, save=save,
                          checkpoint_frozen=checkpoints[True], checkpoint_whole=checkpoints.get(False, 0.0))
        if whole:
            times.whole_train = TRAIN_OVER_FORWARD * (forward_s + heads_s)
            times.whole_first = TRACE_TRAIN_OVER_FORWARD * (forward_first + first)
        return times
    compile_model(heads, outputs, settings.learning_rate, settings.jit_compile)
    f = f.numpy()
    train_first, heads_train = timed(lambda: heads.train_on_batch(f, y), TIMED_STEPS)
    test_first, heads_test = timed(lambda: heads.test_on_batch(f, y), TIMED_STEPS)
    times = TaskTimes(build, forward_s, forward_first, heads_train, heads_test,
                      FIT_FIRST_OVER_TRAIN_ON_BATCH * (train_first + test_first), cores_busy=busy, save=save,
                      checkpoint_frozen=checkpoints[True], checkpoint_whole=checkpoints.get(False, 0.0))
    if whole:
        compile_model(model, outputs, settings.learning_rate, settings.jit_compile)
        whole_first, times.whole_train = timed(lambda: model.train_on_batch(x, y), TIMED_STEPS)
        times.whole_first = FIT_FIRST_OVER_TRAIN_ON_BATCH * whole_first
    return times


def checkpoint_seconds(model: keras.Model, backbone: keras.Model, outputs: tuple[str, ...], settings: Settings,
                       folder: Path, frozen: bool) -> float:
    """Writing one checkpoint of a run with a `frozen` backbone (else the whole model trains):
    what `labcore.train.checkpoint` writes, the weights and the optimizer's variables (Adam keeps
    two for each weight it trains), written as it writes them."""
    backbone.trainable = not frozen
    try:
        compile_model(model, outputs, settings.learning_rate, settings.jit_compile)
        start = time.perf_counter()
        write_arrays(folder / "checkpoint.npz", [v.numpy() for v in checkpoint_variables(model)])
        return time.perf_counter() - start
    finally:
        backbone.trainable = True


def with_checkpoint(epoch: float, checkpoint: float) -> float:
    """An epoch's seconds with its share of checkpoints: one at an epoch's end at most every
    CHECKPOINT_SECONDS (`labcore.train.checkpoint`), so a short epoch pays for a fraction."""
    return epoch + checkpoint * min(1.0, epoch / CHECKPOINT_SECONDS)


def estimate_run(run_id: str, settings: Settings, counts: dict[str, int], times: TaskTimes,
                 pretext_needed: bool) -> RunEstimate:
    """A run's parts: batches x seconds per batch, plus the first calls that trace."""
    spec = RUNS[run_id]
    frozen = spec.init == "pretrained" and settings.freeze_backbone
    batches = {k: math.ceil(v / settings.batch_size) for k, v in counts.items()}
    validate = times.forward + times.heads_test  # a validation step of the whole model
    # val and test through the whole model, then the model written
    evaluate = (batches["val"] + batches["test"]) * validate + times.save
    setup = times.build + times.forward_first  # building, and tracing the evaluation's forward pass
    trace_validation = TRACE_TEST_OVER_FORWARD * times.forward_first
    features = 0.0
    if frozen and uses_feature_cache(spec, settings):
        features = (batches["train"] + batches["val"]) * times.forward
        epoch = batches["train"] * times.heads_train + batches["val"] * times.heads_test
        setup += times.forward_first + times.heads_first
    elif frozen:
        epoch = with_checkpoint(batches["train"] * (times.forward + times.heads_train) + batches["val"] * validate,
                                times.checkpoint_frozen)
        setup += times.forward_first + trace_validation + times.heads_first
    else:
        epoch = with_checkpoint(batches["train"] * times.whole_train + batches["val"] * validate, times.checkpoint_whole)
        setup += times.whole_first + trace_validation
    fine_tune_epoch = 0.0
    if frozen and settings.fine_tune_epochs:
        fine_tune_epoch = with_checkpoint(batches["train"] * times.whole_train + batches["val"] * validate,
                                          times.checkpoint_whole)
        setup += times.whole_first + trace_validation
    pretext = 0.0
    if pretext_needed:
        # The pretext model (backbone, pooling, one Dense) steps about as fast as the whole model.
        steps = settings.pretext_epochs * math.ceil(settings.pretext_examples / settings.batch_size)
        setup += times.whole_first
        pretext = steps * times.whole_train
    return RunEstimate(run_id, setup, features, epoch, fine_tune_epoch, evaluate,
                       settings.epochs, settings.fine_tune_epochs if frozen else 0, pretext, times.cores_busy)


def pretext_ready(backbone: str, settings: Settings, runs_dir: Path | None) -> bool:
    return runs_dir is not None and pretext_path(backbone, settings, Path(runs_dir) / ".pretext").exists()


def estimate_plan(run_ids: list[str], settings: Settings, counts: dict[str, int],
                  runs_dir: Path | None = None) -> PlanEstimate:
    """Estimate the runs `run_ids` (in order) on `counts` images ({"train", "val", "test"});
    with `runs_dir`, pretext weights already made there are not counted again."""
    start = time.perf_counter()

    def frozen(run_id: str) -> bool:
        return RUNS[run_id].init == "pretrained" and settings.freeze_backbone

    def pretext_needed(run_id: str) -> bool:
        return (RUNS[run_id].init == "pretrained" and settings.weights == "synthetic-pretext"
                and not pretext_ready(backbone_name(RUNS[run_id].task, settings), settings, runs_dir))

    def plan(train_steps: bool) -> list[RunEstimate]:
        measured: dict[str, TaskTimes] = {}
        for task in dict.fromkeys(RUNS[r].task for r in run_ids):
            whole = any(not frozen(r) or settings.fine_tune_epochs or pretext_needed(r)
                        for r in run_ids if RUNS[r].task == task)
            measured[task] = measure_task(task, settings, whole, train_steps)
            keras.backend.clear_session()
        return [estimate_run(r, settings, counts, measured[RUNS[r].task], pretext_needed(r)) for r in run_ids]

    # Forward passes first; a long plan is worth timing real train steps as well.
    estimates, method = plan(train_steps=False), "forward passes"
    if sum(r.seconds for r in estimates) > TIME_TRAIN_STEPS_ABOVE:
        estimates, method = plan(train_steps=True), "a few train steps"
    return PlanEstimate(estimates, device_name(), time.perf_counter() - start, method)
