"""TensorFlow's start-up chatter stays out of the lab's programs (labcore.quiet)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from labcore.quiet import kept_lines

# What `import tensorflow` then a first device call wrote here (TF 2.21, CPU, level 0).
CHATTER = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796092702.334838   11017 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results.
I0000 00:00:1796092702.335151   11017 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1796092702.417544   11017 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions.
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
W0000 00:00:1796092702.5   11017 some.cc:1] a warning
E0000 00:00:1796092706.972309   11017 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error
"""
OWN = "/venv/lib/tensorflow/x.py:3: DeprecationWarning: something\nTraceback (most recent call last):\n  File x\nValueError: real\n"
NOISE = re.compile(r"absl::InitializeLog|^[IWE]\d{4} \d\d:\d\d|cuda drivers|cuInit", re.M)


LINES = CHATTER.splitlines(keepends=True)
NOTE, INFO, WARNING, ERROR = LINES[0], LINES[1:5], LINES[5], LINES[6]  # INFO: three lines, one over two


@pytest.mark.parametrize("level, kept", [
    (0, LINES), (1, [WARNING, ERROR]), (2, [ERROR]), (3, [])])
def test_the_level_hides_what_it_would_have_hidden_and_nothing_else(level, kept):
    """Which lines, not how many: from level 1 absl's note and INFO go, from 2 WARNING, from 3 ERROR."""
    assert NOTE.startswith("WARNING: All log messages") and WARNING.startswith("W0000") and ERROR.startswith("E0000")
    assert kept_lines(CHATTER + OWN, level) == "".join(kept) + OWN  # a Python warning and a traceback always pass


def test_train_py_says_its_own_line_first_and_no_tensorflow_chatter(tmp_path):
    """train.py imports TensorFlow, then fails on the data: its one line is all of stderr."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--dataset", "folder", "--data-dir",
                             str(tmp_path / "absent"), "--runs-dir", str(tmp_path / "runs")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("train.py: "), result.stderr
    assert not NOISE.search(result.stderr), result.stderr


def test_the_training_lanes_start_quietly_too(demo_store):
    """The demo store was trained in two lanes on a machine with 2 cores or more: spawned
    processes that import TensorFlow while unpickling their work."""
    stderr = (demo_store.parent / "train.stderr").read_text()
    assert not NOISE.search(stderr), stderr[:2000]
