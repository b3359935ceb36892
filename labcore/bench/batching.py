"""Section 9 of `python -m labcore.bench`: a model's compiled forward pass on a batch of one
against batches of 2 to 32, per image, for each architecture at 64, 128 and 224 px: what a
class uploading at once gains when the requests that arrive together run as one batch
(`labcore.show.batcher`), and the memory a batch costs. The app's batch limits and waits
(`labcore.show.batcher.LIMITS`) are read off this table."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from labcore.bench.options import Options, log
from labcore.model.architectures import backbone_name, build_backbone, build_model
from labcore.settings import RUNS, TASKS
from labcore.show.batcher import limits_for
from labcore.show.inference import Predictor

BATCHES = (1, 2, 4, 8, 16, 32)
QUICK_BATCHES = (1, 2, 4)
# The batch whose CPU per image comes within this share of the best batch's is enough: larger
# ones hold every member's answer longer and take more memory for little more.
GOOD_ENOUGH = 0.10


def resident_mb() -> tuple[float | None, float | None]:
    """(VmRSS, VmHWM) of this process in MB; None where /proc is absent."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None, None
    found = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status.read_text().splitlines()
             if line.startswith(("VmRSS:", "VmHWM:"))}
    return found.get("VmRSS"), found.get("VmHWM")


def reset_peak() -> bool:
    """Set this process's peak resident memory (VmHWM) to its current size (Linux: writing 5 to
    /proc/self/clear_refs); False where that cannot be done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure_model(predictor: Predictor, batches: tuple[int, ...], repeats: int) -> dict[int, dict[str, float]]:
    """Per batch size: CPU and wall milliseconds per image of `predict_arrays` (the forward pass
    the batch thread calls), medians of `repeats` interleaved rounds after one warm-up round, and
    the peak memory one such call adds to what the process held before it."""
    size = predictor.image_size
    images = np.random.default_rng(0).integers(0, 256, (max(batches), size, size, 3)).astype(np.float32)
    peaks = {}
    for b in batches:  # warm-up, smallest first, with the peak each call reaches
        rss, _ = resident_mb()
        tracked = reset_peak()
        predictor.predict_arrays(images[:b])
        peak = resident_mb()[1]
        peaks[b] = (peak - rss) if tracked and rss is not None and peak is not None else None
    cpu: dict[int, list[float]] = {b: [] for b in batches}
    wall: dict[int, list[float]] = {b: [] for b in batches}
    for _ in range(repeats):
        for b in batches:
            start_cpu, start = time.process_time(), time.perf_counter()
            predictor.predict_arrays(images[:b])
            cpu[b].append((time.process_time() - start_cpu) / b)
            wall[b].append((time.perf_counter() - start) / b)
    return {b: {"cpu_ms_per_image": 1000 * statistics.median(cpu[b]),
                "wall_ms_per_image": 1000 * statistics.median(wall[b]), "peak_mb": peaks[b]} for b in batches}


def enough_batch(rows: list[dict[str, Any]], image_size: int) -> int:
    """The smallest batch whose CPU per image, summed over the architectures at `image_size`,
    is within GOOD_ENOUGH of the best batch's."""
    at_size = [r for r in rows if r["image_size"] == image_size]
    batches = sorted(at_size[0]["batches"])
    total = {b: sum(r["batches"][b]["cpu_ms_per_image"] for r in at_size) for b in batches}
    best = min(total.values())
    return next(b for b in batches if total[b] <= best * (1 + GOOD_ENOUGH))


def measure_batching(options: Options) -> dict[str, Any]:
    """Every architecture at every size of `options.batching_sizes`, freshly built (random
    weights: the time does not depend on them)."""
    batches = QUICK_BATCHES if options.quick else BATCHES
    repeats = max(2, options.repeats // 3)
    rows = []
    for size in options.batching_sizes:
        settings = options.settings.with_overrides(image_size=size)
        for task in TASKS:
            name = backbone_name(task, settings)
            log(f"batched forwards: {task} ({name}) at {size} px")
            model = build_model(task, settings, build_backbone(name, size, weights=None))
            predictor = Predictor(model, f"{task}-scratch", name, size)
            rows.append({"task": task, "backbone": name, "image_size": size,
                         "batches": measure_model(predictor, batches, repeats)})
            del predictor, model
            keras.backend.clear_session()
    chosen = {size: {"enough_batch": enough_batch(rows, size), "app": limits_for(size)}
              for size in options.batching_sizes}
    return {"rows": rows, "repeats": repeats, "chosen": chosen,
            "models_per_experiment": {task: sum(1 for r in RUNS.values() if r.task == task) for task in TASKS}}
