"""Grad-CAM's cost beside the forward pass, per model, one image at a time.

    python scripts/gradcam_timing.py [--image-size 224] [--repeats 20]

Builds each breed-head model of the lab with random weights (the cost does not depend on the
weights), traces both functions once, then times them alternately and prints the medians.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from labcore.show.gradcam import GradCam  # noqa: E402
from labcore.show.inference import Predictor  # noqa: E402
from labcore.model.architectures import build_backbone, build_model  # noqa: E402
from labcore.settings import PROFILES, TASK_BACKBONES  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    size = args.image_size
    settings = PROFILES["report"].with_overrides(image_size=size)
    image = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    print(f"{'model':<32}{'forward ms':>12}{'Grad-CAM ms':>13}{'ratio':>8}")
    for task in ("detection", "multitask"):
        backbone = TASK_BACKBONES[task]
        model = build_model(task, settings, build_backbone(backbone, size))
        predictor, cam = Predictor(model, task, backbone, size), GradCam(model, backbone, size)
        forward, heat = [], []
        for _ in range(args.repeats + 3):  # the first three warm up
            start = time.perf_counter()
            predictor.predict_arrays(image)
            forward.append(time.perf_counter() - start)
            heat.append(cam(image).seconds)
        f, h = np.median(forward[3:]) * 1e3, np.median(heat[3:]) * 1e3
        print(f"{task + ' (' + backbone + ')':<32}{f:>12.1f}{h:>13.1f}{h / f:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
