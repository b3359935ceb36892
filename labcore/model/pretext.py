"""The offline stand-in for ImageNet: a backbone pretrained on a synthetic pretext task.

Where ImageNet weights cannot be had (the `demo` profile, a machine with no network), the
"pretrained" runs start from a backbone this project trains itself on a different task: name
the coat (12 hues x 4 patterns = 48 classes) of drawn pets that the lab never sees (another
seed). That is easier transfer than ImageNet to real pets (the pretext looks like the target),
so it shows the effect of pretraining, not its size; `config.json` records
`weights: synthetic-pretext` and the app shows it wherever the run appears.
"""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Callable

import keras
import tensorflow as tf

from labcore.data.pipeline import preprocess_images
from labcore.model.architectures import build_backbone, set_bn_momentum
from labcore.model.recipe import compile_pretext
from labcore.model.weights_file import save_weights
from labcore.settings import Settings
from labcore.data.sources import HUES, synthetic_arrays

log = logging.getLogger(__name__)
PRETEXT_CLASSES = HUES * 4
PRETEXT_SEED_OFFSET = 1000


def pretext_path(backbone: str, settings: Settings, cache_dir: Path) -> Path:
    """Where `pretext_weights` keeps the weights for these settings."""
    return Path(cache_dir) / (f"{backbone}-{settings.image_size}px-{settings.pretext_examples}x"
                              f"{settings.pretext_epochs}-seed{settings.seed}.weights.npz")


def pretext_backbone(backbone: str, settings: Settings, cache_dir: Path,
                     progress: Callable[[str], None] = print) -> keras.Model:
    """`backbone` with its pretext weights (`pretext_weights`). A weights file that cannot be
    read (a damaged copy of an experiment) costs one line and is made again."""
    path = pretext_weights(backbone, settings, cache_dir, progress)
    try:
        return _seeded_backbone(backbone, settings, path)
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
        progress(f"[pretext] {path} cannot be read ({type(err).__name__}); pretraining it again")
        path.unlink(missing_ok=True)
        return _seeded_backbone(backbone, settings, pretext_weights(backbone, settings, cache_dir, progress))


def _seeded_backbone(backbone: str, settings: Settings, path: Path) -> keras.Model:
    # Pretraining draws random numbers only when its weights are not made yet: seed again, so
    # what is built from here on (the backbone, then the heads) starts the same either way.
    keras.utils.set_random_seed(settings.seed)
    return build_backbone(backbone, settings.image_size, str(path))


def pretext_weights(backbone: str, settings: Settings, cache_dir: Path,
                    progress: Callable[[str], None] = print) -> Path:
    """A weights file for `backbone` pretrained on the pretext task; made once, then reused."""
    path = pretext_path(backbone, settings, cache_dir)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    progress(f"[pretext] pretraining {backbone} on the synthetic pretext task "
             f"({settings.pretext_examples} images, {settings.pretext_epochs} epochs)")
    data = synthetic_arrays(settings.pretext_examples, settings.seed + PRETEXT_SEED_OFFSET,
                            label_fn=lambda i: i % PRETEXT_CLASSES)
    # draw_pet draws class c with hue c % 12 and pattern c // 12: labels 0..47 are the coats.
    images = tf.image.resize(data["image"], (settings.image_size, settings.image_size))
    inputs = preprocess_images(images, backbone)

    base = build_backbone(backbone, settings.image_size)
    # A short pretraining leaves BatchNorm's moving statistics (momentum 0.99) mostly at their
    # initial values, and the frozen backbone of a pretrained run uses exactly those.
    set_bn_momentum(base, 0.9)
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    out = keras.layers.Dense(PRETEXT_CLASSES, activation="softmax")(x)
    model = keras.Model(base.input, out)
    compile_pretext(model, settings.learning_rate)
    hist = model.fit(inputs, data["label"], batch_size=settings.batch_size,
                     epochs=settings.pretext_epochs, verbose=0, shuffle=True)
    progress(f"[pretext] {backbone}: accuracy {hist.history['accuracy'][-1]:.3f} "
             f"after {settings.pretext_epochs} epochs")
    save_weights(base, path)  # lanes side by side may make it at once: each writes its own, then renames
    return path
