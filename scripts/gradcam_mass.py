"""How much of Grad-CAM's heat lies on the pet, for a trained and an untrained model.

    python scripts/gradcam_mass.py [--image-size 192] [--train 1024] [--epochs 25] [--seed 0]

Trains a tiny-backbone detection model (the suite's stand-in backbone) on drawn pets, where the
coat alone decides the breed, then prints the mean share of the heat map's mass inside the true
pet mask over 20 test pets, beside the same figure for the untrained model and the pet's area
(what a uniform map would score). A map with no positive evidence anywhere counts as 0.
The image size must be well above 32: the backbones downsample 32x, so at 32 px the heat map
is one cell.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from labcore.show.gradcam import GradCam, mass_in_mask  # noqa: E402
from labcore.data.images import resize_for_model  # noqa: E402
from labcore.model.architectures import build_backbone, build_model, set_bn_momentum  # noqa: E402
from labcore.settings import PROFILES  # noqa: E402
from labcore.data.sources import synthetic_arrays  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, default=192)
    p.add_argument("--train", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    size = args.image_size
    settings = PROFILES["demo"].with_overrides(image_size=size, dense_units=(64,), branch_units=32)
    keras.utils.set_random_seed(args.seed)
    models = {}
    for name in ("trained", "random weights"):
        models[name] = build_model("detection", settings, build_backbone("tiny", size))
        set_bn_momentum(models[name], 0.9)
    train, test = synthetic_arrays(args.train, 0), synthetic_arrays(20, 1)
    resize = lambda images: np.stack([resize_for_model(Image.fromarray(im), size) for im in images])  # noqa: E731
    models["trained"].compile(optimizer=keras.optimizers.Adam(1e-3),
                              loss={"label": "sparse_categorical_crossentropy", "bbox": "mae"})
    models["trained"].fit(resize(train["image"]), {"label": train["label"], "bbox": train["bbox"]},
                          epochs=args.epochs, batch_size=32, verbose=0)
    images = resize(test["image"]).astype(np.float32)
    accuracy = float(np.mean(np.argmax(models["trained"](images)["label"], -1) == test["label"]))
    print(f"{size} px, {args.train} training pets, {args.epochs} epochs, seed {args.seed}: "
          f"test accuracy {accuracy:.2f}; the pet covers {float(np.mean(test['mask'])):.3f} of the picture")
    for name, model in models.items():
        heat = GradCam(model, "tiny", size)(images)
        masses = np.array([mass_in_mask(heat.maps[i], test["mask"][i], size) for i in range(len(images))])
        print(f"  {name:<15} mass inside the pet {np.mean(np.nan_to_num(masses)):.3f} "
              f"(maps with no positive evidence: {int(np.isnan(masses).sum())} of {len(masses)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
