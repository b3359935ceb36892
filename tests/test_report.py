"""labcore.show.report: the overview's tables and the three questions' answers, from in-memory runs."""
import math
from pathlib import Path

import pytest

from labcore.show.report import (answers, compare_metric, fit_signs, multitask_worth_it, overview_rows,
                            pretrained_vs_scratch, report_rows, train_hint)
from labcore.store.runs import Run
from labcore.settings import PROFILES, REPORT_NUMBERS

STEADY = {"loss": [2.0, 1.0, 0.8], "val_loss": [2.0, 1.1, 1.0], "lr": [1e-3] * 3}


def make_run(run_id: str, val: dict, history: dict | None = None, store: str = "runs/demo", **config) -> Run:
    task, init = run_id.rsplit("-", 1)
    config = {"task": task, "init": init, "weights": "imagenet" if init == "pretrained" else "none",
              "settings": PROFILES["demo"].to_dict(), **config}
    return Run(run_id, Path(store) / run_id, config=config, history=history or dict(STEADY),
               metrics={"val": val, "test": {}})


def test_q1_names_the_winner_and_the_gap():
    runs = [make_run("detection-pretrained", {"label_accuracy": 0.8, "bbox_mae": 0.09}),
            make_run("detection-scratch", {"label_accuracy": 0.1, "bbox_mae": 0.12})]
    answer = pretrained_vs_scratch(runs, "detection")
    text = "\n".join(answer.lines)
    assert "label accuracy: **detection-pretrained** wins, 0.800 vs 0.100 (0.700 higher)" in text
    assert "box MAE: **detection-pretrained** wins, 0.090 vs 0.120 (0.030 lower)" in text
    assert answer.missing == []


def test_lower_is_better_metrics_can_make_scratch_the_winner():
    a = make_run("detection-pretrained", {"bbox_mae": 0.2})
    b = make_run("detection-scratch", {"bbox_mae": 0.1})
    assert compare_metric("bbox_mae", a, b).startswith("box MAE: **detection-scratch** wins, 0.100 vs 0.200")
    assert "about even" in compare_metric("bbox_mae", a, make_run("detection-scratch", {"bbox_mae": 0.201}))
    assert "no validation figure for detection-scratch" in compare_metric(
        "label_accuracy", make_run("detection-pretrained", {"label_accuracy": 0.5}), b)


def test_q2_with_one_run_missing_says_which_and_how_to_train_it():
    answer = pretrained_vs_scratch([make_run("segmentation-pretrained", {"mask_pixel_accuracy": 0.9})],
                                   "segmentation")
    text = "\n".join(answer.lines)
    assert answer.missing == ["segmentation-scratch"]
    assert "Only **segmentation-pretrained (imagenet)** is here" in text
    assert "python train.py --profile demo --only segmentation-scratch" in text
    assert "wins" not in text


def test_q2_with_no_run_at_all():
    answer = pretrained_vs_scratch([], "segmentation")
    assert answer.missing == ["segmentation-pretrained", "segmentation-scratch"]
    assert answer.lines[0].startswith("Neither segmentation run is in the store yet.")


def test_q3_as_good_within_tolerance_and_cheaper():
    runs = [make_run("detection-pretrained", {"label_accuracy": 0.80, "bbox_mae": 0.10}, parameters=10,
                     train_seconds=100),
            make_run("segmentation-pretrained", {"mask_pixel_accuracy": 0.90, "mask_miou": 0.8}, parameters=10,
                     train_seconds=100),
            make_run("multitask-pretrained", {"label_accuracy": 0.79, "bbox_mae": 0.11,
                                              "mask_pixel_accuracy": 0.91, "mask_miou": 0.8},
                     parameters=5, train_seconds=50)]
    text = "\n".join(multitask_worth_it(runs).lines)
    assert "**pretrained: as good** — nowhere more than 0.02 behind the single-task runs." in text
    assert "25% of the parameters" in text and "25% of the training time" in text
    assert "one forward pass instead of 2" in text
    assert "Not in the store: detection-scratch, segmentation-scratch, multitask-scratch" in text


def test_q3_not_as_good_names_the_metric_it_trails_on():
    runs = [make_run("detection-scratch", {"label_accuracy": 0.50, "bbox_mae": 0.10}),
            make_run("multitask-scratch", {"label_accuracy": 0.40, "bbox_mae": 0.10})]
    text = "\n".join(multitask_worth_it(runs).lines)
    assert "**scratch: not as good**" in text and "label accuracy (by 0.100)" in text
    assert "covers labels and boxes only" in text


def test_q3_says_where_the_multitask_model_is_better():
    runs = [make_run("segmentation-scratch", {"mask_pixel_accuracy": 0.80, "mask_miou": 0.70}),
            make_run("multitask-scratch", {"mask_pixel_accuracy": 0.90, "mask_miou": 0.71})]
    assert "**scratch: as good** — nowhere more than 0.02 behind the single-task run, better on mask pixel accuracy." \
        in "\n".join(multitask_worth_it(runs).lines)


def test_q3_reads_box_mae_as_lower_is_better():
    single = make_run("detection-pretrained", {"label_accuracy": 0.80, "bbox_mae": 0.10})
    worse = make_run("multitask-pretrained", {"label_accuracy": 0.80, "bbox_mae": 0.15})
    text = "\n".join(multitask_worth_it([single, worse]).lines)
    assert "**pretrained: not as good** — the multi-task model trails on box MAE (by 0.050)." in text
    assert "box MAE: **detection-pretrained** wins, 0.100 vs 0.150 (0.050 lower)" in text
    better = make_run("multitask-pretrained", {"label_accuracy": 0.80, "bbox_mae": 0.05})
    text = "\n".join(multitask_worth_it([single, better]).lines)
    assert "**pretrained: as good** — nowhere more than 0.02 behind the single-task run, better on box MAE." in text


def test_a_run_whose_val_loss_is_nan_at_every_epoch_is_answered_not_a_crash():
    nan = math.nan
    diverged = make_run("detection-scratch", {"label_accuracy": 0.03},
                        {"loss": [nan, nan, nan], "val_loss": [nan, nan, nan], "val_bbox_loss": [nan, nan, nan]},
                        best_epoch=None)
    runs = [make_run("detection-pretrained", {"label_accuracy": 0.8, "bbox_mae": 0.1}), diverged,
            make_run("multitask-scratch", {"label_accuracy": 0.05, "bbox_mae": 0.2}, dict(diverged.history))]
    assert fit_signs(diverged) == ["validation loss is not a number at any epoch: the run diverged, "
                                   "so there is no best epoch"]
    text = "\n".join(line for answer in answers(runs) for line in answer.lines)
    assert "**detection-scratch**: validation loss is not a number at any epoch" in text
    assert overview_rows(runs)[1]["best epoch"] is None
    by_metric = {(r["task"], r["metric"]): r for r in report_rows(runs)}
    assert by_metric[("multitask", "box loss (val) ~")]["ours scratch"] is None
    # A NaN first epoch is skipped, not taken as the best.
    partly = make_run("detection-scratch", {}, {"loss": [nan, 1.0, 0.5], "val_loss": [nan, 1.0, 0.6]})
    assert fit_signs(partly) == ["still improving at its last epoch (3): more epochs would likely help"]


def test_q3_without_a_multitask_run_says_what_it_needs():
    answer = multitask_worth_it([make_run("detection-pretrained", {"label_accuracy": 0.5})])
    assert answer.lines[0].startswith("This needs a multitask run")
    assert "multitask-pretrained" in answer.missing


def test_fit_signs_read_the_curves():
    overfit = make_run("detection-scratch", {}, {"loss": [2, 1, 0.5, 0.2], "val_loss": [2, 1, 1.3, 1.6]})
    assert fit_signs(overfit)[0].startswith("over-fitting: val loss was lowest at epoch 2 of 4 and has risen 60%")
    flat = make_run("detection-scratch", {}, {"loss": [3.0, 2.95, 2.9], "val_loss": [3.0, 3.0, 3.0]})
    assert any(s.startswith("under-fitting: training loss fell only 3%") for s in fit_signs(flat))
    improving = make_run("detection-scratch", {}, {"loss": [2, 1, 0.5], "val_loss": [2, 1.5, 1.0]})
    assert fit_signs(improving) == ["still improving at its last epoch (3): more epochs would likely help"]
    assert fit_signs(make_run("detection-scratch", {}, {"loss": [1.0], "val_loss": [1.0]})) == [
        "too few epochs to judge its fit"]
    assert fit_signs(make_run("detection-scratch", {}, {"loss": [2, 1, 0.9], "val_loss": [2, 1, 1.02]})) == [
        "no clear sign of over- or under-fitting"]


def test_overview_rows_one_per_run_with_blanks_for_absent_metrics():
    runs = [make_run("detection-pretrained", {"label_accuracy": 0.8}, parameters=123, train_seconds=90,
                     best_epoch=2, backbone="EfficientNetB3"),
            make_run("segmentation-scratch", {"mask_dice": 0.7})]
    rows = overview_rows(runs)
    assert [r["run"] for r in rows] == ["detection-pretrained (imagenet)", "segmentation-scratch"]
    assert rows[0]["label accuracy"] == 0.8 and rows[0]["mask Dice"] is None
    assert rows[0]["training time (min)"] == 1.5 and rows[0]["epochs run"] == 3 and rows[0]["best epoch"] == 2
    assert rows[1]["mask Dice"] == 0.7 and rows[1]["parameters"] is None


def test_report_rows_put_ours_beside_the_report_and_read_box_loss_at_the_best_epoch():
    history = {"loss": [1, 1, 1], "val_loss": [3, 1, 2], "val_bbox_loss": [0.3, 0.1, 0.2]}
    rows = report_rows([make_run("multitask-pretrained", {"label_accuracy": 0.7}, history)])
    assert len(rows) == len(REPORT_NUMBERS)
    by_metric = {(r["task"], r["metric"]): r for r in rows}
    box = by_metric[("multitask", "box loss (val) ~")]
    assert box["ours pretrained"] == pytest.approx(0.1) and box["ours scratch"] is None
    assert box["report pretrained"] == 0.09
    assert by_metric[("multitask", "label accuracy ~")]["ours pretrained"] == 0.7
    assert by_metric[("detection", "label accuracy")]["ours pretrained"] is None


def test_train_hint_trains_into_the_same_experiment_with_its_settings():
    quick64 = PROFILES["quick"].with_overrides(image_size=64).to_dict()
    runs = [make_run("detection-pretrained", {}, store="/data/lab/pets", settings=quick64)]
    assert train_hint(runs, ["detection-scratch"]) == (
        "Train it with `python train.py --profile quick --image-size 64 --name pets --runs-dir /data/lab "
        "--only detection-scratch`.")
    demo = [make_run("detection-pretrained", {}, store="runs/demo", settings=PROFILES["demo"].to_dict())]
    assert train_hint(demo, ["detection-scratch", "segmentation-scratch"]) == (
        "Train them with `python train.py --profile demo --only detection-scratch segmentation-scratch`.")


def test_answers_are_the_three_questions_even_for_an_empty_store():
    assert [a.question.split()[0] for a in answers([])] == ["Does", "Does", "Is"]
