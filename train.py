#!/usr/bin/env python
"""Train the lab's six runs (or some of them) into an experiment the app reads.

    python train.py --profile demo          # synthetic data, no network -> runs/demo/
    python train.py                         # the report's settings on the real dataset -> runs/report/
    python train.py --profile quick --dataset folder --data-dir ~/oxford-pets --name pets-folder
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

# Importing labcore keeps TensorFlow's start-up chatter out of the log (labcore.quiet).
from labcore.store.experiments import sweep_name
from labcore.store.experiments import app_command, check_name
from labcore.store.inflight import LocksUnsupported, TrainingUnderway, claim
from labcore.store.runs import resolve_runs_dir
from labcore.train.stopping import Stopped, stop_on_signals
from labcore.settings import IMAGE_SIZES, INITS, PROFILE_HELP, PROFILES, RUN_IDS, Settings, SettingsError, \
    settings_from_dict


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Fit the transfer-learning lab's runs (detection, segmentation, multitask; "
                    "pretrained and scratch) and store them for the app. Flags left out take the "
                    "profile's value.")
    p.add_argument("--profile", choices=PROFILES, default="report",
                   help="settings to start from (default: report): " + "; ".join(f"{k}: {v}" for k, v in PROFILE_HELP.items()))
    p.add_argument("--only", nargs="+", choices=RUN_IDS, metavar="RUN_ID",
                   help=f"train only these runs (default: all six: {', '.join(RUN_IDS)})")
    p.add_argument("--init", choices=("both",) + INITS, default="both",
                   help="train only the pretrained or only the scratch runs (default: both)")
    p.add_argument("--dataset", choices=("oxford_iiit_pet", "folder", "synthetic"),
                   help="where the images come from")
    p.add_argument("--data-dir", help="with --dataset folder: the folder holding images/ and annotations/; "
                                      "with oxford_iiit_pet: tensorflow-datasets' data folder")
    p.add_argument("--epochs", type=int, help="maximum epochs (EarlyStopping may end sooner)")
    p.add_argument("--image-size", type=int, help="square input size in pixels, a multiple of 32 up to 1024")
    p.add_argument("--limit", type=int, help="use at most this many trainval (and test) images, stratified")
    p.add_argument("--sweep-limit", nargs="+", type=int, metavar="N",
                   help="a sweep over training-set sizes: train one experiment per N, as --limit N, named "
                        "NAME-nN, all else equal, one after another (the Data efficiency page draws them)")
    p.add_argument("--name", help="the experiment: runs go to RUNS_DIR/NAME/ (default: the profile's name). "
                                  "One experiment is one set of settings; use a new name for new settings")
    p.add_argument("--runs-dir", default=os.environ.get("PETLAB_RUNS_DIR", "runs"),
                   help="the runs root, holding one folder per experiment (default: $PETLAB_RUNS_DIR, else "
                        "runs); a relative path is taken from the project folder, wherever train.py is started")
    p.add_argument("--weights", choices=("imagenet", "synthetic-pretext"),
                   help="where pretrained runs get their backbone: ImageNet (Keras download or "
                        "--weights-dir) or the project's own synthetic pretext pretraining")
    p.add_argument("--weights-dir", help="folder holding Keras' ImageNet weight files, for offline machines")
    p.add_argument("--mask-classes", type=int, choices=(2, 37), help="mask head channels (the report: 37)")
    p.add_argument("--fine-tune-epochs", type=int, help="after training the heads, unfreeze the "
                                                        "pretrained backbone for this many epochs")
    p.add_argument("--seed", type=int, help="seed for the split, shuffling and initialisation")
    p.add_argument("--mixed-precision", action="store_true", default=None, help="mixed float16 (for GPUs)")
    p.add_argument("--jit-compile", action="store_true", default=None, help="compile train steps with XLA")
    p.add_argument("--no-feature-cache", dest="feature_cache", action="store_false", default=None,
                   help="recompute the frozen backbone every epoch instead of once per image (the same "
                        "training, many times slower: for comparing the two)")
    p.add_argument("--jobs", type=int, help="runs trained at a time, each lane of runs in its own process "
                                            "(default: 2 for the demo profile on a machine with 2 or more "
                                            "cores and no GPU, else 1), each lane taking the next run when it "
                                            "is free; sooner where one run leaves cores idle")
    p.add_argument("--threads", type=int, help="TensorFlow threads in each training process (default: "
                                               "every core for one run at a time; with --jobs, the cores "
                                               "shared out between the lanes). Results move in late digits "
                                               "with the thread count, as on another machine")
    p.add_argument("--force", action="store_true", help="retrain runs that are already finished")
    p.add_argument("--tiny-backbones", action="store_true",
                   help="swap every backbone for a five-layer conv net: for smoke tests and CI only, "
                        "its results say nothing about the report's models")
    args = p.parse_args(argv)
    if args.image_size is not None and args.image_size not in IMAGE_SIZES:
        p.error(f"--image-size must be a multiple of 32 from 32 to {IMAGE_SIZES[-1]} (the backbones downsample 32x)")
    for flag in ("epochs", "limit", "fine_tune_epochs", "jobs", "threads"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "fine_tune_epochs" else 1):
            p.error(f"--{flag.replace('_', '-')} must be positive")
    if args.sweep_limit and min(args.sweep_limit) < 1:
        p.error("--sweep-limit sizes must be positive")
    if args.sweep_limit and args.limit is not None:
        p.error("--sweep-limit sets --limit for each size: give one or the other")
    if args.dataset == "folder" and not args.data_dir:
        p.error("--dataset folder needs --data-dir PATH")
    args.name = args.name or args.profile
    problem = check_name(sweep_name(args.name, max(args.sweep_limit)) if args.sweep_limit else args.name)
    if problem:
        p.error(problem)
    try:  # the ranges the app checks a stored experiment against: what is trained here opens there
        settings_from_dict(settings_from_args(args).to_dict())
    except SettingsError as err:
        p.error(str(err))
    return args


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The profile's settings with the flags given on top."""
    # Stored absolute, so the app finds the data from wherever it is started.
    data_dir = str(Path(args.data_dir).expanduser().resolve()) if args.data_dir else None
    return PROFILES[args.profile].with_overrides(
        dataset=args.dataset, data_dir=data_dir, epochs=args.epochs, image_size=args.image_size,
        limit=args.limit, weights=args.weights, weights_dir=args.weights_dir, mask_classes=args.mask_classes,
        fine_tune_epochs=args.fine_tune_epochs, seed=args.seed, mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile, feature_cache=args.feature_cache,
        extra={"backbone": "tiny"} if args.tiny_backbones else None)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # One folder whatever the working directory: a relative --runs-dir is the project's (as the app reads it).
    args.runs_dir = str(resolve_runs_dir(args.runs_dir))
    try:  # one training at a time per runs root, held until this process ends (labcore.store.inflight)
        claim(args.runs_dir)
    except (TrainingUnderway, LocksUnsupported) as err:
        print(f"train.py: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"train.py: cannot write the runs folder {args.runs_dir}: {err.strerror or err}", file=sys.stderr)
        return 1
    stop_on_signals()  # SIGTERM and SIGHUP stop it as Ctrl-C does (labcore.train.stopping)
    try:
        return train(args)
    except KeyboardInterrupt as err:  # its lanes are gone by now; the lock goes with this process
        how = f"stopped by {err.name}" if isinstance(err, Stopped) else "interrupted"
        print(f"train.py: {how}; run it again to resume the unfinished run", file=sys.stderr)
        return err.exit_code if isinstance(err, Stopped) else 130


def train(args: argparse.Namespace) -> int:
    """Train what `args` asks for into the runs root this process holds; the exit status."""
    # Progress as it happens, also into a pipe (`| tee train.log`, a notebook, a test reading it).
    sys.stdout.reconfigure(line_buffering=True)
    # Our datasets are shuffled in tf.data; Keras' reminder about it is noise in the log.
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    import tensorflow as tf

    from labcore.train.lab import SettingsDiffer, summary, train_all
    from labcore.train.lanes import LaneFailed, auto_jobs
    from labcore.model.architectures import WeightsUnavailable
    from labcore.train.runtime import configure, lane_threads
    from labcore.data.sources import DataUnavailable
    from labcore.train.sweep import SweepRefused, sweep_summary, train_sweep

    settings = settings_from_args(args)
    run_ids = [r for r in (args.only or RUN_IDS) if args.init == "both" or r.endswith(args.init)]
    if not run_ids:
        print("train.py: no run left to train after --only and --init", file=sys.stderr)
        return 2
    try:
        jobs = args.jobs or auto_jobs(args.profile, os.cpu_count(), len(tf.config.list_physical_devices("GPU")))
        # This process trains the runs itself (one job) or only estimates them (lanes train).
        configure(settings.profile, args.threads)
        threads = args.threads or lane_threads(os.cpu_count(), jobs)
        if args.sweep_limit:
            trained = any(train_sweep(args.sweep_limit, run_ids, settings, Path(args.runs_dir), args.name,
                                      force=args.force, jobs=jobs, lane_threads=threads).values())
        else:
            trained = train_all(run_ids, settings, Path(args.runs_dir), args.name, force=args.force, jobs=jobs,
                                lane_threads=threads)
    except SweepRefused as err:
        print(f"train.py: {err}", file=sys.stderr)
        return 2
    except (DataUnavailable, WeightsUnavailable, SettingsDiffer, LaneFailed) as err:
        print(f"train.py: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a full disk, a folder we may not write to, a file that vanished
        print(f"train.py: {err.strerror or err} ({err.filename or args.runs_dir}); "
              "fix that and run again: an unfinished run resumes from its last checkpoint",
              file=sys.stderr)
        return 1
    experiment = Path(args.runs_dir) / (sweep_name(args.name, "N") if args.sweep_limit else args.name)
    print()
    print(sweep_summary(Path(args.runs_dir), args.name, args.sweep_limit, run_ids) if args.sweep_limit
          else summary(experiment, run_ids))
    if not trained:
        print("\nnothing to train: every run asked for is finished with these settings (--force retrains)")
    print(f"\nruns are in {experiment}/; see them with: {app_command(args.runs_dir)}"
          + (" (page: Data efficiency)" if args.sweep_limit else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
