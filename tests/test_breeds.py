"""Per-breed results: confusion.json written by training, and what follows from it."""
import json

import numpy as np
import pytest

from labcore.show.breeds import accuracy_figure, confusion_figure
from labcore.store.confusion import IS_CAT, Confusion, ConfusionUnavailable, load_confusion
from labcore.settings import BREEDS, NUM_CLASSES, breed_name


def test_a_tiny_runs_confusion_counts_match_a_brute_force_count(demo_runs):
    """Recount the test split's (true, predicted) pairs of a stored run one by one, from its own
    model and data, and compare with what training stored."""
    import tensorflow as tf

    from labcore.data.pipeline import make_splits
    from labcore.data.sources import open_source
    from labcore.show.examples import settings_from_config
    from labcore.store.runs import load_model, load_run

    run = load_run(demo_runs / "detection-scratch")
    settings = settings_from_config(run.config)
    splits = make_splits(open_source(settings), settings, run.task, run.config["backbone"])
    model = load_model(run)
    pairs = []
    for inputs, targets in splits.test:
        predicted = np.argmax(model(inputs, training=False)["label"].numpy(), axis=-1)
        pairs += list(zip(targets["label"].numpy().tolist(), predicted.tolist()))
    brute = [[0] * NUM_CLASSES for _ in range(NUM_CLASSES)]
    for true, pred in pairs:
        brute[true][pred] += 1

    stored = load_confusion(run.path)
    assert set(stored) == {"val", "test"}
    test = stored["test"]
    assert test.counts.tolist() == brute
    assert test.total == len(pairs) == run.config["dataset"]["test"]
    assert test.accuracy() == pytest.approx(run.metrics["test"]["label_accuracy"])
    # Per-breed accuracy and the most confused pairs follow from the same pairs.
    for breed in range(NUM_CLASSES):
        mine = [p for t, p in pairs if t == breed]
        if mine:
            assert test.per_breed_accuracy()[breed] == pytest.approx(np.mean([p == breed for p in mine]))
    wrong = {}
    for t, p in pairs:
        if t != p:
            wrong[(t, p)] = wrong.get((t, p), 0) + 1
    top = test.top_confused(10)
    assert [n for _, _, n in top] == sorted(wrong.values(), reverse=True)[:10]
    for true_name, pred_name, n in top:
        t, p = ([breed_name(i) for i in range(NUM_CLASSES)].index(x) for x in (true_name, pred_name))
        assert wrong[(t, p)] == n
    tf.keras.backend.clear_session()


def test_mask_only_runs_have_no_confusion_file(demo_runs):
    assert not (demo_runs / "segmentation-scratch" / "confusion.json").exists()
    assert (demo_runs / "multitask-scratch" / "confusion.json").exists()


def counts_with(*cells):
    counts = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for true, pred, n in cells:
        counts[true, pred] += n
    return Confusion(counts)


def test_most_confused_pairs_are_named_and_ordered():
    pit, staff = BREEDS.index("american_pit_bull_terrier"), BREEDS.index("staffordshire_bull_terrier")
    c = counts_with((pit, staff, 12), (pit, pit, 30), (0, 5, 3), (5, 0, 3), (7, 7, 9))
    assert c.top_confused(10) == [("American Pit Bull Terrier", "Staffordshire Bull Terrier", 12),
                                  ("Abyssinian", "Bengal", 3), ("Bengal", "Abyssinian", 3)]
    assert c.top_confused(1) == [("American Pit Bull Terrier", "Staffordshire Bull Terrier", 12)]
    assert counts_with((3, 3, 5)).top_confused(10) == []


def test_cat_and_dog_accuracy():
    assert int(IS_CAT.sum()) == 12 and IS_CAT[BREEDS.index("Abyssinian")] and not IS_CAT[BREEDS.index("pug")]
    abyssinian, bengal, pug = BREEDS.index("Abyssinian"), BREEDS.index("Bengal"), BREEDS.index("pug")
    # Cats: 3 right, 1 taken for another cat; dogs: 1 right, 1 taken for a cat.
    c = counts_with((abyssinian, abyssinian, 3), (abyssinian, bengal, 1), (pug, pug, 1), (pug, bengal, 1))
    split = c.cat_dog_accuracy()
    assert split["cat_accuracy"] == pytest.approx(3 / 4)
    assert split["dog_accuracy"] == pytest.approx(1 / 2)
    assert split["species_accuracy"] == pytest.approx(5 / 6)
    accuracy = c.per_breed_accuracy()
    assert accuracy[abyssinian] == pytest.approx(0.75) and np.isnan(accuracy[bengal])


def test_figures_name_every_breed_on_hover():
    c = counts_with((0, 0, 2), (1, 0, 1), (1, 1, 1))
    bars = accuracy_figure(c, "t")
    # Sorted best first (Abyssinian 2/2, American Bulldog 1/2); breeds without images left out.
    assert list(bars.layout.xaxis.categoryarray) == ["Abyssinian", "American Bulldog"]
    assert {trace.name: list(trace.x) for trace in bars.data} == {"cat": ["Abyssinian"], "dog": ["American Bulldog"]}
    heat = confusion_figure(c, "t")
    assert list(heat.data[0].x) == list(heat.data[0].y) == ["Abyssinian", "American Bulldog"]
    assert np.asarray(heat.data[0].z).tolist() == [[2, 0], [1, 1]]


def test_a_three_breed_heat_map_has_exactly_the_breeds_present_and_names_them():
    abyssinian, bulldog, bengal, pug = (BREEDS.index(b) for b in ("Abyssinian", "american_bulldog", "Bengal", "pug"))
    c = counts_with((abyssinian, abyssinian, 4), (bulldog, bengal, 2), (bengal, bengal, 3), (bengal, abyssinian, 1))
    heat = confusion_figure(c, "t")
    names = ["Abyssinian", "American Bulldog", "Bengal"]  # class order
    assert list(heat.data[0].y) == list(heat.data[0].x) == names
    assert np.asarray(heat.data[0].z).tolist() == [[4, 0, 0], [0, 0, 2], [1, 0, 3]]
    assert heat.layout.xaxis.showticklabels is not False and heat.layout.yaxis.showticklabels is not False
    assert c.present() == sorted([abyssinian, bulldog, bengal])
    # A prediction outside the breeds present lands in one more column, so every row still sums up.
    c = counts_with((abyssinian, abyssinian, 4), (bulldog, pug, 2), (bengal, bengal, 3))
    heat = confusion_figure(c, "t")
    assert list(heat.data[0].y) == names and list(heat.data[0].x) == names + ["other breeds"]
    assert np.asarray(heat.data[0].z).tolist() == [[4, 0, 0, 0], [0, 0, 0, 2], [0, 0, 3, 0]]
    bars = accuracy_figure(c, "t")
    assert sorted(bars.layout.xaxis.categoryarray) == sorted(names)


def test_a_37_breed_heat_map_names_all_of_them():
    c = counts_with(*((i, (i + 1) % NUM_CLASSES if i % 5 == 0 else i, 2) for i in range(NUM_CLASSES)))
    heat = confusion_figure(c, "t")
    assert list(heat.data[0].x) == list(heat.data[0].y) == [breed_name(i) for i in range(NUM_CLASSES)]
    assert np.asarray(heat.data[0].z).tolist() == c.counts.tolist()


def test_missing_or_damaged_confusion_says_retrain(tmp_path):
    with pytest.raises(ConfusionUnavailable, match="retrain"):
        load_confusion(tmp_path)
    (tmp_path / "confusion.json").write_text("{ not json")
    with pytest.raises(ConfusionUnavailable, match="unreadable"):
        load_confusion(tmp_path)
    (tmp_path / "confusion.json").write_text(json.dumps({"classes": list(BREEDS), "splits": {"val": [[1, 2]]}}))
    with pytest.raises(ConfusionUnavailable, match="37x37"):
        load_confusion(tmp_path)
