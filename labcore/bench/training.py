"""The bench's training measures (sections 3, 4, 6 and 7 of `python -m labcore.bench`): the
input pipeline vs the same tensors in memory, train-step throughput per architecture, a
pretrained run's epoch on cached features vs images, and the whole demo profile."""
from __future__ import annotations

import json
import math
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from labcore.bench.options import BATCH, ROOT, Options
from labcore.data.pipeline import make_splits
from labcore.train.estimate import fake_batch
from labcore.train.features import cached_splits
from labcore.model.architectures import backbone_name, build_backbone, build_model, build_models, set_frozen
from labcore.model.recipe import compile_model
from labcore.settings import TASK_OUTPUTS
from labcore.data.sources import folder_source, synthetic_source
from labcore.timing import parse_duration, timed

PIPELINE_TASK = "multitask"  # every target (label, box, mask): the heaviest pipeline
PIPELINE_SAMPLE_IMAGES = 2048  # images per timed pass: long enough that a busy moment averages out


def images_per_second(dataset: tf.data.Dataset) -> float:
    """One pass through `dataset` into a consumer that only counts the images."""
    start = time.perf_counter()
    count = sum(int(images.shape[0]) for images, _ in dataset)
    return count / (time.perf_counter() - start)


def measure_input_pipeline(options: Options) -> dict[str, Any]:
    """labcore's training pipeline in its steady state (the first epoch fills the cache; a
    multi-epoch training spends every later epoch like the ones measured) vs a dataset of the
    very same tensors already in memory, batched alike."""
    if options.data_dir:
        source = folder_source(options.data_dir)
    else:
        source = synthetic_source(options.pipeline_images, seed=0)
    settings = options.settings
    splits = make_splits(source, settings, PIPELINE_TASK, backbone_name(PIPELINE_TASK, settings))
    batches = list(splits.train)  # the first epoch: decodes, resizes and fills the cache
    images = np.concatenate([b[0].numpy() for b in batches])
    targets = {k: np.concatenate([b[1][k].numpy() for b in batches]) for k in batches[0][1]}
    del batches
    epochs = math.ceil(PIPELINE_SAMPLE_IMAGES / len(images))
    contenders = {
        "pipeline": splits.train.repeat(epochs),
        "memory": tf.data.Dataset.from_tensor_slices((images, targets)).batch(settings.batch_size).repeat(epochs),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(options.warmup + options.repeats):
        for name, dataset in contenders.items():
            rate = images_per_second(dataset)
            if round_ >= options.warmup:
                rates[name].append(rate)
    pipeline, memory = statistics.median(rates["pipeline"]), statistics.median(rates["memory"])
    return {"source": source.description, "task": PIPELINE_TASK, "images": len(images),
            "image_size": settings.image_size, "epochs_per_pass": epochs, "pipeline_images_per_s": pipeline,
            "memory_images_per_s": memory, "pipeline_over_memory": pipeline / memory}


# --------------------------------------------------------------------------- 4: training

def measure_training(task: str, options: Options) -> dict[str, Any]:
    """Train steps of one architecture, whole network trainable (the scratch runs; a frozen
    pretrained backbone trains faster), with the runs' optimizer, losses and metrics."""
    settings = options.settings
    name = backbone_name(task, settings)
    keras.utils.set_random_seed(0)
    model = build_model(task, settings, build_backbone(name, settings.image_size, weights=None))
    compile_model(model, TASK_OUTPUTS[task], settings.learning_rate, jit_compile=False)
    x, y = fake_batch(task, BATCH, settings.image_size)
    _, step = timed(lambda: model.train_on_batch(x, y), options.train_steps)  # the first call traces
    return {"task": task, "backbone": name, "image_size": settings.image_size, "batch": BATCH,
            "step_ms": 1000 * step, "images_per_s": BATCH / step}


# --------------------------------------------------------------------------- 6: cached features

class EpochSeconds(keras.callbacks.Callback):
    """Wall and CPU seconds (this process, all threads) of the last epoch. On a shared machine
    the CPU time is the steadier figure: other processes stretch wall time, not work done."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start


def measure_feature_cache(task: str, options: Options, work: Path) -> dict[str, Any]:
    """A pretrained run's epoch after the first (train and validation), as `labcore.train.training`
    runs it: the whole model on images (`--no-feature-cache`) vs its heads on the frozen
    backbone's cached outputs. One warm-up epoch each (it traces, and fills the image cache),
    then timed epochs interleaved; the one pass that makes the features is reported apart."""
    settings = options.settings
    name = backbone_name(task, settings)
    splits = make_splits(synthetic_source(options.cache_images, seed=0), settings, task, name)
    keras.utils.set_random_seed(0)
    backbone = build_backbone(name, settings.image_size, weights=None)
    set_frozen(backbone, True)
    model, heads = build_models(task, settings, backbone)
    compile_model(model, TASK_OUTPUTS[task], settings.learning_rate, jit_compile=False)
    compile_model(heads, TASK_OUTPUTS[task], settings.learning_rate, jit_compile=False)
    cache = cached_splits(backbone, splits, settings, work)
    contenders = {"images": (model, splits.train, splits.val), "features": (heads, cache.train, cache.val)}
    seconds: dict[str, list[float]] = {k: [] for k in contenders}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    timer = EpochSeconds()
    for round_ in range(1 + max(1, options.repeats // 5)):
        for key, (fitted, train, val) in contenders.items():
            fitted.fit(train, validation_data=val, epochs=1, callbacks=[timer], verbose=0)
            if round_:
                seconds[key].append(timer.seconds)
                cpu[key].append(timer.cpu_seconds)
    uncached, cached = statistics.median(seconds["images"]), statistics.median(seconds["features"])
    uncached_cpu, cached_cpu = statistics.median(cpu["images"]), statistics.median(cpu["features"])
    return {"task": task, "backbone": name, "image_size": settings.image_size, "train": splits.counts["train"],
            "val": splits.counts["val"], "uncached_epoch_s": uncached, "cached_epoch_s": cached,
            "features_s": cache.seconds, "speedup": uncached / cached,
            "uncached_epoch_cpu_s": uncached_cpu, "cached_epoch_cpu_s": cached_cpu,
            "cpu_speedup": uncached_cpu / cached_cpu}


# --------------------------------------------------------------------------- 7: the demo profile

DEMO_QUICK_ARGS = ["--tiny-backbones", "--limit", "64", "--epochs", "2", "--image-size", "32"]
ESTIMATE_LINE = re.compile(r"estimate: about (.+?) on the clock")


def measure_demo(options: Options, runs_dir: Path, jobs: int) -> dict[str, Any]:
    """`train.py --profile demo --jobs JOBS` from nothing (no runs, no pretext weights): see
    `measure_train_py`."""
    return measure_train_py(["--profile", "demo", "--jobs", str(jobs), *(DEMO_QUICK_ARGS if options.quick else [])],
                            runs_dir)


def measure_train_py(train_args: list[str], runs_dir: Path) -> dict[str, Any]:
    """`train.py ARGS --runs-dir RUNS_DIR` in a child process: its wall time, its CPU time
    (user + sys of it and its lanes' processes, less sensitive to other processes), the
    estimate it printed before training (and the wall time over it), and the validation
    metrics its runs reach."""
    args = [sys.executable, str(ROOT / "train.py"), *train_args, "--runs-dir", str(runs_dir)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"train.py {' '.join(train_args)} failed: {done.stderr[-2000:]}")
    found = ESTIMATE_LINE.search(done.stdout)
    estimate = parse_duration(found.group(1)) if found else None
    # Wherever the run store puts them (runs/<run id>/ or runs/<experiment>/<run id>/).
    metrics = {path.parent.name: json.loads(path.read_text()).get("val", {})
               for path in sorted(runs_dir.rglob("metrics.json")) if ".partial" not in path.parts}
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "args": args[2:], "estimate_s": estimate, "wall_over_estimate": wall / estimate if estimate else None,
            "val_metrics": metrics}
