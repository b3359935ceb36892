"""How fast the lab is, measured side by side in one run: `python -m labcore.bench`.

1. One upload per model: end to end through labcore (decode, resize, compiled forward,
   post-process) vs `model.predict` on the preprocessed image vs the compiled forward alone.
2. Every model on one upload, as the live page runs them, compiled vs `model.predict`.
3. The training input pipeline (`labcore.data.pipeline.make_splits`) vs the same tensors from memory.
4. Training throughput of each architecture at batch 32.
5. Peak memory of a process holding all six models, vs one that holds none.
6. A pretrained run's epoch after the first, cached features vs images, for each backbone.
7. With --demo: the whole `train.py --profile demo`, wall and CPU time, against its estimate.
8. With --estimate ARGS: any `train.py ARGS`, its wall time against the estimate it printed.
9. With --batching: each architecture's forward pass on a batch of one against batches of 2 to
   32, per image, at 64, 128 and 224 px (what the app's shared queues are set from).

Times are medians after warm-up. The runs being compared are interleaved (one of each per
round), so a machine that gets busier half-way slows every contender alike: compare ratios
from one run, not absolute times from different runs. Nothing here is a test: a missed
target is printed as MISSED and the exit status stays 0.

This module is the command line; the measures are in `labcore.bench.inference` (1, 2, 5),
`labcore.bench.training` (3, 4, 6, 7) and `labcore.bench.batching` (9), the table in
`labcore.bench.report`.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from labcore.bench.batching import measure_batching
from labcore.bench.inference import (load_predictors, make_upload, measure_all_models, measure_memory,
                                     measure_one_upload)
from labcore.bench.options import Options, log
from labcore.bench.report import check_targets, machine, render
from labcore.bench.training import (measure_demo, measure_feature_cache, measure_input_pipeline,
                                    measure_train_py, measure_training)
from labcore.store.runs import default_runs_dir
from labcore.settings import TASKS


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
    p.add_argument("--estimate", action="append", default=[], metavar="ARGS",
                   help="also run `train.py ARGS` into a temporary runs folder and set its wall time against the "
                        "estimate it printed first (repeatable), e.g. --estimate '--profile quick --dataset folder "
                        "--data-dir DIR'")
    p.add_argument("--train-py-only", action="store_true",
                   help="measure only the whole train.py runs (--demo, --estimate): sections 7 and 8")
    p.add_argument("--batching", action="store_true",
                   help="also measure section 9: batch of one against batched forwards of each architecture "
                        "(minutes)")
    p.add_argument("--batching-only", action="store_true", help="measure only section 9")
    p.add_argument("--batching-sizes", type=int, nargs="+", metavar="PX",
                   help="the input sizes section 9 measures (default 64 128 224; 32 64 with --quick)")
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
        estimate_args=[shlex.split(a) for a in args.estimate],
        train_py_only=args.train_py_only,
        batching=args.batching or args.batching_only,
        batching_only=args.batching_only,
        batching_sizes=tuple(args.batching_sizes or ((32, 64) if quick else (64, 128, 224))),
    )
    for size in (options.image_size, *options.batching_sizes):
        if size < 32 or size % 32:
            p.error("--image-size and --batching-sizes must be multiples of 32, at least 32 "
                    "(the backbones downsample 32x)")
    return options, args.json


def run_benchmark(options: Options) -> dict[str, Any]:
    """Every measure, as one dict of figures (what `--json` writes)."""
    figures: dict[str, Any] = {"machine": machine(), "options": {**vars(options), "runs_dir": str(options.runs_dir)}}
    if not (options.train_py_only or options.batching_only):
        figures.update(measure_parts(options))
    if options.batching:
        figures["batching"] = measure_batching(options)
    if options.demo:
        figures["demo"] = []
        for jobs in (1, 2):
            log(f"the demo profile, start to finish, --jobs {jobs} (a child process)")
            with tempfile.TemporaryDirectory() as runs:
                figures["demo"].append(measure_demo(options, Path(runs) / "runs", jobs))
    figures["estimates"] = []
    for args in options.estimate_args:
        log(f"train.py {' '.join(args)} against its estimate (a child process)")
        with tempfile.TemporaryDirectory() as runs:
            figures["estimates"].append(measure_train_py(args, Path(runs) / "runs"))
    figures["machine"]["load_at_end"] = os.getloadavg()[0]
    return figures


def measure_parts(options: Options) -> dict[str, Any]:
    """Sections 1 to 6 and the targets."""
    upload = make_upload()
    log("loading or building the models")
    predictors, origin = load_predictors(options)
    figures: dict[str, Any] = {"models": origin, "upload_bytes": len(upload), "inference": []}
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
    log("peak memory (two child processes)")
    figures["memory"] = measure_memory(options)
    figures["targets"] = check_targets(figures)
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

