"""Weights this project writes itself, as numpy arrays in an .npz file written as one unit.

Not Keras' HDF5 weights file: when the disk fills during an HDF5 write, h5py raises an OSError
and then ends the process with a segmentation fault as it lets go of the file (measured: h5py 3,
a MobileNetV3Small's weights under a 1 MB file-size limit, exit 139). numpy raises the OSError
and nothing more, which train.py reports in one line. The file is written beside its place under
a name of this process, flushed to the disk and renamed, so a reader finds the whole file or none,
and two processes making the same file at once each write their own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import keras
import numpy as np


def write_arrays(path: Path, arrays: Sequence[np.ndarray]) -> None:
    """Write `arrays` to `path` (np.savez's arr_0, arr_1...) as one unit. Where the disk cannot
    take it, raises an OSError naming the file, and leaves nothing behind."""
    path = Path(path)
    building = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with open(building, "wb") as file:
            np.savez(file, *arrays)
            file.flush()
            os.fsync(file.fileno())
        building.replace(path)
    except OSError as err:
        building.unlink(missing_ok=True)
        raise OSError(err.errno, f"cannot write {path.name} ({err.strerror or err})", str(path)) from None


def read_arrays(path: Path) -> list[np.ndarray]:
    """Every array of an .npz written by `write_arrays` (or np.savez(path, *arrays)), in order;
    read whole, so a file cut short fails here, not half way through a model."""
    with np.load(path) as stored:
        return [stored[f"arr_{i}"] for i in range(len(stored.files))]


def save_weights(model: keras.Model, path: Path) -> None:
    """The model's weights, in its order (`write_arrays`)."""
    write_arrays(path, [weight.numpy() for weight in model.weights])


def load_weights(model: keras.Model, path: Path) -> None:
    """Give `model` the weights `save_weights` wrote (`assign_checked`)."""
    assign_checked(model.weights, read_arrays(path), Path(path).name)


def assign_checked(variables: Sequence, values: Sequence[np.ndarray], source: str) -> None:
    """Assign `values` (read from `source`) to `variables`, all checked first (count, shapes),
    so arrays that cannot be these variables raise ValueError and leave none of them changed."""
    shapes = [tuple(variable.shape) for variable in variables]
    if shapes != [value.shape for value in values]:
        raise ValueError(f"{source} holds {len(values)} arrays of other shapes than the model's {len(shapes)}")
    for variable, value in zip(variables, values):
        variable.assign(value)
