"""scripts/load.py, short: four sessions upload four different photos to the live page at once.

Skips, saying why, where Chromium or Playwright is missing. Checks behaviour only (every
session gets every model's answer, no exception); the figures belong in docs/benchmarks.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytest.importorskip("playwright.async_api", reason="playwright is not installed")
sys.path.insert(0, str(ROOT / "scripts"))
import load  # noqa: E402
pytestmark = pytest.mark.skipif(not Path(load.CHROMIUM).exists(),
                                reason=f"{load.CHROMIUM} is missing (apt-get install chromium)")


def test_four_simultaneous_uploads_each_get_all_six_answers(demo_runs, tmp_path):
    photos = load.make_photos(5, tmp_path)
    with load.serve(demo_runs) as server:
        result = load.run_load(server, photos[:4], photos[4], timeout_s=300)
    assert result.sessions == 4 and len(result.latencies) == 4
    assert result.answers == [load.ANSWERS] * 4
    assert result.exceptions == [0] * 4
    assert result.upload_cpu_s is not None and result.upload_cpu_s > 0
    assert result.rss_after_mb > result.rss_start_mb  # the models were loaded: the stats read the server
