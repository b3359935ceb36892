"""labcore.store.experiments: the experiments under a runs root, their provenance, and what keeps
their numbers from standing beside the report's."""
import json
import shlex
import shutil

import pytest

import train
from labcore.show.efficiency import sweep_command
from labcore.store.experiments import (app_command, check_name, demo_command, differences, list_experiments,
                                 load_experiment, not_comparable, record_settings, store_signature, train_command)
from labcore.settings import PROFILES, RUN_IDS


def test_differences_name_each_setting_and_ignore_how_it_was_computed():
    stored = PROFILES["quick"].with_overrides(image_size=128).to_dict()
    asked = PROFILES["quick"].with_overrides(image_size=64, weights_dir="/elsewhere")
    assert differences(stored, asked) == ["image_size: 128 stored, 64 asked"]
    assert differences(stored, PROFILES["quick"].with_overrides(image_size=128, weights_dir="/x")) == []
    # A run stored before a setting existed counts it at its default.
    old = {k: v for k, v in PROFILES["report"].to_dict().items() if k != "mask_classes"}
    assert differences(old, PROFILES["report"]) == []
    assert differences(old, PROFILES["report"].with_overrides(mask_classes=2)) == ["mask_classes: 37 stored, 2 asked"]


@pytest.mark.parametrize("settings, expected", [
    (PROFILES["report"], []),
    (PROFILES["demo"], ["trained on drawn pets, not photos", "64 px images, not 224",
                        "pretrained runs start from synthetic-pretext weights, not ImageNet",
                        "at most 6 epochs, not up to 50"]),
    (PROFILES["report"].with_overrides(dataset="folder", data_dir="/p"), ["150 of the dataset's 3,680 trainval images"]),
    (PROFILES["report"].with_overrides(weights="synthetic-pretext"),
     ["pretrained runs start from synthetic-pretext weights, not ImageNet"]),
    (PROFILES["report"].with_overrides(epochs=1), ["at most 1 epoch, not up to 50"]),
    (PROFILES["report"].with_overrides(extra={"backbone": "tiny"}), ["tiny stand-in backbones (for tests)"]),
    (PROFILES["demo"].with_overrides(image_size=224, epochs=50, weights="imagenet", extra={"backbone": "tiny"}),
     ["trained on drawn pets, not photos", "tiny stand-in backbones (for tests)"]),
])
def test_not_comparable_gives_every_reason_and_none_for_the_reports_settings(settings, expected):
    from labcore.store.experiments import Provenance

    counts = {"train": 120, "val": 30, "test": 150} if settings.dataset == "folder" else {
        "train": 2944, "val": 736, "test": 3669}
    assert not_comparable(Provenance.of(settings.to_dict(), counts, None)) == expected


# Paths as people name them: spaces, both quotes, a dollar sign and a glob a shell would expand.
AWKWARD_DIR = "/home/me/My Pets/it's \"theirs\" $HOME *"
AWKWARD_ROOT = "/srv/lab runs/o'brien"


@pytest.mark.parametrize("settings, name, root", [
    (PROFILES["demo"], "demo", "/lab/runs"),
    (PROFILES["quick"].with_overrides(dataset="folder", data_dir=AWKWARD_DIR, image_size=64, epochs=1),
     "my.pets_v-2", AWKWARD_ROOT),
    (PROFILES["report"].with_overrides(fine_tune_epochs=5, mask_classes=2, seed=7, jit_compile=True), "ft",
     AWKWARD_ROOT),
    (PROFILES["demo"].with_overrides(limit=64, epochs=2, image_size=32, extra={"backbone": "tiny"}), "demo", "runs"),
])
def test_train_command_gives_back_the_same_settings_through_train_py(settings, name, root):
    assert check_name(name) is None  # the awkward one is still a name train.py takes
    command = train_command(settings.to_dict(), name, root, ["detection-scratch"])
    words = shlex.split(command)  # what a POSIX shell hands train.py
    assert words[:2] == ["python", "train.py"]
    args = train.parse_args(words[2:])
    assert train.settings_from_args(args) == settings
    assert args.name == name and args.runs_dir == root and args.only == ["detection-scratch"]


def test_commands_leave_out_the_default_runs_root_however_it_is_written():
    """The app holds its root as an absolute path (labcore.store.runs.resolve_runs_dir): the
    project's runs/ is still the default, which the commands it shows leave out."""
    from conftest import ROOT

    assert demo_command(ROOT / "runs") == demo_command("runs") == "python train.py --profile demo"
    assert app_command(str(ROOT / "runs")) == "streamlit run app.py"
    assert demo_command(ROOT / "runs2") == f"python train.py --profile demo --runs-dir {ROOT / 'runs2'}"


@pytest.mark.parametrize("root", [AWKWARD_ROOT, "runs", None])
def test_the_demo_sweep_and_app_commands_keep_an_awkward_runs_root_one_word(root):
    demo = shlex.split(demo_command(root))
    assert demo[:2] == ["python", "train.py"]
    args = train.parse_args(demo[2:])
    assert args.profile == "demo" and args.runs_dir == (root or "runs")
    app = shlex.split(app_command(root))
    assert app[:3] == ["streamlit", "run", "app.py"]
    assert app[3:] == ([] if root in ("runs", None) else ["--", "--runs-dir", root])
    sweep = train.parse_args(shlex.split(sweep_command(root))[2:])
    assert sweep.sweep_limit == [96, 192, 384] and sweep.runs_dir == (root or "runs")


def test_names_are_plain_folder_names():
    assert check_name("report-finetune") is None
    for bad in ("../up", ".hidden", "a/b", "", "detection-scratch", "x" * 65):
        assert check_name(bad), bad


def test_the_root_lists_experiments_newest_first_and_an_older_flat_store(demo_runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(demo_runs, root / "old")
    shutil.copytree(demo_runs, root / "new")
    for run_id in RUN_IDS:  # the older layout: runs right in the root
        shutil.copytree(demo_runs / run_id, root / run_id)
    config = root / "new" / "detection-scratch" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "finished": "2999-01-01T00:00:00+00:00"}))
    (root / "holiday-photos").mkdir()
    found = list_experiments(root)
    assert [(e.name, e.legacy) for e in found][0] == ("new", False)
    assert {(e.name, e.legacy) for e in found} == {("new", False), ("old", False), ("runs", True)}
    legacy = next(e for e in found if e.legacy)
    assert legacy.key == "." and "(older layout)" in legacy.describe()
    assert [r.run_id for r in legacy.runs] == list(RUN_IDS)
    assert found[0].describe().startswith("new — drawn pets, 32 px, 2 epochs, synthetic-pretext weights, 2999-01-01")


def test_runs_with_other_settings_than_their_experiment_are_named(demo_runs, tmp_path):
    copy = tmp_path / "demo"
    shutil.copytree(demo_runs, copy)
    settings = load_experiment(copy).settings
    assert load_experiment(copy).odd_runs() == {}
    config_path = copy / "segmentation-scratch" / "config.json"
    config = json.loads(config_path.read_text())
    config["settings"]["image_size"] = 64
    config_path.write_text(json.dumps(config))
    assert load_experiment(copy).odd_runs() == {"segmentation-scratch": ["image_size: 64 stored, 32 asked"]}
    assert load_experiment(copy).settings == settings  # experiment.json, not the odd run


def test_an_experiment_with_no_finished_run_is_listed_and_the_signature_follows_writes(tmp_path):
    record_settings(tmp_path / "quick", "quick", PROFILES["quick"])
    before = store_signature(tmp_path)
    [found] = list_experiments(tmp_path)
    assert found.name == "quick" and found.runs == [] and "no finished run" not in found.describe()
    (tmp_path / "quick" / ".partial" / "detection-scratch").mkdir(parents=True)
    assert store_signature(tmp_path) != before
    assert list_experiments(tmp_path)[0].partial == ["detection-scratch"]


def test_a_forced_retrain_changes_the_signature_and_the_app_reads_the_new_run(demo_runs, tmp_path, monkeypatch):
    """`train.py --force` writes the run anew in .partial/ and swaps it in under the same name:
    the app's cached experiments (keyed by the signature) must give the new run, not the old."""
    from ui import experiments
    from labcore.store.runs import RUNS_DIR_ENV

    root = tmp_path / "runs"
    shutil.copytree(demo_runs, root / "demo")
    monkeypatch.setenv(RUNS_DIR_ENV, str(root))
    [old] = [r for r in experiments.experiments()[0].runs if r.run_id == "detection-scratch"]
    before = store_signature(root)
    final = root / "demo" / "detection-scratch"
    work = root / "demo" / ".partial" / "detection-scratch"
    shutil.copytree(final, work, copy_function=shutil.copyfile)  # freshly written files, as training writes them
    metrics = json.loads((work / "metrics.json").read_text())
    metrics["val"]["label_accuracy"] = 0.123456
    (work / "metrics.json").write_text(json.dumps(metrics))
    shutil.rmtree(final)
    work.rename(final)  # what train_run does with a finished run
    assert store_signature(root) != before
    experiments.forget_store_look()  # as after the shared look's second: the pages read the store again
    [new] = [r for r in experiments.experiments()[0].runs if r.run_id == "detection-scratch"]
    assert old.metrics["val"]["label_accuracy"] != 0.123456 and new.metrics["val"]["label_accuracy"] == 0.123456


def damage(path, edit) -> None:
    """Rewrite a json file through `edit` (which changes the loaded value in place)."""
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_a_copied_folder_s_bad_parts_are_left_out_and_named_one_line_each(demo_runs, tmp_path):
    """What a USB stick may bring: experiment.json's settings out of range, a run whose config
    cannot be that run's, a plan naming a path as a run; the rest of the experiment stays."""
    from labcore.store import inflight

    copy = tmp_path / "runs" / "copied"
    shutil.copytree(demo_runs, copy)
    good = load_experiment(copy)
    assert good.problems == [] and len(good.runs) == 6
    damage(copy / "experiment.json", lambda e: e["settings"].update(image_size=40000))
    damage(copy / "detection-scratch" / "config.json", lambda c: c["settings"].update(image_size=40000))
    damage(copy / "segmentation-pretrained" / "config.json", lambda c: c.update(settings="huge"))
    inflight.write_plan(copy, one_run_plan(), [["detection-scratch"]])
    damage(copy / ".partial" / "plan.json", lambda p: p.update(lanes=[["../../../etc"]]))
    found = load_experiment(copy)
    assert found.problems == [
        "detection-scratch/config.json: settings: image_size 40000: must be a multiple of 32 from 32 to 1024; "
        "the run is left out",
        "segmentation-pretrained/config.json: settings is a str; the run is left out",
        "experiment.json: image_size 40000: must be a multiple of 32 from 32 to 1024; it is ignored",
        ".partial/plan.json cannot be read or names runs that are not the six; it is ignored"]
    assert [r.run_id for r in found.runs] == [r for r in RUN_IDS if r not in ("detection-scratch",
                                                                                 "segmentation-pretrained")]
    assert found.settings == good.settings  # the first usable run's, in place of experiment.json's
    assert found.describe().startswith("copied (damaged) — drawn pets, 32 px")
    assert inflight.read_training(copy) is None
    assert inflight.trainings(copy.parent) == []


@pytest.mark.parametrize("plan_edit", [
    lambda p: p["runs"].update({"../x": {"seconds": 1.0, "epochs": 1}}),
    lambda p: p.update(pid=-1),
    lambda p: p.update(pid=10**30),
    lambda p: p.update(started=float("nan")),
    lambda p: p["runs"]["detection-scratch"].update(epochs=-3),
    lambda p: p["runs"]["detection-scratch"].update(seconds=float("inf")),
])
def test_a_plan_with_values_out_of_reason_is_ignored(tmp_path, plan_edit):
    from labcore.store import inflight

    experiment = tmp_path / "runs" / "demo"
    inflight.write_plan(experiment, one_run_plan(), [["detection-scratch"]])
    assert inflight.read_training(experiment).state == "training"
    damage(experiment / ".partial" / "plan.json", plan_edit)
    assert inflight.read_training(experiment) is None
    assert load_experiment(experiment).problems[-1].startswith(".partial/plan.json cannot be read")


def one_run_plan():
    """A trainer's estimate of one run, detection-scratch: 60 s, 6 epochs."""
    from labcore.train.estimate import PlanEstimate, RunEstimate

    return PlanEstimate([RunEstimate("detection-scratch", 60.0, 0, 0, 0, 0, 6, 0)], "this CPU (2 cores)", 1.0, cores=2)
