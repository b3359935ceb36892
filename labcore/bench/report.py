"""The bench's report: the machine, the targets and the table `python -m labcore.bench` prints."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import tensorflow as tf

from labcore.bench.batching import GOOD_ENOUGH
from labcore.bench.inference import UPLOAD_SIZE
from labcore.bench.options import BATCH
from labcore.train.training import library_versions

# The targets, as ratios measured in one run.
MAX_E2E_OVER_COMPILED = 1.5
MIN_PREDICT_OVER_E2E = 5.0
MIN_PIPELINE_OVER_MEMORY = 0.9
MIN_CACHED_SPEEDUP = 10.0  # detection-pretrained: an epoch on images / an epoch on cached features


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
           f"{m['load_at_end']:.1f} at end"]
    if o["quick"]:
        out.append("  QUICK: tiny backbone everywhere, small images; checks the benchmark runs, "
                   "its figures say nothing about the real models")
    if "inference" in figures:
        out += render_parts(figures)
    if not o.get("batching_only"):
        out += render_train_py(figures)
    out += render_batching(figures)
    if "targets" in figures:
        out += ["", "Targets"]
        for t in figures["targets"]:
            out.append(f"  {t['name']}: {t['value']:.2f}x (target {t['target']}) {verdict(t['met'])}")
    return "\n".join(out)


def render_parts(figures: dict[str, Any]) -> list[str]:
    """Sections 1 to 6."""
    o = figures["options"]
    out = [f"  models: {figures['models']}",
           f"  medians of {o['repeats']} rounds after {o['warmup']} warm-up round(s); upload: "
           f"{UPLOAD_SIZE[0]}x{UPLOAD_SIZE[1]} JPEG, {figures['upload_bytes'] // 1024} KB"]
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
                "(median of interleaved epochs after a warm-up epoch each)"]
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

    return out


def train_py_lines(run: dict[str, Any]) -> list[str]:
    """One train.py run: its command, wall and CPU time, the estimate it printed, its metrics."""
    estimate = (f"; printed estimate {run['estimate_s']:.0f} s, wall / estimate {run['wall_over_estimate']:.2f}"
                if run.get("estimate_s") else "; no estimate printed")
    out = [f"  {' '.join(run['args'])}",
           f"  wall {run['wall_s']:.0f} s ({run['wall_s'] / 60:.1f} min), CPU (user + sys) {run['cpu_s']:.0f} s"
           + estimate]
    for run_id, metrics in run["val_metrics"].items():
        shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()
                          if k in ("label_accuracy", "bbox_mae", "mask_pixel_accuracy"))
        out.append(f"    {run_id}: {shown}")
    return out


def render_train_py(figures: dict[str, Any]) -> list[str]:
    """Sections 7 and 8: whole train.py runs."""
    out = ["", "7. The demo profile, start to finish (train.py --profile demo, no runs or pretext weights yet), "
               "one run at a time and in two lanes"]
    demos = figures.get("demo")
    if demos:
        for demo in demos:
            out += train_py_lines(demo)
        if len(demos) == 2:
            out.append(f"  two lanes vs one: {demos[0]['wall_s'] / demos[1]['wall_s']:.2f}x on the clock, "
                       f"{demos[1]['cpu_s'] / demos[0]['cpu_s']:.2f}x the CPU time")
    else:
        out.append("  not measured: --demo runs it (minutes)")
    out += ["", "8. The estimate train.py prints first, against the wall time that follows (target 0.8 to 1.25)"]
    for run in figures.get("estimates", []):
        out += train_py_lines(run)
    if not figures.get("estimates"):
        out.append("  not measured: --estimate ARGS runs train.py ARGS")
    return out


def render_batching(figures: dict[str, Any]) -> list[str]:
    """Section 9's lines: per architecture and size, CPU ms per image at each batch size and its
    gain over a batch of one, then the batch that is enough and what the app uses."""
    b9 = figures.get("batching")
    out = ["", "9. Batched forwards: CPU ms per image (wall ms per image) at each batch size, the gain over a "
               "batch of one, and the peak memory of the largest batch"]
    if not b9:
        return out + ["  not measured: --batching measures it (minutes)"]
    batches = sorted(b9["rows"][0]["batches"])
    rows = [("arch", "backbone", "px", *(f"batch {b}" for b in batches), f"gain at {batches[-1]}", "peak MB")]
    for r in b9["rows"]:
        one = r["batches"][1]["cpu_ms_per_image"]
        cells = [f"{r['batches'][b]['cpu_ms_per_image']:.1f} ({r['batches'][b]['wall_ms_per_image']:.1f})"
                 for b in batches]
        peak = r["batches"][batches[-1]]["peak_mb"]
        rows.append((r["task"], r["backbone"], str(r["image_size"]), *cells,
                     f"{one / r['batches'][batches[-1]]['cpu_ms_per_image']:.2f}x",
                     "-" if peak is None else f"{peak:.0f}"))
    out += table(rows)
    out.append(f"  medians of {b9['repeats']} interleaved rounds; 'enough' = the smallest batch within "
               f"{GOOD_ENOUGH:.0%} of the best CPU per image, summed over the architectures")
    for size, choice in b9["chosen"].items():
        limit, wait = choice["app"]
        out.append(f"  {size} px: enough at batch {choice['enough_batch']}; the app batches up to {limit}, "
                   f"waiting {wait * 1000:.0f} ms for companions (labcore.show.batcher.LIMITS)")
    return out
