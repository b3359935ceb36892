"""TensorFlow's start-up chatter, kept out of every program of the lab.

On a CPU machine, `import tensorflow` (2.21) writes, twice (two libraries, each with its own
copy of absl), "WARNING: All log messages before absl::InitializeLog() is called are written to
STDERR", "I0000 ... port.cc] oneDNN custom operations are on..." and "I0000 ...
cudart_stub.cc] Could not find cuda drivers on your machine", and the first use of a device
logs "E0000 ... failed call to cuInit: INTERNAL: CUDA error", which reads as a failure and is
none. `TF_CPP_MIN_LOG_LEVEL` silences the last (TensorFlow reads it when it starts, so it must
be in the environment before the import) but not the others: they are written while the
libraries load, before TensorFlow's logging reads that setting, and no environment variable
reaches absl's logging then (measured: at every level 0-3 they appear).

So the import itself runs with file descriptor 2 pointed at a temporary file, and what it wrote
is then passed on, less the lines that TF_CPP_MIN_LOG_LEVEL would have hidden had it applied:
absl's INFO lines from level 1, WARNING from 2, ERROR from 3, and absl's note about its own
initialisation from level 1. Anything else (a Python warning, a real error) is passed on.

`install()` hooks the first import of `tensorflow` wherever it happens (keras imports it too),
so the lab's programs and the processes they spawn (training lanes, which import TensorFlow while
unpickling their work) need nothing more than importing `labcore`, which installs it.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LEVEL = "3"
# absl's line prefix: severity letter, date, time (its seconds field may hold the whole epoch time,
# "00:00:1796092702.33"), thread, file:line]
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]+\] ")
_ABSL_NOTE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as a number (0 where unset or unreadable)."""
    try:
        return int(os.environ.get(LEVEL_ENV, "0"))
    except ValueError:
        return 0


def kept_lines(text: str, min_level: int) -> str:
    """`text` (what an import wrote to stderr) less the lines `min_level` hides: absl lines of
    a lower severity (fatal ones always stay) and absl's initialisation note, with the line that
    continues a hidden line (absl writes some messages over two lines) hidden too."""
    kept, hiding = [], False
    for line in text.splitlines(keepends=True):
        match = _ABSL_LINE.match(line)
        if match:
            hiding = _SEVERITY[match.group(1)] < min(min_level, 3)
        elif line.rstrip("\n") == _ABSL_NOTE:
            hiding = min_level >= 1
        else:  # a line of its own, or the second line of the absl message before it
            hiding = hiding and _continues(line)
        if not hiding:
            kept.append(line)
    return "".join(kept)


def _continues(line: str) -> bool:
    """Whether a line without absl's prefix reads as the rest of the message before it
    ("To enable the following instructions: ..."), not as a message of its own (a traceback,
    a Python warning, which starts with its file's path)."""
    return line[:1].isalpha() and not line.startswith(("Traceback", "WARNING", "ERROR"))


@contextmanager
def filtered_stderr() -> Iterator[None]:
    """Inside: what anything in the process writes to file descriptor 2 is held back; on the
    way out it is written to the real stderr, less what `kept_lines` drops."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = kept_lines(held.read().decode("utf-8", "replace"), level())
            if text:
                os.write(2, text.encode("utf-8"))


class _QuietLoader(importlib.abc.Loader):
    """Loads `tensorflow` as its own loader would, inside `filtered_stderr`."""

    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with filtered_stderr():
            self._loader.exec_module(module)

    def __getattr__(self, name: str):  # resource readers and the like: the real loader's
        return getattr(self._loader, name)


class _TensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the other finders do and hands it a quiet loader, once."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once only, and not in the way of the lookup below
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet the coming import of TensorFlow (see the module's docstring). Sets
    TF_CPP_MIN_LOG_LEVEL to 3 where the environment leaves it unset (a user's own value
    stands), so the processes this one starts inherit it. Does nothing once TensorFlow is in."""
    os.environ.setdefault(LEVEL_ENV, DEFAULT_LEVEL)
    if "tensorflow" in sys.modules or any(isinstance(f, _TensorFlowFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _TensorFlowFinder())
