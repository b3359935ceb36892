"""How fast the lab is, measured side by side in one run: `python -m labcore.bench`.

1. One upload per model: end to end through labcore (decode, resize, compiled forward,
   post-process) vs `model.predict` on the preprocessed image vs the compiled forward alone.
2. Every model on one upload, as the live page runs them, compiled vs `model.predict`.
3. The training input pipeline (`labcore.data.make_splits`) vs the same tensors from memory.
4. Training throughput of each architecture at batch 32.
5. Peak memory of a process holding all six models, vs one that holds none.
6. A pretrained run's epoch after the first, cached features vs images, for each backbone.
7. With --demo: the whole `train.py --profile demo`, wall and CPU time.

Times are medians after warm-up. The runs being compared are interleaved (one of each per
round), so a machine that gets busier half-way slows every contender alike: compare ratios
from one run, not absolute times from different runs. Nothing here is a test: a missed
target is printed as MISSED and the exit status stays 0.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from labcore.data import make_splits, preprocess_images  # noqa: E402
from labcore.estimate import fake_batch  # noqa: E402
from labcore.experiments import list_experiments  # noqa: E402
from labcore.features import cached_splits  # noqa: E402
from labcore.images import load_image, resize_for_model  # noqa: E402
from labcore.inference import Predictor  # noqa: E402
from labcore.models import backbone_name, build_backbone, build_model, build_models, set_frozen  # noqa: E402
from labcore.runs import ModelLoadError, default_runs_dir, list_runs  # noqa: E402
from labcore.settings import RUNS, TASK_OUTPUTS, TASKS, Settings  # noqa: E402
from labcore.sources import draw_pet, folder_source, synthetic_source  # noqa: E402
from labcore.training import compile_model, library_versions  # noqa: E402

# The targets, as ratios measured in one run.
MAX_E2E_OVER_COMPILED = 1.5
MIN_PREDICT_OVER_E2E = 5.0
MIN_PIPELINE_OVER_MEMORY = 0.9
MIN_CACHED_SPEEDUP = 10.0  # detection-pretrained: an epoch on images / an epoch on cached features

UPLOAD_SIZE = (640, 480)  # a typical phone photo after the browser's downscale
PIPELINE_TASK = "multitask"  # every target (label, box, mask): the heaviest pipeline
BATCH = 32
PIPELINE_SAMPLE_IMAGES = 2048  # images per timed pass: long enough that a busy moment averages out
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Options:
    runs_dir: Path
    image_size: int
    repeats: int
    warmup: int
    train_steps: int
    pipeline_images: int
    data_dir: str | None
    skip_training: bool
    quick: bool
    cache_images: int = 256
    demo: bool = False

    @property
    def settings(self) -> Settings:
        """Settings for freshly built models. `--quick` swaps every backbone for the tiny one."""
        extra = {"backbone": "tiny"} if self.quick else {}
        return Settings(image_size=self.image_size, extra=extra)


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the table."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- timing

def interleaved_medians(contenders: dict[str, Callable[[], Any]], repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds of each callable; each round runs every contender once, so load that
    comes and goes on a shared machine hits them all alike."""
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


# --------------------------------------------------------------------------- models

def load_predictors(options: Options) -> tuple[list[Predictor], str]:
    """The runs in `runs_dir` that have a model (an experiment's folder, or a runs root: its
    newest experiment), or, with none, the six runs built fresh (random weights: speed does
    not depend on what the weights are)."""
    runs = [run for run in list_runs(options.runs_dir) if run.has_model]
    if not runs and list_experiments(options.runs_dir):
        runs = [run for run in list_experiments(options.runs_dir)[0].runs if run.has_model]
    predictors = []
    for run in runs:
        try:
            predictors.append(Predictor.from_run(run))
        except ModelLoadError as err:
            log(f"skipped: {err}")
    if predictors:
        return predictors, f"{len(predictors)} run(s) from {options.runs_dir}"
    settings = options.settings
    for spec in RUNS.values():
        name = backbone_name(spec.task, settings)
        model = build_model(spec.task, settings, build_backbone(name, settings.image_size, weights=None))
        predictors.append(Predictor(model, spec.run_id, name, settings.image_size))
    return predictors, f"the six runs built fresh (weights=None; no runs in {options.runs_dir})"


def compiled_forward(model: keras.Model, image_size: int) -> Callable[[tf.Tensor], Any]:
    """The model's forward pass alone as a traced graph: the floor any predict path can reach."""
    spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32)
    forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    forward(tf.zeros([1, image_size, image_size, 3]))
    return forward


def make_upload() -> bytes:
    """A realistic upload: a 640x480 JPEG (a drawn pet, with its noise, scaled up)."""
    pet, _, _ = draw_pet(3, np.random.default_rng(0), size=240)
    buffer = io.BytesIO()
    Image.fromarray(pet).resize(UPLOAD_SIZE, Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def model_input(upload: bytes, predictor: Predictor) -> np.ndarray:
    """The upload decoded, resized and preprocessed for one model: a batch of one."""
    pixels = resize_for_model(load_image(upload).image, predictor.image_size)[None]
    return preprocess_images(pixels, predictor.backbone).numpy()


# --------------------------------------------------------------------------- 1, 2: inference

def measure_one_upload(predictor: Predictor, upload: bytes, options: Options) -> dict[str, Any]:
    """One model: labcore end to end vs `model.predict` vs the compiled forward alone."""
    x = model_input(upload, predictor)
    x_tensor = tf.constant(x)
    forward = compiled_forward(predictor.model, predictor.image_size)
    seconds = interleaved_medians({
        "e2e": lambda: predictor.predict(load_image(upload).image),
        "predict": lambda: predictor.model.predict(x, verbose=0),
        "compiled": lambda: forward(x_tensor),
    }, options.repeats, options.warmup)
    return {
        "run_id": predictor.run_id, "backbone": predictor.backbone, "image_size": predictor.image_size,
        "e2e_ms": 1000 * seconds["e2e"], "predict_ms": 1000 * seconds["predict"],
        "compiled_ms": 1000 * seconds["compiled"],
        "e2e_over_compiled": seconds["e2e"] / seconds["compiled"],
        "predict_over_e2e": seconds["predict"] / seconds["e2e"],
        # The most any predict path could gain: what model.predict adds to the forward itself.
        "predict_over_compiled": seconds["predict"] / seconds["compiled"],
    }


def measure_all_models(predictors: list[Predictor], upload: bytes, options: Options) -> dict[str, Any]:
    """Every model on one upload, as the live page does it (decode once, then each model),
    against the same page built on `model.predict`."""
    def live_page() -> None:
        image = load_image(upload).image
        for predictor in predictors:
            predictor.predict(image)

    def predict_page() -> None:
        image = load_image(upload).image
        for predictor in predictors:
            pixels = resize_for_model(image, predictor.image_size)[None]
            predictor.model.predict(preprocess_images(pixels, predictor.backbone).numpy(), verbose=0)

    seconds = interleaved_medians({"e2e": live_page, "predict": predict_page}, options.repeats, options.warmup)
    return {"models": len(predictors), "e2e_ms": 1000 * seconds["e2e"], "predict_ms": 1000 * seconds["predict"],
            "predict_over_e2e": seconds["predict"] / seconds["e2e"]}


def forward_cpu_per_image(predictors: list[Predictor], images: list[Image.Image], repeats: int) -> float:
    """CPU-seconds (every thread of this process) of the compiled forward passes of all
    `predictors` on one picture, summed over the models; the median over `repeats` rounds of
    the mean over `images`. CPU time, not wall time: the floor for what a server that shares its
    cores among sessions spends per upload (`scripts/load.py` compares against it)."""
    inputs = [[tf.constant(resize_for_model(image, p.image_size)[None]) for image in images] for p in predictors]
    for predictor, batch in zip(predictors, inputs):
        predictor.forward(batch[0])  # warm
    rounds = []
    for _ in range(repeats):
        start = time.process_time()
        for predictor, batch in zip(predictors, inputs):
            for x in batch:
                predictor.forward(x)
        rounds.append((time.process_time() - start) / len(images))
    return statistics.median(rounds)


# --------------------------------------------------------------------------- 3: input pipeline

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
    model.train_on_batch(x, y)  # traces the train step
    steps = []
    for _ in range(options.train_steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        steps.append(time.perf_counter() - start)
    step = statistics.median(steps)
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
    """A pretrained run's epoch after the first (train and validation), as `labcore.training`
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


def measure_demo(options: Options, runs_dir: Path, jobs: int) -> dict[str, Any]:
    """`train.py --profile demo --jobs JOBS` from nothing (no runs, no pretext weights), in a
    child process: its wall time, its CPU time (user + sys of it and its lanes' processes,
    less sensitive to other processes) and the validation metrics its runs reach."""
    args = [sys.executable, str(ROOT / "train.py"), "--profile", "demo", "--runs-dir", str(runs_dir),
            "--jobs", str(jobs)]
    args += DEMO_QUICK_ARGS if options.quick else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"train.py --profile demo failed: {done.stderr[-2000:]}")
    # Wherever the run store puts them (runs/<run id>/ or runs/<experiment>/<run id>/).
    metrics = {path.parent.name: json.loads(path.read_text()).get("val", {})
               for path in sorted(runs_dir.rglob("metrics.json")) if ".partial" not in path.parts}
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "args": args[2:], "val_metrics": metrics}


# --------------------------------------------------------------------------- 5: memory

def memory_probe(options_json: str) -> None:
    """Run in a child process: optionally hold every model (one forward each, by building
    its Predictor), then print this process's peak resident memory in MB."""
    spec = json.loads(options_json)
    if spec.pop("hold_models"):
        load_predictors(Options(**{**spec, "runs_dir": Path(spec["runs_dir"])}))
    print(json.dumps({"peak_mb": peak_resident_mb()}))


def peak_resident_mb() -> float:
    """This process's peak resident memory. Linux' VmHWM, not ru_maxrss: a child's ru_maxrss
    starts at its parent's peak (kept across fork and exec), which would hide the models."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def peak_memory_mb(options: Options, hold_models: bool) -> float:
    spec = {**vars(options), "runs_dir": str(options.runs_dir), "hold_models": hold_models}
    code = "import sys, labcore.bench as b; b.memory_probe(sys.argv[1])"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True,
                          env=env, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"])


def measure_memory(options: Options) -> dict[str, float]:
    baseline = peak_memory_mb(options, hold_models=False)
    holding = peak_memory_mb(options, hold_models=True)
    return {"baseline_mb": baseline, "all_models_mb": holding, "models_mb": holding - baseline}


# --------------------------------------------------------------------------- report

def machine() -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": gpus, "platform": platform.platform(),
            "versions": library_versions(), "load_at_start": os.getloadavg()[0]}


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def check_targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target, its worst measured value and whether it was met."""
    rows = figures["inference"]
    targets = [
        {"name": "end-to-end / compiled forward, worst model", "value": max(r["e2e_over_compiled"] for r in rows),
         "target": f"<= {MAX_E2E_OVER_COMPILED}x"},
        {"name": "model.predict / end-to-end, worst model", "value": min(r["predict_over_e2e"] for r in rows),
         "target": f">= {MIN_PREDICT_OVER_E2E}x"},
        {"name": "input pipeline / in memory", "value": figures["pipeline"]["pipeline_over_memory"],
         "target": f">= {MIN_PIPELINE_OVER_MEMORY}x"},
    ]
    limits = [lambda v: v <= MAX_E2E_OVER_COMPILED, lambda v: v >= MIN_PREDICT_OVER_E2E,
              lambda v: v >= MIN_PIPELINE_OVER_MEMORY]
    detection = [r for r in figures.get("feature_cache", []) if r["task"] == "detection"]
    if detection:
        targets.append({"name": "detection-pretrained epoch after the first, images / cached features",
                        "value": detection[0]["speedup"], "target": f">= {MIN_CACHED_SPEEDUP}x"})
        limits.append(lambda v: v >= MIN_CACHED_SPEEDUP)
    for target, within in zip(targets, limits):
        target["met"] = bool(within(target["value"]))
    return targets


def table(rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns, a rule under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return ["  " + line for line in lines]


def render(figures: dict[str, Any]) -> str:
    m, o = figures["machine"], figures["options"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    out = [f"labcore benchmark: {m['cores']} cores ({m['cpu']}), GPU: {', '.join(m['gpus']) or 'none'}",
           f"  {versions}",
           f"  load average (1 min), other processes included: {m['load_at_start']:.1f} at start, "
           f"{m['load_at_end']:.1f} at end",
           f"  models: {figures['models']}",
           f"  medians of {o['repeats']} rounds after {o['warmup']} warm-up round(s); upload: "
           f"{UPLOAD_SIZE[0]}x{UPLOAD_SIZE[1]} JPEG, {figures['upload_bytes'] // 1024} KB"]
    if o["quick"]:
        out.append("  QUICK: tiny backbone everywhere, small images; checks the benchmark runs, "
                   "its figures say nothing about the real models")

    out += ["", "1. One upload, per model (ms; e2e = decode + resize + compiled forward + post-process)"]
    rows = [("run", "backbone", "px", "e2e", "model.predict", "compiled fwd", "e2e/compiled", "predict/e2e",
             "predict/compiled")]
    for r in figures["inference"]:
        rows.append((r["run_id"], r["backbone"], str(r["image_size"]), f"{r['e2e_ms']:.1f}",
                     f"{r['predict_ms']:.1f}", f"{r['compiled_ms']:.1f}",
                     f"{r['e2e_over_compiled']:.2f}x {verdict(r['e2e_over_compiled'] <= MAX_E2E_OVER_COMPILED)}",
                     f"{r['predict_over_e2e']:.1f}x {verdict(r['predict_over_e2e'] >= MIN_PREDICT_OVER_E2E)}",
                     f"{r['predict_over_compiled']:.1f}x"))
    out += table(rows)
    out.append(f"  targets: e2e/compiled <= {MAX_E2E_OVER_COMPILED}x, predict/e2e >= {MIN_PREDICT_OVER_E2E}x; "
               "predict/compiled is the ceiling for predict/e2e (what model.predict adds to the forward pass)")

    a = figures["all_models"]
    out += ["", f"2. All {a['models']} models on one upload, as the live page runs them",
            f"  labcore (compiled): {a['e2e_ms']:.1f} ms   model.predict: {a['predict_ms']:.1f} ms   "
            f"speed-up {a['predict_over_e2e']:.1f}x"]

    p = figures["pipeline"]
    out += ["", f"3. Training input pipeline ({p['task']}, {p['images']} train images at {p['image_size']} px, "
                f"batch {BATCH}; steady state: epochs after the cache is filled, {p['epochs_per_pass']} per timed pass)",
            f"  source: {p['source']}",
            f"  labcore tf.data: {p['pipeline_images_per_s']:.0f} images/s   same tensors in memory: "
            f"{p['memory_images_per_s']:.0f} images/s   ratio {p['pipeline_over_memory']:.2f}x "
            f"{verdict(p['pipeline_over_memory'] >= MIN_PIPELINE_OVER_MEMORY)} (target >= {MIN_PIPELINE_OVER_MEMORY}x)"]

    out += ["", f"4. Training throughput (batch {BATCH}, whole network trainable, fp32, no XLA; "
                f"median of {o['train_steps']} steps after 1 warm-up step)"]
    if figures["training"]:
        rows = [("task", "backbone", "px", "step ms", "images/s")]
        rows += [(t["task"], t["backbone"], str(t["image_size"]), f"{t['step_ms']:.0f}", f"{t['images_per_s']:.1f}")
                 for t in figures["training"]]
        out += table(rows)
    else:
        out.append("  skipped (--skip-training)")

    mem = figures["memory"]
    out += ["", "5. Peak memory (peak resident set, VmHWM, of a child process)",
            f"  imports only (tensorflow, keras, labcore): {mem['baseline_mb']:.0f} MB   holding all "
            f"{a['models']} models after one forward each: {mem['all_models_mb']:.0f} MB "
            f"(+{mem['models_mb']:.0f} MB)"]

    out += ["", "6. Pretrained run, one epoch after the first (train + validation): cached features vs images "
                f"(median of interleaved epochs after a warm-up epoch each)"]
    if figures["feature_cache"]:
        rows = [("task", "backbone", "px", "train/val", "images s", "cached s", "speed-up", "images CPU s",
                 "cached CPU s", "CPU speed-up", "features once s")]
        rows += [(r["task"], r["backbone"], str(r["image_size"]), f"{r['train']}/{r['val']}",
                  f"{r['uncached_epoch_s']:.2f}", f"{r['cached_epoch_s']:.2f}", f"{r['speedup']:.1f}x",
                  f"{r['uncached_epoch_cpu_s']:.2f}", f"{r['cached_epoch_cpu_s']:.2f}", f"{r['cpu_speedup']:.1f}x",
                  f"{r['features_s']:.2f}") for r in figures["feature_cache"]]
        out += table(rows)
        out.append(f"  target: detection >= {MIN_CACHED_SPEEDUP:.0f}x; segmentation and multitask train "
                   "their decoders on every epoch either way")
    else:
        out.append("  skipped (--skip-training)")

    out += ["", "7. The demo profile, start to finish (train.py --profile demo, no runs or pretext weights yet), "
                "one run at a time and in two lanes"]
    demos = figures.get("demo")
    if demos:
        for demo in demos:
            out.append(f"  {' '.join(demo['args'])}")
            out.append(f"  wall {demo['wall_s']:.0f} s ({demo['wall_s'] / 60:.1f} min), CPU (user + sys) "
                       f"{demo['cpu_s']:.0f} s")
            for run_id, metrics in demo["val_metrics"].items():
                shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()
                                  if k in ("label_accuracy", "bbox_mae", "mask_pixel_accuracy"))
                out.append(f"    {run_id}: {shown}")
        if len(demos) == 2:
            out.append(f"  two lanes vs one: {demos[0]['wall_s'] / demos[1]['wall_s']:.2f}x on the clock, "
                       f"{demos[1]['cpu_s'] / demos[0]['cpu_s']:.2f}x the CPU time")
    else:
        out.append("  not measured: --demo runs it (minutes)")

    out += ["", "Targets"]
    for t in figures["targets"]:
        out.append(f"  {t['name']}: {t['value']:.2f}x (target {t['target']}) {verdict(t['met'])}")
    return "\n".join(out)


# --------------------------------------------------------------------------- command line

def parse_args(argv: list[str] | None = None) -> tuple[Options, str | None]:
    p = argparse.ArgumentParser(
        prog="python -m labcore.bench",
        description="Measure labcore's inference, input pipeline, training throughput and memory, "
                    "side by side in one run, and print a table. Exits 0 even when a target is missed.")
    p.add_argument("--runs-dir", default=str(default_runs_dir()),
                   help="measure the models of the runs here (an experiment's folder, or a runs root: its newest "
                        "experiment); with none, the six runs are built fresh "
                        "(default: runs, or env PETLAB_RUNS_DIR)")
    p.add_argument("--image-size", type=int, help="input size of freshly built models and of the pipeline and "
                                                  "training measures (default 224; 64 with --quick)")
    p.add_argument("--repeats", type=int, help="timed rounds per figure; the median is reported "
                                               "(default 10; 3 with --quick)")
    p.add_argument("--train-steps", type=int, help="timed train steps per architecture (default 5; 2 with --quick)")
    p.add_argument("--pipeline-images", type=int,
                   help="synthetic trainval images for the pipeline measure (default 640; 128 with --quick)")
    p.add_argument("--data-dir", help="measure the pipeline on an Oxford-IIIT Pet folder (images/, annotations/) "
                                      "instead of synthetic images")
    p.add_argument("--skip-training", action="store_true", help="leave out the training throughput measure")
    p.add_argument("--cache-images", type=int, help="synthetic trainval images for the cached-features measure "
                                                    "(default 256; 64 with --quick)")
    p.add_argument("--demo", action="store_true", help="also time the whole demo profile (train.py --profile demo, "
                                                       "minutes; with --quick a tiny one)")
    p.add_argument("--quick", action="store_true",
                   help="a check that everything runs, in about a minute: tiny backbone, 64 px, few repeats; "
                        "its figures say nothing about the real models")
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON to PATH ('-': stdout, "
                                                  "after the table)")
    args = p.parse_args(argv)
    quick = args.quick
    options = Options(
        runs_dir=Path(args.runs_dir),
        image_size=args.image_size or (64 if quick else 224),
        repeats=args.repeats or (3 if quick else 10),
        warmup=1 if quick else 2,
        train_steps=args.train_steps or (2 if quick else 5),
        pipeline_images=args.pipeline_images or (128 if quick else 640),
        data_dir=args.data_dir,
        skip_training=args.skip_training,
        quick=quick,
        cache_images=args.cache_images or (64 if quick else 256),
        demo=args.demo,
    )
    if options.image_size < 32 or options.image_size % 32:
        p.error("--image-size must be a multiple of 32, at least 32 (the backbones downsample 32x)")
    return options, args.json


def run_benchmark(options: Options) -> dict[str, Any]:
    """Every measure, as one dict of figures (what `--json` writes)."""
    upload = make_upload()
    log("loading or building the models")
    predictors, origin = load_predictors(options)
    figures: dict[str, Any] = {"machine": machine(), "options": {**vars(options), "runs_dir": str(options.runs_dir)},
                               "models": origin, "upload_bytes": len(upload)}
    figures["inference"] = []
    for predictor in predictors:
        log(f"one upload: {predictor.run_id}")
        figures["inference"].append(measure_one_upload(predictor, upload, options))
    log("all models on one upload")
    figures["all_models"] = measure_all_models(predictors, upload, options)
    del predictors
    log("input pipeline")
    figures["pipeline"] = measure_input_pipeline(options)
    figures["training"] = []
    if not options.skip_training:
        for task in TASKS:
            log(f"training throughput: {task}")
            figures["training"].append(measure_training(task, options))
            keras.backend.clear_session()
    figures["feature_cache"] = []
    if not options.skip_training:
        with tempfile.TemporaryDirectory() as work:
            for task in TASKS:
                log(f"pretrained epoch, cached vs uncached: {task}")
                figures["feature_cache"].append(measure_feature_cache(task, options, Path(work)))
                keras.backend.clear_session()
    if options.demo:
        figures["demo"] = []
        for jobs in (1, 2):
            log(f"the demo profile, start to finish, --jobs {jobs} (a child process)")
            with tempfile.TemporaryDirectory() as runs:
                figures["demo"].append(measure_demo(options, Path(runs) / "runs", jobs))
    log("peak memory (two child processes)")
    figures["memory"] = measure_memory(options)
    figures["targets"] = check_targets(figures)
    figures["machine"]["load_at_end"] = os.getloadavg()[0]
    return figures


def main(argv: list[str] | None = None) -> int:
    options, json_path = parse_args(argv)
    tf.get_logger().setLevel("ERROR")  # each Predictor traces its own function: no retracing warnings
    figures = run_benchmark(options)
    print(render(figures))
    if json_path:
        text = json.dumps(figures, indent=2, default=str)
        if json_path == "-":
            print(text)
        else:
            Path(json_path).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
