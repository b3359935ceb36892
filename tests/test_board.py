"""The class board's logic (labcore.show.board): entries per session and photo, running tallies,
thumbnails only on opt-in and at most 60, the CSV, and what a record or a draw costs."""
import csv
import io
import time

import numpy as np
from PIL import Image

from labcore.settings import BREEDS, breed_name
from labcore.show.board import (BREED_RUNS, MAX_THUMBNAILS, MIXED, NOT_SURE, Board, breed_choices, mosaic, share,
                                tally_csv, thumbnail)


def top5(*first: int) -> tuple[int, ...]:
    """Five breeds, best first, starting with `first`."""
    rest = [k for k in range(len(BREEDS)) if k not in first]
    return (*first, *rest)[:5]


def photo(seed: int = 0) -> bytes:
    return thumbnail(Image.fromarray(np.random.default_rng(seed).integers(0, 255, (120, 160, 3), np.uint8)))


def test_the_choices_are_the_37_breeds_then_not_sure_and_mixed():
    choices = breed_choices()
    assert sorted(c for c in choices if isinstance(c, int)) == list(range(37))
    assert choices[-2:] == [NOT_SURE, MIXED]
    names = [breed_name(c).lower() for c in choices[:-2]]
    assert names == sorted(names)


def test_accuracy_per_head_counts_labelled_pets_only():
    board = Board()
    board.record("s1", "p1", {"detection-pretrained": top5(5), "detection-scratch": top5(1, 2, 3, 4, 6)}, breed=5)
    # Breed 5 fifth for the pretrained run: a top-5 hit, however far down.
    board.record("s2", "p2", {"detection-pretrained": top5(7, 8, 9, 10, 5), "detection-scratch": top5(9)}, breed=5)
    board.record("s3", "p3", {"detection-pretrained": top5(5), "detection-scratch": top5(5)}, breed=NOT_SURE)
    board.record("s4", "p4", {"detection-pretrained": top5(5), "detection-scratch": top5(5)})
    tally = board.tally()
    assert (tally.pets, tally.labelled) == (4, 2)
    pre, scr = tally.scores["detection-pretrained"], tally.scores["detection-scratch"]
    assert (pre.labelled, pre.top1, pre.top5) == (2, 1, 2)
    assert (scr.labelled, scr.top1, scr.top5) == (2, 0, 0)
    assert tally.accuracy_rows()[0] == {"task": "detection", "pretrained top-1": "0.50 (1 of 2)",
                                        "pretrained top-5": "1.00 (2 of 2)", "scratch top-1": "0.00 (0 of 2)",
                                        "scratch top-5": "0.00 (0 of 2)"}
    # The top breed counts every pet, labelled or not.
    assert tally.top_breed_rows()[0] == {"model": "detection-pretrained",
                                         "its top breed most often": f"{breed_name(5)} (3 of 4)"}


def test_a_repeated_photo_counts_once_and_a_changed_breed_updates_its_entry():
    board = Board()
    answer = {"multitask-pretrained": top5(3)}
    assert board.record("s1", "p1", answer, breed=3)
    version = board.tally().version
    assert not board.record("s1", "p1", answer, breed=3)  # the same again: nothing changes
    assert board.tally().version == version
    assert board.record("s1", "p1", answer, breed=4)  # the student changes their mind
    tally = board.tally()
    assert (tally.pets, tally.labelled) == (1, 1)
    assert tally.scores["multitask-pretrained"].top1 == 0
    assert tally.top_breeds["multitask-pretrained"][3] == 1
    board.record("s1", "p1", answer, breed=MIXED)  # no longer labelled: out of the accuracy
    assert board.tally().scores["multitask-pretrained"].labelled == 0
    board.record("s2", "p1", answer, breed=3)  # another student, the same picture: another pet
    board.record("s1", "p2", answer, breed=3)  # the same student, another photo
    assert board.tally().pets == 3


def test_no_thumbnail_without_the_opt_in_and_at_most_60_kept():
    board = Board()
    board.record("s1", "p1", {}, thumbnail=None)
    assert board.tally().thumbnails == ()
    board.record("s1", "p1", {}, thumbnail=photo(1))  # opted in afterwards
    assert board.tally().thumbnails == (photo(1),)
    board.record("s1", "p1", {}, thumbnail=None)  # and out again: the photo leaves the board
    assert board.tally().thumbnails == ()
    for n in range(MAX_THUMBNAILS + 5):
        board.record(f"s{n}", "p", {}, thumbnail=photo(n))
    kept = board.tally().thumbnails
    assert len(kept) == MAX_THUMBNAILS and kept[0] == photo(5) and kept[-1] == photo(MAX_THUMBNAILS + 4)
    sheet = Image.open(io.BytesIO(mosaic(kept, columns=12)))
    assert sheet.size == (12 * 100, 5 * 100)


def test_reset_empties_the_board_and_takes_back_a_reveal():
    board = Board()
    board.set_mode("reveal")
    board.record("s1", "p1", {"detection-pretrained": top5(1)}, breed=1, thumbnail=photo())
    assert not board.tally().shown
    board.reveal()
    assert board.tally().shown
    board.reset()
    tally = board.tally()
    assert (tally.pets, tally.labelled, tally.thumbnails, tally.scores, tally.mode, tally.shown) == \
           (0, 0, (), {}, "reveal", False)


def test_the_csv_has_one_row_per_breed_head_and_no_photos():
    board = Board()
    board.record("s1", "p1", {run_id: top5(n) for n, run_id in enumerate(BREED_RUNS)}, breed=0, thumbnail=photo())
    rows = list(csv.DictReader(io.StringIO(tally_csv(board.tally()))))
    assert [r["model"] for r in rows] == list(BREED_RUNS)
    assert rows[0]["top-1 accuracy"] == "1.0000" and rows[1]["top-1 accuracy"] == "0.0000"
    assert rows[1]["top-5 right"] == "1"  # breed 0 comes second in top5(1)
    assert all(set(r) == set(rows[0]) and "thumbnail" not in " ".join(r) for r in rows)


def test_a_record_costs_the_same_with_5_or_20000_uploads_on_the_board():
    board = Board()
    answer = {run_id: top5(n) for n, run_id in enumerate(BREED_RUNS)}

    def per_record(start: int, count: int = 2000) -> float:
        began = time.perf_counter()
        for n in range(start, start + count):
            board.record(f"s{n}", "p", answer, breed=n % 37)
        return (time.perf_counter() - began) / count

    early = min(per_record(n * 2000) for n in range(2))
    for n in range(2, 10):
        per_record(n * 2000)
    late = min(per_record(n * 2000) for n in range(10, 12))
    assert late < 3 * early, (early, late)


def test_the_board_draws_500_uploads_in_under_a_second():
    board = Board()
    for n in range(500):
        board.record(f"s{n}", "p", {r: top5(n % 37) for r in BREED_RUNS}, breed=n % 39 if n % 39 < 37 else NOT_SURE,
                     thumbnail=photo(n % 7))
    began = time.perf_counter()
    tally = board.tally()
    drawn = (tally.top_breed_rows(), tally.accuracy_rows(), tally_csv(tally), mosaic(tally.thumbnails))
    assert time.perf_counter() - began < 1.0
    assert tally.pets == 500 and len(drawn[0]) == len(BREED_RUNS)


def test_share_names_the_count_it_rests_on():
    assert share(3, 8) == "0.38 (3 of 8)"
    assert share(0, 0) == "— (no labelled pets)"
