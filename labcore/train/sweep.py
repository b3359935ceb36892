"""Sweeps over training-set sizes: one experiment per `limit`, named `<name>-n<N>`, that differ in
nothing else, trained one after another (each resumable like any experiment).

The pretrained runs of a sweep on synthetic-pretext weights all start from the same pretext
backbone: it is made once and hard-linked into every experiment of the sweep (each folder stays
self-contained), so the sizes really differ only in `limit`.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable

from labcore.data.pipeline import split_counts
from labcore.store.experiments import sweep_name
from labcore.train.estimate import PlanEstimate, estimate_plan
from labcore.train.lab import SettingsDiffer, check_settings, differ_message, summary, train_all
from labcore.train.lanes import plan_lanes
from labcore.model.architectures import backbone_name
from labcore.store.runs import list_runs
from labcore.settings import RUNS, Settings
from labcore.data.sources import Source, load_source
from labcore.timing import duration

class SweepRefused(ValueError):
    """A size the data cannot give; the message names the data's size."""


def data_size(settings: Settings, source: Source | None = None) -> int | None:
    """The trainval images `limit` draws from, or None where the source has no end (synthetic
    pets are drawn on the fly: there `limit` is how many are drawn)."""
    if settings.dataset == "synthetic":
        return None
    source = source or load_source(settings)
    return len(source.labels["trainval"])


def check_sizes(sizes: list[int], settings: Settings, source: Source | None = None) -> list[int]:
    """The sizes, ascending and once each; SweepRefused where one is larger than the data."""
    sizes = sorted(set(sizes))
    available = data_size(settings, source)
    if available is not None and sizes[-1] > available:
        too_big = ", ".join(str(n) for n in sizes if n > available)
        raise SweepRefused(f"--sweep-limit {too_big}: larger than the data, which has {available:,} "
                           f"trainval images ({settings.dataset}); the largest size is {available}")
    return sizes


def _todo(run_ids: list[str], experiment: Path, force: bool) -> list[str]:
    """The runs train_all will train there (a finished run with these settings is skipped)."""
    finished = {r.run_id for r in list_runs(experiment) if r.has_model}
    return [r for r in run_ids if force or r not in finished]


def share_pretext(experiments: list[Path], tasks: list[str], settings: Settings,
                  progress: Callable[[str], None]) -> float:
    """Give every experiment the same pretext backbone of each task: found in any of them, else
    made once, then hard-linked (copied where links cannot be made) into the others. Returns
    the seconds it took."""
    from labcore.model.pretext import pretext_path, pretext_weights

    start = time.perf_counter()
    for backbone in dict.fromkeys(backbone_name(task, settings) for task in tasks):
        paths = [pretext_path(backbone, settings, folder / ".pretext") for folder in experiments]
        have = next((p for p in paths if p.exists()), None)
        if have is None:
            import keras

            progress(f"sweep: one pretext backbone for every size ({backbone})")
            keras.utils.set_random_seed(settings.seed)  # as a run would before making it
            have = pretext_weights(backbone, settings, paths[0].parent, progress)
        for path in paths:
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(have, path)
            except OSError:
                shutil.copy2(have, path)
    return time.perf_counter() - start


def train_sweep(sizes: list[int], run_ids: list[str], settings: Settings, runs_root: Path, name: str,
                force: bool = False, jobs: int = 1, progress: Callable[[str], None] = print,
                lane_threads: int = 1) -> dict[int, list[str]]:
    """Train `run_ids` once per size into `<runs_root>/<name>-n<size>/` (settings with
    limit=size); returns size -> the run ids trained. Finished experiments are skipped, an
    unfinished one resumes. Every size is checked (data size, settings of what is stored)
    before anything trains. The shared pretext backbones are made first; the estimate printed
    next covers every size still to train and says what the pretext took."""
    runs_root = Path(runs_root)
    source = None if settings.dataset == "synthetic" else load_source(settings)  # synthetic: made per size
    sizes = check_sizes(sizes, settings, source)
    plan_of: dict[int, tuple[Settings, Path, list[str]]] = {}
    for size in sizes:
        sized, experiment = settings.with_overrides(limit=size), runs_root / sweep_name(name, size)
        odd = check_settings(experiment, sized)
        if odd and not force:
            raise SettingsDiffer(differ_message(sweep_name(name, size), experiment, odd))
        plan_of[size] = (sized, experiment, _todo(run_ids, experiment, force))
    pending = [size for size in sizes if plan_of[size][2]]
    progress(f"sweep '{name}': {len(sizes)} sizes ({', '.join(map(str, sizes))} images, the --limit of each), "
             f"{len(sizes) - len(pending)} already finished")
    pretrained = sorted({RUNS[r].task for size in pending for r in plan_of[size][2]
                         if RUNS[r].init == "pretrained"})
    pretext = 0.0  # made first, for every size: the estimate below then counts it as done
    if pretrained and settings.weights == "synthetic-pretext":
        pretext = share_pretext([plan_of[size][1] for size in sizes], pretrained, settings, progress)
    plans: dict[int, PlanEstimate] = {}
    for size in pending:
        sized, experiment, todo = plan_of[size]
        plans[size] = estimate_plan(todo, sized, split_counts(source or load_source(sized), sized), experiment)
    if plans:
        any_plan = next(iter(plans.values()))
        wall = {s: p.wall_seconds(plan_lanes(p, jobs)) for s, p in plans.items()}
        parts = ", ".join(f"{sweep_name(name, s)} {duration(wall[s])}" for s in plans)
        made = f"; the shared pretext backbones took {duration(pretext)}" if pretext >= 1 else ""
        progress(f"sweep estimate: about {duration(sum(wall.values()))} on the clock on {any_plan.device} "
                 f"for {sum(len(p.runs) for p in plans.values())} run(s) in {len(plans)} experiment(s) at most "
                 f"({parts}; measured in {sum(p.measured_seconds for p in plans.values()):.0f}s{made})")
    trained = {}
    for n, size in enumerate(sizes, 1):
        sized, experiment, todo = plan_of[size]
        progress(f"==== sweep {n}/{len(sizes)}: {sweep_name(name, size)} (--limit {size}) ====")
        plan = plans.get(size)
        trained[size] = train_all(run_ids, sized, runs_root, sweep_name(name, size), force=force,
                                  progress=progress, jobs=jobs, plan=plan,
                                  lane_threads=lane_threads)
    return trained


def sweep_summary(runs_root: Path, name: str, sizes: list[int], run_ids: list[str]) -> str:
    """Each size's summary (provenance and runs' table), smallest first."""
    return "\n\n".join(summary(Path(runs_root) / sweep_name(name, size), run_ids) for size in sorted(set(sizes)))
