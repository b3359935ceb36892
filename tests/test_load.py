"""scripts/load.py, short: four sessions upload four different photos to the live page at once.

Skips, saying why, where Chromium or Playwright is missing (in CI it fails instead: conftest.py).
Checks behaviour only (every session gets every model's answer, no exception); the figures
belong in docs/benchmarks.md.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

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


def test_a_running_server_by_url_and_pid_one_upload_after_another(demo_store, tmp_path, capsys, monkeypatch):
    """--url and --pid (a server this test starts, with an --env value), --sequential, --no-forward,
    and the newest experiment where none is named."""
    figures = tmp_path / "load.json"
    with load.serve(demo_store, {"PETLAB_LOAD_MARK": "x=1"}) as server:
        environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        assert b"PETLAB_LOAD_MARK=x=1" in environ  # the environment it was given
        assert load.main(["--runs-dir", str(demo_store), "--url", server.url + "/", "--pid", str(server.pid),
                          "--sequential", "2", "--no-forward", "--timeout", "300", "--json", str(figures)]) == 0
    result = json.loads(figures.read_text())
    assert result["experiment"] == "demo" and result["sessions"] == 2 and result["answers"] == [load.ANSWERS] * 2
    assert result["forward_cpu_s"] is None and sorted(result["rss_by_upload_mb"]) == ["1", "2"]
    assert result["upload_cpu_s"] > 0  # read from the pid given
    printed = capsys.readouterr().out
    assert "2 uploads one after another (a fresh page each)" in printed and "forward passes" not in printed

    # --env KEY=VALUE (split at the first "=") is what the server it starts gets.
    given = []

    class Started(Exception):
        pass

    def serve(runs_dir, env):
        given.append(env)
        raise Started

    monkeypatch.setattr(load, "serve", serve)
    with pytest.raises(Started):
        load.main(["--runs-dir", str(demo_store), "--env", "PETLAB_LOAD_MARK=x=1", "--env", "B=2"])
    assert given == [{"PETLAB_LOAD_MARK": "x=1", "B": "2"}]


def test_only_a_server_on_this_machine_may_be_loaded(capsys):
    assert load.main(["--url", "http://example.com:8501"]) == 1
    assert capsys.readouterr().err == "load.py: only a server on this machine (127.0.0.1) may be loaded\n"
