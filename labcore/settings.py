"""The one source of truth for the lab's settings.

`train.py`, the app and the tests all read the six runs, the report's hyper-parameters,
the profiles and the report's published numbers from here.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable

TASKS = ("detection", "segmentation", "multitask")
INITS = ("pretrained", "scratch")

# Which heads each task has; the model's output names are exactly these.
TASK_OUTPUTS: dict[str, tuple[str, ...]] = {
    "detection": ("label", "bbox"),
    "segmentation": ("mask",),
    "multitask": ("label", "bbox", "mask"),
}

TASK_BACKBONES: dict[str, str] = {
    "detection": "EfficientNetB3",
    "segmentation": "MobileNetV3Small",
    "multitask": "MobileNetV3Large",
}

# The 37 breeds in the dataset's class-id order (class id 1 is index 0).
BREEDS: tuple[str, ...] = (
    "Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle",
    "Bengal", "Birman", "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau",
    "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees",
    "havanese", "japanese_chin", "keeshond", "leonberger", "Maine_Coon", "miniature_pinscher",
    "newfoundland", "Persian", "pomeranian", "pug", "Ragdoll", "Russian_Blue", "saint_bernard",
    "samoyed", "scottish_terrier", "shiba_inu", "Siamese", "Sphynx",
    "staffordshire_bull_terrier", "wheaten_terrier", "yorkshire_terrier",
)
NUM_CLASSES = len(BREEDS)
# The real dataset's split sizes: fewer images than these means a slice or a --limit.
FULL_SPLIT_SIZES = {"trainval": 3680, "test": 3669}


def breed_name(index: int) -> str:
    """A readable breed name: 'american_pit_bull_terrier' -> 'American Pit Bull Terrier'."""
    return " ".join(part[:1].upper() + part[1:] for part in BREEDS[index].split("_"))


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    task: str
    init: str

    @property
    def backbone(self) -> str:
        return TASK_BACKBONES[self.task]

    @property
    def outputs(self) -> tuple[str, ...]:
        return TASK_OUTPUTS[self.task]


RUNS: dict[str, RunSpec] = {
    f"{task}-{init}": RunSpec(f"{task}-{init}", task, init) for task in TASKS for init in INITS
}
RUN_IDS: tuple[str, ...] = tuple(RUNS)


@dataclass(frozen=True)
class Settings:
    """Every knob of a training run. The defaults are the report's settings (profile `report`)."""

    dataset: str = "oxford_iiit_pet"  # oxford_iiit_pet | folder | synthetic
    data_dir: str | None = None
    image_size: int = 224  # the report gives none; 224 is what the backbones were trained at
    epochs: int = 50  # the report gives none; EarlyStopping(patience 20) usually ends sooner
    batch_size: int = 32
    limit: int | None = None  # cap on trainval and test examples, for quick looks
    seed: int = 42
    val_fraction: float = 0.2
    learning_rate: float = 1e-3
    # ReduceLROnPlateau and EarlyStopping, as the report has them.
    lr_factor: float = 0.5
    lr_patience: int = 2
    min_lr: float = 1e-6
    early_stopping_patience: int = 20
    # Head widths (the report gives none).
    dense_units: tuple[int, ...] = (256, 128)
    branch_units: int = 64
    decoder_filters: tuple[int, ...] = (256, 128, 64, 32)
    mask_classes: int = 37  # the report's 37-channel mask head; 2 is the tidy alternative
    # BatchNorm momentum of every trainable BN layer. Keras' 0.99 needs hundreds of steps before
    # the moving statistics (used at evaluation) match the data; short runs use 0.9.
    bn_momentum: float = 0.99
    # Where pretrained weights come from: ImageNet (Keras download or --weights-dir), or a
    # backbone this project pretrains itself on a synthetic pretext task (offline stand-in).
    weights: str = "imagenet"  # imagenet | synthetic-pretext
    weights_dir: str | None = None
    freeze_backbone: bool = True  # the report uses the pretrained backbone as a feature extractor
    fine_tune_epochs: int = 0  # optional second phase: unfreeze and train at learning_rate / 100
    # A frozen backbone runs once per image and the heads train on its outputs (labcore.train.features);
    # the same training, many times faster. Off: every epoch runs the backbone again.
    feature_cache: bool = True
    pretext_epochs: int = 3
    pretext_examples: int = 512
    mixed_precision: bool = False
    jit_compile: bool = False
    profile: str = "report"
    extra: dict[str, Any] = field(default_factory=dict)

    def with_overrides(self, **overrides: Any) -> "Settings":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dense_units"] = list(self.dense_units)
        out["decoder_filters"] = list(self.decoder_filters)
        return out


class SettingsError(ValueError):
    """Stored settings that cannot be used (a value of the wrong type or out of range); the
    message names the setting and why, in one line."""


# What a stored setting may hold. A copied experiment folder can hold anything: a value out of
# these ranges is refused, not used (`image_size: 40000` made the app's warm-up allocate 20 GB).
IMAGE_SIZES = range(32, 1025, 32)  # the backbones downsample 32x
DATASETS = ("oxford_iiit_pet", "folder", "synthetic")
WEIGHTS = ("imagenet", "synthetic-pretext")
_WHOLE: dict[str, range | tuple[int, ...]] = {
    "image_size": IMAGE_SIZES, "epochs": range(1, 1001), "batch_size": range(1, 1025),
    "limit": range(1, 10_000_001), "seed": range(2**32), "lr_patience": range(1001),
    "early_stopping_patience": range(1001), "branch_units": range(1, 4097), "mask_classes": (2, 37),
    "fine_tune_epochs": range(1001), "pretext_epochs": range(1001), "pretext_examples": range(1, 1_000_001),
}
_FRACTION: dict[str, tuple[str, Callable[[float], bool]]] = {
    "val_fraction": ("between 0 and 1", lambda v: 0 < v < 1),
    "learning_rate": ("above 0, at most 1", lambda v: 0 < v <= 1),
    "lr_factor": ("between 0 and 1", lambda v: 0 < v < 1),
    "min_lr": ("from 0 to 1", lambda v: 0 <= v <= 1),
    "bn_momentum": ("from 0, below 1", lambda v: 0 <= v < 1),
}
_LAYERS = {"dense_units": range(1, 5), "decoder_filters": (4,)}  # how many; each 1 to 4096 units
_CHOICES = {"dataset": DATASETS, "weights": WEIGHTS}
_TEXT = ("data_dir", "weights_dir", "profile")
_OPTIONAL = ("limit", "data_dir", "weights_dir")
_EXTRA_BACKBONES = ("tiny",)  # extra["backbone"]: the tests' stand-in backbones


def settings_from_dict(stored: dict[str, Any] | None) -> Settings:
    """Settings from a stored dict (config.json "settings", experiment.json): unknown keys are
    ignored, missing ones take the defaults (a run stored before a setting existed). Raises
    SettingsError where `stored` is not a dict or a value has the wrong type or is out of range."""
    if stored is None:
        return Settings()
    if not isinstance(stored, dict):
        raise SettingsError(f"the settings are a {type(stored).__name__}, not a dict")
    known = {f.name for f in fields(Settings)}
    values = {k: v for k, v in stored.items() if k in known}
    for key, value in values.items():
        problem = None if value is None and key in _OPTIONAL else _problem(key, value)
        if problem:
            raise SettingsError(f"{key} {_short(value)}: {problem}")
    for key in _LAYERS:
        if key in values:
            values[key] = tuple(values[key])
    if "extra" in values:
        values["extra"] = dict(values["extra"])
    return Settings(**values)


def _problem(key: str, value: Any) -> str | None:
    """Why `value` cannot be setting `key`, or None where it can."""
    if key in _WHOLE:
        allowed = _WHOLE[key]
        return None if _whole(value) and value in allowed else f"must be {_describe(allowed)}"
    if key in _FRACTION:
        words, ok = _FRACTION[key]
        number = _whole(value) or (isinstance(value, float) and math.isfinite(value))
        return None if number and ok(value) else f"must be a number {words}"
    if key in _LAYERS:
        units = isinstance(value, (list, tuple)) and all(_whole(v) and 1 <= v <= 4096 for v in value)
        count = _LAYERS[key]
        how_many = f"{count.start} to {count[-1]}" if isinstance(count, range) else " or ".join(map(str, count))
        return None if units and len(value) in count else f"must be a list of {how_many} layer widths from 1 to 4096"
    if key in _CHOICES:
        return None if value in _CHOICES[key] else f"must be one of {', '.join(_CHOICES[key])}"
    if key in _TEXT:
        return None if isinstance(value, str) and value.isprintable() else "must be a line of text"
    if key == "extra":
        if not isinstance(value, dict):
            return "must be a dict"
        backbone = value.get("backbone", _EXTRA_BACKBONES[0])
        return None if backbone in _EXTRA_BACKBONES else f"backbone must be one of {', '.join(_EXTRA_BACKBONES)}"
    return None if isinstance(value, bool) else "must be true or false"  # the rest are switches


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(allowed: range | tuple[int, ...]) -> str:
    if isinstance(allowed, tuple):
        return f"one of {', '.join(map(str, allowed))}"
    if allowed.step > 1:
        return f"a multiple of {allowed.step} from {allowed.start} to {allowed[-1]}"
    return f"a whole number from {allowed.start} to {allowed[-1]}"


def _short(value: Any) -> str:
    """A stored value as the message shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


PROFILES: dict[str, Settings] = {
    # The report's settings on the real dataset, through tensorflow-datasets.
    "report": Settings(profile="report"),
    # Real data, small images, few epochs: a laptop CPU finishes in well under an hour.
    "quick": Settings(profile="quick", image_size=128, epochs=5, limit=1000, early_stopping_patience=3,
                      bn_momentum=0.9),
    # Synthetic data, no network, all six runs in a few minutes on 2 CPU cores.
    "demo": Settings(
        profile="demo", dataset="synthetic", image_size=64, epochs=6, limit=384,
        weights="synthetic-pretext", dense_units=(128, 64), branch_units=32, bn_momentum=0.9,
        decoder_filters=(64, 32, 32, 16), pretext_epochs=4, pretext_examples=768,
    ),
}
PROFILE_HELP = {
    "report": "the report's settings: real data (tensorflow-datasets), 224 px, up to 50 epochs",
    "quick": "real data, 128 px, 1000 images, 5 epochs: a look on a laptop CPU",
    "demo": "synthetic data, 64 px, no network: all six runs, two at a time, in 2 to 5 minutes on 2 CPU cores",
}

# The report's validation numbers, shown beside ours. `approx` marks figures read off curves.
REPORT_NUMBERS: list[dict[str, Any]] = [
    {"task": "detection", "metric": "label_accuracy", "pretrained": 0.9389, "scratch": 0.0951, "approx": False},
    {"task": "detection", "metric": "bbox_mae", "pretrained": 0.0985, "scratch": 0.1202, "approx": False},
    {"task": "segmentation", "metric": "mask_pixel_accuracy", "pretrained": 0.9322, "scratch": 0.7324, "approx": False},
    {"task": "multitask", "metric": "label_accuracy", "pretrained": 0.90, "scratch": 0.15, "approx": True},
    {"task": "multitask", "metric": "mask_pixel_accuracy", "pretrained": 0.93, "scratch": 0.70, "approx": True},
    {"task": "multitask", "metric": "bbox_loss", "pretrained": 0.09, "scratch": 0.14, "approx": True},
]

# Metric names in metrics.json, and whether higher is better.
METRICS: dict[str, bool] = {
    "label_accuracy": True,
    "label_top5_accuracy": True,
    "bbox_mae": False,
    "bbox_iou": True,
    "mask_pixel_accuracy": True,
    "mask_miou": True,
    "mask_dice": True,
}
METRIC_LABELS = {
    "label_accuracy": "label accuracy",
    "label_top5_accuracy": "label top-5 accuracy",
    "bbox_mae": "box MAE",
    "bbox_iou": "box IoU",
    "mask_pixel_accuracy": "mask pixel accuracy",
    "mask_miou": "mask mean IoU",
    "mask_dice": "mask Dice",
    "bbox_loss": "box loss (val)",
}


def task_metrics(task: str) -> list[str]:
    """The metrics.json names that apply to a task."""
    return [m for m in METRICS if m.split("_")[0] in TASK_OUTPUTS[task]]
