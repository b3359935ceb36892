"""`train.py --sweep-limit`: one experiment per training-set size, resumable, the whole sweep
estimated first, sizes larger than the data refused."""
import json

import pytest

from conftest import TINY_DEMO_ARGS, run_train
from labcore.store.experiments import differences, load_experiment
from labcore.store.runs import list_runs
from labcore.settings import RUN_IDS, settings_from_dict


def test_an_interrupted_sweep_trains_only_the_missing_size(sweep_store, demo_runs):
    out = sweep_store.resumed.stdout
    assert "sweep 'demo': 2 sizes (64, 96 images, the --limit of each), 1 already finished" in out
    # The estimate covers what the sweep still has to train: demo-n96's six runs, nothing else.
    estimate = next(line for line in out.splitlines() if line.startswith("sweep estimate: about"))
    assert "for 6 run(s) in 1 experiment(s)" in estimate and "demo-n96" in estimate and "demo-n64" not in estimate
    assert out.count("already finished with these settings in") == 6
    assert all(f"[{r}] already finished with these settings in {sweep_store.root / 'demo-n64' / r}" in out
               for r in RUN_IDS)
    assert "experiment 'demo-n96' in" in out and "experiment 'demo-n64' in" not in out
    for run_id in RUN_IDS:  # the finished size was left as it was
        assert (sweep_store.root / "demo-n64" / run_id / "metrics.json").read_text() == \
            (demo_runs / run_id / "metrics.json").read_text()


def test_a_sweep_stores_twelve_runs_in_two_experiments_that_differ_only_in_limit(sweep_store):
    small, large = (load_experiment(sweep_store.root / f"demo-n{n}") for n in (64, 96))
    for experiment, limit, train in ((small, 64, 51), (large, 96, 77)):
        runs = list_runs(experiment.path)
        assert [r.run_id for r in runs if r.has_model] == list(RUN_IDS)
        assert {r.config["dataset"]["train"] for r in runs} == {train}
        assert {r.config["settings"]["limit"] for r in runs} == {limit}
    assert differences(small.settings, settings_from_dict(large.settings)) == ["limit: 64 stored, 96 asked"]
    # Every pretrained run of the sweep starts from the same pretext backbone (one file, linked).
    for name in ("tiny-32px-768x4-seed42.weights.npz",):
        files = [sweep_store.root / f"demo-n{n}" / ".pretext" / name for n in (64, 96)]
        assert files[0].stat().st_ino == files[1].stat().st_ino


def test_sizes_larger_than_the_data_are_refused_with_its_size(pets_folder, tmp_path):
    args = ["--profile", "quick", "--tiny-backbones", "--dataset", "folder", "--data-dir", str(pets_folder.root),
            "--image-size", "32", "--epochs", "1", "--sweep-limit", "12", "40", "30"]
    result = run_train(args, tmp_path / "runs", timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"train.py: --sweep-limit 30, 40: larger than the data, which has {pets_folder.trainval} "
                    f"trainval images (folder); the largest size is {pets_folder.trainval}")
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written


@pytest.mark.parametrize("extra, message", [
    (["--sweep-limit", "96", "0"], "--sweep-limit sizes must be positive"),
    (["--sweep-limit", "96", "--limit", "64"], "give one or the other"),
    (["--sweep-limit", "96", "--name", "x" * 62], "must be 1-64 letters"),  # x...x-n96 is too long
])
def test_bad_sweep_flags_are_refused_in_one_line(extra, message, capsys):
    import train

    with pytest.raises(SystemExit) as stopped:
        train.parse_args(["--profile", "demo", *extra])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_a_finished_sweep_trains_nothing_and_prints_every_size(sweep_store, tmp_path):
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(sweep_store.root, root)
    args = [a for a in TINY_DEMO_ARGS if a not in ("--limit", "64")]
    result = run_train([*args, "--sweep-limit", "96", "64"], root, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 already finished" in result.stdout and "sweep estimate" not in result.stdout
    assert "experiment 'demo-n64'" in result.stdout and "experiment 'demo-n96'" in result.stdout
    assert "nothing to train" in result.stdout
    config = json.loads((root / "demo-n96" / "detection-scratch" / "config.json").read_text())
    assert config["settings"]["limit"] == 96


def test_a_sweep_checks_every_sizes_stored_settings_before_it_trains_any(tmp_path):
    """The largest size's experiment holds other settings: the sweep stops before training the
    smaller ones (hours, on real data), naming that experiment and the difference."""
    import train
    from labcore.store.experiments import record_settings

    args = [a for a in TINY_DEMO_ARGS if a not in ("--limit", "64")] + ["--only", "detection-scratch"]
    settings = train.settings_from_args(train.parse_args(args))
    root = tmp_path / "runs"
    record_settings(root / "demo-n96", "demo-n96", settings.with_overrides(limit=96, image_size=64))
    result = run_train([*args, "--sweep-limit", "64", "96"], root, timeout=600)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"train.py: experiment 'demo-n96' ({root / 'demo-n96'}) was trained with other settings: "
                           "image_size: 64 stored, 32 asked")
    assert not (root / "demo-n64").exists() and "== run" not in result.stdout  # nothing trained, nothing begun
