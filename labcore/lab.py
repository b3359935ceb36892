"""Train a set of runs one after another, skip finished ones, and summarise them."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from labcore.data import split_counts
from labcore.estimate import estimate_plan
from labcore.runs import list_runs
from labcore.settings import RUNS, Settings
from labcore.sources import load_source
from labcore.training import train_run

log = logging.getLogger(__name__)


def train_all(run_ids: list[str], settings: Settings, runs_dir: Path, force: bool = False,
              progress: Callable[[str], None] = print) -> list[str]:
    """Train the runs in order; returns the ids actually trained. A run already in `runs_dir`
    is skipped unless `force`."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo = [r for r in run_ids if force or not (runs_dir / r / "model.keras").is_file()]
    for skipped in sorted(set(run_ids) - set(todo), key=run_ids.index):
        progress(f"[{skipped}] already finished in {runs_dir / skipped}: skipped (--force retrains it)")
    if not todo:
        return []
    source = load_source(settings)
    progress(f"data: {source.description}")
    plan = estimate_plan(todo, settings, split_counts(source, settings), runs_dir)
    progress(plan.message())
    for n, run_id in enumerate(todo, 1):
        progress(f"== run {n}/{len(todo)}: {run_id} ==")
        start = time.perf_counter()
        path = train_run(RUNS[run_id], settings, source, runs_dir, progress, plan=plan)
        progress(f"[{run_id}] done in {(time.perf_counter() - start) / 60:.1f} min -> {path}")
    return todo


def summary_table(runs_dir: Path, run_ids: list[str]) -> str:
    """A plain-text table of the runs: epochs, best epoch, val loss, key val metrics, minutes."""
    rows = [("run", "weights", "epochs", "best", "val loss", "val metrics", "min")]
    for run in list_runs(runs_dir):
        if run.run_id not in run_ids:
            continue
        val_loss = run.history.get("val_loss", [])
        best = run.config.get("best_epoch")
        metrics = run.metrics.get("val", {})
        shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()
                          if k in ("label_accuracy", "bbox_mae", "bbox_iou", "mask_pixel_accuracy", "mask_miou"))
        rows.append((run.run_id, run.weights, str(run.epochs_run), str(best or "-"),
                     f"{min(val_loss):.4f}" if val_loss else "-", shown or "-",
                     f"{run.config.get('train_seconds', 0) / 60:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
