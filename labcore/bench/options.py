"""What every bench measure shares: its options (`python -m labcore.bench`'s command line)
and its log, which goes to stderr so stdout holds only the table."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from labcore.settings import Settings

BATCH = 32
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Options:
    runs_dir: Path
    image_size: int
    repeats: int
    warmup: int
    train_steps: int
    pipeline_images: int
    data_dir: str | None
    skip_training: bool
    quick: bool
    cache_images: int = 256
    demo: bool = False
    estimate_args: list[list[str]] = field(default_factory=list)  # train.py runs timed against their estimate
    train_py_only: bool = False  # only the train.py runs (sections 7 and 8)
    batching: bool = False  # section 9: batch of one against batched forwards
    batching_only: bool = False  # only section 9
    batching_sizes: tuple[int, ...] = (64, 128, 224)

    @property
    def settings(self) -> Settings:
        """Settings for freshly built models. `--quick` swaps every backbone for the tiny one."""
        extra = {"backbone": "tiny"} if self.quick else {}
        return Settings(image_size=self.image_size, extra=extra)


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the table."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
