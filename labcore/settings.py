"""The one source of truth for the lab's settings.

`train.py`, the app and the tests all read the six runs, the report's hyper-parameters,
the profiles and the report's published numbers from here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

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


def settings_from_dict(stored: dict[str, Any] | None) -> Settings:
    """Settings from a stored dict (config.json "settings", experiment.json): unknown keys are
    ignored, missing ones take the defaults (a run stored before a setting existed)."""
    known = {f.name for f in fields(Settings)}
    values = {k: v for k, v in (stored or {}).items() if k in known}
    for key in ("dense_units", "decoder_filters"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    if not isinstance(values.get("extra", {}), dict):
        values.pop("extra")
    return Settings(**values)


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
