"""How long a plan of runs will take on this machine, measured before it starts.

Each run's model is built at the real image size (random weights: speed does not depend on
them) and a few of its steps are timed: train steps and validation steps of what the run
fits (the whole model, or its heads on cached features), the frozen backbone's forward pass
(cached runs compute features with it once) and, where the run has them, the pretext
pretraining and the fine-tuning. Then seconds = batches x step time for every part, plus the
measured first calls (building and tracing). Epochs are the maximum: EarlyStopping may end
a run sooner, so the figure is an upper bound on a machine as busy as it was when measured.
"""
from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from labcore.features import uses_feature_cache
from labcore.models import backbone_name, build_backbone, build_models
from labcore.settings import RUNS, TASK_OUTPUTS, Settings

TIMED_STEPS = 2  # per measure, after the first call (which traces)
LONG_PLAN_SECONDS = 3600.0


@dataclass
class RunEstimate:
    run_id: str
    setup_seconds: float  # pretext pretraining where needed, building, the first (tracing) calls
    features_seconds: float  # the frozen backbone's one pass over train and val (cached runs)
    epoch_seconds: float  # train steps and validation of one epoch
    fine_tune_epoch_seconds: float
    evaluate_seconds: float  # val and test through the whole model, at the end
    epochs: int
    fine_tune_epochs: int

    @property
    def seconds(self) -> float:
        return (self.setup_seconds + self.features_seconds + self.epochs * self.epoch_seconds
                + self.fine_tune_epochs * self.fine_tune_epoch_seconds + self.evaluate_seconds)


@dataclass
class PlanEstimate:
    runs: list[RunEstimate]
    device: str
    measured_seconds: float  # what the estimate itself took
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)

    def run(self, run_id: str) -> RunEstimate | None:
        return next((r for r in self.runs if r.run_id == run_id), None)

    def seconds_after(self, run_id: str) -> float:
        """The estimated seconds of the runs that come after `run_id`."""
        ids = [r.run_id for r in self.runs]
        return sum(r.seconds for r in self.runs[ids.index(run_id) + 1:]) if run_id in ids else 0.0

    def message(self) -> str:
        parts = ", ".join(f"{r.run_id} {duration(r.seconds)}" for r in self.runs)
        text = (f"estimate: about {duration(self.seconds)} on {self.device} for {len(self.runs)} run(s) "
                f"at most ({parts}; measured in {self.measured_seconds:.0f}s from a few steps of each model; "
                f"early stopping may end runs sooner, a busier machine is slower)")
        if self.seconds > LONG_PLAN_SECONDS and not self.device.startswith("GPU"):
            text += (". A GPU takes a fraction of that; --profile quick (128 px, 1000 images, 5 epochs) "
                     "or --profile demo (synthetic, minutes) are the short ways")
        return text


def duration(seconds: float) -> str:
    """12s, 4 min 05s, 9 h 12 min."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def device_name() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({len(gpus)})" if gpus else f"this CPU ({os.cpu_count()} cores)"


def fake_batch(task: str, settings: Settings, images: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A batch shaped like `labcore.data.to_model_io`'s (box with its has-box column)."""
    rng = np.random.default_rng(0)
    n, size = settings.batch_size, settings.image_size
    targets: dict[str, np.ndarray] = {}
    outputs = TASK_OUTPUTS[task]
    if "label" in outputs:
        targets["label"] = rng.integers(0, 37, n).astype(np.int32)
    if "bbox" in outputs:
        targets["bbox"] = np.concatenate([rng.uniform(0, 1, (n, 4)), np.ones((n, 1))], 1).astype(np.float32)
    if "mask" in outputs:
        targets["mask"] = rng.integers(0, 2, (n, size, size, 1)).astype(np.int32)
    return rng.uniform(0, 255, (n, size, size, 3)).astype(np.float32), targets


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(seconds of the first call, median seconds of the next TIMED_STEPS calls)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    steps = []
    for _ in range(TIMED_STEPS):
        start = time.perf_counter()
        fn()
        steps.append(time.perf_counter() - start)
    return first, statistics.median(steps)


def estimate_run(run_id: str, settings: Settings, counts: dict[str, int], runs_dir: Path | None,
                 trainable_steps: dict[str, float]) -> RunEstimate:
    """Time one run's model; `trainable_steps` (task -> seconds of a whole-model train step)
    is filled and reused across runs (scratch runs, pretext and fine-tuning need it)."""
    from labcore.training import compile_model, weights_origin  # training imports this module

    spec = RUNS[run_id]
    name = backbone_name(spec.task, settings)
    frozen = spec.init == "pretrained" and settings.freeze_backbone
    start = time.perf_counter()
    backbone = build_backbone(name, settings.image_size, weights=None)
    backbone.trainable = not frozen
    model, heads = build_models(spec.task, settings, backbone)
    compile_model(model, spec.outputs, settings.learning_rate, settings.jit_compile)
    setup = time.perf_counter() - start
    x, y = fake_batch(spec.task, settings)
    batches = {k: math.ceil(v / settings.batch_size) for k, v in counts.items()}

    features_s = 0.0
    if uses_feature_cache(spec, settings):
        compile_model(heads, spec.outputs, settings.learning_rate, settings.jit_compile)
        forward = tf.function(lambda images: backbone(images, training=False))
        first_fwd, forward_s = timed(lambda: forward(x))
        f = forward(x).numpy()
        first_train, train_s = timed(lambda: heads.train_on_batch(f, y))
        first_test, test_s = timed(lambda: heads.test_on_batch(f, y))
        setup += first_fwd + first_train + first_test + first_fwd  # the last: evaluation traces the whole model
        features_s = (batches["train"] + batches["val"]) * forward_s
        evaluate_s = (batches["val"] + batches["test"]) * (forward_s + test_s)
    else:
        first_train, train_s = timed(lambda: model.train_on_batch(x, y))
        first_test, test_s = timed(lambda: model.test_on_batch(x, y))
        setup += first_train + 2 * first_test
        evaluate_s = (batches["val"] + batches["test"]) * test_s
        if not frozen:
            trainable_steps[spec.task] = train_s
    epoch_s = batches["train"] * train_s + batches["val"] * test_s

    fine_tune_epoch_s = 0.0
    wants_trainable = frozen and (settings.fine_tune_epochs or weights_origin(spec, settings) == "synthetic-pretext")
    if wants_trainable and spec.task not in trainable_steps:
        backbone.trainable = True
        compile_model(model, spec.outputs, settings.learning_rate, settings.jit_compile)
        first, trainable_steps[spec.task] = timed(lambda: model.train_on_batch(x, y))
        if settings.fine_tune_epochs:
            setup += first
    if frozen and settings.fine_tune_epochs:
        fine_tune_epoch_s = batches["train"] * trainable_steps[spec.task] + batches["val"] * test_s
    if frozen and weights_origin(spec, settings) == "synthetic-pretext" and not pretext_ready(name, settings, runs_dir):
        # The pretext model (backbone, pooling, one Dense) steps about as fast as the whole model.
        pretext_batches = math.ceil(settings.pretext_examples / settings.batch_size)
        setup += settings.pretext_epochs * pretext_batches * trainable_steps[spec.task]
    return RunEstimate(run_id, setup, features_s, epoch_s, fine_tune_epoch_s, evaluate_s,
                       settings.epochs, settings.fine_tune_epochs if frozen else 0)


def pretext_ready(backbone: str, settings: Settings, runs_dir: Path | None) -> bool:
    from labcore.pretext import pretext_path

    return runs_dir is not None and pretext_path(backbone, settings, Path(runs_dir) / ".pretext").exists()


def estimate_plan(run_ids: list[str], settings: Settings, counts: dict[str, int],
                  runs_dir: Path | None = None) -> PlanEstimate:
    """Estimate the runs `run_ids` (in order) on `counts` images ({"train", "val", "test"})."""
    start = time.perf_counter()
    trainable_steps: dict[str, float] = {}
    # Scratch runs first: their whole-model step also prices the pretext pretraining.
    order = sorted(run_ids, key=lambda r: RUNS[r].init != "scratch")
    found = {}
    for run_id in order:
        found[run_id] = estimate_run(run_id, settings, counts, runs_dir, trainable_steps)
        keras.backend.clear_session()
    return PlanEstimate([found[r] for r in run_ids], device_name(), time.perf_counter() - start)
