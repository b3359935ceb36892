"""How TensorFlow runs a training process: its thread count, and whether Grappler optimises
the graphs it traces.

Neither changes what is trained (the settings); both change the order in which floats are
summed, so results move in late digits, as they do on another machine. A run's config.json
records both (`runtime`), beside its settings.

- **Threads.** Runs side by side in lanes (`labcore.train.lanes`) share the cores out: a lane gets
  cores // lanes threads. With TensorFlow's own count each of two lanes on 2 cores ran 2
  threads, and the demo cost 16 % more CPU seconds (337 against 290; system time 39 s against
  25, the threads waking and waiting on each other).
- **Graph optimisation.** The demo's runs are short (60 train steps): Grappler's passes over
  each traced graph cost more than they save. EfficientNetB3's first train batch at 64 px:
  24.5 s with them, 16.1 s without; later batches take as long. Longer profiles keep them.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf

# Profiles whose runs are too short for Grappler's graph optimisation to pay for itself.
NO_GRAPH_OPTIMIZATION = ("demo",)


def lane_threads(cpus: int | None, jobs: int) -> int:
    """Threads for each of `jobs` lanes: the cores shared out, at least one."""
    return max(1, (cpus or 1) // max(1, jobs))


def configure(profile: str, threads: int | None = None) -> None:
    """Set this process's runtime for training `profile` with `threads` threads (None:
    TensorFlow's own, every core). Call before TensorFlow runs its first operation."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    if profile in NO_GRAPH_OPTIMIZATION:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def describe() -> dict[str, Any]:
    """This process's runtime, as config.json records it."""
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    return {"threads": threads or None,
            "graph_optimization": not tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)}
