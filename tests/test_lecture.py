"""scripts/lecture.py, small: sessions that speak Streamlit's protocol upload photos to the live
page at once; an upload counts as answered only when every model's answer and image arrived.
Checks behaviour only; the figures belong in docs/benchmarks.md."""
from __future__ import annotations

import json
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import lecture  # noqa: E402
import load  # noqa: E402


def test_two_rounds_of_sessions_each_get_every_models_answer(demo_store, tmp_path, capsys, monkeypatch):
    """Sizes 2 and 3, each on a fresh server that then takes a second class with photos of its own."""
    made = []
    real_make = load.make_photos
    monkeypatch.setattr(load, "make_photos", lambda count, folder: made.append(count) or real_make(count, folder))
    figures = tmp_path / "lecture.json"
    assert lecture.main(["--runs-dir", str(demo_store), "--experiment", "demo", "--sessions", "2", "3",
                         "--classes", "2", "--no-forward", "--timeout", "300", "--json", str(figures)]) == 0
    assert made == [3 * 2 + 1]  # the largest class twice over, and the warm-up photo
    result = json.loads(figures.read_text())
    assert result["experiment"] == "demo" and result["models"] == load.ANSWERS
    assert [(r["sessions"], r["class_number"]) for r in result["rounds"]] == [(2, 1), (2, 2), (3, 1), (3, 2)]
    for round_ in result["rounds"]:
        outcomes = round_["outcomes"]
        assert len(outcomes) == round_["sessions"]
        assert all(o["answers"] == load.ANSWERS and o["images"] == load.ANSWERS for o in outcomes), outcomes
        assert all(o["seconds"] > 0 and o["error"] is None for o in outcomes)
        assert round_["upload_cpu_s"] > 0 and round_["page_load_cpu_s"] > 0
        if round_["class_number"] == 1:  # the warm-up loaded the models: the server was read
            assert round_["rss_before_mb"] > round_["rss_start_mb"]
        assert 0 < round_["client_share"] < 1
    printed = capsys.readouterr().out
    assert "2/2" in printed and "3/3" in printed and "experiment demo" in printed and "3 (class 2)" in printed


def test_an_upload_missing_one_models_answer_is_not_counted_as_answered(demo_runs_copy, tmp_path, capsys):
    """One model cannot be loaded: the page answers with five models and one error line, and the
    client counts no upload as answered (and says why)."""
    (demo_runs_copy / "segmentation-scratch" / "model.keras").write_bytes(b"PK\x03\x04 broken zip")
    figures = tmp_path / "lecture.json"
    code = lecture.main(["--runs-dir", str(demo_runs_copy.parent), "--experiment", "demo", "--sessions", "2",
                         "--no-forward", "--timeout", "300", "--json", str(figures)])
    assert code == 1
    [round_] = json.loads(figures.read_text())["rounds"]
    assert all(o["seconds"] is None and "segmentation-scratch" in o["error"] for o in round_["outcomes"])
    assert all(o["answers"] == load.ANSWERS - 1 for o in round_["outcomes"])
    assert "0/2" in capsys.readouterr().out
