"""The benchmark runs and reports every figure. (Its figures are not checked: that is what
docs/benchmarks.md is for; a test on a shared 2-core machine cannot judge speed.)"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SECTIONS = ("1. One upload, per model", "2. All 6 models on one upload", "3. Training input pipeline",
            "4. Training throughput", "5. Peak memory", "6. Pretrained run, one epoch after the first",
            "7. The demo profile", "8. The estimate train.py prints first", "Targets")
INFERENCE_FIGURES = ("e2e_ms", "predict_ms", "compiled_ms", "e2e_over_compiled", "predict_over_e2e",
                     "predict_over_compiled")


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_quick_benchmark_prints_every_figure(tmp_path):
    figures_path = tmp_path / "bench.json"
    empty_runs = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "labcore.bench", "--quick", "--runs-dir", str(empty_runs),
                           "--json", str(figures_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    for section in SECTIONS:
        assert section in table, section
    figures = json.loads(figures_path.read_text())

    assert "built fresh" in figures["models"]
    assert len(figures["inference"]) == 6
    for row in figures["inference"]:
        assert row["run_id"] in table
        for key in INFERENCE_FIGURES:
            assert positive(row[key]), (row["run_id"], key, row[key])
    for key in ("e2e_ms", "predict_ms", "predict_over_e2e"):
        assert positive(figures["all_models"][key]), key
    for key in ("pipeline_images_per_s", "memory_images_per_s", "pipeline_over_memory"):
        assert positive(figures["pipeline"][key]), key
    assert [t["task"] for t in figures["training"]] == ["detection", "segmentation", "multitask"]
    for row in figures["training"]:
        assert positive(row["images_per_s"]) and positive(row["step_ms"]), row
    assert [r["task"] for r in figures["feature_cache"]] == ["detection", "segmentation", "multitask"]
    for row in figures["feature_cache"]:
        for key in ("uncached_epoch_s", "cached_epoch_s", "features_s", "speedup", "uncached_epoch_cpu_s",
                    "cached_epoch_cpu_s", "cpu_speedup"):
            assert positive(row[key]), (row["task"], key)
    for key in ("baseline_mb", "all_models_mb"):
        assert positive(figures["memory"][key]), key
    assert len(figures["targets"]) == 4
    for target in figures["targets"]:
        assert positive(target["value"]) and isinstance(target["met"], bool), target
        assert ("OK" if target["met"] else "MISSED") in table


def test_the_bench_sets_a_whole_train_py_run_against_the_estimate_it_printed(tmp_path):
    """--train-py-only --estimate ARGS: only section 8, a tiny demo in two lanes, its wall time
    over the estimate train.py printed, and the metrics its runs reached."""
    figures_path = tmp_path / "bench.json"
    tiny_demo = "--profile demo --tiny-backbones --limit 64 --epochs 2 --image-size 32 --jobs 2"
    done = subprocess.run([sys.executable, "-m", "labcore.bench", "--quick", "--train-py-only", "--estimate", tiny_demo,
                           "--json", str(figures_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "8. The estimate train.py prints first" in done.stdout and "1. One upload" not in done.stdout
    (run,) = json.loads(figures_path.read_text())["estimates"]
    assert positive(run["wall_s"]) and positive(run["cpu_s"]) and positive(run["estimate_s"])
    assert run["wall_over_estimate"] == pytest.approx(run["wall_s"] / run["estimate_s"])
    assert f"wall / estimate {run['wall_over_estimate']:.2f}" in done.stdout
    assert "--jobs 2" in " ".join(run["args"]) and len(run["val_metrics"]) == 6
    assert all("label_accuracy" in m or "mask_pixel_accuracy" in m for m in run["val_metrics"].values())


def test_benchmark_measures_the_runs_on_disk(tmp_path):
    from labcore.bench.cli import parse_args
    from labcore.bench.inference import load_predictors
    from labcore.model.architectures import build_backbone, build_model
    from labcore.settings import Settings

    settings = Settings(image_size=32, dense_units=(8,), branch_units=4)
    run_dir = tmp_path / "runs" / "detection-scratch"
    run_dir.mkdir(parents=True)
    build_model("detection", settings, build_backbone("tiny", 32)).save(run_dir / "model.keras")
    # As train.py --tiny-backbones writes it: the backbone in the settings' extras too (a config
    # whose backbone is not its settings' is refused: tests/test_runs.py).
    (run_dir / "config.json").write_text(json.dumps(
        {"backbone": "tiny", "settings": {"image_size": 32, "extra": {"backbone": "tiny"}}}))

    options, _ = parse_args(["--quick", "--runs-dir", str(tmp_path / "runs")])
    predictors, origin = load_predictors(options)
    assert [p.run_id for p in predictors] == ["detection-scratch"]
    assert predictors[0].image_size == 32 and "1 run(s) from" in origin
    assert Path(origin.split(" from ")[1]) == tmp_path / "runs"


def test_the_bench_sets_batched_forwards_against_a_batch_of_one(tmp_path):
    """--batching-only: only section 9, every architecture at each size and batch, CPU and wall
    time per image, the batch that is enough, and the limits the app's queues use."""
    from labcore.bench.batching import QUICK_BATCHES
    from labcore.show.batcher import limits_for

    figures_path = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "labcore.bench", "--quick", "--batching-only", "--batching-sizes", "32",
                           "64", "--json", str(figures_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "9. Batched forwards" in done.stdout and "1. One upload" not in done.stdout
    assert "8. The estimate" not in done.stdout
    batching = json.loads(figures_path.read_text())["batching"]
    assert [(r["task"], r["image_size"]) for r in batching["rows"]] == [
        (task, size) for size in (32, 64) for task in ("detection", "segmentation", "multitask")]
    for row in batching["rows"]:
        assert sorted(int(b) for b in row["batches"]) == list(QUICK_BATCHES)
        for figures in row["batches"].values():
            assert positive(figures["cpu_ms_per_image"]) and positive(figures["wall_ms_per_image"]), row
        one, most = row["batches"]["1"]["cpu_ms_per_image"], row["batches"][str(QUICK_BATCHES[-1])]["cpu_ms_per_image"]
        assert f"{one / most:.2f}x" in done.stdout
    for size in ("32", "64"):
        chosen = batching["chosen"][size]
        assert chosen["enough_batch"] in QUICK_BATCHES and tuple(chosen["app"]) == limits_for(int(size))
        assert f"{size} px: enough at batch {chosen['enough_batch']}; the app batches up to {chosen['app'][0]}" in done.stdout


def test_enough_batch_is_the_smallest_within_a_tenth_of_the_best():
    from labcore.bench.batching import enough_batch

    def row(size, cpu):
        return {"image_size": size, "batches": {b: {"cpu_ms_per_image": ms} for b, ms in cpu.items()}}

    rows = [row(64, {1: 10.0, 2: 6.0, 4: 5.0, 8: 4.8}), row(64, {1: 10.0, 2: 6.0, 4: 5.0, 8: 4.8}),
            row(128, {1: 10.0, 2: 9.0, 4: 11.0, 8: 12.0})]
    assert enough_batch(rows, 64) == 4  # 10.0 summed, within 10 % of the best 9.6; 2 (12.0) is not
    assert enough_batch(rows, 128) == 2  # the best is not always the largest
