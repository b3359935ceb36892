import json
import subprocess
import sys

from conftest import ROOT
from labcore.train.runtime import lane_threads


def test_lanes_share_the_cores_out_and_never_get_none():
    assert lane_threads(2, 2) == 1
    assert lane_threads(16, 2) == 8
    assert lane_threads(3, 2) == 1
    assert lane_threads(1, 4) == 1
    assert lane_threads(None, 2) == 1


def runtime_after(call: str) -> dict:
    """describe() in a fresh process after `call` (TensorFlow takes its runtime settings only
    before its first operation, long past in this one)."""
    code = f"import json; from labcore.train.runtime import configure, describe; {call}; print(json.dumps(describe()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_demo_trains_without_graph_optimisation_and_other_profiles_with_it():
    assert runtime_after("configure('demo', 2)") == {"threads": 2, "graph_optimization": False}
    assert runtime_after("configure('quick')") == {"threads": None, "graph_optimization": True}
    assert runtime_after("configure('report', 3)") == {"threads": 3, "graph_optimization": True}
