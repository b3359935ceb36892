"""Train a set of runs into one experiment, one after another or a few at a time, and summarise them.

An experiment is one set of settings: a finished run is skipped only when it was trained with
the settings asked for. Any difference stops the whole plan before anything is trained, and
says which settings differ and the ways out; nothing is ever silently reused."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Callable

from labcore.data.pipeline import split_counts
from labcore.train.estimate import PlanEstimate, estimate_plan
from labcore.train.eta import PlanClock
from labcore.store.experiments import differences, load_experiment, not_comparable, record_settings
from labcore.store.inflight import write_plan
from labcore.train.lanes import lanes_message, plan_lanes, train_in_lanes
from labcore.store.runs import list_runs
from labcore.settings import RUN_IDS, RUNS, Settings
from labcore.store.showcase import ensure_showcase
from labcore.data.sources import load_source
from labcore.train.training import train_run

log = logging.getLogger(__name__)


class SettingsDiffer(RuntimeError):
    """The experiment holds runs trained with other settings; the message says which and what to do."""


def check_settings(experiment: Path, settings: Settings) -> dict[str, list[str]]:
    """What in `experiment` was trained (or started) with other settings than `settings`:
    {run id or 'experiment.json': differences}. Empty when everything matches."""
    found = load_experiment(experiment)
    odd = {}
    for run in found.runs:
        stored = run.config.get("settings")
        if isinstance(stored, dict) and differences(stored, settings):
            odd[run.run_id] = differences(stored, settings)
    recorded = (experiment / "experiment.json").is_file() and differences(found.settings, settings)
    if recorded:
        odd["experiment.json"] = recorded
        for run_id in found.partial:  # started under the recorded settings
            odd.setdefault(f"{run_id} (unfinished)", recorded)
    return odd


def differ_message(name: str, experiment: Path, odd: dict[str, list[str]]) -> str:
    settings = sorted({d for diff in odd.values() for d in diff})
    holders = ", ".join(k for k in odd if k != "experiment.json") or "its recorded settings"
    return (f"experiment '{name}' ({experiment}) was trained with other settings: {'; '.join(settings)} "
            f"({holders}). Nothing was trained. Ways out: --name NEW trains these settings as a new "
            f"experiment beside it; --force retrains the runs asked for here with the new settings "
            f"(its other runs keep their old ones, and the app marks them).")


def train_all(run_ids: list[str], settings: Settings, runs_root: Path, name: str, force: bool = False,
              progress: Callable[[str], None] = print, jobs: int = 1,
              plan: PlanEstimate | None = None, lane_threads: int = 1) -> list[str]:
    """Train the runs into `<runs_root>/<name>/`; returns the ids actually trained. With
    `jobs` > 1, that many runs train at a time, each lane in its own process (labcore.train.lanes).
    `plan`: the estimate of exactly the runs to train, made beforehand (a sweep estimates all
    its sizes first); else it is made here. `lane_threads`: TensorFlow threads in each lane
    (`labcore.train.runtime`).

    A finished run with the same settings is skipped unless `force`. Runs with other settings
    raise SettingsDiffer before anything is trained, unless `force` (then the runs asked for
    are retrained, unfinished work under the old settings is dropped, and experiment.json
    records the new settings)."""
    runs_root = Path(runs_root)
    experiment = runs_root / name
    if any((runs_root / r).is_dir() for r in RUN_IDS):
        progress(f"note: {runs_root} also holds runs from before experiments ({runs_root}/<run id>/); "
                 f"the app still opens them, as experiment '{runs_root.name}'")
    odd = check_settings(experiment, settings)
    if odd and not force:
        raise SettingsDiffer(differ_message(name, experiment, odd))
    finished = {r.run_id for r in list_runs(experiment) if r.has_model}
    todo = [r for r in run_ids if force or r not in finished]
    for skipped in (r for r in run_ids if r not in todo):
        progress(f"[{skipped}] already finished with these settings in {experiment / skipped}: "
                 "skipped (--force retrains it)")
    if not todo:
        return []
    if odd:  # --force with new settings: no resuming work begun under the old ones
        for run_id in todo:
            shutil.rmtree(experiment / ".partial" / run_id, ignore_errors=True)
    record_settings(experiment, name, settings)
    source = load_source(settings)
    progress(f"experiment '{name}' in {experiment}")
    progress(f"data: {source.description}")
    ensure_showcase(experiment, source, settings, progress)  # the test images the app shows without the data
    if plan is None or [r.run_id for r in plan.runs] != todo:
        plan = estimate_plan(todo, settings, split_counts(source, settings), experiment)
    lanes = plan_lanes(plan, jobs)
    progress(plan.message(lanes))
    write_plan(experiment, plan, lanes)
    if len(lanes) > 1:
        progress(lanes_message(plan, len(lanes)))
        train_in_lanes(plan, len(lanes), settings, experiment, PlanClock(plan, lanes, progress), progress,
                       lane_threads)
        return todo
    clock = PlanClock(plan, lanes, progress)
    for n, run_id in enumerate(todo, 1):
        progress(f"== run {n}/{len(todo)}: {run_id} ==")
        clock.start(run_id)
        start = time.perf_counter()
        path = train_run(RUNS[run_id], settings, source, experiment, progress, watch=clock.tick)
        clock.finish(run_id, time.perf_counter() - start)
        progress(f"[{run_id}] done in {(time.perf_counter() - start) / 60:.1f} min -> {path}")
    return todo


def summary(experiment: Path, run_ids: list[str]) -> str:
    """The experiment's provenance, a not-comparable note where due, and the runs' table."""
    found = load_experiment(experiment)
    lines = [f"experiment '{found.name}' ({experiment})"]
    if found.settings:
        provenance = found.provenance()
        lines.append(f"data: {provenance.sentence()}")
        reasons = not_comparable(provenance)
        if reasons:
            lines.append("not comparable with the report's numbers: " + "; ".join(reasons))
    return "\n".join(lines) + "\n\n" + summary_table(experiment, run_ids)


def summary_table(experiment: Path, run_ids: list[str]) -> str:
    """A plain-text table of the runs: epochs, best epoch, val loss, key val metrics, minutes."""
    rows = [("run", "weights", "epochs", "best", "val loss", "val metrics", "min")]
    for run in list_runs(experiment):
        if run.run_id not in run_ids:
            continue
        val_loss = run.history.get("val_loss", [])
        best = run.config.get("best_epoch")
        metrics = run.metrics.get("val", {})
        shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()
                          if k in ("label_accuracy", "bbox_mae", "bbox_iou", "mask_pixel_accuracy", "mask_miou"))
        # The val loss of the epoch the stored model comes from (none where every epoch was NaN).
        loss = val_loss[best - 1] if isinstance(best, int) and 0 < best <= len(val_loss) else None
        rows.append((run.run_id, run.weights, str(run.epochs_run), str(best or "-"),
                     f"{loss:.4f}" if loss is not None else "-", shown or "-",
                     f"{run.config.get('train_seconds', 0) / 60:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
