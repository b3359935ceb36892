"""The Present page's slides (labcore.show.slides): which exist, what each lacks, their figures."""
import shutil

from labcore.settings import RUN_IDS
from labcore.show.efficiency import find_sweeps, sweep_of
from labcore.show.report import answers
from labcore.show.slides import (QUESTION_FIGURES, breed_figures, efficiency_slide, question_answer,
                                 question_figure, slide_number, slides_for)
from labcore.store.experiments import list_experiments
from labcore.store.runs import list_runs

STORY = ["title", "report", "q1", "q2", "q3", "breeds", "gradcam", "join", "board"]


def test_a_whole_experiment_has_the_story_and_no_missing_runs(demo_runs):
    runs = list_runs(demo_runs)
    deck = slides_for(runs, None)
    assert [s.key for s in deck] == STORY
    assert all(s.missing_line() is None for s in deck)
    for key, (metric, ids) in QUESTION_FIGURES.items():
        figure = question_figure(runs, key)
        assert {t.name for t in figure.data if t.mode == "lines"} == {r.label for r in runs if r.run_id in ids}, key
    assert [label for label, got in breed_figures(runs) if not isinstance(got, str)] == \
        [r.label for r in runs if r.task == "detection"]


def test_a_slide_whose_runs_are_missing_names_them_in_one_line_and_draws_no_empty_figure(demo_runs_copy):
    for run_id in ("detection-pretrained", "detection-scratch"):
        shutil.rmtree(demo_runs_copy / run_id)
    runs = list_runs(demo_runs_copy)
    by_key = {s.key: s for s in slides_for(runs, None)}
    for key in ("q1", "breeds", "gradcam"):
        assert by_key[key].missing == ("detection-pretrained", "detection-scratch"), key
        assert by_key[key].missing_line().count("\n") == 0
        assert "detection-pretrained, detection-scratch" in by_key[key].missing_line()
    assert by_key["report"].missing == ("detection-pretrained", "detection-scratch")
    assert by_key["q2"].missing == ()
    assert question_figure(runs, "q1") is None
    assert breed_figures(runs) == []
    assert question_figure(runs, "q3").data  # multitask-pretrained still has curves


def test_the_efficiency_slide_appears_only_in_a_sweep(sweep_store):
    found = list_experiments(sweep_store.root)
    experiment = next(e for e in found if e.name == "demo-n96")
    sweep = sweep_of(experiment, find_sweeps(found))
    deck = slides_for(experiment.runs, sweep)
    assert [s.key for s in deck] == STORY[:7] + ["efficiency"] + STORY[7:]
    reading, figure = efficiency_slide(sweep)
    assert reading == sweep.reading("detection")
    assert {t.name for t in figure.data} >= {"pretrained", "scratch"}


def test_the_slide_in_the_address_is_clamped_to_the_deck():
    assert slide_number("3", 9) == 3
    assert slide_number("42", 9) == 9
    assert slide_number("0", 9) == 1
    assert slide_number("three", 9) == 1
    assert slide_number(None, 9) == 1


def test_a_question_slide_shows_the_lines_that_answer_it(demo_runs):
    runs = list_runs(demo_runs)
    q1, _, q3 = answers(runs)
    assert question_answer(runs, "q1").short == q1.lines[:2]  # the two metrics compared, not the fit notes
    assert len(q3.short) == 2 and all(" as good** — " in line for line in q3.short)
    assert set(RUN_IDS) == {r.run_id for r in runs}
