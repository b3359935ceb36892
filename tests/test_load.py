"""scripts/load.py, short: four sessions upload four different photos to the live page at once.

Skips, saying why, where Chromium or Playwright is missing (in CI it fails instead: conftest.py).
Checks behaviour only (every session gets every model's answer, no exception); the figures
belong in docs/benchmarks.md.
"""
from __future__ import annotations

import json
import sys

import pytest

from conftest import ROOT, require_browser

sys.path.insert(0, str(ROOT / "scripts"))
import load  # noqa: E402


@pytest.fixture
def chromium(monkeypatch) -> str:
    """The Chromium every browser test drives (conftest's lookup), handed to the load script."""
    _, path = require_browser("async_api")
    monkeypatch.setattr(load, "CHROMIUM", path)
    return path


def test_four_simultaneous_uploads_each_get_all_six_answers(chromium, demo_store, tmp_path, capsys):
    figures = tmp_path / "load.json"
    assert load.main(["--runs-dir", str(demo_store), "--experiment", "demo", "--sessions", "4",
                      "--timeout", "300", "--json", str(figures)]) == 0
    result = json.loads(figures.read_text())
    assert result["experiment"] == "demo" and result["models"] == load.ANSWERS
    assert result["sessions"] == 4 and len(result["latencies"]) == 4
    assert result["answers"] == [load.ANSWERS] * 4
    assert result["exceptions"] == [0] * 4
    assert result["upload_cpu_s"] > 0 and result["forward_cpu_s"] > 0
    assert result["rss_after_mb"] > result["rss_start_mb"]  # the models were loaded: the stats read the server
    printed = capsys.readouterr().out
    assert "experiment demo: 6 models" in printed and "server CPU per upload / forward passes" in printed


def test_an_unknown_experiment_is_named_with_the_ones_there_are(demo_store):
    with pytest.raises(SystemExit, match=r"no experiment nosuch under .* \(found: demo\)"):
        load.main(["--runs-dir", str(demo_store), "--experiment", "nosuch"])
