"""Data efficiency: the sweeps stored under a runs root and their curves, pretrained against
scratch, by the number of training images.

A sweep is a group of experiments `<name>-n<N>` that differ only in `limit` (labcore.sweep
trains one); any experiments that differ only in `limit` make a group here, whatever their names.
Nothing here imports TensorFlow: the app's page reads this.
"""
from __future__ import annotations


def sweep_name(name: str, size: int | str) -> str:
    """The experiment of one size: 'demo', 96 -> 'demo-n96'."""
    return f"{name}-n{size}"
