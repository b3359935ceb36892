"""The bench's inference and memory measures (sections 1, 2 and 5 of `python -m labcore.bench`):
one upload per model through labcore vs `model.predict` vs the compiled forward alone, every
model on one upload as the live page runs them, and the peak memory of holding all six."""
from __future__ import annotations

import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from labcore.bench.options import ROOT, Options, log
from labcore.data.pipeline import preprocess_images
from labcore.store.experiments import list_experiments
from labcore.data.images import load_image, resize_for_model
from labcore.show.inference import Predictor
from labcore.model.architectures import backbone_name, build_backbone, build_model
from labcore.store.runs import ModelLoadError, list_runs
from labcore.settings import RUNS
from labcore.data.sources import draw_pet

UPLOAD_SIZE = (640, 480)  # a typical phone photo after the browser's downscale


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
    code = "import sys, labcore.bench.inference as b; b.memory_probe(sys.argv[1])"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True,
                          env=env, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"])


def measure_memory(options: Options) -> dict[str, float]:
    baseline = peak_memory_mb(options, hold_models=False)
    holding = peak_memory_mb(options, hold_models=True)
    return {"baseline_mb": baseline, "all_models_mb": holding, "models_mb": holding - baseline}
