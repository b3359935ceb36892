"""The showcase stored with an experiment: which test images, at what size, with what truth, and
how the pages' data falls back to it where the data is not on the machine."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from labcore.store import showcase
from labcore.data import pipeline as data
from labcore.settings import Settings
from labcore.data.sources import DataUnavailable, folder_source, synthetic_source


def test_choice_is_fixed_by_the_seed_and_holds_every_breed():
    labels = np.repeat(np.arange(37), 10)  # sorted by breed, as the dataset's lists are
    first = showcase.choose(labels, 64, seed=3)
    assert first == showcase.choose(labels, 64, seed=3)
    assert first != showcase.choose(labels, 64, seed=4)
    assert len(first) == 64 == len(set(first)) and first == sorted(first)
    assert {int(labels[k]) for k in first} == set(range(37))
    # Fewer images than asked: all of them; more breeds than asked: that many breeds, one each.
    assert showcase.choose(labels[:25], 64, seed=0) == list(range(25))
    few = showcase.choose(labels, 5, seed=0)
    assert len({int(labels[k]) for k in few}) == 5


def test_display_size_keeps_the_shape_and_never_enlarges():
    assert showcase.display_size(1024, 768) == (512, 384)
    assert showcase.display_size(300, 2000) == (77, 512)
    assert showcase.display_size(96, 96) == (96, 96)


def test_truth_round_trips_through_the_stored_files(pets_folder, tmp_path):
    source = folder_source(pets_folder.root)
    settings = Settings(dataset="folder", data_dir=str(pets_folder.root), seed=7)
    # Head boxes as the trainval split has them: the test split of the original has none.
    for part in (source.labels, source.make, source.pick):
        part["test"] = part["trainval"]
    experiment = tmp_path / "with space" / "exp"
    experiment.mkdir(parents=True)
    showcase.write_showcase(experiment, source, settings, count=10)
    stored = showcase.load_showcase(experiment)
    index = json.loads((experiment / "showcase" / "showcase.json").read_text())
    assert index["identity"] == {"dataset": "folder", "data_dir": str(pets_folder.root), "limit": None, "seed": 7}
    pool = data.test_indices(source.labels["test"], settings)
    chosen = [int(pool[k]) for k in showcase.choose(source.labels["test"][pool], 10, 7)]
    assert [item["index"] for item in stored.items] == chosen
    originals = data.raw_examples(source, "test", chosen)
    assert {int(ex["label"]) for ex in originals} == {0, 1, 5}  # every breed of the split
    for n, original in enumerate(originals):
        got = stored.example(n)
        assert int(got["label"]) == int(original["label"])
        assert got["image"].shape == original["image"].shape  # 80 x 60: below 512, kept as is
        assert np.array_equal(got["mask"], original["mask"])  # stored losslessly, 1 bit
        assert float(got["has_box"]) == float(original["has_box"])
        assert np.allclose(got["bbox"], original["bbox"])
        assert np.abs(got["image"].astype(int) - original["image"]).mean() < 12  # JPEG at quality 85
    assert any(float(stored.example(n)["has_box"]) == 0 for n in range(10))  # Bengal_3 has no xml
    assert {int(ex["label"]) for ex in data.raw_examples(stored.source(), "test", list(range(10)))} == {0, 1, 5}


def test_a_big_photo_is_stored_at_display_size(tmp_path, monkeypatch):
    class Big:
        description = "one big photo"
        labels = {"test": np.array([4], np.int32)}

    example = {"image": np.full((1200, 900, 3), 120, np.uint8), "label": np.int32(4),
               "mask": np.zeros((1200, 900, 1), np.uint8), "bbox": np.zeros(4, np.float32),
               "has_box": np.float32(0)}
    example["mask"][100:600, 200:700] = 1

    monkeypatch.setattr(data, "raw_examples", lambda source, split, indices: [example])
    showcase.write_showcase(tmp_path, Big(), Settings(dataset="folder", data_dir="x"))
    with Image.open(tmp_path / "showcase" / "00.jpg") as photo:
        assert photo.size == (384, 512)
    got = showcase.load_showcase(tmp_path).example(0)
    assert got["mask"].shape == (512, 384, 1) and got["mask"].sum() == pytest.approx(example["mask"].sum() / 5.5, 0.02)
    assert got["bbox"].tolist() == [0, 0, 0, 0] and got["has_box"] == 0


def test_pages_use_the_data_where_it_is_here_and_the_showcase_where_it_is_not(pets_folder, tmp_path):
    settings = Settings(dataset="folder", data_dir=str(pets_folder.root), seed=1)
    experiment = tmp_path / "exp"
    experiment.mkdir()
    with pytest.raises(showcase.ShowcaseUnavailable) as err:  # nothing stored yet, and no data
        showcase.experiment_images(experiment, Settings(dataset="folder", data_dir=str(tmp_path / "gone")))
    assert "python -m labcore.store.showcase --experiment exp" in err.value.command
    assert "not on this machine" in str(err.value) and "retrain" in str(err.value)

    showcase.ensure_showcase(experiment, folder_source(pets_folder.root), settings, progress=lambda line: None)
    here = showcase.experiment_images(experiment, settings)
    assert not here.stored and here.pool == list(range(pets_folder.test))
    stamp = (experiment / "showcase" / "showcase.json").stat().st_mtime_ns
    showcase.ensure_showcase(experiment, folder_source(pets_folder.root), settings, progress=print)
    assert (experiment / "showcase" / "showcase.json").stat().st_mtime_ns == stamp  # the same data: kept

    shutil.rmtree(pets_folder.root)
    moved = tmp_path / "another root" / "exp"
    shutil.copytree(experiment, moved)
    away = showcase.experiment_images(moved, settings)
    assert away.stored and away.caption == showcase.stored_caption(pets_folder.test)
    assert away.caption.startswith("the data is not on this machine")
    assert len(away.pool) == pets_folder.test
    assert sorted(away.source.labels["test"].tolist()) == sorted(here.source.labels["test"].tolist())


def test_the_cli_writes_the_showcase_of_an_older_experiment_and_says_why_not(pets_folder, tmp_path, capsys):
    from labcore.store.experiments import record_settings

    root = tmp_path / "runs"
    record_settings(root / "older", "older", Settings(dataset="folder", data_dir=str(pets_folder.root)))
    assert showcase.main(["--experiment", "nope", "--runs-dir", str(root)]) == 1
    assert "no experiment 'nope'" in capsys.readouterr().err
    assert showcase.main(["--experiment", "older", "--runs-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"{pets_folder.test} test images" in out and showcase.load_showcase(root / "older") is not None
    record_settings(root / "gone", "gone", Settings(dataset="folder", data_dir=str(tmp_path / "missing")))
    assert showcase.main(["--experiment", "gone", "--runs-dir", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the data of 'gone' is not on this machine" in err


def test_synthetic_showcase_is_small(tmp_path):
    settings = Settings(dataset="synthetic", limit=384, seed=0)
    showcase.write_showcase(tmp_path, synthetic_source(384, 0), settings)
    stored = showcase.load_showcase(tmp_path)
    assert len(stored.items) == 64 and len(set(stored.labels.tolist())) == 37
    assert showcase.size_on_disk(tmp_path / "showcase") < 10 * 2**20


def test_a_moved_tensorflow_datasets_experiment_shows_its_showcase(tfds_pets, tmp_path):
    from labcore.data.sources import tfds_source

    settings = Settings(dataset="oxford_iiit_pet", data_dir=str(tfds_pets.data_dir), seed=2)
    experiment = tmp_path / "exp"
    experiment.mkdir()
    showcase.ensure_showcase(experiment, tfds_source(str(tfds_pets.data_dir)), settings, progress=lambda line: None)
    assert not showcase.experiment_images(experiment, settings).stored  # prepared here: the data itself
    elsewhere = Settings(dataset="oxford_iiit_pet", data_dir=str(tmp_path / "no tfds here"), seed=2)
    away = showcase.experiment_images(experiment, elsewhere)  # never a download from a page
    assert away.stored and len(away.pool) == tfds_pets.folder.test
    assert {int(ex["label"]) for ex in data.raw_examples(away.source, "test", away.pool)} == {0, 1, 5}


def test_a_new_seed_limit_or_data_makes_a_new_showcase(tmp_path):
    settings = Settings(dataset="synthetic", limit=96, seed=0)
    showcase.write_showcase(tmp_path, synthetic_source(96, 0), settings, count=8)
    assert showcase.is_current(tmp_path, settings)
    for other in (settings.with_overrides(seed=1), settings.with_overrides(limit=128),
                  Settings(dataset="folder", data_dir="/photos", limit=96, seed=0)):
        assert not showcase.is_current(tmp_path, other), other
    assert showcase.is_current(tmp_path, settings.with_overrides(epochs=3, image_size=64))  # not the data: kept
    before = [item["index"] for item in showcase.load_showcase(tmp_path).items]
    reseeded = settings.with_overrides(seed=1)
    showcase.ensure_showcase(tmp_path, synthetic_source(96, 1), reseeded, progress=lambda line: None)
    assert showcase.is_current(tmp_path, reseeded)
    assert [item["index"] for item in showcase.load_showcase(tmp_path).items] != before


def _jpeg(path, size=(40, 30)) -> str:
    Image.new("RGB", size, (90, 120, 60)).save(path, format="JPEG")
    return str(path)


@pytest.mark.parametrize("damage, reason", [
    (lambda folder, item: item.update(image=_jpeg(folder.parent.parent / "secret.jpg")),
     "its image '/"),  # an absolute path, to a real picture
    (lambda folder, item: item.update(image=os.path.relpath(_jpeg(folder.parent.parent / "secret.jpg"), folder)),
     "its image '../../secret.jpg' is not a file name of the showcase folder"),
    (lambda folder, item: (folder.joinpath("link.jpg").symlink_to(_jpeg(folder.parent.parent / "secret.jpg")),
                           item.update(image="link.jpg")),
     "its image link.jpg is not a file of the showcase folder"),
    (lambda folder, item: item.update(image=item["mask"]), "its image 00-mask.png is not a JPEG file"),
    (lambda folder, item: _jpeg(folder / item["image"], (600, 450)),
     "its pictures are not 512 px at most, or the mask is not the photo's size"),
    (lambda folder, item: item.update(label=99), "its label is not one of the 37 breeds"),
    (lambda folder, item: item.update(label=True), "its label is not one of the 37 breeds"),
    (lambda folder, item: item.update(bbox=[0, 0, 2, 1]), "its head box is not four numbers from 0 to 1"),
])
def test_a_showcase_that_names_anything_but_its_own_pictures_is_refused_with_the_reason(tmp_path, damage, reason):
    experiment = tmp_path / "runs" / "copied"
    settings = Settings(dataset="synthetic", limit=96, seed=0)
    showcase.write_showcase(experiment, synthetic_source(96, 0), settings, count=4)
    folder = experiment / "showcase"
    index = json.loads((folder / "showcase.json").read_text())
    damage(folder, index["items"][0])
    (folder / "showcase.json").write_text(json.dumps(index))
    with pytest.raises(showcase.ShowcaseDamaged) as err:
        showcase.load_showcase(experiment)
    assert str(err.value).startswith(f"showcase/showcase.json, image 1: {reason}")

    def no_data(settings):
        raise DataUnavailable("the drawn pets are switched off")

    with pytest.raises(showcase.ShowcaseUnavailable) as unavailable:  # what the pages say
        showcase.experiment_images(experiment, settings, opener=no_data)
    assert f"its stored test images cannot be used (showcase/showcase.json, image 1: {reason}" in str(unavailable.value)


def test_a_showcase_folder_that_is_a_link_elsewhere_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    showcase.write_showcase(elsewhere, synthetic_source(96, 0), Settings(dataset="synthetic", limit=96), count=4)
    (tmp_path / "copied").mkdir()
    (tmp_path / "copied" / "showcase").symlink_to(elsewhere / "showcase")
    assert showcase.load_showcase(elsewhere) is not None
    with pytest.raises(showcase.ShowcaseDamaged, match="not in the experiment's folder"):
        showcase.load_showcase(tmp_path / "copied")
